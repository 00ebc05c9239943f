"""A scored queue in Chromium: the annotator is asked for the most useful labels first, and
the manager's dashboard says when the model and its scores refresh next."""

import pytest
from playwright.sync_api import expect

from labeling.models import Item, Project
from labeling.services import queue_scores
from tests.conftest import log_in
from tests.factories import PASSWORD, add_member, make_items, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_annotator_gets_the_lowest_priority_first_and_the_dashboard_counts_down(
    live_server, page, make_user, artifacts, monkeypatch
):
    asked = []
    monkeypatch.setattr(queue_scores, "enqueue", lambda name, *args: asked.append(args))
    manager = make_user("mia", password=PASSWORD)
    project = make_project(
        manager, overlap=1, name="Scored", queue_order=Project.QueueOrder.ACTIVELAB
    )
    Project.objects.filter(pk=project.pk).update(scores_refresh_every=3)
    texts = [f"Review {i}: the battery lasts {i} hours." for i in range(5)]
    items = make_items(project, texts, prefix="r")
    for item, priority in zip(items, [0.9, 0.2, None, 0.1, 0.5], strict=True):
        Item.objects.filter(pk=item.pk).update(priority=priority)
    make_user("ann", password=PASSWORD)
    add_member(project, "ann")

    log_in(page, live_server, "ann")
    page.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    shown = []
    for n in range(3):
        text = page.locator("#annotate-form .item-text")
        expect(text).to_have_text(texts[[3, 1, 4][n]])  # priority 0.1, then 0.2, then 0.5
        shown.append(text.inner_text())
        if n == 0:
            page.screenshot(path=str(artifacts / "scored-queue-annotate.png"), full_page=True)
        page.keyboard.press("1")
    expect(page.locator("#annotate-form .item-text")).to_have_text(texts[0])
    assert len(asked) == 1  # the third new annotation asked for a refresh

    log_in(page, live_server, "mia")
    page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
    expect(page.locator(".model-refresh-due")).to_have_text(
        "next model refresh (queue scores, suggestions) after 3 new annotations"
    )
    page.screenshot(path=str(artifacts / "scored-queue-dashboard.png"), full_page=True)
