"""Celery tasks: thin wrappers that load, compute and persist through services.

Each analysis kind has one task named `analysis.run_<kind>` (see services.runs.task_name).
"""

import socket

from celery import shared_task

from analysis.models import WorkerHeartbeat


@shared_task(name="analysis.heartbeat")
def heartbeat(token: str = "") -> int:
    """Write a row that proves a worker took a job off the queue."""
    return WorkerHeartbeat.objects.create(hostname=socket.gethostname(), token=token).pk
