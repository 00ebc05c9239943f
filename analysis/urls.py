from django.urls import path

from analysis.views import (
    agreement,
    baselines,
    disagreements,
    drift,
    issues,
    item,
    model_curve,
    run_status,
    slices,
)

app_name = "analysis"
urlpatterns: list = [
    path("runs/<int:pk>/status/", run_status.run_status, name="run_status"),
    path("projects/<int:pk>/agreement/", agreement.agreement, name="agreement"),
    path("projects/<int:pk>/disagreements/", disagreements.disagreements, name="disagreements"),
    path("projects/<int:pk>/issues/", issues.issues, name="issues"),
    path(
        "projects/<int:pk>/issues/<int:issue_id>/example/",
        issues.issue_example,
        name="issue_example",
    ),
    path("projects/<int:pk>/items/<int:item_id>/", item.item, name="item"),
    path("projects/<int:pk>/baselines/", baselines.baselines, name="baselines"),
    path("projects/<int:pk>/slices/", slices.slices, name="slices"),
    path("projects/<int:pk>/drift/", drift.drift, name="drift"),
    path("projects/<int:pk>/model-curve/", model_curve.model_curve, name="model_curve"),
]
