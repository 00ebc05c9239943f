"""The agreement report in Chromium: run it with the button, watch progress, read the charts."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from labeling.models import Guideline, Item, Review, WorkedExample
from tests.conftest import log_in
from tests.factories import add_member, make_annotations, make_project, simulated_crowd

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def console_errors(page):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


@pytest.fixture
def crowd_project(manager):
    """Dog breeds (four classes) by a noisy crowd of twelve, five on each item."""
    labels = ("0", "1", "2", "3")
    project = make_project(manager, labels=labels)
    workers = {f"worker-{n}": 0.85 - 0.03 * n for n in range(12)}
    simulated_crowd(project, n_items=300, workers=workers, per_item=5, seed=61)
    # A second guideline version, so the per-version chart has two points.
    v2 = Guideline.objects.create(
        project=project, version=2, published_at=timezone.now(), changelog="sharper"
    )
    people = [add_member(project, f"expert-{i}") for i in range(3)]
    items = list(Item.objects.filter(project=project).order_by("pk")[:60])
    make_annotations(
        project,
        (
            (item, person, labels[(n + (k == 2 and n % 5 == 0)) % 4])
            for n, item in enumerate(items)
            for k, person in enumerate(people)
        ),
        guideline=v2,
    )
    add_member(project, "rae", "reviewer")
    return project


def test_reviewer_runs_agreement_and_reads_the_report(
    live_server, page, crowd_project, celery_worker, artifacts, console_errors
):
    log_in(page, live_server, "rae")
    page.goto(f"{live_server.url}/projects/{crowd_project.pk}/agreement/")
    expect(page.get_by_role("heading", name="No agreement report yet")).to_be_visible()

    page.get_by_role("button", name="Run agreement").click()
    expect(page.get_by_role("status")).to_contain_text(re.compile("queued|running|succeeded"))
    # When the run succeeds the page reloads itself with the report.
    expect(page.locator(".alpha-value")).to_be_visible(timeout=120_000)

    expect(page.locator(".alpha-value")).to_contain_text("α = 0.")
    expect(page.locator(".alpha-value .badge")).to_have_text("not reliable")
    for chart in ("alpha-by-version", "kappa-heatmap", "confusion"):
        expect(page.locator(f"#{chart} .main-svg").first).to_be_visible()
    versions = page.get_by_role("region", name="Alpha per guideline version")
    expect(versions.locator("tbody tr")).to_have_count(2)
    expect(page.get_by_role("region", name="Per label").locator("tbody tr")).to_have_count(4)

    page.locator("select[name=annotator]").select_option("expert-0")
    expect(page.locator("#confusion")).to_contain_text("expert-0")
    page.screenshot(path=str(artifacts / "agreement-report.png"), full_page=True)
    assert console_errors == []


def test_reviewer_resolves_a_disagreement_with_a_final_label(
    live_server, page, crowd_project, celery_worker, console_errors, artifacts
):
    log_in(page, live_server, "rae")
    page.goto(f"{live_server.url}/projects/{crowd_project.pk}/disagreements/")
    expect(page.get_by_role("heading", name="No agreement run yet")).to_be_visible()
    page.goto(f"{live_server.url}/projects/{crowd_project.pk}/agreement/")
    page.get_by_role("button", name="Run agreement").click()
    expect(page.locator(".alpha-value")).to_be_visible(timeout=120_000)

    page.goto(f"{live_server.url}/projects/{crowd_project.pk}/disagreements/")
    first = page.locator("table.disagreements tbody tr").first
    expect(first.locator(".given li").first).to_be_visible()
    item_id = int(first.get_attribute("id").removeprefix("item-"))
    first.get_by_label("Final label").select_option("2")
    first.get_by_role("button", name="Resolve").click()
    # The row answers in place (its own message); the page is not reloaded.
    expect(first.locator(".message.success")).to_contain_text("resolved")
    review = Review.objects.get(item_id=item_id)
    assert review.label.name == "2"

    second = page.locator("table.disagreements tbody tr").nth(1)
    relabel_id = int(second.get_attribute("id").removeprefix("item-"))
    second.get_by_role("button", name="Send to relabel").click()
    expect(second.locator(".message.success")).to_contain_text("sent back")
    assert Item.objects.get(pk=relabel_id).relabel_requested_at is not None

    third = page.locator("table.disagreements tbody tr").nth(2)
    example_id = int(third.get_attribute("id").removeprefix("item-"))
    third.get_by_text("Add as worked example").click()
    third.get_by_label("Correct label").select_option("1")
    third.get_by_label("Why").fill("Floppy ears and a curled tail: the guideline's breed 1.")
    third.get_by_role("button", name="Add to guideline draft").click()
    expect(third.locator(".message.success")).to_contain_text("worked example")
    example = WorkedExample.objects.get(item_id=example_id)
    assert example.label.name == "1" and example.guideline.published_at is None
    page.screenshot(path=str(artifacts / "disagreements.png"), full_page=True)
    assert console_errors == []


def test_annotators_cannot_open_the_agreement_page(live_server, page, crowd_project):
    add_member(crowd_project, "annie", "annotator")
    log_in(page, live_server, "annie")
    response = page.goto(f"{live_server.url}/projects/{crowd_project.pk}/agreement/")
    assert response.status == 403
    response = page.goto(f"{live_server.url}/projects/{crowd_project.pk}/disagreements/")
    assert response.status == 403
