"""The export page and the dataset diff page (analysis/exports/views.py), in Chromium and
through Django's test client: the download is always what the form shows, the preview
refreshes as the form changes, numbers are rounded for display only, images show as
thumbnails, and a diff reads as a page."""

import csv
import hashlib
import io
import re

import pandas as pd
import pytest
from django.utils import timezone
from playwright.sync_api import expect
from sklearn.datasets import load_digits

from analysis.models import AnalysisRun, DatasetVersion, LabelIssue
from labeling.management.commands.load_demo import digit_svg
from labeling.models import Membership, Review
from tests.conftest import log_in
from tests.factories import add_member, make_annotations, make_items, make_project, simulated_crowd

VIEWPORT = {"width": 1366, "height": 900}


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_reviewer_previews_downloads_and_sees_the_version(live_server, page, manager, artifacts):
    project = make_project(manager, name="Ducks", labels=("0", "1"))
    workers = {f"w{n}": 0.95 - 0.05 * n for n in range(10)}
    truth = simulated_crowd(project, n_items=108, workers=workers, per_item=6, seed=41).truth
    add_member(project, "rita", Membership.Role.REVIEWER)

    page.set_viewport_size(VIEWPORT)
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
        page.get_by_role("button", name="Download csv").click()
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


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_bad_parameters_are_explained_and_annotators_are_kept_out(live_server, page, manager):
    project = make_project(manager, name="Ducks", labels=("0", "1"))
    add_member(project, "ann", Membership.Role.ANNOTATOR)
    add_member(project, "rita", Membership.Role.REVIEWER)
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/projects/{project.pk}/export/?min_agreement=3&format=xml")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("min_agreement must be a number from 0 to 1")
    expect(alert).to_contain_text("csv, jsonl, parquet, labelstudio")
    log_in(page, live_server, "ann")
    response = page.goto(f"{live_server.url}/projects/{project.pk}/export/")
    assert response.status == 403


# --- the download is what the form shows ---------------------------------------------------

# 60 items labeled by 3 annotators: i % 3 == 0 unanimous, 1 two to one, 2 a three-way tie;
# items with i % 5 == 0 are open label issues of a succeeded run.
N_ITEMS = 60


def item_votes(i: int) -> tuple[str, str, str]:
    return [("a", "a", "a"), ("a", "a", "b"), ("a", "b", "c")][i % 3]


@pytest.fixture
def issues_project(manager):
    project = make_project(manager, name="Issues", labels=("a", "b", "c"), overlap=3)
    annotators = [add_member(project, f"ann{k}") for k in range(3)]
    add_member(project, "rita", Membership.Role.REVIEWER)
    items = make_items(project, {f"item-{i:02d}": f"text {i}" for i in range(N_ITEMS)})
    make_annotations(
        project,
        (
            (item, annotator, vote)
            for i, item in enumerate(items)
            for annotator, vote in zip(annotators, item_votes(i), strict=True)
        ),
    )
    run = AnalysisRun.objects.create(
        project=project,
        kind=AnalysisRun.Kind.LABEL_ISSUES,
        status=AnalysisRun.Status.SUCCEEDED,
        finished_at=timezone.now(),
    )
    LabelIssue.objects.bulk_create(
        LabelIssue(run=run, item=item, quality=0.1, is_issue=True, rank=rank)
        for rank, item in enumerate(items[::5], 1)
    )
    return project


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_download_without_preview_is_exactly_what_the_form_shows(
    live_server, page, issues_project, artifacts
):
    project = issues_project
    kept = [f"item-{i:02d}" for i in range(N_ITEMS) if i % 3 == 0 and i % 5 != 0]
    page.set_viewport_size(VIEWPORT)
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/projects/{project.pk}/export/")
    expect(page.locator("#kept")).to_have_text(str(N_ITEMS))

    page.get_by_label("Open label issues").check()
    page.fill("input[name=min_agreement]", "0.7")
    page.select_option("select[name=format]", "parquet")
    with page.expect_download() as info:
        page.locator("#download").click()  # no Preview pressed
    download = info.value
    body = open(download.path(), "rb").read()

    assert download.suggested_filename.endswith(".parquet")
    assert body[:4] == b"PAR1" and body[-4:] == b"PAR1"
    frame = pd.read_parquet(io.BytesIO(body))
    assert frame["external_id"].tolist() == kept
    assert (frame["agreement"] == 1.0).all() and not frame["issue"].any()

    version = DatasetVersion.objects.get(project=project)
    assert version.format == "parquet"
    assert version.params["format"] == "parquet"
    assert version.params["exclude"] == ["open_issues"]
    assert version.params["min_agreement"] == 0.7
    assert version.row_count == len(kept)
    assert version.sha256 == hashlib.sha256(body).hexdigest()

    # The preview followed the form without Preview being pressed, and so did the button.
    expect(page.locator("#kept")).to_have_text(str(len(kept)))
    expect(page.locator("#excluded")).to_contain_text("open_issues")
    expect(page.locator("#download")).to_have_text("Download parquet")
    assert "exclude=open_issues" in page.url and "format=parquet" in page.url
    assert (
        DatasetVersion.objects.filter(project=project).count() == 1
    )  # the refresh exports nothing
    page.screenshot(path=str(artifacts / "export-form-download.png"), full_page=True)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_image_project_preview_shows_thumbnails_and_never_data_urls(
    live_server, page, manager, artifacts
):
    project = make_project(
        manager, name="Digits", labels=[str(d) for d in range(10)], data_type="image"
    )
    add_member(project, "rita", Membership.Role.REVIEWER)
    digits = load_digits()
    images = [{"image": digit_svg(digits.images[i])} for i in range(25)]
    make_items(project, images, prefix="digit-", metadata={"source": "sklearn"})
    page.set_viewport_size(VIEWPORT)
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/projects/{project.pk}/export/")
    expect(page.locator("#preview tbody tr")).to_have_count(20)
    expect(page.locator("#preview img.item-thumb")).to_have_count(20)
    assert "data:" not in page.locator("body").inner_text()
    thumb = page.locator("#preview img.item-thumb").first
    assert thumb.evaluate("img => img.complete && img.naturalWidth > 0")
    page.screenshot(path=str(artifacts / "export-image-project.png"), full_page=True)


# --- preview numbers ------------------------------------------------------------------------


def test_preview_rounds_numbers_for_display_and_the_file_keeps_them(client, manager):
    project = make_project(manager, labels=("a", "b"))
    make_items(project, {"x": {"text": "t", "score": 0.9999999999999665}})
    client.force_login(manager)
    html = client.get(f"/projects/{project.pk}/export/").content.decode()
    preview = html[html.index('id="preview"') :]
    assert '<td title="0.9999999999999665">1.000</td>' in preview
    assert ">0.9999999999999665<" not in preview

    response = client.get(f"/api/v1/projects/{project.pk}/export/", {"format": "csv"})
    body = b"".join(response.streaming_content).decode()
    assert next(csv.DictReader(io.StringIO(body)))["score"] == "0.9999999999999665"


def test_preview_links_each_external_id_to_its_item_page(client, manager):
    project = make_project(manager, labels=("a", "b"))
    items = make_items(project, {"first": "one", "second": "two"})
    client.force_login(manager)
    html = client.get(f"/projects/{project.pk}/export/").content.decode()
    preview = html[html.index('id="preview"') :]
    for item in items:
        link = f'<a href="/projects/{project.pk}/items/{item.pk}/">{item.external_id}</a>'
        assert link in preview


def test_the_form_is_built_from_the_parameters_and_keeps_what_was_chosen(client, manager):
    project = make_project(manager, labels=("a", "b"))
    client.force_login(manager)
    query = "?format=jsonl&labels=reviewed&exclude=ambiguous,unresolved&min_agreement=0.55"
    html = client.get(f"/projects/{project.pk}/export/{query}").content.decode()
    assert '<option value="jsonl" selected>jsonl</option>' in html
    assert '<option value="reviewed" selected>reviewed</option>' in html
    assert 'value="ambiguous" checked' in html and 'value="unresolved" checked' in html
    assert 'value="open_issues" checked' not in html
    assert 'name="min_agreement" type="number" min="0.0" max="1.0" step="0.05" value="0.55"' in html
    assert '<option value="1">v1</option>' in html
    download = re.search(r'<button[^>]*id="download"[^>]*>([^<]*)</button>', html)
    assert 'formaction="/api/v1/projects/' in download.group(0)
    assert download.group(1) == "Download jsonl"


# --- the dataset diff page -------------------------------------------------------------------


@pytest.fixture
def two_versions(manager, client):
    """Version 1 by majority, then reviews flip items 0 and 1; version 2 keeps unanimous only."""
    project = make_project(manager, name="Diffs", labels=("a", "b"), overlap=2)
    annotators = [add_member(project, f"ann{k}") for k in range(2)]
    reviewer = add_member(project, "rita", Membership.Role.REVIEWER)
    labels = {label.name: label for label in project.labels.all()}
    items = make_items(project, [f"sentence {i}" for i in range(6)])
    make_annotations(
        project,
        (
            (item, annotator, "b" if i == 5 and k == 1 else "a")
            for i, item in enumerate(items)
            for k, annotator in enumerate(annotators)
        ),
    )
    client.force_login(reviewer)
    url = f"/api/v1/projects/{project.pk}/export/"
    first = client.get(url, {"labels": "majority"})
    b"".join(first.streaming_content)
    for external_id in ("e0", "e1"):
        Review.objects.create(
            item=project.items.get(external_id=external_id), reviewer=reviewer, label=labels["b"]
        )
    second = client.get(url, {"labels": "majority", "min_agreement": "1"})
    b"".join(second.streaming_content)
    a, b = (int(r["X-Concord-Dataset-Version"]) for r in (first, second))
    return project, a, b


def test_diff_page_shows_counts_and_the_changed_labels(client, two_versions):
    project, a, b = two_versions
    response = client.get(f"/projects/{project.pk}/datasets/{a}/diff/{b}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Dataset #{a} vs #{b}" in html
    assert re.search(r'id="n-changed">\s*2\s*<', html)
    assert re.search(r'id="n-added">\s*0\s*<', html)
    assert re.search(r'id="n-removed">\s*1\s*<', html)  # e5 split 1:1 is below 1.0
    changed = html[html.index('id="changed"') :]
    rows = re.findall(
        r"<strong>(e\d)</strong>.*?<td>(\w+)</td>\s*<td><strong>(\w+)</strong>", changed, re.S
    )
    assert rows == [("e0", "a", "b"), ("e1", "a", "b")]
    assert "sentence 0" in changed  # the item is shown, not only its id

    export = client.get(f"/projects/{project.pk}/export/").content.decode()
    assert f'href="/projects/{project.pk}/datasets/{a}/diff/{b}/">Diff vs #{a}</a>' in export

    api = client.get(f"/api/v1/projects/{project.pk}/datasets/{a}/diff/{b}/").json()
    assert api["count"] == 2 and api["removed"] == 1 and api["added"] == 0


def test_diff_page_of_an_unknown_version_is_404_and_annotators_get_403(
    client, two_versions, django_user_model
):
    project, a, b = two_versions
    assert client.get(f"/projects/{project.pk}/datasets/{a}/diff/999999/").status_code == 404
    client.force_login(django_user_model.objects.get(username="ann0"))
    assert client.get(f"/projects/{project.pk}/datasets/{a}/diff/{b}/").status_code == 403


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_diff_link_opens_a_readable_page(live_server, page, manager, artifacts):
    project = make_project(manager, name="Ducks", labels=("a", "b"), overlap=1)
    reviewer = add_member(project, "rita", Membership.Role.REVIEWER)
    ann = add_member(project, "ann0")
    labels = {label.name: label for label in project.labels.all()}
    items = make_items(project, [f"q {i}" for i in range(8)], prefix="q")
    make_annotations(project, ((item, ann, "a") for item in items))
    page.set_viewport_size(VIEWPORT)
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/projects/{project.pk}/export/")
    with page.expect_download():
        page.locator("#download").click()
    for i in range(3):
        Review.objects.create(
            item=project.items.get(external_id=f"q{i}"), reviewer=reviewer, label=labels["b"]
        )
    with page.expect_download():
        page.locator("#download").click()
    page.reload()
    older = DatasetVersion.objects.filter(project=project).order_by("id").first()
    page.get_by_role("link", name=f"Diff vs #{older.pk}").click()
    expect(page.get_by_role("heading", name=re.compile(r"Dataset #\d+ vs #\d+"))).to_be_visible()
    expect(page.locator("#n-changed")).to_have_text("3")
    expect(page.locator("#changed tbody tr")).to_have_count(3)
    page.screenshot(path=str(artifacts / "dataset-diff.png"), full_page=True)
