"""Celery tasks: one per analysis kind (analysis.kinds), named `analysis.run_<kind>`, the
worker heartbeat, and the request for a model refresh that labeling sends by name.

A kind's task runs its job inside `analysis_run`, which records progress, success or the
failure's reason, and skips a redelivered message whose run already ended.
"""

import logging
import socket

from celery import shared_task
from django.core.cache import cache

from analysis.kinds import KINDS, AnalysisKind, run_start, task_name
from analysis.models import AnalysisRun, WorkerHeartbeat
from analysis.services.model_refresh import model_refresh_needed
from analysis.services.run_recording import analysis_run
from config.celery import JobQueueUnavailable
from labeling.models import Project
from labeling.services.queue_scores import MODEL_REFRESH_REQUEST_TASK

logger = logging.getLogger(__name__)
REQUEST_LOCK_SECONDS = 30


@shared_task(name="analysis.heartbeat")
def heartbeat(token: str = "") -> int:
    """Write a row that proves a worker took a job off the queue."""
    return WorkerHeartbeat.objects.create(hostname=socket.gethostname(), token=token).pk


@shared_task(name=MODEL_REFRESH_REQUEST_TASK)
def request_model_refresh(project_id: int) -> None:
    """Start a model refresh of the project when one is needed (none queued or running)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return
    # Two requests at the same instant (N annotations and a label-issue run) start one run.
    lock = f"model-refresh-request:{project_id}"
    if not cache.add(lock, 1, timeout=REQUEST_LOCK_SECONDS):
        return
    try:
        if model_refresh_needed(project=project):
            run_start(project=project, kind=AnalysisRun.Kind.MODEL_REFRESH, params={}, user=None)
    except JobQueueUnavailable:
        logger.warning("model refresh of project %s not started: job queue down", project_id)
    finally:
        cache.delete(lock)


def _run_task(kind: AnalysisKind):
    def run(task, run_id: int) -> None:
        # The node name (`celery@host`, from `-n`) is recorded on the run; called in-process
        # (tests, benches) there is none.
        with analysis_run(run_id, kind.name, worker=task.request.hostname or "") as recorder:
            if recorder is not None:
                kind.job(recorder)

    run.__name__ = run.__qualname__ = f"run_{kind.name}"
    run.__doc__ = kind.summary
    return shared_task(name=task_name(kind.name), bind=True)(run)


RUN_TASKS = {kind.name: _run_task(kind) for kind in KINDS}
# By name, for code that runs a job in this process (tests call them directly).
run_agreement = RUN_TASKS[AnalysisRun.Kind.AGREEMENT]
run_label_issues = RUN_TASKS[AnalysisRun.Kind.LABEL_ISSUES]
run_model_refresh = RUN_TASKS[AnalysisRun.Kind.MODEL_REFRESH]
