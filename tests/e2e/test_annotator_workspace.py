"""The annotator's workspace in Chromium at 1366x900: an image item with ten labels fits on
one screen (tiny images drawn crisp), the Skip dialog's keys are readable, and a comment ended
with Enter is kept for the label pressed next."""

import numpy as np
import pytest
from playwright.sync_api import expect
from sklearn.datasets import load_digits

from labeling.management.commands.load_demo import digit_svg
from labeling.models import Annotation, Item, Project
from tests.conftest import log_in
from tests.e2e.test_annotator_keyboard import png_data_uri
from tests.factories import add_member, make_items, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1366, 900


@pytest.fixture
def digits(manager) -> Project:
    """Ten-label digits: an 8x8 PNG first, then the demo's SVG drawings."""
    project = make_project(
        manager, name="Handwritten digits", data_type=Project.DataType.IMAGE,
        labels=[str(d) for d in range(10)],
    )  # fmt: skip
    images = load_digits().images
    png = png_data_uri((255 - images[0] * 255 / 16).astype(np.uint8))
    svgs = {f"svg-{i}": {"image": digit_svg(images[i])} for i in range(1, 4)}
    make_items(project, {"png-0": {"image": png}, **svgs})
    add_member(project, "ann")
    return project


def open_workspace(page, live_server, project) -> None:
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in(page, live_server, "ann")
    page.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    expect(page.locator("#annotate-form .item-image img")).to_be_visible()


def layout(page) -> dict:
    return page.evaluate(
        """() => {
            const box = (el) => el.getBoundingClientRect();
            const all = (selector) => [...document.querySelectorAll(selector)];
            const img = document.querySelector("#annotate-form .item-image img");
            return {
                labelTops: all(".label-btn").map(b => Math.round(box(b).top)),
                actionsBottom: Math.max(...all(".annotate-actions button").map(b => box(b).bottom)),
                scrollHeight: document.documentElement.scrollHeight,
                scrollWidth: document.documentElement.scrollWidth,
                imageHeight: box(img).height,
                pixelated: img.classList.contains("pixelated")
                    && getComputedStyle(img).imageRendering === "pixelated",
            };
        }"""
    )


def test_ten_labels_skip_and_undo_fit_in_1366_by_900_for_an_image(
    live_server, page, digits, artifacts
):
    open_workspace(page, live_server, digits)
    # The 8x8 PNG: drawn large and pixelated (crisp), not blurred.
    page.wait_for_function("document.querySelector('#annotate-form .item-image img.pixelated')")
    facts = layout(page)
    page.screenshot(path=str(artifacts / "annotate-ten-labels-png.png"))
    assert len(facts["labelTops"]) == 10 and len(set(facts["labelTops"])) == 1  # one row
    assert facts["actionsBottom"] <= HEIGHT
    assert facts["scrollHeight"] <= HEIGHT and facts["scrollWidth"] <= WIDTH
    assert facts["imageHeight"] >= 300 and facts["pixelated"]

    # The demo's SVG digit: the same height, still one screen.
    page.keyboard.press("1")
    expect(page.locator("#annotate-workspace")).not_to_have_attribute("data-item", str(
        Item.objects.get(external_id="png-0").pk
    ))  # fmt: skip
    facts = layout(page)
    page.screenshot(path=str(artifacts / "annotate-ten-labels-svg.png"))
    assert len(set(facts["labelTops"])) == 1 and facts["actionsBottom"] <= HEIGHT
    assert facts["scrollHeight"] <= HEIGHT and facts["imageHeight"] >= 300


def test_skip_dialog_enter_key_is_readable_on_its_blue_button(live_server, page, digits, artifacts):
    open_workspace(page, live_server, digits)
    page.keyboard.press("s")
    dialog = page.locator("#skip-dialog")
    expect(dialog).to_be_visible()
    colours = dialog.locator("button.primary kbd").evaluate(
        """kbd => {
            const key = getComputedStyle(kbd), button = getComputedStyle(kbd.closest("button"));
            return {text: key.color, background: key.backgroundColor,
                    buttonText: button.color, buttonBackground: button.backgroundColor};
        }"""
    )
    dialog.screenshot(path=str(artifacts / "annotate-skip-dialog.png"))
    assert colours["background"] == "rgba(0, 0, 0, 0)"  # the blue shows through
    assert colours["text"] == colours["buttonText"] == "rgb(255, 255, 255)"
    assert colours["buttonBackground"] not in (colours["text"], "rgba(0, 0, 0, 0)")


def test_enter_in_the_comment_keeps_it_for_the_label_pressed_next(
    live_server, page, digits, artifacts
):
    open_workspace(page, live_server, digits)
    first = int(page.locator("#annotate-workspace").get_attribute("data-item"))
    page.keyboard.press("c")
    comment = page.locator("input[name=comment]")
    expect(comment).to_be_focused()
    page.keyboard.type("stroke cut off at the top")
    page.keyboard.press("Enter")
    note = page.locator(".comment-note")
    expect(note).to_have_text("Comment kept: it is sent with the label you choose next.")
    expect(comment).not_to_be_focused()
    expect(comment).to_have_class("comment kept")
    page.screenshot(path=str(artifacts / "annotate-comment-kept.png"))
    assert not Annotation.objects.exists()  # nothing sent yet

    page.keyboard.press("8")  # the label "7"
    expect(page.locator("#annotate-workspace")).not_to_have_attribute("data-item", str(first))
    annotation = Annotation.objects.get(item_id=first)
    assert (annotation.label.name, annotation.comment) == ("7", "stroke cut off at the top")
    expect(page.locator(".comment-note")).to_have_text("")  # the next item starts clean
