from django.urls import path

from labeling.api import views

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("users/", views.UserCreateView.as_view(), name="api-users"),
]
