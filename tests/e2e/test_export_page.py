"""A reviewer previews an export in Chromium, downloads it, and finds it among the versions."""

import csv
import io

import pytest
from playwright.sync_api import expect

from labeling.models import DatasetVersion, Membership
from labeling.services.projects import member_set
from tests.factories import load_crowd_answers, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")


def test_reviewer_previews_downloads_and_sees_the_version(
    live_server, page, make_user, crowd_data, artifacts
):
    manager = make_user("boss")
    project = make_project(manager, name="Ducks", labels=("0", "1"))
    truth = load_crowd_answers(project, crowd_data / "duck")
    member_set(project=project, user=make_user("rita"), role=Membership.Role.REVIEWER)

    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/projects/{project.pk}/export/")
    expect(page.get_by_role("heading", name="Export a dataset")).to_be_visible()
    expect(page.get_by_text("No dataset exported yet")).to_be_visible()
    page.select_option("select[name=labels]", "dawid_skene")
    page.fill("input[name=min_agreement]", "0.6")
    page.get_by_label("Unresolved (ties, below overlap)").check()
    page.get_by_role("button", name="Preview").click()

    expect(page.locator("#preview tbody tr")).to_have_count(20)
    excluded = page.locator("#excluded")
    expect(excluded).to_contain_text("min_agreement")
    expect(excluded).to_contain_text("unresolved")
    header = page.locator("#preview thead th").all_inner_texts()
    assert [h.lower() for h in header[:3]] == ["external_id", "label", "label_source"]
    first_row = page.locator("#preview tbody tr").first.locator("td").all_inner_texts()
    assert first_row[2] == "dawid_skene"
    page.screenshot(path=str(artifacts / "export-preview.png"), full_page=True)

    with page.expect_download() as info:
        page.get_by_role("link", name="Download csv").click()
    body = open(info.value.path(), encoding="utf-8").read()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert 0 < len(rows) < 108
    assert all(float(r["agreement"]) >= 0.6 for r in rows)
    assert sum(r["label"] == truth[r["external_id"]] for r in rows) / len(rows) > 0.85

    page.reload()
    versions = page.locator("#versions tbody tr")
    expect(versions).to_have_count(1)
    version = DatasetVersion.objects.get(project=project)
    assert version.row_count == len(rows) and len(version.sha256) == 64
    expect(versions.first).to_contain_text(version.sha256[:12])
    expect(versions.first).to_contain_text("dawid_skene")
    page.screenshot(path=str(artifacts / "export-versions.png"), full_page=True)


def test_bad_parameters_are_explained_and_annotators_are_kept_out(live_server, page, make_user):
    manager = make_user("boss")
    project = make_project(manager, name="Ducks", labels=("0", "1"))
    member_set(project=project, user=make_user("ann"), role=Membership.Role.ANNOTATOR)
    member_set(project=project, user=make_user("rita"), role=Membership.Role.REVIEWER)
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/projects/{project.pk}/export/?min_agreement=3&format=xml")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("min_agreement must be a number from 0 to 1")
    expect(alert).to_contain_text("csv, jsonl, parquet, labelstudio")
    page.context.clear_cookies()
    log_in(page, live_server, "ann")
    response = page.goto(f"{live_server.url}/projects/{project.pk}/export/")
    assert response.status == 403
