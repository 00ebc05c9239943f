"""The Baselines and Slices pages of a span project in Chromium at 1366 x 900: span F1 of the
uploaded token model and HLP with their intervals, the verdict, per type and per slice; a
tiny sample says "too few items to judge"; screenshots of each."""

import re

import pytest
from playwright.sync_api import expect

from tests.analysis.test_span_baselines import demo_project, run
from tests.conftest import log_in
from tests.factories import add_member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
WIDTH, HEIGHT = 1366, 900


@pytest.fixture
def console_errors(page):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def opened(page, live_server, project, name: str):
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    page.goto(f"{live_server.url}/projects/{project.pk}/{name}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"the {name} page is {width} px wide"


def test_a_finished_span_run_shows_model_f1_hlp_and_the_verdict_with_intervals(
    live_server, page, manager, tmp_path, console_errors
):
    project, _, _ = demo_project(manager, n=240)
    add_member(project, "rae", "reviewer")
    result = run(project, "baselines").result
    slices = run(project, "slices").result
    log_in(page, live_server, "rae")

    opened(page, live_server, project, "baselines/")
    expect(page.locator("#hlp")).to_have_text(f"{result['hlp']:.3f}")
    expect(page.locator("#model-f1")).to_have_text(f"{result['model']['f1']:.3f}")
    low, high = result["model"]["ci"]
    expect(page.locator(".headline-cards")).to_contain_text(f"95% interval {low:.3f}–{high:.3f}")
    verdict = page.locator("#model-vs-hlp")
    expect(verdict).to_contain_text("The model is above human level.")
    expect(verdict).to_contain_text(re.compile(r"95% interval \+\d+\.\d pts to \+\d+\.\d pts"))
    expect(verdict).to_contain_text("n=240")
    expect(page.locator("#per-type tbody tr")).to_have_count(4)
    expect(page.locator("#per-annotator tbody tr")).to_have_count(3)
    for chart in ("span-f1-bars", "span-type-bars"):
        expect(page.locator(f"#{chart} .main-svg").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "span-baselines.png"), full_page=True)
    page.screenshot(path=str(tmp_path / "span-baselines-first-screen.png"))

    opened(page, live_server, project, "slices/?field=desk")
    sport = next(r for r in slices["rows"] if r["field"] == "desk" and r["value"] == "sport")
    row = page.locator("#field-rows tbody tr", has_text="sport")
    expect(row).to_contain_text(f"{sport['model_f1']:.3f}")
    expect(row).to_contain_text(f"{sport['hlp']:.3f}")
    expect(row).to_contain_text(f"{sport['gap']:.3f}")
    expect(page.locator("#all-slices tbody tr")).to_have_count(len(slices["rows"]))
    expect(page.locator("#slice-bars .main-svg").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "span-slices.png"), full_page=True)
    print(tmp_path)
    assert console_errors == []


def test_a_tiny_span_sample_is_too_few_to_judge_on_both_pages(
    live_server, page, manager, tmp_path, console_errors
):
    project, _, _ = demo_project(manager, n=12)
    add_member(project, "rae", "reviewer")
    run(project, "baselines")
    run(project, "slices")
    log_in(page, live_server, "rae")

    opened(page, live_server, project, "baselines/")
    expect(page.locator("#model-vs-hlp")).to_contain_text(
        "Too few items to judge (n=12; needs 30)."
    )
    expect(page.locator("#model-vs-hlp")).to_contain_text("95% interval")
    page.screenshot(path=str(tmp_path / "span-baselines-tiny.png"), full_page=True)

    opened(page, live_server, project, "slices/?field=desk")
    expect(page.locator("#field-rows")).to_contain_text("too few items to judge (n=4)")
    expect(page.locator("#all-slices .badge", has_text="small").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "span-slices-tiny.png"), full_page=True)
    print(tmp_path)
    assert console_errors == []


def test_without_a_token_model_the_pages_show_hlp_and_how_to_get_a_model(
    live_server, page, manager, tmp_path, console_errors
):
    project, _, _ = demo_project(manager, n=60, model=False)
    add_member(project, "rae", "reviewer")
    log_in(page, live_server, "rae")
    opened(page, live_server, project, "baselines/")
    expect(page.get_by_role("heading", name="No baselines yet")).to_be_visible()
    expect(page.locator("#run-baselines")).to_be_enabled()
    result = run(project, "baselines").result
    page.reload()
    expect(page.locator("#hlp")).to_have_text(f"{result['hlp']:.3f}")
    expect(page.locator("#model-note")).to_contain_text(
        "Run Find label issues to train the built-in model, or upload token predictions"
    )
    expect(page.locator("#model-vs-hlp")).to_contain_text("needs both figures")
    page.screenshot(path=str(tmp_path / "span-baselines-no-model.png"), full_page=True)
    assert console_errors == []
