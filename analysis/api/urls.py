from django.urls import path

from analysis.api import issues, predictions, runs

urlpatterns: list = [
    path("projects/<int:project_id>/runs/", runs.ProjectRunsView.as_view(), name="api-runs"),
    path("runs/<int:run_id>/", runs.RunDetailView.as_view(), name="api-run"),
    path(
        "projects/<int:project_id>/predictions/",
        predictions.PredictionsView.as_view(),
        name="api-predictions",
    ),
    path("projects/<int:project_id>/issues/", issues.IssueListView.as_view(), name="api-issues"),
    path(
        "projects/<int:project_id>/issues/<int:issue_id>/resolve/",
        issues.IssueResolveView.as_view(),
        name="api-issue-resolve",
    ),
]
