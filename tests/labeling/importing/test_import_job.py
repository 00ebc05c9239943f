"""An upload above the size threshold is stored in the database and imported by a real worker."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.importing import jobs as importing
from labeling.models import ImportBatch, ImportUpload, Item
from tests.conftest import wait_for
from tests.factories import make_project

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def sentiment_csv(sentiment_data, *, break_row: int | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["external_id", "text", "source"])
    n = 0
    for path in sorted((sentiment_data).glob("*.tsv")):
        for i, line in enumerate(path.read_text().splitlines(), start=1):
            n += 1
            sentence = "" if n == break_row else line.rsplit("\t", 1)[0]
            writer.writerow([f"{path.stem}-{i}", sentence, path.stem])
    return out.getvalue().encode()


@pytest.fixture
def manager_client(manager, api_client_for, settings, monkeypatch):
    # The web process decides what runs as a job: a low threshold here, small stored chunks
    # so the worker reads the upload back from several rows.
    settings.CONCORD_IMPORT_ASYNC_BYTES = 10_000
    monkeypatch.setattr(importing, "UPLOAD_CHUNK_BYTES", 64 * 1024)
    return make_project(manager, labels=("0", "1")), api_client_for(manager)


def post(client, project, content: bytes):
    return client.post(
        f"/api/v1/projects/{project.pk}/imports/",
        {
            "file": SimpleUploadedFile("sentiment.csv", content, "text/csv"),
            "metadata_columns": "source",
        },
        format="multipart",
    )


def finished(client, project, batch_id):
    def check():
        body = client.get(f"/api/v1/projects/{project.pk}/imports/{batch_id}/").json()
        return body if body["status"] in ("succeeded", "failed") else None

    return check


def test_large_upload_runs_on_the_worker_and_reports_progress(
    manager_client, celery_worker, sentiment_data
):
    project, client = manager_client
    content = sentiment_csv(sentiment_data)
    assert len(content) > 64 * 1024 * 3
    response = post(client, project, content)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued"
    assert ImportUpload.objects.filter(batch_id=body["id"]).count() == -(-len(content) // 65536)

    result = wait_for(
        finished(client, project, body["id"]),
        timeout=90,
        what="the import job to finish",
        on_timeout=celery_worker.log,
    )
    assert result["status"] == "succeeded", result
    assert result["rows"] == 3000
    assert result["progress"] == 1.0
    assert result["errors"] == []
    assert Item.objects.filter(project=project, batch_id=body["id"]).count() == 3000
    assert Item.objects.get(project=project, external_id="imdb-7").metadata == {"source": "imdb"}
    assert not ImportUpload.objects.filter(batch_id=body["id"]).exists()


def test_large_bad_upload_fails_on_the_worker_with_its_row_and_imports_nothing(
    manager_client, celery_worker, sentiment_data
):
    project, client = manager_client
    response = post(client, project, sentiment_csv(sentiment_data, break_row=2500))
    assert response.status_code == 202
    result = wait_for(
        finished(client, project, response.json()["id"]),
        timeout=90,
        what="the import job to fail",
        on_timeout=celery_worker.log,
    )
    assert result["status"] == "failed"
    assert result["errors"] == [{"row": 2501, "reason": "empty text"}]
    assert result["message"].startswith("rejected")
    assert not Item.objects.filter(project=project).exists()
    assert ImportBatch.objects.get(pk=result["id"]).finished_at is not None
