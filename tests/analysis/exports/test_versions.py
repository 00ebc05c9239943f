"""Dataset versions (analysis/exports/versions.py): every export is recorded, a version
downloads byte-identical, diffs list changed labels, and the model's move from labeling to
analysis kept existing rows."""

import hashlib

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from analysis.models import DatasetVersion
from labeling.models import Review
from tests.factories import make_project, simulated_crowd

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(manager):
    """108 items, five of nine noisy workers on each: no ties, some items unanimous."""
    project = make_project(manager, labels=("0", "1"))
    workers = {f"w{n}": 0.9 - 0.05 * n for n in range(9)}
    simulated_crowd(project, n_items=108, workers=workers, per_item=5, seed=21)
    return project


@pytest.fixture
def crowd(project, reviewer, api_client_for):
    return project, reviewer, api_client_for(reviewer)


def download(client, url, **params) -> tuple[bytes, object]:
    response = client.get(url, params)
    assert response.status_code == 200
    return b"".join(response.streaming_content), response


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "labelstudio"])
def test_export_is_recorded_and_downloads_again_byte_identical(crowd, fmt):
    project, reviewer, client = crowd
    body, response = download(
        client, f"/api/v1/projects/{project.pk}/export/", format=fmt, labels="dawid_skene"
    )
    version = DatasetVersion.objects.get(pk=int(response["X-Concord-Dataset-Version"]))
    assert version.sha256 == hashlib.sha256(body).hexdigest()
    assert version.row_count == 108
    assert version.params["labels"] == "dawid_skene" and version.format == fmt
    assert version.created_by == reviewer
    assert version.guideline_version == 1

    again, response = download(client, f"/api/v1/projects/{project.pk}/datasets/{version.pk}/")
    assert again == body
    assert response["X-Concord-Sha256"] == version.sha256
    assert DatasetVersion.objects.filter(project=project).count() == 1  # not a new version


def test_versions_are_listed_newest_first_with_their_facts(crowd):
    project, reviewer, client = crowd
    download(client, f"/api/v1/projects/{project.pk}/export/", format="csv")
    download(client, f"/api/v1/projects/{project.pk}/export/", format="parquet", min_agreement=0.8)
    listed = client.get(f"/api/v1/projects/{project.pk}/datasets/").json()
    assert listed["count"] == 2
    newest, oldest = listed["results"]
    assert newest["format"] == "parquet" and oldest["format"] == "csv"
    assert newest["params"]["min_agreement"] == 0.8
    assert 0 < newest["row_count"] < oldest["row_count"] == 108
    assert len(newest["sha256"]) == 64 and newest["complete"] is True
    assert newest["created_by"] == reviewer.username and newest["runs"] == []
    assert newest["download"] == f"/api/v1/projects/{project.pk}/datasets/{newest['id']}/"


def test_diff_lists_the_items_whose_label_changed(crowd):
    project, reviewer, client = crowd
    url = f"/api/v1/projects/{project.pk}/export/"
    _, first = download(client, url, labels="majority")
    items = list(project.items.order_by("id")[:3])
    labels = {label.name: label for label in project.labels.all()}
    before = {}
    for item in items:
        votes = list(item.annotations.values_list("label__name", flat=True))
        majority = max(("0", "1"), key=votes.count)
        before[item.external_id] = majority
        flipped = "1" if majority == "0" else "0"
        Review.objects.create(item=item, reviewer=reviewer, label=labels[flipped])
    _, second = download(client, url, labels="majority")
    a, b = first["X-Concord-Dataset-Version"], second["X-Concord-Dataset-Version"]
    diff = client.get(f"/api/v1/projects/{project.pk}/datasets/{a}/diff/{b}/").json()
    assert diff["count"] == 3 and diff["added"] == 0 and diff["removed"] == 0
    changed = {row["external_id"]: (row["label_a"], row["label_b"]) for row in diff["results"]}
    assert changed == {e: (m, "1" if m == "0" else "0") for e, m in before.items()}
    same = client.get(f"/api/v1/projects/{project.pk}/datasets/{a}/diff/{a}/").json()
    assert same["count"] == 0


def test_diff_counts_items_that_left_the_dataset(crowd):
    project, reviewer, client = crowd
    url = f"/api/v1/projects/{project.pk}/export/"
    _, everything = download(client, url)
    _, strict = download(client, url, min_agreement=0.9)
    a, b = everything["X-Concord-Dataset-Version"], strict["X-Concord-Dataset-Version"]
    diff = client.get(f"/api/v1/projects/{project.pk}/datasets/{a}/diff/{b}/").json()
    kept = DatasetVersion.objects.get(pk=b).row_count
    assert diff["removed"] == 108 - kept > 0 and diff["count"] == 0


def test_data_changes_change_the_download(crowd):
    project, reviewer, client = crowd
    body, response = download(client, f"/api/v1/projects/{project.pk}/export/")
    version = response["X-Concord-Dataset-Version"]
    item = project.items.order_by("id").first()
    item.data = {"text": "edited"}
    item.save()
    again, _ = download(client, f"/api/v1/projects/{project.pk}/datasets/{version}/")
    assert again != body and b"edited" in again


def test_unknown_versions_and_other_projects_answer_404(crowd, make_user):
    project, reviewer, client = crowd
    other = make_project(make_user(), labels=("x",))
    assert client.get(f"/api/v1/projects/{project.pk}/datasets/999999/").status_code == 404
    assert client.get(f"/api/v1/projects/{other.pk}/datasets/").status_code == 404
    _, response = download(client, f"/api/v1/projects/{project.pk}/export/")
    a = response["X-Concord-Dataset-Version"]
    missing = client.get(f"/api/v1/projects/{project.pk}/datasets/{a}/diff/999999/")
    assert missing.status_code == 404 and "detail" in missing.json()


# --- the model's move from labeling to analysis keeps the table and its rows


@pytest.mark.django_db(transaction=True)
def test_versions_recorded_before_the_move_to_analysis_keep_their_rows(manager):
    project = make_project(manager, labels=("0", "1"))
    content_type = ContentType.objects.get_for_model(DatasetVersion)
    before = [("labeling", "0001_initial"), ("analysis", "0001_initial")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        recorded = old_apps.get_model("labeling", "DatasetVersion").objects.create(
            project_id=project.pk, params={"format": "csv"}, format="csv", row_count=7
        )
        assert ContentType.objects.get(pk=content_type.pk).app_label == "labeling"
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert DatasetVersion._meta.db_table == "labeling_datasetversion"
    moved = DatasetVersion.objects.get(pk=recorded.pk)
    assert (moved.project_id, moved.format, moved.row_count) == (project.pk, "csv", 7)
    ContentType.objects.clear_cache()
    assert ContentType.objects.get_for_model(DatasetVersion).pk == content_type.pk
