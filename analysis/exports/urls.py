"""The export pages. The REST routes are in analysis/api/urls.py with the app's other APIs."""

from django.urls import path

from analysis.exports import views

app_name = "exports"
urlpatterns = [
    path("projects/<int:pk>/export/", views.export_page, name="export"),
    path(
        "projects/<int:pk>/datasets/<int:a>/diff/<int:b>/",
        views.dataset_diff_page,
        name="dataset_diff",
    ),
]
