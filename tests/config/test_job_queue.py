"""One way to hand a job to a worker (`config.celery.enqueue`) and one error when the queue is
down: an import or an analysis run that cannot be queued is recorded as failed, and the API
answers 503 saying so."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from analysis.models import AnalysisRun
from config.celery import JobQueueUnavailable, enqueue
from labeling.models import ImportBatch, ImportUpload, Item
from tests.factories import make_project

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"
UNAVAILABLE = {"detail": "The job queue is unavailable; try again shortly."}


@pytest.fixture
def broker_down(settings):
    settings.CELERY_BROKER_URL = CLOSED_PORT_BROKER


@pytest.fixture
def manager_client(make_user):
    manager = make_user("queue-boss")
    client = APIClient()
    client.force_authenticate(manager)
    return make_project(manager), client


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


@pytest.mark.django_db
def test_an_analysis_run_that_cannot_be_queued_is_failed_and_answers_503(
    manager_client, broker_down
):
    project, client = manager_client
    response = client.post(
        f"/api/v1/projects/{project.pk}/runs/", {"kind": "agreement"}, format="json"
    )
    assert response.status_code == 503
    assert response.json() == UNAVAILABLE
    run = AnalysisRun.objects.get(project=project)
    assert (run.status, run.message, run.task_id) == ("failed", "not started", "")
    assert run.error.startswith("The job queue is unavailable: ")
