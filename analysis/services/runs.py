"""Starting analysis runs: one path for the runs API and every analysis page.

`run_start` checks the parameters with the kind's serializer (analysis.kinds), records the
run and hands it to a worker; the job's side (progress, result, failure) is
analysis/services/run_recording.py.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from analysis import kinds
from analysis.models import AnalysisRun
from config.celery import JobQueueUnavailable, enqueue
from labeling.models import Project

INVALID_PARAMS = "Invalid parameters."


def task_name(kind: str) -> str:
    return f"analysis.run_{kind}"


def run_start(*, project: Project, kind: str, params: dict, user) -> AnalysisRun:
    """Check `params`, record a run of `kind` and hand it to a worker.

    The run stores the parameters given, typed by the kind's serializer. Raises DRF's
    ValidationError in the runs API's shape: `{"detail", "params"}` naming unknown parameters,
    or `{"detail": "Invalid parameters.", <name>: [...]}` for bad values. Raises
    JobQueueUnavailable when the queue is down; the run is then recorded as failed.
    """
    if kind not in kinds.BY_NAME:
        raise ValueError(f"Unknown kind {kind!r}; allowed: {', '.join(kinds.BY_NAME)}.")
    checked = kinds.BY_NAME[kind].params(data=params, context={"project": project})
    unknown = sorted(set(params) - set(checked.fields))
    if unknown:
        raise ValidationError(
            {
                "detail": f"Unknown parameter(s) for {kind}: {', '.join(unknown)}.",
                "params": f"Allowed: {', '.join(checked.fields)}.",
            }
        )
    if not checked.is_valid():
        raise ValidationError({"detail": INVALID_PARAMS, **checked.errors})
    params = dict(checked.validated_data)
    runs_fail_stuck()
    run = AnalysisRun.objects.create(
        project=project,
        kind=kind,
        params=params,
        guideline_version=params.get("guideline_version"),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    try:
        task_id = enqueue(task_name(kind), run.pk)
    except JobQueueUnavailable as exc:
        AnalysisRun.objects.filter(pk=run.pk).update(
            status=AnalysisRun.Status.FAILED,
            error=f"The job queue is unavailable: {exc.__cause__}",
            message="not started",
            finished_at=timezone.now(),
        )
        raise
    AnalysisRun.objects.filter(pk=run.pk).update(task_id=task_id)
    run.task_id = task_id
    return run


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
