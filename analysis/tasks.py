"""Celery tasks: one per analysis kind (analysis.kinds), named `analysis.run_<kind>`, and the
worker heartbeat.

A kind's task runs its job inside `analysis_run`, which records progress, success or the
failure's reason, and skips a redelivered message whose run already ended.
"""

import socket

from celery import shared_task

from analysis.kinds import KINDS, AnalysisKind, task_name
from analysis.models import AnalysisRun, WorkerHeartbeat
from analysis.services.run_recording import analysis_run


@shared_task(name="analysis.heartbeat")
def heartbeat(token: str = "") -> int:
    """Write a row that proves a worker took a job off the queue."""
    return WorkerHeartbeat.objects.create(hostname=socket.gethostname(), token=token).pk


def _run_task(kind: AnalysisKind):
    def run(run_id: int) -> None:
        with analysis_run(run_id, kind.name) as recorder:
            if recorder is not None:
                kind.job(recorder)

    run.__name__ = run.__qualname__ = f"run_{kind.name}"
    run.__doc__ = kind.summary
    return shared_task(name=task_name(kind.name))(run)


RUN_TASKS = {kind.name: _run_task(kind) for kind in KINDS}
# By name, for code that runs a job in this process (tests call them directly).
run_agreement = RUN_TASKS[AnalysisRun.Kind.AGREEMENT]
run_label_issues = RUN_TASKS[AnalysisRun.Kind.LABEL_ISSUES]
