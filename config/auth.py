"""Login page with throttling: too many failed attempts from one address lock it out a while."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpResponse
from django.template import loader


def _key(request) -> str:
    return f"login-failures:{request.META.get('REMOTE_ADDR', 'unknown')}"


class ThrottledLoginView(auth_views.LoginView):
    def post(self, request, *args, **kwargs):
        if cache.get(_key(request), 0) >= settings.CONCORD_LOGIN_ATTEMPTS:
            page = loader.get_template("registration/login.html").render(
                {"throttled": True, "form": self.get_form()}, request
            )
            return HttpResponse(page, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        key = _key(self.request)
        cache.add(key, 0, settings.CONCORD_LOGIN_WINDOW_SECONDS)
        cache.incr(key)
        return super().form_invalid(form)
