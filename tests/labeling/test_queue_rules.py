"""The queue's rules: order, overlap, leases, relabel requests first, skips."""

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Annotation, Item, Lease, Project
from labeling.services import queue
from labeling.services.annotating import annotation_skip, annotation_submit
from labeling.services.leases import leases_release
from labeling.services.queue import next_item, progress_refresh
from labeling.services.relabeling import relabel_request
from tests.factories import add_member, leases_expire, make_items, make_project

pytestmark = pytest.mark.django_db


def test_items_come_in_import_order_and_reload_returns_the_same_item(manager):
    project = make_project(manager, overlap=1)
    first, second, third = make_items(project, 3)
    ann = add_member(project, "ann")
    assert next_item(project=project, annotator=ann) == first
    assert next_item(project=project, annotator=ann) == first  # reload: same lease
    annotation_submit(item=first, annotator=ann, label="positive")
    assert next_item(project=project, annotator=ann) == second
    assert Lease.objects.filter(annotator=ann).count() == 1


def test_overlap_counts_leases_and_started_items_come_first(manager):
    project = make_project(manager, overlap=2)
    first, second, _ = make_items(project, 3)
    a, b, c = (add_member(project, name) for name in "abc")
    assert next_item(project=project, annotator=a) == first
    assert next_item(project=project, annotator=b) == first  # one slot left: fill it
    assert next_item(project=project, annotator=c) == second  # first is fully claimed
    annotation_submit(item=first, annotator=a, label="negative")
    annotation_submit(item=first, annotator=b, label="negative")
    assert Item.objects.get(pk=first.pk).done_count == 2
    # c returns to second; a's next is second (started by c's lease) before third
    assert next_item(project=project, annotator=a) == second


def test_an_annotator_never_gets_an_item_twice(manager):
    project = make_project(manager, overlap=3)
    (only,) = make_items(project, 1)
    ann = add_member(project, "ann")
    annotation_submit(item=only, annotator=ann, label="positive")
    assert next_item(project=project, annotator=ann) is None


def test_an_expired_lease_frees_the_slot(manager, settings):
    project = make_project(manager, overlap=1)
    first, second = make_items(project, 2)
    a, b = add_member(project, "a"), add_member(project, "b")
    assert next_item(project=project, annotator=a) == first
    assert next_item(project=project, annotator=b) == second
    leases_expire(a)
    c = add_member(project, "c")
    assert next_item(project=project, annotator=c) == first
    assert Lease.objects.get(annotator=c).expires_at > timezone.now() + timedelta(
        seconds=settings.CONCORD_LEASE_SECONDS - 5
    )


def test_a_full_item_refuses_a_new_annotation_without_a_lease(manager):
    project = make_project(manager, overlap=1)
    (only,) = make_items(project, 1)
    a, b = add_member(project, "a"), add_member(project, "b")
    assert next_item(project=project, annotator=a) == only
    with pytest.raises(Exception) as caught:
        annotation_submit(item=only, annotator=b, label="positive")
    assert "all the annotations it needs" in str(caught.value)
    annotation_submit(item=only, annotator=a, label="positive")
    assert Item.objects.get(pk=only.pk).done_count == 1


def test_skipped_items_do_not_come_back_under_the_same_version(manager):
    project = make_project(manager, overlap=1)
    first, second = make_items(project, 2)
    ann = add_member(project, "ann")
    assert next_item(project=project, annotator=ann) == first
    annotation_skip(item=first, annotator=ann, reason="cannot read it")
    assert next_item(project=project, annotator=ann) == second
    other = add_member(project, "other")
    assert next_item(project=project, annotator=other) == first  # others still get it


def test_relabel_requests_come_first_and_start_a_new_round(manager):
    project = make_project(manager, overlap=1)
    first, second, third = make_items(project, 3)
    a = add_member(project, "a")
    for item in (first, second):
        assert next_item(project=project, annotator=a) == item
        annotation_submit(item=item, annotator=a, label="positive")
    assert relabel_request(project=project, item_ids=[second.pk]) == 1
    assert Item.objects.get(pk=second.pk).done_count == 0
    # Even the annotator who labeled it before may label it again, and it comes first.
    assert next_item(project=project, annotator=a) == second
    annotation = annotation_submit(item=second, annotator=a, label="negative")
    assert annotation.revisions.count() == 1
    assert Item.objects.get(pk=second.pk).done_count == 1
    assert next_item(project=project, annotator=a) == third


def test_seeded_random_order_is_reproducible_and_not_import_order(manager):
    project = make_project(manager, overlap=2, queue_order=Project.QueueOrder.RANDOM, queue_seed=7)
    made = make_items(project, 12)
    orders = []
    for name in ("first", "second"):
        ann = add_member(project, name)
        seen = []
        while (item := next_item(project=project, annotator=ann)) is not None:
            seen.append(made.index(item))
            annotation_submit(item=item, annotator=ann, label="positive")
        orders.append(seen)
    assert sorted(orders[0]) == list(range(12))
    assert orders[0] == orders[1]  # same seed, same order
    assert orders[0] != list(range(12))
    Project.objects.filter(pk=project.pk).update(queue_seed=8)
    project.refresh_from_db()
    third = add_member(project, "third")
    # Relabel requests of one moment come in the seeded order too.
    relabel_request(project=project, item_ids=[i.pk for i in made])
    seen = []
    while (item := next_item(project=project, annotator=third)) is not None:
        seen.append(made.index(item))
        annotation_submit(item=item, annotator=third, label="positive")
    assert sorted(seen) == list(range(12)) and seen != orders[0]  # another seed, another order


def test_progress_refresh_repairs_counts_after_a_bulk_import(manager):
    project = make_project(manager, overlap=2)
    (only,) = make_items(project, 1)
    guideline = project.current_guideline()
    crowd = [add_member(project, f"crowd{i}") for i in range(2)]
    Annotation.objects.bulk_create(
        Annotation(project=project, item=only, annotator=u, guideline=guideline,
                   label=project.labels.first())
        for u in crowd
    )  # fmt: skip
    assert Item.objects.get(pk=only.pk).done_count == 0  # bulk writes bypass the counter
    # The queue re-counts under its lock and never over-fills; the refresh repairs in bulk.
    assert next_item(project=project, annotator=add_member(project, "late")) is None
    assert progress_refresh(project=project) in (0, 1)
    assert Item.objects.get(pk=only.pk).done_count == 2


def test_an_annotator_alone_moves_on_past_a_window_of_items_they_started(manager, monkeypatch):
    monkeypatch.setattr(queue, "CANDIDATE_WINDOW", 3)  # the first 3 started items are looked at
    project = make_project(manager, overlap=2)
    made = make_items(project, 8)
    alone, late = add_member(project, "alone"), add_member(project, "late")
    seen = []
    for _ in range(5):
        item = next_item(project=project, annotator=alone)
        seen.append(made.index(item))
        annotation_submit(item=item, annotator=alone, label="positive")
    assert seen == [0, 1, 2, 3, 4]
    annotation_submit(item=made[7], annotator=late, label="negative")
    # The window holds only items `alone` labeled: a fresh item comes, not the started 7, and
    # the cost of the call does not grow with the number of items `alone` got ahead.
    assert next_item(project=project, annotator=alone) == made[5]
    # Whoever comes next completes the started items first, in import order.
    assert next_item(project=project, annotator=late) == made[0]


def test_a_relabel_request_made_between_two_calls_is_seen_by_the_next(manager):
    project = make_project(manager, overlap=1)
    first, second, third = make_items(project, 3)
    ann = add_member(project, "ann")
    assert next_item(project=project, annotator=ann) == first
    annotation_submit(item=first, annotator=ann, label="positive")
    relabel_request(project=project, item_ids=[first.pk])
    assert next_item(project=project, annotator=ann) == first
    annotation_submit(item=first, annotator=ann, label="negative")
    assert next_item(project=project, annotator=ann) == second  # the request is done


SCORED_ORDERS = [Project.QueueOrder.UNCERTAINTY, Project.QueueOrder.ACTIVELAB]


def _prioritize(items, priorities):
    for item, priority in zip(items, priorities, strict=True):
        Item.objects.filter(pk=item.pk).update(priority=priority)


@pytest.mark.parametrize("order", SCORED_ORDERS)
def test_scored_orders_ask_for_the_lowest_priority_first_and_unscored_items_last(manager, order):
    project = make_project(manager, overlap=1, queue_order=order)
    made = make_items(project, 5)
    _prioritize(made, [0.9, None, 0.1, None, 0.5])
    ann = add_member(project, "ann")
    seen = []
    while (item := next_item(project=project, annotator=ann)) is not None:
        seen.append(made.index(item))
        annotation_submit(item=item, annotator=ann, label="positive")
    # Scored by priority ascending, then the unscored in import order.
    assert seen == [2, 4, 0, 1, 3]


@pytest.mark.parametrize("order", SCORED_ORDERS)
def test_an_item_labeled_by_others_comes_before_a_fresh_one_when_its_priority_is_lower(
    manager, order
):
    project = make_project(manager, overlap=3, queue_order=order)
    started, fresh, other = make_items(project, 3)
    _prioritize([started, fresh, other], [0.2, 0.3, 0.1])
    first, second = add_member(project, "first"), add_member(project, "second")
    annotation_submit(item=started, annotator=first, label="positive")
    annotation_submit(item=other, annotator=first, label="negative")
    annotation_submit(item=other, annotator=add_member(project, "third"), label="negative")
    annotation_submit(item=other, annotator=add_member(project, "fourth"), label="negative")
    # `other` is full (overlap 3), so its low priority no longer counts; `started` (one label)
    # beats the fresh item because its score is lower: the score decides, not the progress.
    assert next_item(project=project, annotator=second) == started
    # The import order would have taken the started item for its progress alone; here a
    # fresh item with a lower score wins over a started one.
    Item.objects.filter(pk=fresh.pk).update(priority=0.05)
    assert next_item(project=project, annotator=add_member(project, "fifth")) == fresh


@pytest.mark.parametrize("order", SCORED_ORDERS)
def test_relabel_requests_come_before_the_scored_items(manager, order):
    project = make_project(manager, overlap=1, queue_order=order)
    first, second = make_items(project, 2)
    _prioritize([first, second], [0.9, 0.1])
    ann = add_member(project, "ann")
    annotation_submit(item=first, annotator=ann, label="positive")
    relabel_request(project=project, item_ids=[first.pk])
    assert next_item(project=project, annotator=ann) == first


@pytest.mark.parametrize("order", SCORED_ORDERS)
def test_a_scored_order_moves_past_a_window_of_items_the_annotator_labeled(
    manager, monkeypatch, order
):
    monkeypatch.setattr(queue, "CANDIDATE_WINDOW", 3)
    project = make_project(manager, overlap=2, queue_order=order)
    made = make_items(project, 8)
    _prioritize(made, [0.1 * (i + 1) for i in range(8)])
    alone, late = add_member(project, "alone"), add_member(project, "late")
    for item in made[:5]:
        annotation_submit(item=item, annotator=alone, label="positive")
    annotation_submit(item=made[7], annotator=late, label="negative")
    # The window (the 3 lowest priorities) holds only items `alone` labeled; past it come
    # fresh scored items by priority: 5, not the started 7 or anything `alone` labeled.
    assert next_item(project=project, annotator=alone) == made[5]
    # Someone else gets the most useful item with room, labeled by `alone` or not.
    assert next_item(project=project, annotator=late) == made[0]


@pytest.mark.parametrize("order", SCORED_ORDERS)
def test_unscored_items_come_after_the_scored_ones_started_first_as_in_import_order(manager, order):
    project = make_project(manager, overlap=2, queue_order=order)
    fresh, started, scored = make_items(project, 3)
    _prioritize([fresh, started, scored], [None, None, 0.7])
    annotation_submit(item=started, annotator=add_member(project, "early"), label="positive")
    ann = add_member(project, "ann")
    seen = []
    while (item := next_item(project=project, annotator=ann)) is not None:
        seen.append(item)
        annotation_submit(item=item, annotator=ann, label="positive")
    assert seen == [scored, started, fresh]


def summary(item) -> tuple[int, object]:
    fresh = Item.objects.get(pk=item.pk)
    return fresh.lease_count, fresh.leases_expire_at


def test_every_lease_write_keeps_the_items_lease_summary(manager):
    project = make_project(manager, overlap=3)
    first, second = make_items(project, 2)
    a, b, c = (add_member(project, name) for name in "abc")
    assert next_item(project=project, annotator=a) == first
    assert next_item(project=project, annotator=b) == first
    leases = Lease.objects.filter(item=first).order_by("expires_at")
    assert summary(first) == (2, leases[0].expires_at)
    annotation_submit(item=first, annotator=a, label="positive")  # releases a's lease
    assert summary(first) == (1, Lease.objects.get(item=first, annotator=b).expires_at)
    annotation_skip(item=first, annotator=b, reason="unclear")
    assert summary(first) == (0, None)
    assert next_item(project=project, annotator=c) == first
    leases_release(annotator=c, project=project)  # as when c leaves the project
    assert summary(first) == (0, None)
    assert summary(second) == (0, None)


def test_a_summary_that_undercounts_never_overfills_an_item(manager):
    project = make_project(manager, overlap=1)
    first, second = make_items(project, 2)
    a, b = add_member(project, "a"), add_member(project, "b")
    assert next_item(project=project, annotator=a) == first
    Item.objects.filter(pk=first.pk).update(lease_count=0, leases_expire_at=None)
    assert next_item(project=project, annotator=b) == second  # the lease rows decide


def test_a_summary_that_overcounts_holds_an_item_back_only_until_its_earliest_expiry(manager):
    project = make_project(manager, overlap=1)
    (only,) = make_items(project, 1)
    ann = add_member(project, "ann")
    future = timezone.now() + timedelta(minutes=5)
    Item.objects.filter(pk=only.pk).update(lease_count=1, leases_expire_at=future)
    assert next_item(project=project, annotator=ann) is None  # looks leased by someone else
    past = timezone.now() - timedelta(seconds=1)
    Item.objects.filter(pk=only.pk).update(leases_expire_at=past)
    assert next_item(project=project, annotator=ann) == only
