"""The final label per item (analysis/exports/decisions.py): each strategy on real crowd data
at its published accuracy, ties and reviews on a simulated crowd, and each filter keeps the
right items."""

import csv
import io

import numpy as np
import pytest
from rest_framework.test import APIClient

from analysis.metrics.consensus import majority_vote
from analysis.models import LabelIssue
from labeling.models import Membership, Review
from tests.analysis.exports.voted_project import VOTES, label_issue_run, make_voted_project, rows
from tests.factories import add_member, load_crowd_answers, make_project, simulated_crowd

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(manager):
    return make_voted_project(manager)


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


# --- consensus labels on crowd answers

REFERENCE = {
    ("duck", "majority"): 0.7593,
    ("duck", "dawid_skene"): 0.8889,
    ("dog", "majority"): 0.8116,
    ("dog", "dawid_skene"): 0.8426,
}
CLASSES = {"duck": ("0", "1"), "dog": ("0", "1", "2", "3")}
# Seven workers from good to poor; with an even number on an item, votes can tie.
WORKERS = {f"w{n}": accuracy for n, accuracy in enumerate([0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55])}


def export_csv(client, project, **params) -> list[dict]:
    response = client.get(f"/api/v1/projects/{project.pk}/export/", {"format": "csv", **params})
    assert response.status_code == 200, response.content if not response.streaming else ""
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(body)))


@pytest.mark.parametrize("name", ["duck", "dog"])
@pytest.mark.parametrize("strategy", ["majority", "dawid_skene"])
def test_crowd_answers_export_at_reference_accuracy(
    manager, api_client_for, crowd_data, name, strategy
):
    # The reference's majority vote decides every item; "first_class" does too.
    project = make_project(manager, labels=CLASSES[name], tie_rule="first_class")
    truth = load_crowd_answers(project, crowd_data / name)
    rows = export_csv(api_client_for(manager), project, labels=strategy)
    assert len(rows) == len(truth)
    assert {r["label_source"] for r in rows} == {strategy}
    accuracy = sum(r["label"] == truth[r["external_id"]] for r in rows) / len(truth)
    assert accuracy >= REFERENCE[(name, strategy)] - 0.005, accuracy
    assert all(int(r["n_annotations"]) > 0 for r in rows)
    assert all(0 < float(r["agreement"]) <= 1 for r in rows)
    assert rows[0]["text"].startswith("question ")


def test_unresolved_ties_export_without_a_label_and_can_be_excluded(manager, api_client_for):
    project = make_project(manager, labels=CLASSES["dog"])  # tie_rule "unresolved"
    crowd = simulated_crowd(project, n_items=200, workers=WORKERS, per_item=4, seed=31)
    winner, _, _ = majority_vote(crowd.matrix(), 4, tie_rule="unresolved")
    n_ties = int((winner < 0).sum())
    assert n_ties > 10  # the simulation has ties to show
    client = api_client_for(manager)
    rows = export_csv(client, project, labels="majority")
    ties = [r for r in rows if r["label"] == ""]
    assert len(ties) == n_ties and all(r["label_source"] == "" for r in ties)
    decided = export_csv(client, project, labels="majority", exclude="unresolved")
    assert len(decided) == 200 - n_ties
    accuracy = sum(r["label"] == crowd.truth[r["external_id"]] for r in decided) / len(decided)
    # Leaving ties out is at least as accurate as deciding them by the first class.
    guessed, _, _ = majority_vote(crowd.matrix(), 4, tie_rule="first_class")
    assert accuracy >= np.mean(guessed == crowd.true_classes())


def test_a_review_overrides_every_strategy(manager, api_client_for):
    project = make_project(manager, labels=CLASSES["duck"])
    reviewer = add_member(project, "rev", Membership.Role.REVIEWER)
    crowd = simulated_crowd(project, n_items=108, workers=WORKERS, per_item=5, seed=32)
    truth = crowd.truth
    majority = {r["external_id"]: r for r in export_csv(api_client_for(manager), project)}
    wrong = sorted(e for e, r in majority.items() if r["label"] != truth[e])[:5]
    assert len(wrong) == 5
    for external_id in wrong:
        item = project.items.get(external_id=external_id)
        Review.objects.create(
            item=item, reviewer=reviewer, label=project.labels.get(name=truth[external_id])
        )
    for strategy in ("majority", "dawid_skene", "reviewed"):
        rows = {
            r["external_id"]: r
            for r in export_csv(api_client_for(reviewer), project, labels=strategy)
        }
        for external_id in wrong:
            assert rows[external_id]["label"] == truth[external_id]
            assert rows[external_id]["label_source"] == "review"
    reviewed_only = export_csv(api_client_for(reviewer), project, labels="reviewed")
    assert sum(r["label"] != "" for r in reviewed_only) == 5


def test_default_strategy_is_the_project_setting(manager, api_client_for):
    project = make_project(manager, labels=CLASSES["duck"], default_label_strategy="dawid_skene")
    simulated_crowd(project, n_items=30, workers=WORKERS, per_item=3, seed=33)
    rows = export_csv(api_client_for(manager), project)
    assert len(rows) == 30 and {r["label_source"] for r in rows} == {"dawid_skene"}


def test_annotators_may_not_export_and_strangers_do_not_see_the_project(
    manager, make_user, api_client_for
):
    project = make_project(manager, labels=CLASSES["duck"])
    annotator = add_member(project, "ann", Membership.Role.ANNOTATOR)
    url = f"/api/v1/projects/{project.pk}/export/"
    assert api_client_for(annotator).get(url).status_code == 403
    assert api_client_for(make_user()).get(url).status_code == 404
    assert APIClient().get(url).status_code in (401, 403)
    datasets = f"/api/v1/projects/{project.pk}/datasets/"
    assert api_client_for(annotator).get(datasets).status_code == 403
