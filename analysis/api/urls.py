from django.urls import path

from analysis.api import issues, predictions, relabel, runs
from analysis.exports import api as exports

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
    path(
        "projects/<int:project_id>/relabel/",
        relabel.RelabelView.as_view(),
        name="api-relabel",
    ),
    # dataset export and versions (analysis/exports)
    path("projects/<int:project_id>/export/", exports.ExportView.as_view(), name="api-export"),
    path(
        "projects/<int:project_id>/datasets/",
        exports.DatasetListView.as_view(),
        name="api-datasets",
    ),
    path(
        "projects/<int:project_id>/datasets/<int:version_id>/",
        exports.DatasetDownloadView.as_view(),
        name="api-dataset",
    ),
    path(
        "projects/<int:project_id>/datasets/<int:a>/diff/<int:b>/",
        exports.DatasetDiffView.as_view(),
        name="api-dataset-diff",
    ),
]
