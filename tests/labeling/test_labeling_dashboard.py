"""The labeling dashboard: items by state, per-annotator pace, throughput with its numbers."""

import pytest

from labeling import selectors
from labeling.models import Project
from labeling.services import queue_scores
from labeling.services.annotating import annotation_submit
from labeling.services.projects import project_update
from labeling.services.queue import next_item
from tests.factories import add_member, make_items, make_project

pytestmark = pytest.mark.django_db


def test_dashboard_counts_states_median_seconds_and_throughput(manager, client):
    project = make_project(manager, overlap=2)
    first, second, third, _, _ = make_items(project, ["t"] * 5)
    ann, bob, cy = add_member(project, "ann"), add_member(project, "bob"), add_member(project, "cy")
    for item, seconds in ((first, 2), (second, 4), (third, 9)):
        annotation_submit(item=item, annotator=ann, label="positive", lead_time_ms=seconds * 1000)
    annotation_submit(item=first, annotator=bob, label="negative", lead_time_ms=3000)
    assert next_item(project=project, annotator=cy) == second  # claimed: still in progress

    stats = selectors.labeling_dashboard(project=project, guideline=project.current_guideline())
    # first complete (2 of 2); second and third started; the other two untouched.
    assert stats["states"] == {"not_started": 2, "in_progress": 2, "complete": 1}
    assert stats["annotators"] == [
        {"username": "ann", "n": 3, "n_unsure": 0, "median_seconds": 4.0},
        {"username": "bob", "n": 1, "n_unsure": 0, "median_seconds": 3.0},
    ]
    assert sum(row["n"] for row in stats["throughput"]) == 4

    client.force_login(manager)
    page = client.get(f"/projects/{project.pk}/dashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="throughput-chart"' in html and "dashboard-throughput" in html
    assert "<td>ann</td>" in html and ">4.0<" in html


def test_dashboard_of_an_empty_project_says_so(manager, project, client):
    client.force_login(manager)
    html = client.get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert "No items yet" in html and "throughput-chart" not in html


def test_dashboard_says_after_how_many_new_annotations_the_model_refreshes(
    manager, client, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(queue_scores, "enqueue", lambda name, *args: "task")
    project = make_project(manager, queue_order=Project.QueueOrder.ACTIVELAB)
    project_update(project=project, user=manager, scores_refresh_every=5)
    ann = add_member(project, "ann")
    for item in make_items(project, 2):
        with django_capture_on_commit_callbacks(execute=True):
            annotation_submit(item=item, annotator=ann, label="positive")
    client.force_login(manager)
    html = client.get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert "next model refresh (queue scores, suggestions) after 3 new annotations" in html
    # A project that neither scores its queue nor shows suggestions has no refresh to announce.
    plain = make_project(manager, name="plain")
    assert "next model refresh" not in client.get(f"/projects/{plain.pk}/dashboard/").text
