"""What a running analysis job writes to its run: progress, the result, or the failure.

Every job runs inside `analysis_run` (see analysis/tasks.py) and reports through the
`RunRecorder` it yields.
"""

import logging
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError as ParamsRefused

from analysis.models import AnalysisRun
from labeling.models import Project

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


class RunRecorder:
    """What a running job may do to its run: report progress, then finish once."""

    def __init__(self, run: AnalysisRun):
        self.run = run

    @property
    def project(self) -> Project:
        return self.run.project

    @property
    def params(self) -> dict:
        return self.run.params

    def progress(self, fraction: float, message: str) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        AnalysisRun.objects.filter(pk=self.run.pk).update(progress=fraction, message=message[:255])

    def finish(self, result: dict[str, Any], persist=None, message: str = "done") -> None:
        """Store the summary and (through `persist`) the result rows in one transaction."""
        with transaction.atomic():
            if persist is not None:
                persist(self.run)
            AnalysisRun.objects.filter(pk=self.run.pk).update(
                status=AnalysisRun.Status.SUCCEEDED,
                progress=1.0,
                message=message[:255],
                result=result,
                error="",
                finished_at=timezone.now(),
            )


def _messages(detail) -> list[str]:
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _messages(value)]
    if isinstance(detail, list):
        return [m for value in detail for m in _messages(value)]
    return [str(detail)]


def failure_reason(exc: Exception) -> str:
    """What people read of a failure. A validation error (Django's, or a kind's parameters
    refused by its serializer when the job checks them again) prints as the repr of its dict;
    its messages are the reason."""
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    if isinstance(exc, ParamsRefused):
        return " ".join(_messages(exc.detail))
    return str(exc)


@contextmanager
def analysis_run(run_id: int, kind: str | None = None):
    """Mark the run running; on any exception mark it failed with the reason.

    Yields None when the run must not execute (it already ended, or its worker died
    MAX_ATTEMPTS times); tasks then return at once: `if run is None: return`.

    Earlier runs and their results are untouched; a failed run keeps no partial rows because
    rows are written only inside `RunRecorder.finish`'s transaction.
    """
    run = AnalysisRun.objects.select_related("project").filter(pk=run_id).first()
    if run is None or (kind is not None and run.kind != kind):
        # A message whose run was never committed or deleted (or whose id now names another
        # run, as SQLite reuses ids after a rollback): not this job's to run.
        logger.warning("analysis run %s (%s) not found; message dropped", run_id, kind)
        yield None
        return
    if run.status in (AnalysisRun.Status.SUCCEEDED, AnalysisRun.Status.FAILED):
        yield None  # a redelivered message for a run that already ended: nothing to do
        return
    if run.attempts >= MAX_ATTEMPTS:
        # The message came back after the worker died this many times: stop the loop.
        AnalysisRun.objects.filter(pk=run_id).update(
            status=AnalysisRun.Status.FAILED,
            error=f"The worker was lost {run.attempts} times while running this job "
            "(out of memory?). Start it again with smaller parameters.",
            message="failed",
            finished_at=timezone.now(),
        )
        yield None
        return
    AnalysisRun.objects.filter(pk=run_id).update(
        status=AnalysisRun.Status.RUNNING,
        started_at=timezone.now(),
        attempts=run.attempts + 1,
        progress=0.0,
        message="started",
        error="",
    )
    try:
        yield RunRecorder(run)
    except Exception as exc:
        logger.exception("analysis run %s failed", run_id)
        reason = failure_reason(exc)
        AnalysisRun.objects.filter(pk=run_id).update(
            status=AnalysisRun.Status.FAILED,
            error=f"{type(exc).__name__}: {reason}"[:2000],
            message="failed",
            finished_at=timezone.now(),
        )


def runs_fail_stuck(*, timeout_seconds: int | None = None) -> int:
    """Mark runs `running` for longer than the timeout as failed (their worker was lost).

    Called whenever a run starts and by `manage.py fail_stuck_runs`; cheap (one indexed UPDATE).
    """
    timeout = timeout_seconds or settings.CONCORD_RUN_TIMEOUT_SECONDS
    cutoff = timezone.now() - timedelta(seconds=timeout)
    return AnalysisRun.objects.filter(
        status=AnalysisRun.Status.RUNNING, started_at__lt=cutoff
    ).update(
        status=AnalysisRun.Status.FAILED,
        error=f"No result after {timeout} s: the worker running it was lost. Start it again.",
        message="timed out",
        finished_at=timezone.now(),
    )
