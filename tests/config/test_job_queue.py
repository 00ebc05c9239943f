"""One way to hand a job to a worker (`config.celery.enqueue`) and one error when the queue is
down: an import that cannot be queued is recorded as failed and the API answers 503 (analysis
runs: tests/analysis/test_runs_api.py)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from config.celery import JobQueueUnavailable, enqueue
from config.celery import app as celery_app
from labeling.models import ImportBatch, ImportUpload, Item

UNAVAILABLE = {"detail": "The job queue is unavailable; try again shortly."}


@pytest.fixture
def broker_down(monkeypatch):
    # A real unreachable broker (nothing listens on port 1), not a mock. Celery lets the
    # CELERY_BROKER_URL variable win over its configuration; its cached connection pools are
    # dropped before and after so they are rebuilt from the URL in use.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    celery_app._pool, celery_app.amqp._producer_pool = None, None
    yield
    celery_app._pool, celery_app.amqp._producer_pool = None, None


@pytest.fixture
def manager_client(manager, project, api_client_for):
    return project, api_client_for(manager)


def test_enqueue_to_an_unreachable_broker_raises_job_queue_unavailable(broker_down):
    with pytest.raises(JobQueueUnavailable, match="try again shortly") as exc:
        enqueue("labeling.run_import", -1)
    assert exc.value.__cause__ is not None  # the broker's own error, for the logs


@pytest.mark.django_db(transaction=True)
def test_an_import_job_that_cannot_be_queued_is_failed_and_answers_503(
    manager_client, settings, broker_down
):
    project, client = manager_client
    settings.CONCORD_IMPORT_ASYNC_BYTES = 100
    content = b"external_id,text\n" + b"".join(b"id-%d,sentence %d\n" % (i, i) for i in range(50))
    response = client.post(
        f"/api/v1/projects/{project.pk}/imports/",
        {"file": SimpleUploadedFile("big.csv", content, "text/csv")},
        format="multipart",
    )
    assert response.status_code == 503
    assert response.json() == UNAVAILABLE
    batch = ImportBatch.objects.get(project=project)
    assert (batch.status, batch.message) == ("failed", "not started")
    assert batch.errors == [{"row": None, "reason": "The job queue is unavailable."}]
    assert not ImportUpload.objects.filter(batch=batch).exists()
    assert not Item.objects.filter(project=project).exists()
