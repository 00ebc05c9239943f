"""Image items are shown as images on every labeling page, never as their `data:` URL text,
and no page overflows sideways at 1366 px."""

import numpy as np
import pytest
from playwright.sync_api import expect
from sklearn.datasets import load_digits

from labeling.management.commands.load_demo import digit_svg
from labeling.models import Project
from labeling.services.guidelines import (
    guideline_draft_update,
    guideline_publish,
    worked_example_add,
)
from tests.conftest import log_in
from tests.e2e.test_annotator_keyboard import png_data_uri
from tests.factories import add_member, make_items, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1366, 900


def page_facts(page) -> dict:
    return page.evaluate(
        """() => ({
            dataText: document.body.innerText.includes("data:"),
            scrollWidth: document.documentElement.scrollWidth,
            scrollHeight: document.documentElement.scrollHeight,
        })"""
    )


@pytest.fixture
def digits_project(manager) -> Project:
    """60 digit images as the demo draws them (SVG) and as 8x8 PNGs, with worked examples."""
    project = make_project(
        manager, name="Digits", data_type=Project.DataType.IMAGE, overlap=2,
        labels=[str(d) for d in range(10)],
    )  # fmt: skip
    digits = load_digits()
    first, second, *_ = make_items(
        project,
        {
            f"digit-{i:02d}": {
                "image": digit_svg(digits.images[i])
                if i % 2
                else png_data_uri((255 - digits.images[i] * 255 / 16).astype(np.uint8))
            }
            for i in range(60)
        },
        metadata=lambda i: {"ink": round(float(digits.images[i].mean()), 3)},
    )
    worked_example_add(
        project=project, item=first, label="0", why="A closed loop is a 0.", user=manager
    )
    guideline_draft_update(project=project, body="Label the digit the writer meant.", user=manager)
    guideline_publish(project=project, user=manager, changelog="A worked 0.")
    worked_example_add(
        project=project, item=second, label="1", why="One stroke is a 1.", user=manager
    )
    add_member(project, "ann")
    return project


def test_no_labeling_page_prints_an_image_as_data_text(
    live_server, page, digits_project, artifacts
):
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    base = f"{live_server.url}/projects/{digits_project.pk}"
    log_in(page, live_server, "manager")
    pages = {
        "overview": f"{base}/",
        "items": f"{base}/items/",
        "guidelines": f"{base}/guidelines/",
        "guideline-v2": f"{base}/guidelines/v2/",
        "dashboard": f"{base}/dashboard/",
        "members": f"{base}/members/",
    }
    for name, url in pages.items():
        page.goto(url)
        facts = page_facts(page)
        page.screenshot(path=str(artifacts / f"image-items-{name}.png"), full_page=True)
        assert not facts["dataText"], f"{name} prints a data: URL"
        assert facts["scrollWidth"] <= WIDTH, f"{name} overflows: {facts['scrollWidth']} px"

    # The Items page: 50 thumbnails of 64 px, not 50 base64 walls (it was 202,442 px tall).
    page.goto(pages["items"])
    thumbs = page.locator("table.items img.item-thumb")
    expect(thumbs).to_have_count(50)
    assert thumbs.first.evaluate("img => img.complete && img.getBoundingClientRect().width") == 64
    assert page_facts(page)["scrollHeight"] < 6000

    # Worked examples: the published version's and the draft's, as thumbnails.
    page.goto(pages["guideline-v2"])
    expect(page.locator("table.examples img.item-thumb")).to_have_count(1)
    page.goto(pages["guidelines"])
    expect(page.locator("table.examples img.item-thumb")).to_have_count(2)
    expect(page.locator("table.examples td.example-text")).to_have_count(2)

    # The annotator's guideline panel shows the published example as a thumbnail too.
    log_in(page, live_server, "ann")
    page.goto(f"{base}/annotate/")
    expect(page.locator("#annotate-form .item-image img")).to_be_visible()
    expect(page.locator(".guideline-panel .examples img.item-thumb")).to_have_count(1)
    expect(page.locator(".guideline-panel .examples")).to_contain_text("A closed loop is a 0.")
    facts = page_facts(page)
    page.screenshot(path=str(artifacts / "image-items-annotate.png"))
    assert not facts["dataText"] and facts["scrollWidth"] <= WIDTH
