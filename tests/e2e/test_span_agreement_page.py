"""The agreement report of a span project in Chromium at 1366 x 900: run it with the button,
read span F1, alpha over tokens and the per-type chart."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from labeling.models import Guideline
from tests.analysis.test_span_agreement import (
    CAREFUL,
    CONFUSER,
    MISSER,
    SHIFTER,
    simulate,
    span_project,
    store,
)
from tests.conftest import log_in
from tests.factories import add_member, make_annotations

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
WIDTH, HEIGHT = 1366, 900


@pytest.fixture
def console_errors(page):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


@pytest.fixture
def entities(manager):
    """120 demo sentences: three annotators with habits under version 1, then the same three
    careful under version 2 on the first 60."""
    project = span_project(manager, name="Entities")
    sloppy = [SHIFTER, CONFUSER, MISSER]
    items, users = store(project, simulate(120, sloppy, per_item=(3,), seed=31), sloppy)
    v2 = Guideline.objects.create(
        project=project, version=2, published_at=timezone.now(), changelog="boundaries"
    )
    careful = simulate(120, [CAREFUL] * 3, per_item=(3,), seed=31)
    make_annotations(
        project,
        [(items[i], users[a], spans) for i, a, spans in careful.annotations if i < 60],
        guideline=v2,
    )
    add_member(project, "rae", "reviewer")
    return project


def test_reviewer_runs_span_agreement_and_reads_the_report(
    live_server, page, entities, celery_worker, artifacts, console_errors
):
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in(page, live_server, "rae")
    page.goto(f"{live_server.url}/projects/{entities.pk}/agreement/")
    expect(page.get_by_role("heading", name="No agreement report yet")).to_be_visible()

    page.get_by_role("button", name="Run agreement").click()
    expect(page.get_by_role("status")).to_contain_text(re.compile("queued|running|succeeded"))
    expect(page.locator("#span-f1")).to_be_visible(timeout=120_000)  # the page reloads itself

    expect(page.locator("#span-f1")).to_have_text(re.compile(r"^0\.\d{3}$"))
    expect(page.locator("#span-f1-partial")).to_have_text(re.compile(r"^0\.\d{3}$"))
    expect(page.locator("#token-alpha")).to_have_text(re.compile(r"^α = 0\.\d{3}$"))
    expect(page.locator(".agreement-headline")).to_contain_text(
        re.compile(r"95% interval 0\.\d{3} – 0\.\d{3}")
    )
    expect(page.locator(".agreement-headline .badge")).to_have_text(
        re.compile("reliable|tentative|not reliable")
    )
    for chart in ("span-f1-per-label", "alpha-by-version"):
        expect(page.locator(f"#{chart} .main-svg").first).to_be_visible()
    expect(page.locator("#per-label tbody tr")).to_have_count(4)
    expect(page.locator("#per-annotator tbody tr")).to_have_count(3)
    expect(page.locator("#per-pair tbody tr")).to_have_count(3)
    expect(page.locator("#per-version tbody tr")).to_have_count(2)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"the page is {width} px wide"
    page.screenshot(path=str(artifacts / "span-agreement.png"), full_page=True)
    page.screenshot(path=str(artifacts / "span-agreement-first-screen.png"))
    assert console_errors == []
