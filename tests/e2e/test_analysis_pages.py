"""Baselines, slices and drift pages render their Plotly charts in Chromium without errors."""

import csv

import numpy as np
import pytest
from playwright.sync_api import expect

from analysis.models import AnalysisRun
from analysis.services.baselines import baselines_job
from analysis.services.drift import drift_job
from analysis.services.predictions import predictions_store
from analysis.services.run_recording import analysis_run
from labeling.models import Annotation, ImportBatch, Item
from tests.conftest import log_in, wait_for
from tests.factories import add_member, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PER_SOURCE = 200
ERROR_RATE = {"amazon": 0.05, "yelp": 0.15, "imdb": 0.3}
SPEED = {"ana": (2000, 5000), "ben": (6000, 12000), "cy": (1000, 2500)}


def build_project(manager, sentiment_data):
    """600 real sentences in two import batches, three simulated annotators, a model."""
    rng = np.random.default_rng(8)
    project = make_project(manager, labels=("negative", "positive"), name="Reviews", overlap=3)
    first = ImportBatch.objects.create(project=project, filename="amazon-yelp.csv", rows=400)
    second = ImportBatch.objects.create(project=project, filename="imdb.csv", rows=200)
    items, truth, error = [], [], []
    for source in ("amazon", "yelp", "imdb"):
        with open(sentiment_data / f"{source}.tsv", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        # imdb is taken mostly positive, so the second batch's label balance moves.
        if source == "imdb":
            rows = [r for r in rows if r[1] == "1"][:150] + [r for r in rows if r[1] == "0"][:50]
        for n, (text, label) in enumerate(rows[:PER_SOURCE]):
            items.append(
                Item(project=project, external_id=f"{source}-{n}", data={"text": text},
                     metadata={"source": source, "stars": int(rng.integers(1, 40))},
                     batch=second if source == "imdb" else first)
            )  # fmt: skip
            truth.append(int(label))
            error.append(ERROR_RATE[source])
    Item.objects.bulk_create(items)
    item_ids = np.array(list(project.items.order_by("id").values_list("id", flat=True)))
    truth, error = np.array(truth), np.array(error)
    label_ids = list(project.labels.values_list("id", flat=True))
    guideline = project.current_guideline()
    annotations = []
    for name, (fast, slow) in SPEED.items():
        user = add_member(project, name)
        given = np.where(rng.random(len(truth)) < error, 1 - truth, truth)
        annotations += [
            Annotation(project=project, item_id=int(i), annotator=user, guideline=guideline,
                       label_id=label_ids[g], lead_time_ms=int(rng.integers(fast, slow)))
            for i, g in zip(item_ids, given, strict=True)
        ]  # fmt: skip
    Annotation.objects.bulk_create(annotations)
    predicted = np.where(rng.random(len(truth)) < 0.12, 1 - truth, truth)
    confidence = rng.uniform(0.55, 0.99, len(truth))
    probs = np.where(
        predicted[:, None] == np.arange(2), confidence[:, None], 1 - confidence[:, None]
    )
    predictions_store(
        project=project, model="builtin", classes=["negative", "positive"],
        item_ids=item_ids, probs=probs,
    )  # fmt: skip
    return project, first, second


def run_job(project, kind, job, params):
    run = AnalysisRun.objects.create(project=project, kind=kind, params=params)
    with analysis_run(run.pk) as recorder:
        job(recorder)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error


def watch_errors(page) -> list[str]:
    """Console errors, uncaught exceptions and failed requests of the page.

    The browser's own favicon request (the app ships none) is the one 404 let through; its
    console line names no URL, so failed loads are checked by response instead.
    """
    errors: list[str] = []

    def on_console(msg):
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    def on_response(response):
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            errors.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", on_response)
    return errors


def charts_drawn(page, expected: int) -> None:
    # Plotly adds .main-svg to a chart it has drawn.
    wait_for(
        lambda: page.locator(".chart .main-svg").count() >= expected,
        timeout=15,
        what=f"{expected} drawn charts",
    )
    assert page.locator(".chart").count() == page.locator(".chart[data-drawn]").count()


def test_analysis_pages_render_their_charts(
    live_server, page, make_user, sentiment_data, artifacts, celery_worker
):
    manager = make_user("mia")
    project, first, second = build_project(manager, sentiment_data)
    run_job(project, "baselines", baselines_job, {})
    run_job(project, "drift", drift_job, {"batch_a": first.pk, "batch_b": second.pk})
    errors = watch_errors(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, "mia")

    page.goto(f"{live_server.url}/projects/{project.pk}/baselines/")
    expect(page.get_by_role("heading", name="Baselines", exact=True)).to_be_visible()
    charts_drawn(page, 4)
    expect(page.locator(".headline-cards")).to_contain_text("HLP")
    expect(page.locator("section[aria-label=Annotators] table")).to_contain_text("cy")
    page.screenshot(path=str(artifacts / "analysis-baselines.png"), full_page=True)

    # Slices: started from the page, run by the real worker, progress shown, then the report.
    page.goto(f"{live_server.url}/projects/{project.pk}/slices/")
    expect(page.get_by_role("heading", name="No slice report yet")).to_be_visible()
    page.click("#run-slices")
    expect(page.locator(".run-status")).to_be_visible()
    expect(page.get_by_role("heading", name="All slices by potential gain")).to_be_visible(
        timeout=60_000
    )
    charts_drawn(page, 2)
    table = page.locator(".slices-table")
    expect(table).to_contain_text("amazon")
    expect(table).to_contain_text("text_length")
    page.screenshot(path=str(artifacts / "analysis-slices.png"), full_page=True)
    # Click-through: the items browser filtered by the slice.
    row = table.locator("tr", has_text="imdb").first
    href = row.get_by_role("link", name="items").get_attribute("href")
    assert href.endswith(f"/projects/{project.pk}/items/?meta_source=imdb")
    row.get_by_role("link", name="confusion").click()
    expect(page.locator("#confusion h2")).to_contain_text("source = imdb")
    charts_drawn(page, 2)

    page.goto(f"{live_server.url}/projects/{project.pk}/drift/")
    expect(page.locator(".drift-summary")).to_contain_text("checks moved")
    charts_drawn(page, 4)
    label_section = page.locator("section#drift-0-section")
    expect(label_section.locator(".badge.bad")).to_be_visible()
    page.screenshot(path=str(artifacts / "analysis-drift.png"), full_page=True)
    assert errors == []


def test_empty_analysis_pages_explain_what_to_do(live_server, page, make_user, artifacts):
    project_pk = make_project(make_user("noa"), name="Fresh").pk
    errors = watch_errors(page)
    log_in(page, live_server, "noa")
    for name, heading in (
        ("baselines", "No baselines yet"),
        ("slices", "No slice report yet"),
        ("drift", "No drift report yet"),
    ):
        page.goto(f"{live_server.url}/projects/{project_pk}/{name}/")
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        assert page.locator(".chart").count() == 0
    # Comparing without choosing batches says what is missing instead of starting a run.
    page.click("#run-drift")
    expect(page.locator("#run-status .message.error")).to_contain_text("batch_a and batch_b")
    assert not AnalysisRun.objects.filter(project_id=project_pk).exists()
    page.screenshot(path=str(artifacts / "analysis-drift-empty.png"), full_page=True)
    assert errors == []


def test_annotators_cannot_open_analysis_pages(live_server, page, make_user):
    project = make_project(make_user(), name="Blind")
    make_user("ann")
    add_member(project, "ann")
    log_in(page, live_server, "ann")
    for name in ("baselines", "slices", "drift"):
        response = page.goto(f"{live_server.url}/projects/{project.pk}/{name}/")
        assert response.status == 403
