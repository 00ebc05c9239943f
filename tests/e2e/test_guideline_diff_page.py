"""A manager edits one line of the guideline in Chromium (whose textarea posts CRLF); the new
version's page shows exactly that line as removed and added, in colour."""

import pytest
from playwright.sync_api import expect

from labeling.models import Guideline
from labeling.services.guidelines import guideline_draft_update, guideline_publish
from tests.conftest import log_in
from tests.factories import make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BODY = "# Sentiment\n\nSarcasm is negative.\nPraise is positive.\nMixed is neutral.\n"


def test_one_line_edited_in_the_browser_diffs_as_one_line(live_server, page, make_user, artifacts):
    mia = make_user("mia")
    project = make_project(mia, name="Reviews")
    guideline_draft_update(project=project, body=BODY, user=mia)
    guideline_publish(project=project, user=mia, changelog="First rules")

    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server, "mia")
    page.goto(f"{live_server.url}/projects/{project.pk}/guidelines/")
    body = page.locator("#id_body")
    expect(body).to_have_value(BODY)
    body.fill(BODY.replace("Praise is positive.", "Praise is positive, unless sarcastic."))
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    assert "\r" not in Guideline.objects.get(project=project, published_at__isnull=True).body
    page.fill("#id_publish_changelog", "Sarcastic praise\nis negative")
    page.get_by_role("button", name="Publish as version 3").click()
    expect(page.get_by_text("Version 3 published.")).to_be_visible()

    page.get_by_role("link", name="v3", exact=True).click()
    diff = page.locator("pre.diff")
    expect(diff.locator(".diff-line.removed")).to_have_count(1)
    expect(diff.locator(".diff-line.removed")).to_have_text("-Praise is positive.")
    expect(diff.locator(".diff-line.added")).to_have_count(1)
    expect(diff.locator(".diff-line.added")).to_have_text("+Praise is positive, unless sarcastic.")
    colours = diff.evaluate(
        """pre => ["added", "removed", ""].map(kind => {
            const selector = kind ? `.diff-line.${kind}` : ".diff-line:not([class*=' '])";
            const line = pre.querySelector(selector);
            const style = getComputedStyle(line);
            return [style.backgroundColor, style.color];
        })"""
    )
    added, removed, unchanged = colours
    assert len({added[0], removed[0], unchanged[0]}) == 3  # three different backgrounds
    assert added[1] != removed[1]
    page.screenshot(path=str(artifacts / "guideline-diff-v3.png"), full_page=True)
