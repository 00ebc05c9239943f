"""A small project whose votes exercise every export filter, and calls to its export."""

import csv
import io

from django.utils import timezone
from rest_framework.test import APIClient

from analysis.models import AnalysisRun, LabelIssue
from labeling.models import Guideline, Membership, Review
from tests.factories import add_member, make_annotations, make_items, make_project

# external_id -> labels of annotators 0, 1, 2 under guideline version 1 (None: not labeled)
VOTES = {
    "unanimous": ("a", "a", "a"),
    "two-thirds": ("a", "a", "b"),
    "tie": ("a", "b", "c"),
    "short": ("b", "b", None),  # below the overlap of 3
    "unlabeled": (None, None, None),
    "reviewed": ("a", "b", "c"),  # a reviewer decides "c"
}


def make_voted_project(manager):
    """VOTES under version 1, a review of "reviewed", and "two-thirds" relabeled "b" under v2."""
    project = make_project(manager, labels=("a", "b", "c"), overlap=3)
    annotators = [add_member(project, f"ann{i}", Membership.Role.ANNOTATOR) for i in range(3)]
    labels = {label.name: label for label in project.labels.all()}
    items = make_items(project, dict.fromkeys(VOTES, "t"))
    make_annotations(
        project,
        (
            (item, annotator, vote)
            for item, votes in zip(items, VOTES.values(), strict=True)
            for annotator, vote in zip(annotators, votes, strict=True)
            if vote
        ),
    )
    Review.objects.create(
        item=project.items.get(external_id="reviewed"), reviewer=manager, label=labels["c"]
    )
    v2 = Guideline.objects.create(project=project, version=2, published_at=timezone.now())
    relabeled = project.items.get(external_id="two-thirds")
    make_annotations(
        project, ((relabeled, annotator, "b") for annotator in annotators), guideline=v2
    )
    project.manager, project.labels_by_name, project.annotators = manager, labels, annotators
    return project


def get(project, user=None, **params):
    client = APIClient()
    client.force_authenticate(user or project.manager)
    return client.get(f"/api/v1/projects/{project.pk}/export/", params)


def rows(project, **params) -> dict[str, dict]:
    response = get(project, format="csv", **params)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8")
    return {r["external_id"]: r for r in csv.DictReader(io.StringIO(body))}


def label_issue_run(project, issues):
    run = AnalysisRun.objects.create(
        project=project,
        kind=AnalysisRun.Kind.LABEL_ISSUES,
        status=AnalysisRun.Status.SUCCEEDED,
        finished_at=timezone.now(),
    )
    for rank, (external_id, suggested, quality, is_issue, resolution) in enumerate(issues, 1):
        LabelIssue.objects.create(
            run=run,
            item=project.items.get(external_id=external_id),
            suggested_label=project.labels_by_name[suggested],
            quality=quality,
            is_issue=is_issue,
            rank=rank,
            resolution=resolution,
        )
    return run
