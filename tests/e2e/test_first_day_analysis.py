"""A team's first day in Chromium, on the README's digits demo cut to 40 images: every
analysis page renders, shows digits as images (never `data:` text), fits 1366 px, says "too
few items to judge" where it cannot judge, and resolving a disagreement keeps the reviewer's
place on the page."""

import re

import numpy as np
import pytest
from django.core.management import call_command
from playwright.sync_api import expect
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from analysis.models import AnalysisRun
from analysis.services.baselines import baselines_job
from analysis.services.drift import drift_job
from analysis.services.predictions import predictions_store
from analysis.services.run_recording import analysis_run
from analysis.services.slices import slices_job
from analysis.tasks import run_agreement, run_label_issues
from labeling.models import ImportBatch, Project, Review
from tests.conftest import wait_for
from tests.e2e.test_analysis_pages import watch_errors

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1366, 900


def run(project, kind, job, params=None):
    record = AnalysisRun.objects.create(project=project, kind=kind, params=params or {})
    if kind in ("agreement", "label_issues"):
        job(record.pk)
    else:
        with analysis_run(record.pk) as recorder:
            job(recorder)
    record.refresh_from_db()
    assert record.status == "succeeded", record.error
    return record


def upload_pixel_model(project) -> None:
    """A logistic regression on the pixels of the digits outside the project, uploaded as the
    model "pixels" (what a team would upload from its own notebook)."""
    digits = load_digits()
    items = list(project.items.order_by("id").values_list("id", "external_id"))
    inside = [int(external_id.removeprefix("digit-")) for _, external_id in items]
    outside = np.setdiff1d(np.arange(len(digits.target)), inside)
    model = LogisticRegression(max_iter=2000).fit(digits.data[outside], digits.target[outside])
    predictions_store(
        project=project,
        model="pixels",
        classes=[str(c) for c in model.classes_],
        item_ids=np.array([item_id for item_id, _ in items]),
        probs=model.predict_proba(digits.data[inside]),
    )


@pytest.fixture
def demo():
    """The demo project with 40 digits: 24 labeled by three simulated crowd workers."""
    call_command("load_demo", "--items", "40")
    project = Project.objects.get(name="Handwritten digits (demo)")
    upload_pixel_model(project)
    run(project, "agreement", run_agreement)
    run(project, "label_issues", run_label_issues)
    run(project, "baselines", baselines_job, {"model": "pixels"})
    run(project, "slices", slices_job, {"model": "pixels"})
    first, second = ImportBatch.objects.filter(project=project, kind="items").order_by("id")
    run(project, "drift", drift_job, {"batch_a": first.pk, "batch_b": second.pk})
    return project


def log_in_as_admin(page, live_server):
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "concord-admin")
    page.click("button[type=submit]")
    expect(page.get_by_role("button", name=re.compile("Log out"))).to_be_visible()


def fits_the_window(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{page.url} is {width} px wide"


def shows_no_data_url(page) -> None:
    assert "data:" not in page.locator("body").inner_text(), page.url


def images_loaded(locator) -> int:
    """How many of the images decode with a size (a broken src has naturalWidth 0); lazy
    thumbnails below the fold are asked to load first."""
    locator.evaluate_all("els => els.forEach(e => { e.loading = 'eager'; })")
    return wait_for(
        lambda: locator.evaluate_all(
            "els => els.filter(e => e.complete && e.naturalWidth > 0).length"
        ),
        timeout=10,
        what="images to load",
    )


def test_every_analysis_page_shows_digits_as_images_and_fits_1366px(
    live_server, page, demo, artifacts
):
    errors = watch_errors(page)
    log_in_as_admin(page, live_server)
    base = f"{live_server.url}/projects/{demo.pk}"

    page.goto(f"{base}/disagreements/")
    rows = page.locator("table.disagreements tbody tr")
    expect(rows.first).to_be_visible()
    thumbs = page.locator("table.disagreements img.item-thumb")
    assert thumbs.count() == rows.count() > 0
    assert images_loaded(thumbs) == thumbs.count()
    box = rows.first.get_by_role("button", name="Resolve").bounding_box()
    assert box["x"] + box["width"] <= WIDTH  # Resolve is on screen, beside the digit
    fits_the_window(page)
    shows_no_data_url(page)
    page.screenshot(path=str(artifacts / "first-day-disagreements.png"))

    page.goto(f"{base}/issues/?all=1")
    issues = page.locator("li.issue")
    expect(issues.first).to_be_visible()
    assert images_loaded(page.locator("li.issue img.item-thumb")) == issues.count()
    banner = page.locator("#issues-too-few")
    expect(banner).to_contain_text(re.compile(r"Too few items to judge \(n=\d+\)"))
    # A trustworthy label reads as good: a long green bar, not a red one.
    high = page.locator(".score-bar.high > span").first
    expect(high).to_have_css("background-color", "rgb(43, 138, 62)")
    fits_the_window(page)
    shows_no_data_url(page)
    page.screenshot(path=str(artifacts / "first-day-issues.png"))

    issues.first.locator(".issue-head a").click()
    expect(page.get_by_role("heading", name=re.compile("^Item digit-"))).to_be_visible()
    digit = page.locator(".item-page-data figure.item-image img")
    assert images_loaded(digit) == 1
    assert digit.bounding_box()["width"] >= 300  # full size, not a thumbnail
    expect(page.locator("table.item-annotations")).to_contain_text("crowd-ann")
    expect(page.locator("table.item-issues")).to_contain_text("crowdlab")  # pixels: built-in model
    fits_the_window(page)
    shows_no_data_url(page)
    page.screenshot(path=str(artifacts / "first-day-item.png"), full_page=True)
    page.locator("#item-back").click()
    expect(page).to_have_url(re.compile(r"/issues/\?all=1$"))

    for name, too_few in (
        ("baselines", "#model-vs-hlp .too-few"),
        ("slices", ".slices-table .too-few"),
        ("drift", ".drift-summary .big-line .badge.warn"),
    ):
        page.goto(f"{base}/{name}/")
        expect(page.locator(too_few).first).to_be_visible()
        expect(page.locator(too_few).first).to_contain_text(re.compile("too few items", re.I))
        fits_the_window(page)
        shows_no_data_url(page)
        page.screenshot(path=str(artifacts / f"first-day-{name}.png"), full_page=True)
    expect(page.locator(".drift-summary .big-line")).not_to_contain_text("stable")

    page.goto(f"{base}/agreement/")
    expect(page.locator(".alpha-value")).to_be_visible()
    fits_the_window(page)
    page.goto(f"{base}/items/")
    page.locator("table.items tbody tr").first.get_by_role("link").click()
    expect(page.get_by_role("heading", name=re.compile("^Item digit-"))).to_be_visible()
    assert errors == []


def test_resolving_a_disagreement_keeps_the_reviewers_place(live_server, page, demo, artifacts):
    errors = watch_errors(page)
    log_in_as_admin(page, live_server)
    page.goto(f"{live_server.url}/projects/{demo.pk}/disagreements/")
    rows = page.locator("table.disagreements tbody tr")
    assert rows.count() >= 4
    row = rows.nth(rows.count() - 2)
    item_id = int(row.get_attribute("id").removeprefix("item-"))
    row.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 120)")
    page.evaluate("window.notReloaded = true")
    before = page.evaluate("window.scrollY")
    assert before > 300

    # Nothing is preselected: Resolve without a choice is stopped by the browser.
    select = row.get_by_label("Final label")
    assert select.input_value() == ""
    row.get_by_role("button", name="Resolve").click()
    assert not Review.objects.filter(item_id=item_id).exists()

    select.select_option("7")
    row.get_by_role("button", name="Resolve").click()
    expect(row.locator(".message.success")).to_contain_text("resolved")
    expect(row.locator(".badge.ok")).to_have_text("resolved")
    assert page.evaluate("window.notReloaded") is True  # the row was swapped, not the page
    assert abs(page.evaluate("window.scrollY") - before) < 5
    assert Review.objects.get(item_id=item_id).label.name == "7"
    page.screenshot(path=str(artifacts / "first-day-disagreement-resolved.png"))
    assert errors == []
