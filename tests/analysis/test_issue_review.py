"""Resolving likely label errors: accept makes a Review, ambiguous relabels or teaches."""

import numpy as np
import pytest

from analysis.models import AnalysisRun, LabelIssue
from analysis.services.label_issues import issue_resolve
from analysis.services.predictions import predictions_store
from analysis.tasks import run_label_issues
from labeling.models import Membership, Review, WorkedExample
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(manager):
    """40 items labeled 'neg' by one annotator; the uploaded model is sure 10 are 'pos'."""
    project = make_project(manager, labels=("neg", "pos"))
    items = make_items(project, [f"item {n}" for n in range(40)], prefix="i")
    annotator = add_member(project, "ann", Membership.Role.ANNOTATOR)
    make_annotations(
        project, ((item, annotator, "neg" if n < 30 else "pos") for n, item in enumerate(items))
    )
    probs = np.tile([0.9, 0.1], (40, 1))
    probs[30:] = [0.1, 0.9]
    probs[:5] = [0.02, 0.98]  # five 'neg' labels the model is sure are 'pos'
    predictions_store(
        project=project,
        model="m",
        classes=["neg", "pos"],
        item_ids=np.array([i.pk for i in items]),
        probs=probs,
    )
    run = AnalysisRun.objects.create(project=project, kind="label_issues", params={"model": "m"})
    run_label_issues(run.pk)  # the task body, called in this process
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return project


@pytest.fixture
def reviewer_client(reviewer, api_client_for):
    return api_client_for(reviewer)


def top_issue(project):
    return LabelIssue.objects.filter(run__project=project, is_issue=True).order_by("rank").first()


def resolve(client, project, issue, **body):
    return client.post(
        f"/api/v1/projects/{project.pk}/issues/{issue.pk}/resolve/", body, format="json"
    )


def test_the_confident_errors_are_the_issues(project):
    issues = LabelIssue.objects.filter(run__project=project, is_issue=True)
    assert sorted(issues.values_list("item__external_id", flat=True)) == [f"i{n}" for n in range(5)]
    assert set(issues.values_list("suggested_label__name", flat=True)) == {"pos"}


def test_accept_creates_a_review_with_the_suggested_label(project, reviewer, reviewer_client):
    client, user = reviewer_client, reviewer
    issue = top_issue(project)
    response = resolve(client, project, issue, action="accept", why="clearly positive")
    assert response.status_code == 200, response.json()
    assert response.json()["resolution"] == "accepted"
    review = Review.objects.get(item=issue.item)
    assert (review.label.name, review.reviewer, review.note) == ("pos", user, "clearly positive")
    issue.refresh_from_db()
    assert (issue.resolution, issue.resolved_by) == ("accepted", user)


def test_keep_closes_the_issue_without_a_review(project, reviewer_client):
    client = reviewer_client
    issue = top_issue(project)
    assert resolve(client, project, issue, action="keep").json()["resolution"] == "kept"
    assert not Review.objects.exists()
    listed = client.get(f"/api/v1/projects/{project.pk}/issues/?resolution=open&is_issue=true")
    assert issue.pk not in [r["id"] for r in listed.json()["results"]]
    assert listed.json()["count"] == 4


def test_ambiguous_sends_the_item_back_to_annotators(project, reviewer_client):
    client = reviewer_client
    issue = top_issue(project)
    assert resolve(client, project, issue, action="ambiguous").status_code == 200
    issue.item.refresh_from_db()
    assert issue.item.relabel_requested_at is not None
    assert not WorkedExample.objects.exists()


def test_ambiguous_can_become_a_worked_example_of_the_draft(project, reviewer_client):
    client = reviewer_client
    issue = top_issue(project)
    response = resolve(
        client,
        project,
        issue,
        action="ambiguous",
        relabel=False,
        add_example=True,
        why="Sarcasm: the words are positive, the meaning is not.",
    )
    assert response.status_code == 200, response.json()
    example = WorkedExample.objects.get()
    assert example.item == issue.item and example.label.name == "pos"
    assert example.guideline.published_at is None  # the draft, not a published version
    assert "Sarcasm" in example.why
    issue.item.refresh_from_db()
    assert issue.item.relabel_requested_at is None


def test_a_worked_example_can_teach_the_label_the_reviewer_chose(project, reviewer):
    issue = top_issue(project)
    assert issue.suggested_label.name == "pos"
    resolved = issue_resolve(
        issue=issue, action="ambiguous", user=reviewer, add_example=True, label="neg", why="Irony."
    )
    assert resolved.resolution == "ambiguous"
    example = WorkedExample.objects.get()
    assert (example.item, example.label.name, example.why) == (issue.item, "neg", "Irony.")
    issue.item.refresh_from_db()
    assert issue.item.relabel_requested_at is None  # an example alone does not send it back


def test_a_worked_example_needs_a_reason_and_nothing_changes_without_it(project, reviewer_client):
    client = reviewer_client
    issue = top_issue(project)
    response = resolve(client, project, issue, action="ambiguous", relabel=True, add_example=True)
    assert response.status_code == 400 and "why" in response.json()
    issue.item.refresh_from_db()
    assert issue.item.relabel_requested_at is None  # the relabel was rolled back too
    issue.refresh_from_db()
    assert issue.resolution == "open"


def test_unknown_action_and_foreign_issue_are_refused(
    project, make_user, reviewer, reviewer_client
):
    client = reviewer_client
    issue = top_issue(project)
    response = resolve(client, project, issue, action="delete")
    assert response.status_code == 400 and "action" in response.json()
    other = make_project(make_user(), labels=("neg", "pos"))
    add_member(other, reviewer.username, Membership.Role.REVIEWER)
    assert resolve(client, other, issue, action="keep").status_code == 404


def test_annotators_cannot_resolve(project, api_client_for):
    client = api_client_for(add_member(project, "ann", Membership.Role.ANNOTATOR))
    assert resolve(client, project, top_issue(project), action="accept").status_code == 403
    assert not Review.objects.exists()
