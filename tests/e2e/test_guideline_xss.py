"""XSS payloads in guideline markdown, worked examples and item text are inert in Chromium."""

import pytest
from django.urls import NoReverseMatch, reverse
from playwright.sync_api import expect

from labeling.models import Item, Membership
from labeling.services.guidelines import (
    guideline_draft_update,
    guideline_publish,
    worked_example_add,
)
from tests.conftest import log_in
from tests.factories import PASSWORD, add_member, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    '<a href="javascript:alert(1)">click me</a>',
    "<svg onload=alert(1)>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<details open ontoggle=alert(1)>",
]
BODY = "# Rules\n\nSarcasm is **negative**.\n\n" + "\n\n".join(PAYLOADS)
ITEM_TEXT = "Great phone " + " ".join(PAYLOADS)


def visit(page, url: str):
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)  # give an image's onerror time to fire


def test_payloads_render_inert_for_manager_and_annotator(live_server, page, make_user, artifacts):
    manager = make_user("mia", password=PASSWORD)
    project = make_project(manager, name="XSS check")
    add_member(project, "ann", Membership.Role.ANNOTATOR)
    item = Item.objects.create(
        project=project, external_id="x-1", data={"text": ITEM_TEXT}, metadata={"src": PAYLOADS[1]}
    )
    guideline_draft_update(project=project, body=BODY, user=manager)
    worked_example_add(project=project, item=item, label="negative", why=PAYLOADS[0], user=manager)
    guideline_publish(project=project, user=manager, changelog=PAYLOADS[1])
    guideline_draft_update(project=project, body=BODY + "\n\nmore", user=manager)

    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    log_in(page, live_server, "mia")
    base = f"{live_server.url}/projects/{project.pk}"
    visit(page, f"{base}/guidelines/")
    expect(page.locator("#guideline-preview h1")).to_have_text("Rules")
    # The live preview (htmx) renders what is typed, sanitized on the server.
    page.fill("#id_body", "## Typed\n\n" + "\n\n".join(PAYLOADS))
    expect(page.locator("#guideline-preview h2")).to_have_text("Typed")
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "xss-guideline-editor.png"), full_page=True)
    # Item text and the why are shown as text, not markup.
    expect(page.locator("td.example-text").first).to_contain_text("<script>alert(1)</script>")
    visit(page, f"{base}/guidelines/v2/")
    page.screenshot(path=str(artifacts / "xss-guideline-version.png"), full_page=True)
    visit(page, f"{base}/items/")
    expect(page.locator("table.items .item-text").first).to_contain_text(
        "<img src=x onerror=alert(1)>"
    )
    page.screenshot(path=str(artifacts / "xss-items.png"), full_page=True)
    visit(page, f"{base}/")

    page.click("text=Log out")
    log_in(page, live_server, "ann")
    visit(page, f"{base}/guidelines/")
    expect(page.locator(".guideline-body h1")).to_have_text("Rules")
    page.screenshot(path=str(artifacts / "xss-guideline-annotator.png"), full_page=True)
    try:
        annotate = reverse("labeling:annotate", args=[project.pk])
    except NoReverseMatch:
        annotate = None
    if annotate:
        visit(page, f"{live_server.url}{annotate}")

    # No script ran, no dangerous element or attribute reached any page.
    assert dialogs == []
    # Escaped text may show the payloads; the DOM must hold none of their elements/attributes.
    for url in (f"{base}/guidelines/", f"{base}/guidelines/v2/"):
        visit(page, url)
        assert page.evaluate(DANGEROUS_DOM) == [], url
    assert "alert(1)" in page.content()  # the payload text is there, escaped


DANGEROUS_DOM = """() => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const value = attr.value.replace(/\\s/g, '').toLowerCase();
      if (attr.name.startsWith('on') || attr.name === 'srcdoc' || value.startsWith('javascript:'))
        found.push(el.tagName + ' ' + attr.name);
    }
    if (['IFRAME', 'OBJECT', 'EMBED', 'SVG', 'svg'].includes(el.tagName)) found.push(el.tagName);
    if (el.tagName === 'SCRIPT' && !el.src) found.push('inline script');
  }
  return found;
}"""
