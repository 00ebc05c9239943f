"""Many annotators pulling and submitting at once never over-fill an item or lose work.

16 threads, each with its own database connection, act as 8 annotators (two browser tabs
each) on a project with overlap 3 until the queue is empty. On PostgreSQL this exercises
`FOR UPDATE SKIP LOCKED`; on SQLite the IMMEDIATE transactions serialize the same code.
The scored orders (`uncertainty`, `activelab`) run the same race over `Item.priority`, with
some items left unscored (NULL) as after an import that came after the last refresh.
"""

import threading
from collections import Counter

import pytest
from django.db import connection, connections, transaction

from labeling.models import Annotation, AnnotationRevision, Item, Lease, Project
from labeling.services.annotating import annotation_submit
from labeling.services.queue import next_item
from tests.factories import add_member, make_items, make_project

pytestmark = pytest.mark.django_db(transaction=True)

N_ITEMS = 60
OVERLAP = 3
N_ANNOTATORS = 8
N_THREADS = 16


@pytest.mark.parametrize(
    "order",
    [Project.QueueOrder.IMPORT, Project.QueueOrder.UNCERTAINTY, Project.QueueOrder.ACTIVELAB],
)
def test_sixteen_threads_fill_every_item_exactly_to_its_overlap(manager, order):
    project = make_project(manager, overlap=OVERLAP, queue_order=order)
    made = make_items(project, N_ITEMS, prefix="item-")
    if order != Project.QueueOrder.IMPORT:
        # Scores in scrambled order (many ties), every fifth item not scored yet.
        for n, item in enumerate(made):
            priority = None if n % 5 == 0 else (n * 7919) % 13 / 13
            Item.objects.filter(pk=item.pk).update(priority=priority)
    annotators = [add_member(project, f"annotator-{i}") for i in range(N_ANNOTATORS)]
    guideline = project.current_guideline()
    submitted: list[tuple[int, int, str, int]] = []  # (item, annotator, label, annotation id)
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(N_THREADS)

    def work(thread_no: int) -> None:
        annotator = annotators[thread_no % N_ANNOTATORS]
        try:
            start.wait()
            for _ in range(N_ITEMS * 2):
                item = next_item(project=project, annotator=annotator)
                if item is None:
                    return
                label = "positive" if (item.pk + thread_no) % 2 else "negative"
                annotation = annotation_submit(
                    item=item,
                    annotator=annotator,
                    label=label,
                    request_id=f"t{thread_no}-i{item.pk}-{len(submitted)}",
                )
                with lock:
                    submitted.append((item.pk, annotator.pk, label, annotation.pk))
            raise AssertionError("the queue did not run dry")
        except BaseException as exc:  # noqa: BLE001 - every error fails the test below
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(N_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    assert errors == []

    rows = list(
        Annotation.objects.filter(project=project).values_list(
            "item_id", "annotator_id", "guideline_id", "label__name", "id"
        )
    )
    per_item = Counter(item for item, *_ in rows)
    assert len(per_item) == N_ITEMS
    assert set(per_item.values()) == {OVERLAP}, "every item has exactly `overlap` annotations"
    assert {g for _, _, g, _, _ in rows} == {guideline.pk}
    pairs = Counter((item, annotator) for item, annotator, *_ in rows)
    assert max(pairs.values()) == 1, "no annotator twice on an item"
    # No submission lost: every accepted submission is stored, either as the annotation's
    # value or (two tabs of one annotator on the same item) as a revision of it.
    by_pair = {(item, annotator): (label, pk) for item, annotator, _, label, pk in rows}
    revisions = Counter(AnnotationRevision.objects.filter(
        annotation__project=project).values_list("annotation_id", flat=True))  # fmt: skip
    for item, annotator, _label, pk in submitted:
        assert by_pair[(item, annotator)][1] == pk
    per_annotation = Counter(pk for *_, pk in submitted)
    for pk, times in per_annotation.items():
        assert revisions.get(pk, 0) == times - 1
    assert len(submitted) >= N_ITEMS * OVERLAP
    assert dict(Item.objects.filter(project=project).values_list("id", "done_count")) == {
        item: OVERLAP for item in per_item
    }
    assert not Lease.objects.filter(item__project=project).exists()
    assert connection.vendor in ("postgresql", "sqlite")


@pytest.mark.skipif(
    not connection.features.has_select_for_update_skip_locked,
    reason="row locks that a claim passes over exist on PostgreSQL only",
)
def test_an_item_held_by_a_transaction_in_flight_is_not_reported_as_nothing_left(manager):
    project = make_project(manager, overlap=1)
    (only,) = make_items(project, 1)
    ann = add_member(project, "ann")
    locked, release = threading.Event(), threading.Event()

    def submit_in_flight():  # another annotator's submit holds the row for 60 ms
        with transaction.atomic():
            Item.objects.select_for_update().filter(pk=only.pk).first()
            locked.set()
            release.wait(5)
        connections.close_all()

    holder = threading.Thread(target=submit_in_flight)
    holder.start()
    assert locked.wait(5)
    threading.Timer(0.06, release.set).start()
    claimed = next_item(project=project, annotator=ann)
    holder.join(5)
    assert claimed == only  # waited for the lock to go, not "nothing left"
    assert next_item(project=project, annotator=add_member(project, "bob")) is None
