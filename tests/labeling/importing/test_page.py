"""The imports page in Chromium: a bad file shows its error table, a good one its row count."""

import pytest
from playwright.sync_api import expect

from labeling.models import ImportBatch, Item
from tests.conftest import log_in
from tests.factories import make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BAD = b"external_id,text,source\na,fine,web\nb,,web\na,again,web\n"
GOOD = b"external_id,text,source\na,first sentence,web\nb,second sentence,mail\nc,third,web\n"


def upload(page, name: str, content: bytes):
    page.set_input_files(
        "input[name=file]", {"name": name, "mimeType": "text/csv", "buffer": content}
    )
    page.get_by_text("Columns and options").click()
    page.fill("input[name=metadata_columns]", "source")
    page.get_by_role("button", name="Import").click()


def test_bad_file_shows_error_table_then_good_file_shows_rows(
    live_server, page, manager, artifacts
):
    project = make_project(manager, name="Reviews")
    log_in(page, live_server, manager.username)
    page.goto(f"{live_server.url}/projects/{project.pk}/imports/")
    expect(page.get_by_role("heading", name="No imports yet")).to_be_visible()

    upload(page, "bad.csv", BAD)
    result = page.get_by_role("region", name="Import result")
    expect(result.get_by_text("nothing was imported")).to_be_visible()
    rows = result.locator("table.import-errors tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("3")
    expect(rows.nth(0)).to_contain_text("empty text")
    expect(rows.nth(1)).to_contain_text("duplicate external_id 'a' within the file")
    page.screenshot(path=str(artifacts / "import-rejected.png"), full_page=True)
    assert not Item.objects.filter(project=project).exists()

    upload(page, "good.csv", GOOD)
    expect(page.locator(".message.success")).to_contain_text("Imported 3 rows from good.csv")
    expect(result.locator(".import-rows")).to_have_text("3")
    history = page.locator("table.imports tbody tr")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("succeeded")
    expect(history.nth(1)).to_contain_text("failed")
    page.screenshot(path=str(artifacts / "import-succeeded.png"), full_page=True)
    assert Item.objects.get(project=project, external_id="b").metadata == {"source": "mail"}


def test_running_import_progress_bar_updates_until_done(live_server, page, manager, artifacts):
    project = make_project(manager, name="Big upload")
    batch = ImportBatch.objects.create(
        project=project,
        filename="million.csv",
        status=ImportBatch.Status.RUNNING,
        progress=0.4,
        message="writing items",
    )
    log_in(page, live_server, manager.username)
    page.goto(f"{live_server.url}/projects/{project.pk}/imports/")
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "40")
    page.screenshot(path=str(artifacts / "import-running.png"), full_page=True)
    ImportBatch.objects.filter(pk=batch.pk).update(progress=0.8, message="writing items")
    expect(bar).to_have_attribute("aria-valuenow", "80")
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportBatch.Status.SUCCEEDED, progress=1.0, rows=1234, message="imported 1,234 rows"
    )
    status = page.locator(".import-status")
    expect(status).to_contain_text("succeeded")
    expect(status.locator(".import-rows")).to_have_text("1234")
    expect(page.get_by_role("progressbar")).to_have_count(0)
    row = page.locator("table.imports tbody tr").first
    expect(row).to_contain_text("succeeded")
    expect(row).not_to_contain_text("running")
    page.screenshot(path=str(artifacts / "import-finished.png"), full_page=True)


def test_reviewer_cannot_open_the_imports_page(client, project, reviewer, make_user):
    client.force_login(reviewer)
    assert client.get(f"/projects/{project.pk}/imports/").status_code == 403
    client.force_login(make_user("outsider"))
    assert client.get(f"/projects/{project.pk}/imports/").status_code == 404


def test_headerless_tsv_imports_with_first_row_is_data_ticked_and_says_so_once(
    live_server, page, manager, artifacts, sentiment_data
):
    project = make_project(manager, name="Amazon reviews", labels=("0", "1"))
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server, manager.username)
    page.goto(f"{live_server.url}/projects/{project.pk}/imports/")
    content = (sentiment_data / "amazon.tsv").read_bytes()
    page.set_input_files(
        "input[name=file]",
        {"name": "amazon.tsv", "mimeType": "text/tab-separated-values", "buffer": content},
    )
    page.get_by_text("Columns and options").click()
    page.check("input[name=first_row_is_data]")
    page.fill("input[name=text_column]", "column1")
    page.screenshot(path=str(artifacts / "import-headerless-options.png"), full_page=True)
    page.get_by_role("button", name="Import").click()

    result = page.get_by_role("region", name="Import result")
    expect(result.locator(".message.success")).to_have_text("Imported 1000 rows from amazon.tsv.")
    expect(page.locator(".message.success")).to_have_count(1)
    expect(result.locator(".import-rows")).to_have_text("1000")
    expect(page.get_by_text("rows imported")).to_have_count(0)
    page.screenshot(path=str(artifacts / "import-headerless-succeeded.png"), full_page=True)
    first_sentence = content.decode().splitlines()[0].rsplit("\t", 1)[0]
    assert Item.objects.get(project=project, external_id="1").data["text"] == first_sentence

    page.set_input_files(
        "input[name=file]",
        {"name": "amazon.tsv", "mimeType": "text/tab-separated-values", "buffer": content},
    )
    page.get_by_text("Columns and options").click()
    page.check("input[name=first_row_is_data]")
    page.fill("input[name=text_column]", "column1")
    page.select_option("select[name=on_duplicate]", "skip")
    page.get_by_role("button", name="Import").click()
    expect(result.locator(".message.success")).to_have_text(
        "Imported 0 rows from amazon.tsv, 1,000 existing items skipped."
    )
    assert Item.objects.filter(project=project).count() == 1000
