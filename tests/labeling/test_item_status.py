"""An item's status has one rule: the status an item shows is the `?status=` that lists it.

Reviewed wins, then a relabel request, then the annotation count against the overlap.
"""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from labeling.filters import ItemStatus, item_status, with_counts
from labeling.models import Annotation, Item, Review
from tests.factories import make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(make_user):
    """Six items, one per situation; overlap 2."""
    manager = make_user("status-manager")
    project = make_project(manager, labels=("negative", "positive"), overlap=2)
    Item.objects.bulk_create(
        Item(project=project, external_id=name, data={"text": name})
        for name in ("fresh", "half", "full", "reviewed", "sent-back", "sent-back-reviewed")
    )
    items = {item.external_id: item for item in project.items.all()}
    guideline = project.current_guideline()
    negative = project.labels.first()
    a, b = make_user("status-a"), make_user("status-b")
    for name, annotators in (
        ("half", [a]),
        ("full", [a, b]),
        ("reviewed", [a, b]),
        ("sent-back", [a, b]),
        ("sent-back-reviewed", [a]),
    ):
        for user in annotators:
            Annotation.objects.create(
                project=project, item=items[name], annotator=user, guideline=guideline,
                label=negative,
            )  # fmt: skip
    Review.objects.create(item=items["reviewed"], label=negative)
    Review.objects.create(item=items["sent-back-reviewed"], label=negative)
    Item.objects.filter(external_id__startswith="sent-back").update(
        relabel_requested_at=timezone.now()
    )
    return project


EXPECTED = {
    "fresh": ItemStatus.UNLABELED,
    "half": ItemStatus.IN_PROGRESS,
    "full": ItemStatus.COMPLETE,
    "reviewed": ItemStatus.REVIEWED,
    "sent-back": ItemStatus.RELABEL,
    "sent-back-reviewed": ItemStatus.REVIEWED,
}


def test_item_status_puts_reviews_first_then_relabel_requests_then_counts(project):
    items = with_counts(Item.objects.filter(project=project))
    found = {item.external_id: item_status(item, overlap=project.overlap) for item in items}
    assert found == EXPECTED


def test_each_status_filter_lists_exactly_the_items_showing_that_status(project):
    api = APIClient()
    api.force_authenticate(project.memberships.get(role="manager").user)
    url = f"/api/v1/projects/{project.pk}/items/?page_size=100"
    everything = api.get(url).json()["results"]
    assert {row["external_id"]: row["status"] for row in everything} == EXPECTED
    for status, _ in ItemStatus.CHOICES:
        answer = api.get(f"{url}&status={status}")
        assert answer.status_code == 200, answer.json()
        listed = {row["external_id"] for row in answer.json()["results"]}
        assert listed == {name for name, shown in EXPECTED.items() if shown == status}, status


def test_items_page_shows_the_relabel_status(project, client):
    client.force_login(project.memberships.get(role="manager").user)
    page = client.get(f"/projects/{project.pk}/items/?status=relabel")
    assert page.status_code == 200
    rows = page.context["rows"]
    assert [(item.external_id, item.status) for item in rows] == [("sent-back", "relabel")]
