"""The Disagreements page: images shown as images, a final label the reviewer must choose, and
actions that answer with the row alone so the page stays where the reviewer is."""

import base64
import re

import pytest

from analysis.models import AnalysisRun
from analysis.tasks import run_agreement
from labeling.models import Review
from labeling.services.annotating import annotation_submit
from tests.factories import add_member, make_items, make_project

pytestmark = pytest.mark.django_db

SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="4" height="8"/></svg>'
DATA_URL = "data:image/svg+xml;base64," + base64.b64encode(SVG.encode()).decode()


@pytest.fixture
def project(manager):
    """Image items (data: URLs, as the demo has) on which two annotators split."""
    project = make_project(manager, labels=("3", "8"), overlap=2, name="Digits", data_type="image")
    make_items(project, [{"image": DATA_URL}] * 4, prefix="d")
    ann, bob = add_member(project, "ann"), add_member(project, "bob")
    for item in project.items.order_by("id"):
        annotation_submit(item=item, annotator=ann, label="3")
        annotation_submit(item=item, annotator=bob, label="8")
    run = AnalysisRun.objects.create(project=project, kind="agreement", params={})
    run_agreement(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return project


@pytest.fixture
def client(client, manager):
    """Django's test client, logged in as the project's manager."""
    client.force_login(manager)
    return client


def url(project):
    return f"/projects/{project.pk}/disagreements/"


def test_image_items_are_thumbnails_never_data_url_text(project, client):
    html = client.get(url(project)).content.decode()
    assert html.count('class="item-thumb" src="data:image/svg+xml;base64,') == 4
    without_attributes = re.sub(r'src="[^"]*"', "", html)
    assert "data:" not in without_attributes
    item = project.items.get(external_id="d0")
    assert f'<a href="/projects/{project.pk}/items/{item.pk}/">d0</a>' in html


def test_no_final_label_is_preselected_and_one_is_required(project, client):
    html = client.get(url(project)).content.decode()
    selects = re.findall(r'<select name="label"[^>]*>.*?</select>', html, re.S)
    assert len(selects) == 8  # resolve and worked example, per row
    for select in selects:
        assert "required" in select
        assert re.findall(r"<option[^>]*selected", select) == ['<option value="" disabled selected']
    item = project.items.get(external_id="d1")
    answer = client.post(
        url(project),
        {"item": item.pk, "action": "resolve", "label": ""},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert 'class="message error"' in answer.content.decode()
    assert "Choose one label." in answer.content.decode()
    assert not Review.objects.exists()


def test_resolve_answers_the_row_alone_for_htmx(project, client):
    item = project.items.get(external_id="d2")
    answer = client.post(
        url(project),
        {"item": item.pk, "action": "resolve", "label": "8", "note": "Closed loop"},
        headers={"HX-Request": "true"},
    )
    html = answer.content.decode()
    assert answer.status_code == 200
    assert html.strip().startswith(f'<tr id="item-{item.pk}">') and html.strip().endswith("</tr>")
    assert "<html" not in html and "<table" not in html
    assert 'class="badge ok">resolved</span> 8' in html
    assert f"Item {item.external_id} resolved." in html
    assert Review.objects.get(item=item).label.name == "8"


def test_without_javascript_resolve_redirects_back_to_the_row(project, client):
    item = project.items.get(external_id="d3")
    answer = client.post(
        url(project), {"item": item.pk, "action": "relabel", "return_query": "page=1"}
    )
    assert answer.status_code == 302
    assert answer["Location"] == f"{url(project)}?page=1#item-{item.pk}"
    item.refresh_from_db()
    assert item.relabel_requested_at is not None


def test_queries_do_not_grow_with_the_rows_shown(project, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url(project))
    with CaptureQueriesContext(connection) as four:
        client.get(url(project))
    ann, bob = (project.memberships.get(user__username=u).user for u in ("ann", "bob"))
    for item in make_items(project, [{"image": DATA_URL}] * 12):
        annotation_submit(item=item, annotator=ann, label="8")
        annotation_submit(item=item, annotator=bob, label="3")
    run = AnalysisRun.objects.create(project=project, kind="agreement", params={})
    run_agreement(run.pk)
    with CaptureQueriesContext(connection) as sixteen:
        html = client.get(url(project)).content.decode()
    assert html.count('class="item-thumb"') == 16
    assert len(sixteen) == len(four) <= 12, [q["sql"][:90] for q in sixteen.captured_queries]
