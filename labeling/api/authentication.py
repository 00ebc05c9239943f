"""Token authentication in one raw statement.

DRF's `TokenAuthentication` loads the token and its user through the ORM on every request;
compiling that query costs more than running it. Every API call of every annotator pays
for it, so the same lookup is written out once here (bench/labeling_load.py measures it).
"""

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from labeling import rawsql

User = get_user_model()
USER_BY_TOKEN = (
    f"SELECT {rawsql.columns(User, alias='u')} FROM {User._meta.db_table} u "
    f"JOIN {Token._meta.db_table} t ON t.user_id = u.{User._meta.pk.column} WHERE t.key = %s"
)


class FastTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        user = rawsql.fetch_one(User, USER_BY_TOKEN, [key])
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, key
