"""User accounts: staff create them and set a new password when someone forgets theirs.

Accounts are site-wide (a person works in several projects); project roles are memberships
(`labeling.services.projects`). Staff who are not superusers cannot change the password of a
staff account or a superuser: that would let them log in as someone with more rights.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

User = get_user_model()


def _require_staff(actor) -> None:
    if not (actor.is_active and actor.is_staff):
        raise PermissionDenied("Only staff create accounts and set passwords.")


def _password_checked(password: str, user) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages})


@transaction.atomic
def account_create(*, username: str, password: str, created_by):
    """A new active account with a usable password.

    Raises PermissionDenied for non-staff, ValidationError naming the field for a taken or
    malformed username or a weak password.
    """
    _require_staff(created_by)
    username = (username or "").strip()
    user = User(username=username)
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        raise ValidationError({"username": exc.message_dict.get("username", exc.messages)})
    _password_checked(password, user)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # created by someone else since full_clean looked
        raise ValidationError({"username": "A user with that username already exists."})
    return user


@transaction.atomic
def account_password_set(*, user, password: str, changed_by) -> None:
    """Give an account a new password.

    Whoever knew the old one is locked out: Django ends the account's browser sessions (their
    session hash changes) and the account's API token is deleted (a new one is issued at the
    next `POST /api/v1/auth/token/`).
    """
    _require_staff(changed_by)
    if (user.is_staff or user.is_superuser) and not changed_by.is_superuser:
        raise PermissionDenied("Only a superuser sets the password of a staff account.")
    _password_checked(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    Token.objects.filter(user=user).delete()
