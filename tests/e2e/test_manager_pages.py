"""A manager creates a project through the form, edits its labels, publishes a guideline."""

import pytest
from playwright.sync_api import expect

from labeling.models import Item, Project
from tests.conftest import log_in
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_create_edit_labels_and_publish_guideline(live_server, page, make_user, artifacts):
    make_user("mia", password=PASSWORD)
    make_user("ann", password=PASSWORD)
    log_in(page, live_server, "mia")

    page.get_by_role("link", name="New project").click()
    page.fill("input[name=name]", "Review sentiment")
    page.select_option("select[name=data_type]", "text")
    page.fill("input[name=overlap]", "3")
    page.fill("textarea[name=labels]", "negative | n\npositive | p\nspam")
    page.screenshot(path=str(artifacts / "manager-create-form.png"), full_page=True)
    page.get_by_role("button", name="Create project").click()

    expect(page.get_by_role("heading", name="Review sentiment")).to_be_visible()
    project = Project.objects.get(name="Review sentiment")
    assert project.overlap == 3
    assert list(project.labels.values_list("name", "key")) == [
        ("negative", "n"),
        ("positive", "p"),
        ("spam", "1"),
    ]
    Item.objects.create(project=project, external_id="r1", data={"text": "meh"})
    page.reload()
    page.screenshot(path=str(artifacts / "manager-project-overview.png"), full_page=True)

    # Settings: rename a label, re-key it, drop one, add one, change the tie rule.
    page.get_by_role("link", name="Settings", exact=True).click()
    page.fill("input[name=labels-0-name]", "negative sentiment")
    page.fill("input[name=labels-1-key]", "k")
    page.check("input[name=labels-2-DELETE]")
    page.fill("input[name=labels-3-name]", "neutral")
    page.fill("input[name=labels-3-key]", "u")
    page.select_option("select[name=tie_rule]", "first_class")
    page.screenshot(path=str(artifacts / "manager-edit-labels.png"), full_page=True)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Project saved.")).to_be_visible()
    assert list(project.labels.values_list("name", "key")) == [
        ("negative sentiment", "n"),
        ("positive", "k"),
        ("neutral", "u"),
    ]
    project.refresh_from_db()
    assert project.tie_rule == "first_class"

    # Members: add an annotator.
    page.get_by_role("link", name="Members", exact=True).click()
    page.fill("input[name=username]", "ann")
    page.select_option("select[name=role]", "annotator")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("cell", name="ann", exact=True)).to_be_visible()

    # Guidelines: type, see the live preview, save, add an example, publish.
    page.get_by_role("link", name="Guidelines", exact=True).click()
    page.fill("#id_body", "# Sarcasm\n\nSarcastic praise is **negative**.")
    expect(page.locator("#guideline-preview h1")).to_have_text("Sarcasm")
    expect(page.locator("#guideline-preview strong")).to_have_text("negative")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    page.fill("input[name=external_id]", "r1")
    page.select_option("select[name=label]", "negative sentiment")
    page.fill("textarea[name=why]", "lukewarm is not praise")
    page.get_by_role("button", name="Add example").click()
    expect(page.locator("td.example-text")).to_have_text("meh")
    page.fill("#id_publish_changelog", "Sarcasm rule")
    page.screenshot(path=str(artifacts / "manager-guideline-preview.png"), full_page=True)
    page.get_by_role("button", name="Publish as version 2").click()
    expect(page.get_by_text("Version 2 published.")).to_be_visible()
    history = page.locator("table.versions tbody tr")
    expect(history).to_have_count(2)
    expect(history.first).to_contain_text("Sarcasm rule")
    page.screenshot(path=str(artifacts / "manager-guideline-published.png"), full_page=True)

    v2 = project.current_guideline()
    assert (v2.version, v2.changelog) == (2, "Sarcasm rule")
    assert v2.body.startswith("# Sarcasm")
    assert [e.why for e in v2.examples.all()] == ["lukewarm is not praise"]

    page.get_by_role("link", name="v2").click()
    expect(page.locator("pre.diff")).to_contain_text("+# Sarcasm")
    page.screenshot(path=str(artifacts / "manager-guideline-v2.png"), full_page=True)

    page.get_by_role("link", name="Items", exact=True).click()
    expect(page.locator("table.items tbody tr")).to_have_count(1)
    page.fill("input[name=field]", "source")
    page.fill("input[name=value]", "nowhere")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("heading", name="No items match")).to_be_visible()
    page.screenshot(path=str(artifacts / "manager-items-empty-filter.png"), full_page=True)
