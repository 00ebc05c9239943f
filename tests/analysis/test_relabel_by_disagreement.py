"""Relabel requests over REST (analysis/api/relabel.py, analysis/services/relabeling.py):
chosen items, or every item whose annotators disagree more than a threshold."""

import pytest

from tests.factories import add_member, make_items, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(manager):
    return make_project(manager, overlap=2)


def test_relabel_by_items_and_by_disagreement_threshold(project, api_client_for):
    url = f"/api/v1/projects/{project.pk}/annotations/"
    first, second, _ = make_items(project, 3)
    a, b = api_client_for(add_member(project, "a")), api_client_for(add_member(project, "b"))
    for client, label in ((a, "positive"), (b, "negative")):
        client.post(url, {"item": first.pk, "label": label}, format="json")
    for client in (a, b):
        client.post(url, {"item": second.pk, "label": "positive"}, format="json")
    reviewer = api_client_for(add_member(project, "rev", role="reviewer"))
    relabel = f"/api/v1/projects/{project.pk}/relabel/"
    # Item 1 is split 1:1 (entropy 1.0), item 2 unanimous (0.0).
    assert reviewer.post(relabel, {"threshold": 0.5}, format="json").json() == {"requested": 1}
    first.refresh_from_db(), second.refresh_from_db()
    assert first.relabel_requested_at is not None and first.done_count == 0
    assert second.relabel_requested_at is None
    assert reviewer.post(relabel, {"items": [second.pk]}, format="json").json() == {"requested": 1}
    bad = reviewer.post(relabel, {"items": [10**9]}, format="json")
    assert bad.status_code == 400 and "items" in bad.json()
    assert reviewer.post(relabel, {}, format="json").status_code == 400
    assert reviewer.post(relabel, {"threshold": 2}, format="json").status_code == 400
    # The relabeled items now come first for annotators.
    next_id = a.get(f"/api/v1/projects/{project.pk}/next/").json()["item"]["id"]
    assert next_id == first.pk
