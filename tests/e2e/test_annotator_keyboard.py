"""An annotator labels by keyboard in Chromium; the guideline banner; image and table items."""

import base64
import struct
import zlib

import numpy as np
import pytest
from playwright.sync_api import expect

from labeling.models import Annotation, Item, Project
from labeling.services.guidelines import guideline_draft_update, guideline_publish
from tests.conftest import log_in
from tests.factories import PASSWORD, add_member, make_items, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def shown_item(page) -> int:
    return int(page.locator("#annotate-workspace").get_attribute("data-item"))


def wait_for_next(page, previous: int) -> None:
    page.wait_for_function(
        "prev => { const w = document.getElementById('annotate-workspace');"
        " return w && w.dataset.item !== String(prev); }",
        arg=previous,
    )


def png_data_uri(pixels: np.ndarray) -> str:
    """A grayscale PNG (uint8 2-D array) as a data: URI, written with zlib only."""
    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode()


def test_annotator_labels_ten_text_items_with_the_keyboard_only(
    live_server, page, make_user, artifacts
):
    project = make_project(make_user("manager"), overlap=1, name="Reviews")
    texts = [f"Review {i}: the battery lasts {i} hours." for i in range(10)]
    texts[0] = "First line of the review.\nSecond line <b>not bold</b>."
    make_items(project, texts, prefix="r")
    make_user("ann", password=PASSWORD)
    add_member(project, "ann")
    log_in(page, live_server, "ann")
    page.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    first_text = page.locator("#annotate-form .item-text")
    expect(first_text).to_have_text(texts[0])  # escaped, not rendered as HTML
    assert page.locator("#annotate-form .item-text b").count() == 0
    box = first_text.bounding_box()
    assert box and box["height"] > 40  # the line break is kept
    page.screenshot(path=str(artifacts / "annotate-text.png"), full_page=True)

    expected = {}
    for n in range(10):
        item_id = shown_item(page)
        key = "1" if n % 3 else "2"
        if n == 4:
            page.keyboard.press("u")  # unsure on this one
        page.keyboard.press(key)
        expected[item_id] = ("negative" if key == "1" else "positive", n == 4)
        if n < 9:
            wait_for_next(page, item_id)
    expect(page.get_by_role("heading", name="All done")).to_be_visible()
    page.screenshot(path=str(artifacts / "annotate-all-done.png"), full_page=True)

    # z reopens the last item; a label key changes it and keeps the old value as a revision.
    page.keyboard.press("z")
    expect(page.locator("#annotate-form .badge", has_text="changing your label")).to_be_visible()
    last = shown_item(page)
    page.keyboard.press("1" if expected[last][0] == "positive" else "2")
    expect(page.get_by_role("heading", name="All done")).to_be_visible()
    expected[last] = ("negative" if expected[last][0] == "positive" else "positive", False)

    stored = {
        item: (label, unsure)
        for item, label, unsure in Annotation.objects.filter(project=project).values_list(
            "item_id", "label__name", "unsure"
        )
    }
    assert stored == expected
    assert Annotation.objects.get(item_id=last).revisions.count() == 1
    leads = list(Annotation.objects.filter(project=project).values_list("lead_time_ms", flat=True))
    assert None not in leads and sum(leads) > 0  # time spent is recorded per item

    # The manager's dashboard shows the work: all 10 complete, ann's count, the chart.
    make_user("boss", password=PASSWORD)
    add_member(project, "boss", role="manager")
    log_in(page, live_server, "boss")
    page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
    expect(page.locator(".dashboard-states tr", has_text="Complete")).to_contain_text("10")
    expect(page.locator(".dashboard-annotators tbody tr", has_text="ann")).to_contain_text("10")
    expect(page.locator("#throughput-chart .plot-container")).to_be_visible()
    page.screenshot(path=str(artifacts / "labeling-dashboard.png"), full_page=True)


def test_guideline_banner_appears_once_after_a_new_version(live_server, page, make_user, artifacts):
    manager = make_user("manager")
    project = make_project(manager, overlap=1, name="Sentiment")
    Item.objects.create(project=project, external_id="a", data={"text": "Great, just great."})
    make_user("ann", password=PASSWORD)
    add_member(project, "ann")
    log_in(page, live_server, "ann")
    url = f"{live_server.url}/projects/{project.pk}/annotate/"
    page.goto(url)
    expect(page.locator("#annotate-form")).to_be_visible()
    assert page.locator(".guideline-banner").count() == 0  # first visit: nothing "updated"

    guideline_draft_update(
        project=project, body="# Sentiment\n\nSarcasm counts as **negative**.", user=manager
    )
    guideline_publish(project=project, user=manager, changelog="Sarcasm is negative.")
    page.goto(url)
    banner = page.locator(".guideline-banner")
    expect(banner).to_contain_text("Guidelines updated to v2")
    expect(banner).to_contain_text("Sarcasm is negative.")
    expect(page.locator(".guideline-panel strong", has_text="negative")).to_be_visible()
    page.screenshot(path=str(artifacts / "annotate-banner.png"), full_page=True)
    page.keyboard.press("Escape")
    expect(banner).to_have_count(0)
    page.goto(url)
    expect(page.locator("#annotate-form")).to_be_visible()
    assert page.locator(".guideline-banner").count() == 0  # shown once per version


def test_an_image_item_and_a_tabular_item_render(live_server, page, make_user, artifacts):
    from sklearn.datasets import load_digits

    manager = make_user("manager")
    digits = load_digits()
    pixels = (digits.images[0] / 16 * 255).astype(np.uint8)
    pixels = 255 - np.kron(pixels, np.ones((24, 24), dtype=np.uint8))  # 192 x 192, dark ink
    images = make_project(
        manager, name="Digits", data_type=Project.DataType.IMAGE,
        labels=[str(d) for d in range(10)],
    )  # fmt: skip
    Item.objects.create(project=images, external_id="digit-0", data={"image": png_data_uri(pixels)})
    tables = make_project(
        manager, name="Loans", data_type=Project.DataType.TABULAR, labels=("approve", "deny")
    )
    Item.objects.create(
        project=tables,
        external_id="loan-7",
        data={"age": 42, "income": 52000, "city": "Lyon", "notes": "<script>x</script>"},
    )
    make_user("ann", password=PASSWORD)
    for project in (images, tables):
        add_member(project, "ann")
    log_in(page, live_server, "ann")

    page.goto(f"{live_server.url}/projects/{images.pk}/annotate/")
    image = page.locator("#annotate-form .item-image img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 192
    expect(page.locator(".label-btn")).to_have_count(10)
    page.screenshot(path=str(artifacts / "annotate-image.png"), full_page=True)

    page.goto(f"{live_server.url}/projects/{tables.pk}/annotate/")
    rows = page.locator("#annotate-form table.item-fields tr")
    expect(rows).to_have_count(4)
    expect(rows.filter(has_text="income")).to_contain_text("52000")
    expect(rows.filter(has_text="notes")).to_contain_text("<script>x</script>")  # escaped
    page.screenshot(path=str(artifacts / "annotate-table.png"), full_page=True)
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("s")
    expect(page.locator("#skip-dialog")).to_be_visible()
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="All done")).to_be_visible()
    from labeling.models import Skip

    assert list(Skip.objects.values_list("item__external_id", "reason")) == [
        ("loan-7", "Not enough information")
    ]
