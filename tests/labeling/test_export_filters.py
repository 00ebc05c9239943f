"""Export filters: each exclusion, min_agreement, guideline_version, per-annotation rows, 400s."""

import csv
import io

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from analysis.models import AnalysisRun, LabelIssue
from labeling.models import Annotation, Guideline, Item, Membership, Review
from tests.factories import add_member, make_project

pytestmark = pytest.mark.django_db

# external_id -> labels of annotators 0, 1, 2 under guideline version 1 (None: not labeled)
VOTES = {
    "unanimous": ("a", "a", "a"),
    "two-thirds": ("a", "a", "b"),
    "tie": ("a", "b", "c"),
    "short": ("b", "b", None),  # below the overlap of 3
    "unlabeled": (None, None, None),
    "reviewed": ("a", "b", "c"),  # a reviewer decides "c"
}


@pytest.fixture
def project(make_user):
    manager = make_user("boss")
    project = make_project(manager, labels=("a", "b", "c"), overlap=3)
    annotators = [add_member(project, f"ann{i}", Membership.Role.ANNOTATOR) for i in range(3)]
    v1 = project.current_guideline()
    labels = {label.name: label for label in project.labels.all()}
    for external_id, votes in VOTES.items():
        item = Item.objects.create(project=project, external_id=external_id, data={"text": "t"})
        for annotator, vote in zip(annotators, votes, strict=True):
            if vote:
                Annotation.objects.create(
                    project=project,
                    item=item,
                    annotator=annotator,
                    guideline=v1,
                    label=labels[vote],
                )
    Review.objects.create(
        item=project.items.get(external_id="reviewed"), reviewer=manager, label=labels["c"]
    )
    v2 = Guideline.objects.create(project=project, version=2, published_at=timezone.now())
    relabeled = project.items.get(external_id="two-thirds")
    for annotator in annotators:
        Annotation.objects.create(
            project=project, item=relabeled, annotator=annotator, guideline=v2, label=labels["b"]
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


def test_without_filters_every_item_is_exported_with_its_decision(project):
    exported = rows(project, labels="majority")
    assert list(exported) == list(VOTES)
    # two-thirds was relabeled "b" by all three under version 2: the newest annotation counts
    assert exported["two-thirds"]["label"] == "b"
    assert exported["unanimous"]["agreement"] == "1.0"
    assert exported["tie"]["label"] == "" and exported["tie"]["agreement"] == "0.333333"
    assert exported["unlabeled"]["n_annotations"] == "0"
    assert exported["reviewed"]["label"] == "c"
    assert exported["reviewed"]["label_source"] == "review"


def test_exclude_unresolved_drops_ties_short_and_unlabeled_items(project):
    exported = rows(project, exclude="unresolved")
    assert sorted(exported) == ["reviewed", "two-thirds", "unanimous"]


def test_min_agreement_keeps_reviewed_items_whatever_the_votes(project):
    exported = rows(project, min_agreement="0.9", guideline_version="1")
    assert sorted(exported) == ["reviewed", "short", "unanimous"]  # short: 2 of 2 agree
    exported = rows(project, min_agreement="0.6", guideline_version="1")
    assert sorted(exported) == ["reviewed", "short", "two-thirds", "unanimous"]


def test_guideline_version_counts_only_that_versions_annotations(project):
    v1 = rows(project, guideline_version="1")
    assert v1["two-thirds"]["label"] == "a"
    assert v1["two-thirds"]["agreement"] == "0.666667"
    v2 = rows(project, guideline_version="2")
    assert list(v2) == ["two-thirds"]
    assert v2["two-thirds"]["label"] == "b" and v2["two-thirds"]["n_annotations"] == "3"


def test_open_issues_and_ambiguous_items_are_excluded_and_quality_is_shown(project):
    label_issue_run(
        project,
        [
            ("unanimous", "b", 0.05, True, LabelIssue.Resolution.OPEN),
            ("two-thirds", "a", 0.10, True, LabelIssue.Resolution.KEPT),
            ("short", "b", 0.20, True, LabelIssue.Resolution.AMBIGUOUS),
            ("tie", "c", 0.90, False, LabelIssue.Resolution.OPEN),
        ],
    )
    everything = rows(project)
    assert everything["unanimous"]["quality"] == "0.05"
    assert everything["unanimous"]["issue"] == "true"
    assert everything["tie"]["issue"] == "false"
    assert everything["reviewed"]["quality"] == ""
    assert "unanimous" not in rows(project, exclude="open_issues")
    assert "two-thirds" in rows(project, exclude="open_issues")  # resolved: label kept
    assert sorted(rows(project, exclude="ambiguous")) == sorted(set(VOTES) - {"short"})
    both = rows(project, exclude="open_issues,ambiguous")
    assert sorted(both) == sorted(set(VOTES) - {"short", "unanimous"})


def test_crowdlab_labels_come_from_the_newest_label_issue_run(project):
    label_issue_run(project, [("unanimous", "b", 0.3, True, LabelIssue.Resolution.OPEN)])
    label_issue_run(project, [("unanimous", "c", 0.2, True, LabelIssue.Resolution.OPEN)])
    exported = rows(project, labels="crowdlab")
    assert exported["unanimous"]["label"] == "c"
    assert exported["unanimous"]["label_source"] == "crowdlab"
    assert exported["unanimous"]["quality"] == "0.2"
    assert exported["reviewed"]["label_source"] == "review"
    assert exported["two-thirds"]["label"] == ""  # not in the run


def test_include_annotations_gives_one_row_per_annotation_of_kept_items(project):
    exported = get(project, format="csv", include="annotations", exclude="unresolved")
    body = b"".join(exported.streaming_content).decode("utf-8")
    lines = list(csv.DictReader(io.StringIO(body)))
    assert list(lines[0]) == [
        "external_id",
        "annotator",
        "label",
        "guideline_version",
        "created_at",
    ]
    assert {r["external_id"] for r in lines} == {"unanimous", "two-thirds", "reviewed"}
    assert len(lines) == 3 + 6 + 3
    assert sum(r["guideline_version"] == "2" for r in lines) == 3
    only_v2 = get(project, format="csv", include="annotations", guideline_version="2")
    assert b"".join(only_v2.streaming_content).decode().count("\n") == 1 + 3


@pytest.mark.parametrize(
    ("params", "field", "allowed"),
    [
        ({"format": "xml"}, "format", "csv, jsonl, parquet, labelstudio"),
        ({"labels": "vote"}, "labels", "majority, dawid_skene, crowdlab, reviewed"),
        ({"exclude": "unresolved,junk"}, "exclude", "open_issues, ambiguous, unresolved"),
        ({"include": "everything"}, "include", "annotations"),
        ({"min_agreement": "1.5"}, "min_agreement", "0 to 1"),
        ({"min_agreement": "high"}, "min_agreement", "0 to 1"),
        ({"guideline_version": "7"}, "guideline_version", "1, 2"),
        ({"labels": "crowdlab"}, "labels", "label-issue run"),
    ],
)
def test_bad_parameters_answer_400_with_the_allowed_values(project, params, field, allowed):
    response = get(project, **params)
    assert response.status_code == 400
    assert allowed in str(response.json()[field])
    assert "detail" in response.json()


def test_annotators_get_403(project):
    assert get(project, user=project.annotators[0]).status_code == 403
