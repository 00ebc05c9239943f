"""One page per item: its data, metadata, every annotation with its history, the review and
its label-issue rows; reviewers and managers only; a fixed handful of queries."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from analysis.models import AnalysisRun, LabelIssue
from analysis.tasks import run_label_issues
from labeling.models import Item, Membership
from labeling.services.annotating import annotation_submit
from labeling.services.reviewing import review_set
from tests.factories import PASSWORD, add_member, make_items, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(manager):
    """Items labeled by two annotators (they split on p0); cat changed her mind on p0."""
    project = make_project(manager, labels=("cat", "dog"), overlap=2, name="Pets")
    items = make_items(
        project,
        [f"A photo of pet {n}." for n in range(6)],
        prefix="p",
        metadata=lambda n: {"source": "shelter", "camera": n % 2},
    )
    ann, bob = add_member(project, "ann"), add_member(project, "bob")
    for item in items:
        annotation_submit(item=item, annotator=ann, label="cat", lead_time_ms=2500)
        bob_label = "dog" if item.external_id == "p0" else "cat"
        annotation_submit(item=item, annotator=bob, label=bob_label, lead_time_ms=4100)
    first = project.items.get(external_id="p0")
    annotation_submit(item=first, annotator=ann, label="dog", unsure=True, comment="Pointy ears?")
    review_set(item=first, reviewer=manager, label="dog", note="Ears decide it.")
    run = AnalysisRun.objects.create(project=project, kind="label_issues", params={"model": "none"})
    run_label_issues(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return project


def client_for(username):
    client = Client()
    client.login(username=username, password=PASSWORD)
    return client


def item_url(project, external_id):
    item = project.items.get(external_id=external_id)
    return f"/projects/{project.pk}/items/{item.pk}/"


def text_of(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_reviewer_sees_data_metadata_annotations_history_review_and_issue_rows(project):
    add_member(project, "rev", Membership.Role.REVIEWER)
    response = client_for("rev").get(item_url(project, "p0"))

    assert response.status_code == 200
    html = response.content.decode()
    text = text_of(html)
    assert "A photo of pet 0." in text
    assert "source shelter" in text and "camera 0" in text
    rows = re.findall(r"<tr>.*?</tr>", html.split("item-annotations")[1], re.S)
    cells = [text_of(r).strip() for r in rows[1:]]
    # ann: now "dog", unsure, with a comment, guideline v1; her earlier "cat" is kept below.
    assert cells[0].startswith("ann dog v1 unsure Pointy ears?")
    assert "bob dog v1 — — 4.1 s" in cells[1]
    revision = text_of(html.split('class="revision"')[1].split("</tr>")[0])
    assert "earlier" in revision and " cat " in revision
    assert re.search(r"final label dog by manager", text)
    assert "Ears decide it." in text
    issue = LabelIssue.objects.get(item__external_id="p0")
    issues_text = text_of(html.split("item-issues")[1])
    assert f"#{issue.run_id}" in issues_text and "dawid_skene" in issues_text
    assert 'id="item-back"' in html


def test_back_link_returns_to_the_page_the_reviewer_came_from(project):
    client = client_for("manager")
    came_from = f"http://testserver/projects/{project.pk}/issues/?label=cat"
    html = client.get(item_url(project, "p1"), headers={"referer": came_from}).content.decode()
    assert f'href="{came_from}" id="item-back"' in html
    html = client.get(
        item_url(project, "p1"), headers={"referer": "https://evil.example/"}
    ).content.decode()
    assert f'href="/projects/{project.pk}/items/" id="item-back"' in html


def test_annotators_get_403_and_other_projects_items_404(project, make_user):
    assert client_for("ann").get(item_url(project, "p0")).status_code == 403
    other = make_project(make_user("other"), name="Other")
    [stranger] = make_items(other, {"x": "x"})
    response = client_for("manager").get(f"/projects/{project.pk}/items/{stranger.pk}/")
    assert response.status_code == 404


def test_queries_do_not_grow_with_annotations_or_runs(project):
    client = client_for("manager")
    url = item_url(project, "p0")
    client.get(url)  # warm the session
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    item = project.items.get(external_id="p0")
    for n in range(5):
        user = add_member(project, f"extra{n}")
        Item.objects.filter(pk=item.pk).update(done_count=0)  # room in the round
        annotation_submit(item=item, annotator=user, label="cat", comment=f"note {n}")
    for _ in range(2):
        run = AnalysisRun.objects.create(
            project=project, kind="label_issues", params={"model": "none"}
        )
        run_label_issues(run.pk)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count("note ") >= 5
    assert len(many) == len(few) <= 15, [q["sql"][:80] for q in many.captured_queries]


def test_items_list_links_each_external_id_to_its_item_page(project):
    html = client_for("manager").get(f"/projects/{project.pk}/items/").content.decode()
    item = project.items.get(external_id="p3")
    assert f'<a href="/projects/{project.pk}/items/{item.pk}/"><code>p3</code></a>' in html
