from django.urls import path

from analysis import views, views_issues

app_name = "analysis"
urlpatterns: list = [
    path("runs/<int:pk>/status/", views.run_status, name="run_status"),
    path("projects/<int:pk>/agreement/", views.agreement, name="agreement"),
    path("projects/<int:pk>/disagreements/", views.disagreements, name="disagreements"),
    path("projects/<int:pk>/issues/", views_issues.issues, name="issues"),
    path(
        "projects/<int:pk>/issues/<int:issue_id>/example/",
        views_issues.issue_example,
        name="issue_example",
    ),
    path("projects/<int:pk>/items/<int:item_id>/", views.item, name="item"),
    path("projects/<int:pk>/baselines/", views.baselines, name="baselines"),
    path("projects/<int:pk>/slices/", views.slices, name="slices"),
    path("projects/<int:pk>/drift/", views.drift, name="drift"),
]
