"""The Celery app, and the one way the project hands a job to a worker: `enqueue`."""

import os

from celery import Celery
from kombu.exceptions import OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("concord")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class JobQueueUnavailable(Exception):
    """The job queue (the Celery broker) cannot be reached: the job was not queued."""


def enqueue(task_name: str, *args, countdown: float | None = None) -> str:
    """Queue the task named `task_name` with `args` for a worker; returns the task id.
    `countdown`: run it no sooner than this many seconds from now (a retry's backoff).

    Publishing is retried as CELERY_TASK_PUBLISH_RETRY_POLICY says; JobQueueUnavailable is
    raised when the broker still cannot be reached.
    """
    try:
        result = app.send_task(task_name, args=list(args), countdown=countdown, retry=True)
    except OperationalError as exc:
        raise JobQueueUnavailable("The job queue is unavailable; try again shortly.") from exc
    return result.id
