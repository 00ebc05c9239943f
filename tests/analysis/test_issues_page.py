"""The Issues page: it renders for every run (ties included), says when the ranking rests on
too few items, and adds worked examples with the label the reviewer chose."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analysis.metrics.label_issues import MIN_MODEL_ITEMS
from analysis.models import AnalysisRun, LabelIssue
from analysis.tasks import run_label_issues
from labeling.models import Membership, WorkedExample
from tests.factories import PASSWORD, add_member, make_annotations, make_items, make_project

pytestmark = pytest.mark.django_db


def crowd_project(manager, n_items, *, tie_on_first=True):
    """Three classes, two annotators on every item; they split on the first item (a tie)."""
    project = make_project(manager, labels=("cat", "dog", "bird"), overlap=2)
    items = make_items(project, [f"photo {n}" for n in range(n_items)], prefix="p")
    ann = add_member(project, "ann")
    bob = add_member(project, "bob")
    rows = []
    for n, item in enumerate(items):
        first = ["cat", "dog", "bird"][n % 3]
        second = "dog" if (n == 0 and tie_on_first) else first
        rows += [(item, ann, first), (item, bob, second)]
    make_annotations(project, rows)
    return project


def finished_run(project, params):
    run = AnalysisRun.objects.create(project=project, kind="label_issues", params=params)
    run_label_issues(run.pk)  # the task body, in this process
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def reviewer_client(client):
    """reviewer_client(project): Django's test client, logged in as a reviewer of the project."""

    def log_in(project):
        client.force_login(add_member(project, "rev", Membership.Role.REVIEWER))
        return client

    return log_in


def test_page_renders_when_the_newest_run_flagged_a_tie(manager, reviewer_client):
    project = crowd_project(manager, 12)
    run = finished_run(project, {"model": "none"})
    tie = LabelIssue.objects.get(run=run, item__external_id="p0")
    assert tie.given_label_id is None and tie.is_issue
    client = reviewer_client(project)

    response = client.get(f"/projects/{project.pk}/issues/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="run-issues"' in html  # the "Find label issues" button is always there
    row = re.search(rf'data-issue-id="{tie.pk}".*?</li>', html, re.S).group(0)
    assert "(tie)" in row
    # The worked-example form offers every class and preselects none: the reviewer chooses.
    select = row.split('name="label"')[1].split("</select>")[0]
    assert re.findall(r'<option value="(\w+)"', select) == ["cat", "dog", "bird"]
    assert re.findall(r"<option[^>]*selected", select) == ['<option value="" disabled selected']


def test_a_ranking_learned_from_too_few_items_says_so(manager, reviewer_client):
    project = crowd_project(manager, 12)
    run = finished_run(project, {"model": "none"})
    client = reviewer_client(project)

    html = client.get(f"/projects/{project.pk}/issues/").content.decode()

    assert run.result["n_items"] == 12 < MIN_MODEL_ITEMS
    assert f"Too few items to judge (n={run.result['n_items']})" in html
    assert f"at least {MIN_MODEL_ITEMS}" in html
    # Flagged rows are not called likely errors.
    assert 'class="badge bad">likely error' not in html
    assert 'class="badge warn" title="Too few items to judge (n=12)">flagged' in html


def test_a_ranking_learned_from_enough_items_has_no_banner(manager, reviewer_client):
    project = crowd_project(manager, MIN_MODEL_ITEMS + 2)
    finished_run(project, {"model": "none"})
    client = reviewer_client(project)

    html = client.get(f"/projects/{project.pk}/issues/").content.decode()

    assert "Too few items to judge" not in html
    assert 'class="badge bad">likely error' in html


def test_worked_example_takes_the_label_the_reviewer_chose(manager, reviewer_client):
    project = crowd_project(manager, 12)
    run = finished_run(project, {"model": "none"})
    issue = LabelIssue.objects.get(run=run, item__external_id="p0")
    client = reviewer_client(project)
    url = f"/projects/{project.pk}/issues/{issue.pk}/example/"

    refused = client.post(url, {"label": "bird", "why": ""}, headers={"accept": "application/json"})
    assert refused.status_code == 400 and "why" in refused.json()
    assert not WorkedExample.objects.exists()

    answer = client.post(
        url,
        {"label": "bird", "why": "Feathers and a beak.", "relabel": "on"},
        headers={"accept": "application/json"},
    )

    assert answer.status_code == 200, answer.content
    assert answer.json()["resolution"] == "ambiguous"
    example = WorkedExample.objects.get()
    assert (example.item.external_id, example.label.name) == ("p0", "bird")
    assert example.why == "Feathers and a beak."
    issue.refresh_from_db()
    assert issue.resolution == "ambiguous"
    assert issue.item.relabel_requested_at is not None


def test_annotators_cannot_add_examples_from_the_issue_queue(manager, client):
    project = crowd_project(manager, 12)
    run = finished_run(project, {"model": "none"})
    issue = LabelIssue.objects.filter(run=run).first()
    client.login(username="ann", password=PASSWORD)
    response = client.post(
        f"/projects/{project.pk}/issues/{issue.pk}/example/", {"label": "cat", "why": "x"}
    )
    assert response.status_code == 403
    assert not WorkedExample.objects.exists()


def test_queries_do_not_grow_with_the_rows_shown(manager, reviewer_client):
    small = crowd_project(manager, 6, tie_on_first=True)
    finished_run(small, {"model": "none"})
    client = reviewer_client(small)
    client.get(f"/projects/{small.pk}/issues/?all=1")
    with CaptureQueriesContext(connection) as few:
        client.get(f"/projects/{small.pk}/issues/?all=1")
    more = make_items(small, [f"more {n}" for n in range(30)], prefix="q")
    ann, bob = (small.memberships.get(user__username=u).user for u in ("ann", "bob"))
    make_annotations(small, ((item, user, "cat") for item in more for user in (ann, bob)))
    finished_run(small, {"model": "none"})
    with CaptureQueriesContext(connection) as many:
        html = client.get(f"/projects/{small.pk}/issues/?all=1").content.decode()
    assert html.count('<li class="issue') == 36
    assert len(many) == len(few) <= 15, [q["sql"][:90] for q in many.captured_queries]


def test_the_run_summary_says_why_no_model_judged_the_labels(manager, reviewer_client):
    project = crowd_project(manager, 12)
    run = finished_run(project, {"model": "none"})
    client = reviewer_client(project)
    url = f"/projects/{project.pk}/issues/"

    note = re.search(r'id="issues-model-note">(.*?)</p>', client.get(url).content.decode())

    assert note.group(1) == run.result["model_note"]
    assert run.result["model_note"] == "No model, as asked: Dawid-Skene weighed the annotators."
    AnalysisRun.objects.filter(pk=run.pk).update(result={**run.result, "model_note": None})
    assert 'id="issues-model-note"' not in client.get(url).content.decode()


def test_bad_run_parameters_answer_htmx_like_every_analysis_page(manager, reviewer_client):
    project = crowd_project(manager, 12)
    client = reviewer_client(project)
    url = f"/projects/{project.pk}/issues/"

    answer = client.post(url, {"model": "builtin", "folds": "99"}, headers={"HX-Request": "true"})

    # 200 so htmx swaps the message in where the progress would show.
    assert answer.status_code == 200
    assert answer.content.decode() == '<p class="message error">folds must be between 2 and 20.</p>'
    plain = client.post(url, {"model": "builtin", "folds": "x"})
    assert plain.status_code == 302 and plain["Location"] == url
    assert not AnalysisRun.objects.filter(project=project).exists()
