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
from django.db.models import F
from django.utils import timezone
from rest_framework.exceptions import ValidationError as ParamsRefused

from analysis.models import AnalysisRun
from labeling.models import Project
from labeling.services import webhooks

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
ENDED = (AnalysisRun.Status.SUCCEEDED, AnalysisRun.Status.FAILED)
SUMMARY_KEYS = 20


def result_summary(result: dict | None) -> dict:
    """The result's top-level numbers, strings and flags (no lists or tables): what a
    `run.finished` webhook event carries; the whole result is at the run's URL."""
    scalars = {
        key: value
        for key, value in (result or {}).items()
        if value is None or isinstance(value, bool | int | float | str)
    }
    return dict(list(scalars.items())[:SUMMARY_KEYS])


def run_finished_emit(run: AnalysisRun, *, status: str, message: str, error: str = "",
                      result: dict | None = None) -> None:  # fmt: skip
    """Tell the project's webhooks that the run ended (after the caller's transaction)."""
    webhooks.emit(
        project_id=run.project_id,
        event="run.finished",
        data=lambda: {
            "run": run.pk,
            "kind": run.kind,
            "status": status,
            "message": message[: webhooks.TEXT_CHARS],
            "error": error[: webhooks.TEXT_CHARS],
            "summary": result_summary(result),
            "url": f"/api/v1/runs/{run.pk}/",
        },
    )


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
        # Only while running: a second delivery of a run that already ended changes nothing.
        AnalysisRun.objects.filter(pk=self.run.pk, status=AnalysisRun.Status.RUNNING).update(
            progress=fraction, message=message[:255]
        )

    def finish(self, result: dict[str, Any], persist=None, message: str = "done") -> None:
        """Store the summary and (through `persist`) the result rows in one transaction, unless
        another delivery of the same run finished it first (then this result is dropped, so
        the rows are never written twice). A result replaces the watchdog's `timed out`."""
        with transaction.atomic():
            status = (
                AnalysisRun.objects.select_for_update()
                .filter(pk=self.run.pk)
                .values_list("status", flat=True)
                .first()
            )
            if status == AnalysisRun.Status.SUCCEEDED:
                logger.warning("analysis run %s already finished; this result dropped", self.run.pk)
                return
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
            run_finished_emit(
                self.run, status=AnalysisRun.Status.SUCCEEDED, message=message, result=result
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
def analysis_run(run_id: int, kind: str | None = None, *, worker: str = ""):
    """Mark the run running on `worker` (the Celery node name); on any exception mark it
    failed with the reason.

    Yields None when the run must not execute (it already ended, or its worker died
    MAX_ATTEMPTS times); tasks then return at once: `if run is None: return`.

    A message that comes again for a run still `running` runs it: the worker that had it was
    lost (its pool process killed: Celery gives the message back at once; the whole worker
    killed: Redis hands it to another worker after the visibility timeout). Each start is an
    attempt and resets `started_at`, so the watchdog (`runs_fail_stuck`) times the retry, not
    the lost attempt.

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
    if run.status in ENDED:
        yield None  # a redelivered message for a run that already ended: nothing to do
        return
    if run.attempts >= MAX_ATTEMPTS:
        # The message came back after the worker died this many times: stop the loop.
        error = (
            f"The worker was lost {run.attempts} times while running this job "
            "(out of memory?). Start it again with smaller parameters."
        )
        AnalysisRun.objects.filter(pk=run_id).update(
            status=AnalysisRun.Status.FAILED,
            error=error,
            message="failed",
            finished_at=timezone.now(),
        )
        run_finished_emit(run, status=AnalysisRun.Status.FAILED, message="failed", error=error)
        yield None
        return
    started = (
        AnalysisRun.objects.filter(pk=run_id)
        .exclude(status__in=ENDED)  # it may have ended since the read above
        .update(
            status=AnalysisRun.Status.RUNNING,
            started_at=timezone.now(),
            attempts=F("attempts") + 1,
            worker=worker[:255],
            progress=0.0,
            message="started",
            error="",
        )
    )
    if not started:
        yield None
        return
    try:
        yield RunRecorder(run)
    except Exception as exc:
        logger.exception("analysis run %s failed", run_id)
        error = f"{type(exc).__name__}: {failure_reason(exc)}"[:2000]
        failed = AnalysisRun.objects.filter(pk=run_id, status=AnalysisRun.Status.RUNNING).update(
            status=AnalysisRun.Status.FAILED,
            error=error,
            message="failed",
            finished_at=timezone.now(),
        )
        if failed:  # not when another delivery of the run already ended it
            run_finished_emit(run, status=AnalysisRun.Status.FAILED, message="failed", error=error)


def runs_fail_stuck(*, timeout_seconds: int | None = None) -> int:
    """Mark runs `running` for longer than the timeout as failed (their worker was lost).

    Called whenever a run starts and by `manage.py fail_stuck_runs`; cheap (one indexed read
    when no run is stuck). Each run marked failed is a `run.finished` webhook event.
    """
    timeout = timeout_seconds or settings.CONCORD_RUN_TIMEOUT_SECONDS
    cutoff = timezone.now() - timedelta(seconds=timeout)
    error = f"No result after {timeout} s: the worker running it was lost. Start it again."
    stuck = AnalysisRun.objects.filter(status=AnalysisRun.Status.RUNNING, started_at__lt=cutoff)
    if not stuck.exists():  # the usual answer, from one indexed read
        return 0
    with transaction.atomic():  # locked, so two callers never both report a run as ended
        runs = list(stuck.select_for_update().only("id", "project_id", "kind"))
        failed = AnalysisRun.objects.filter(pk__in=[run.pk for run in runs]).update(
            status=AnalysisRun.Status.FAILED,
            error=error,
            message="timed out",
            finished_at=timezone.now(),
        )
        for run in runs:
            run_finished_emit(run, status=AnalysisRun.Status.FAILED, message="timed out",
                              error=error)  # fmt: skip
    return failed
