"""The annotator's progress bar is their own queue: items they labeled under the current
version, and items the queue rules would still give them (it used to count every open item,
so with overlap >= 2 it never moved)."""

import pytest

from labeling import selectors
from labeling.services.annotating import annotation_skip, annotation_submit
from labeling.services.guidelines import guideline_draft_update, guideline_publish
from labeling.services.leases import leases_release
from labeling.services.queue import next_item
from labeling.services.relabeling import relabel_request
from tests.factories import add_member, make_items, make_project

pytestmark = pytest.mark.django_db


def queue_length(project, annotator) -> int:
    """How many items the queue hands this annotator, claiming one after another.

    The claims are released afterwards: they would hold the items from the next annotator.
    """
    shown = []
    item = next_item(project=project, annotator=annotator)
    while item is not None:
        shown.append(item.pk)
        item = next_item(project=project, annotator=annotator, exclude_item_ids=shown)
    leases_release(annotator=annotator, project=project)
    return len(shown)


def progress(project, annotator) -> tuple[int, int]:
    figures = selectors.labeling_progress(
        project=project, annotator=annotator, guideline=project.current_guideline()
    )
    return figures["done"], figures["available"]


@pytest.fixture
def team(manager):
    """30 items, overlap 2: ann labeled 0-9, bob 5-14, cyd 0-4; ann skipped item 20."""
    project = make_project(manager, overlap=2)
    items = make_items(project, {f"i{n:02d}": f"item {n}" for n in range(30)})
    ann, bob, cyd = (add_member(project, name) for name in ("ann", "bob", "cyd"))
    for annotator, numbers in ((ann, range(10)), (bob, range(5, 15)), (cyd, range(5))):
        for n in numbers:
            annotation_submit(item=items[n], annotator=annotator, label="positive")
    annotation_skip(item=items[20], annotator=ann, reason="unclear")
    return project, manager, items, {"ann": ann, "bob": bob, "cyd": cyd}


def test_progress_counts_what_each_annotator_did_and_can_still_get(team):
    project, _, _, people = team
    # open items: 10-29 (10-14 have bob's label only); 0-9 are complete.
    assert progress(project, people["ann"]) == (10, 19)  # 10-29 but the skipped one
    assert progress(project, people["bob"]) == (10, 15)  # 15-29: 10-14 are his already
    assert progress(project, people["cyd"]) == (5, 20)
    for annotator in people.values():
        assert progress(project, annotator)[1] == queue_length(project, annotator)


def test_progress_follows_relabel_requests_and_a_new_guideline_version(team):
    project, mia, items, people = team
    ann = people["ann"]
    relabel_request(project=project, item_ids=[items[0].pk])  # a new round
    assert progress(project, ann) == (10, 20)
    assert progress(project, ann)[1] == queue_length(project, ann)

    guideline_draft_update(project=project, body="Sarcasm is negative.", user=mia)
    guideline_publish(project=project, user=mia, changelog="sarcasm")
    # Nothing done under v2 yet; the skip was under v1, so item 20 is offered again.
    assert progress(project, ann) == (0, 21)
    assert progress(project, ann)[1] == queue_length(project, ann)


def test_the_bar_moves_as_the_annotator_labels_with_overlap_two(team):
    project, _, items, people = team
    cyd = people["cyd"]
    before = selectors.labeling_progress(
        project=project, annotator=cyd, guideline=project.current_guideline()
    )
    for n in (10, 11, 15):
        annotation_submit(item=items[n], annotator=cyd, label="negative")
    after = selectors.labeling_progress(
        project=project, annotator=cyd, guideline=project.current_guideline()
    )
    # 10 and 11 completed (bob + cyd); 15 is now cyd's: 3 more done, 3 fewer for cyd.
    assert (after["done"], after["available"]) == (before["done"] + 3, before["available"] - 3)
    assert before["percent"] == 20.0 and after["percent"] == 32.0


def test_progress_takes_three_counts_however_many_items(team, django_assert_num_queries):
    project, _, _, people = team
    guideline = project.current_guideline()
    with django_assert_num_queries(3):
        selectors.labeling_progress(project=project, annotator=people["ann"], guideline=guideline)
    make_items(project, ["t"] * 2000, prefix="more-")
    with django_assert_num_queries(3):
        figures = selectors.labeling_progress(
            project=project, annotator=people["ann"], guideline=guideline
        )
    assert figures["available"] == 19 + 2000


def test_annotate_page_shows_the_annotators_own_queue(client, team):
    project, _, _, people = team
    client.force_login(people["bob"])
    html = client.get(f"/projects/{project.pk}/annotate/").content.decode()
    assert "<strong data-done>10</strong> labeled by you under v1" in html
    assert "<strong data-available>15</strong> more available to you" in html
    assert 'aria-valuenow="40.0"' in html
