from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.auth import ThrottledLoginView
from config.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page says; lazy: the static URL may be hashed.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("concord/favicon.svg"))),
    path("admin/", admin.site.urls),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("labeling.api.urls")),
    path("api/v1/", include("analysis.api.urls")),
    path("", include("analysis.urls")),
    path("", include("analysis.exports.urls")),
    path("", include("labeling.urls")),
]

handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
