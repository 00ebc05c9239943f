"""A task sent by this process is executed by a real worker process, on each broker."""

import os
import uuid

import pytest
from celery import Celery

from analysis.models import WorkerHeartbeat
from config.env import broker_config
from tests.conftest import WorkerProcess, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def redis_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith("redis://") else "redis://127.0.0.1:6379/14"


def send_heartbeat(broker_url: str, var_dir, token: str, monkeypatch) -> None:
    # Celery lets the CELERY_BROKER_URL variable win over `broker=`; this sender names its own.
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    url, options = broker_config(broker_url, var_dir=var_dir)
    sender = Celery("sender", broker=url)
    sender.conf.broker_transport_options = options
    sender.send_task("analysis.heartbeat", args=[token])


@pytest.mark.parametrize("broker", ["redis", "filesystem"])
def test_worker_executes_task_and_writes_a_row(broker, tmp_path, monkeypatch):
    broker_url = redis_url() if broker == "redis" else "filesystem://"
    worker = WorkerProcess(broker_url, tmp_path, tmp_path / "worker.log")
    worker.start()
    try:
        token = uuid.uuid4().hex
        send_heartbeat(broker_url, tmp_path, token, monkeypatch)
        row = wait_for(
            lambda: WorkerHeartbeat.objects.filter(token=token).first(),
            timeout=60,
            what=f"the worker on {broker} to write its heartbeat",
            on_timeout=worker.log,
        )
        assert row.hostname
        assert worker.process.poll() is None, "the worker died"
    finally:
        worker.stop()
