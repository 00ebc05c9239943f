"""The annotator API: next item, submitting, blind annotation lists."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from labeling.models import Annotation, Item
from tests.factories import add_member, make_items, make_project

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def project(manager):
    project = make_project(manager, overlap=2)
    make_items(project, 3)
    return project


def test_next_returns_the_item_and_version_then_204_when_done(project, api_client_for):
    ann = api_client_for(add_member(project, "ann"))
    url = f"/api/v1/projects/{project.pk}/next/"
    seen = []
    while (response := ann.get(url)).status_code == 200:
        body = response.json()
        assert body["guideline_version"] == 1
        assert set(body["item"]) == {"id", "external_id", "data"}
        assert ann.get(url).json()["item"]["id"] == body["item"]["id"]  # reload: same item
        seen.append(body["item"]["external_id"])
        posted = ann.post(
            f"/api/v1/projects/{project.pk}/annotations/",
            {"item": body["item"]["id"], "label": "positive", "lead_time_ms": 1500},
            format="json",
        )
        assert posted.status_code == 201, posted.json()
    assert response.status_code == 204
    assert seen == ["e0", "e1", "e2"]


def test_a_submission_with_next_answers_the_next_item_in_the_same_call(project, api_client_for):
    ann = api_client_for(add_member(project, "ann"))
    base = f"/api/v1/projects/{project.pk}"
    current = ann.get(f"{base}/next/").json()
    seen = [current["item"]["external_id"]]
    while True:
        posted = ann.post(
            f"{base}/annotations/?next=1",
            {"item": current["item"]["id"], "label": "negative"},
            format="json",
        )
        assert posted.status_code == 201, posted.json()
        body = posted.json()
        assert body["item"] == current["item"]["id"] and body["label"] == "negative"
        if body["next"] is None:
            break
        current = body["next"]
        assert current["guideline_version"] == 1
        assert set(current["item"]) == {"id", "external_id", "data"}
        # The embedded item is the leased one the `next` endpoint would answer with.
        assert ann.get(f"{base}/next/").json() == current
        seen.append(current["item"]["external_id"])
    assert seen == ["e0", "e1", "e2"]
    assert ann.get(f"{base}/next/").status_code == 204
    assert Annotation.objects.filter(annotator__username="ann").count() == 3
    plain = api_client_for(add_member(project, "bob")).post(
        f"{base}/annotations/", {"item": current["item"]["id"], "label": "negative"}, format="json"
    )
    assert plain.status_code == 201 and "next" not in plain.json()  # only when asked


def test_idempotency_key_header_prevents_a_duplicate(project, api_client_for):
    ann = api_client_for(add_member(project, "ann"))
    item = Item.objects.filter(project=project).first()
    url = f"/api/v1/projects/{project.pk}/annotations/"
    first = ann.post(url, {"item": item.pk, "label": "negative"}, format="json",
                     HTTP_IDEMPOTENCY_KEY="abc")  # fmt: skip
    second = ann.post(url, {"item": item.pk, "label": "negative"}, format="json",
                      HTTP_IDEMPOTENCY_KEY="abc")  # fmt: skip
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert Annotation.objects.count() == 1


def test_bad_submissions_answer_4xx_json(project, api_client_for):
    ann = api_client_for(add_member(project, "ann"))
    url = f"/api/v1/projects/{project.pk}/annotations/"
    item = Item.objects.filter(project=project).first()
    unknown = ann.post(url, {"item": item.pk, "label": "maybe"}, format="json")
    assert unknown.status_code == 400 and "label" in unknown.json()
    missing = ann.post(url, {"item": 999999, "label": "positive"}, format="json")
    assert missing.status_code == 400 and "item" in missing.json()
    garbage = ann.post(url, {"item": "x"}, format="json")
    assert garbage.status_code == 400 and "detail" in garbage.json()


def test_a_full_item_answers_409(project, api_client_for):
    item = Item.objects.filter(project=project).first()
    url = f"/api/v1/projects/{project.pk}/annotations/"
    for name in ("a", "b"):
        api_client_for(add_member(project, name)).post(url, {"item": item.pk, "label": "positive"},
                                                   format="json")  # fmt: skip
    late = api_client_for(add_member(project, "late")).post(
        url, {"item": item.pk, "label": "positive"}, format="json"
    )
    assert late.status_code == 409
    assert "all the annotations" in late.json()["detail"]
    # Asked with ?next=1, the refusal hands over the next item, so the tool carries on.
    again = api_client_for(User.objects.get(username="late")).post(
        f"{url}?next=1", {"item": item.pk, "label": "positive"}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["next"]["item"]["external_id"] == "e1"


def test_annotators_see_only_their_own_annotations(project, api_client_for):
    item = Item.objects.filter(project=project).first()
    url = f"/api/v1/projects/{project.pk}/annotations/"
    ann, bob = add_member(project, "ann"), add_member(project, "bob")
    api_client_for(ann).post(url, {"item": item.pk, "label": "positive"}, format="json")
    api_client_for(bob).post(url, {"item": item.pk, "label": "negative"}, format="json")
    mine = api_client_for(ann).get(url).json()
    assert mine["count"] == 1
    assert [(r["annotator"], r["label"]) for r in mine["results"]] == [("ann", "positive")]
    # Filtering cannot widen an annotator's view.
    assert api_client_for(ann).get(url, {"annotator": "bob"}).json()["count"] == 1
    reviewer = api_client_for(add_member(project, "rev", role="reviewer"))
    everyone = reviewer.get(url).json()
    assert sorted(r["annotator"] for r in everyone["results"]) == ["ann", "bob"]
    assert reviewer.get(url, {"annotator": "bob"}).json()["results"][0]["label"] == "negative"


def test_roles_guard_the_endpoints(project, make_user, api_client_for):
    outsider = api_client_for(make_user("outsider"))
    assert outsider.get(f"/api/v1/projects/{project.pk}/next/").status_code == 404
    reviewer = api_client_for(add_member(project, "rev", role="reviewer"))
    assert reviewer.get(f"/api/v1/projects/{project.pk}/next/").status_code == 200
    ann = api_client_for(add_member(project, "ann"))
    relabel = ann.post(f"/api/v1/projects/{project.pk}/relabel/", {"items": [1]}, format="json")
    assert relabel.status_code == 403
    assert APIClient().get(f"/api/v1/projects/{project.pk}/next/").status_code in (401, 403)
