"""Celery tasks: thin wrappers that load, compute and persist through services.

Each analysis kind has one task named `analysis.run_<kind>` (see services.runs.task_name).
Every job runs inside `analysis_run`, which records progress, success or the failure's reason,
and skips a redelivered message whose run already ended.
"""

import socket

from celery import shared_task

from analysis.models import AnalysisRun, WorkerHeartbeat
from analysis.services.agreement import agreement_run
from analysis.services.baselines import baselines_job
from analysis.services.drift import drift_job
from analysis.services.label_issues import label_issues_job
from analysis.services.runs import RunRecorder, analysis_run
from analysis.services.slices import slices_job


@shared_task(name="analysis.heartbeat")
def heartbeat(token: str = "") -> int:
    """Write a row that proves a worker took a job off the queue."""
    return WorkerHeartbeat.objects.create(hostname=socket.gethostname(), token=token).pk


def _execute(run_id: int, kind: str, job) -> None:
    with analysis_run(run_id, kind) as run:
        if run is not None:
            job(run)


def _agreement_job(run: RunRecorder) -> None:
    result, persist = agreement_run(project=run.project, params=run.params, progress=run.progress)
    run.finish(result, persist)


@shared_task(name="analysis.run_agreement")
def run_agreement(run_id: int) -> None:
    """Krippendorff's alpha (with bootstrap interval), Fleiss, Cohen per pair, per label, per
    annotator and per item, overall and per guideline version."""
    _execute(run_id, AnalysisRun.Kind.AGREEMENT, _agreement_job)


@shared_task(name="analysis.run_label_issues")
def run_label_issues(run_id: int) -> None:
    """Likely label errors: built-in cross-validated model or uploaded predictions, then
    confident learning, CROWDLAB or Dawid-Skene (see analysis.metrics.label_issues)."""
    _execute(run_id, AnalysisRun.Kind.LABEL_ISSUES, label_issues_job)


@shared_task(name="analysis.run_baselines")
def run_baselines(run_id: int) -> None:
    """HLP (leave-one-out consensus and reviews), majority-class baseline, model accuracy."""
    _execute(run_id, AnalysisRun.Kind.BASELINES, baselines_job)


@shared_task(name="analysis.run_slices")
def run_slices(run_id: int) -> None:
    """Per-slice model accuracy, HLP, gap and potential gain over every metadata field."""
    _execute(run_id, AnalysisRun.Kind.SLICES, slices_job)


@shared_task(name="analysis.run_drift")
def run_drift(run_id: int) -> None:
    """Label, metadata, text-length and confidence drift between two batches."""
    _execute(run_id, AnalysisRun.Kind.DRIFT, drift_job)
