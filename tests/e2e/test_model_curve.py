"""The Dashboard's model accuracy per refresh in Chromium: the curve of the project's real
history (model_refresh runs) with its interval band and table, and the empty state."""

import pytest
from playwright.sync_api import expect

from tests.conftest import log_in
from tests.factories import add_member, make_annotations, make_items, make_model_refresh_runs

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def console_errors(page):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_reviewer_reads_the_models_accuracy_per_refresh_on_the_dashboard(
    live_server, page, project, artifacts, console_errors
):
    add_member(project, "rae", "reviewer")
    ann = add_member(project, "ann")
    items = make_items(project, 20)
    make_annotations(project, [(item, ann, "positive") for item in items])
    make_model_refresh_runs(
        project,
        [
            (200, 0.62, (0.55, 0.69)),
            (400, 0.71, (0.65, 0.77)),
            (600, 0.78, (0.73, 0.83)),
            (800, 0.80, (0.76, 0.84)),
            (1000, 0.83, (0.79, 0.87)),
        ],
    )
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server, "rae")
    page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
    panel = page.locator("section.model-curve")
    expect(panel.locator("svg")).to_be_visible()
    expect(panel.locator("svg circle")).to_have_count(5)
    expect(panel.locator("svg polygon")).to_have_count(1)  # the interval band
    rows = panel.locator("table.model-refreshes tbody tr")
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text("200")
    expect(rows.last).to_contain_text("0.830")
    expect(rows.last).to_contain_text("0.790–0.870")
    # The curve goes up: the last point sits higher on the page than the first.
    circles = panel.locator("svg circle")
    first, last = circles.first.bounding_box(), circles.last.bounding_box()
    assert last["y"] < first["y"] and last["x"] > first["x"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "dashboard-model-curve.png"))
    assert console_errors == []


def test_with_no_refresh_yet_the_dashboard_says_so(
    live_server, page, project, artifacts, console_errors
):
    add_member(project, "rae", "reviewer")
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server, "rae")
    page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
    panel = page.locator("section.model-curve")
    expect(panel).to_contain_text("No model refresh yet: when the queue is ordered by")
    expect(panel).to_contain_text("after every 200 new annotations")
    expect(panel.locator("svg")).to_have_count(0)
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "dashboard-model-curve-empty.png"))
    assert console_errors == []
