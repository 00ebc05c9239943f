"""The kinds of analysis run, one entry each, and starting a run of one: the Celery tasks
(analysis/tasks.py), the runs API (analysis/api/runs.py) and the pages (analysis/views/) read
the registry, and the API and every page start runs through `run_start` (one path: the same
checks, the same answers); the job's side (progress, result, failure) is
analysis/services/run_recording.py.

A new kind is one entry here plus its service: a job `job(recorder)` and a `RunParams`
serializer beside it in analysis/services/<kind>.py, its value in `AnalysisRun.Kind` (with
the migration of the field's choices) and the page named by `page`.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone
from rest_framework.exceptions import ValidationError

from analysis.models import AnalysisRun
from analysis.services.agreement import AgreementParams, agreement_job
from analysis.services.baselines import BaselineParams, baselines_job
from analysis.services.drift import DriftParams, drift_job
from analysis.services.label_issues import LabelIssueParams, label_issues_job
from analysis.services.model_refresh import ModelRefreshParams, model_refresh_job
from analysis.services.run_params import RunParams
from analysis.services.run_recording import RunRecorder, runs_fail_stuck
from analysis.services.slices import slices_job
from config.celery import JobQueueUnavailable, enqueue
from labeling.models import Project


@dataclass(frozen=True)
class AnalysisKind:
    name: str  # an AnalysisRun.Kind value; its Celery task is `analysis.run_<name>`
    summary: str  # what the job computes (the task's and the API schema's description)
    params: type[RunParams]
    job: Callable[[RunRecorder], None]
    page: str  # URL name of the page that starts it and shows its newest result
    task_types: tuple[str, ...]  # the project task types (Project.TaskType) it covers

    @property
    def title(self) -> str:
        return AnalysisRun.Kind(self.name).label


KINDS = (
    AnalysisKind(
        name=AnalysisRun.Kind.AGREEMENT.value,
        summary="Krippendorff's alpha (with bootstrap interval), Fleiss, Cohen per pair, per "
        "label, per annotator and per item, overall and per guideline version.",
        params=AgreementParams,
        job=agreement_job,
        page="analysis:agreement",
        task_types=(Project.TaskType.SINGLE, Project.TaskType.MULTI, Project.TaskType.SPANS),
    ),
    AnalysisKind(
        name=AnalysisRun.Kind.LABEL_ISSUES.value,
        summary="Likely label errors: built-in cross-validated model or uploaded predictions, "
        "then confident learning, CROWDLAB or Dawid-Skene.",
        params=LabelIssueParams,
        job=label_issues_job,
        page="analysis:issues",
        task_types=(Project.TaskType.SINGLE, Project.TaskType.SPANS),
    ),
    AnalysisKind(
        name=AnalysisRun.Kind.BASELINES.value,
        summary="Human-level performance (leave-one-out consensus and reviews), the "
        "majority-class baseline and model accuracy.",
        params=BaselineParams,
        job=baselines_job,
        page="analysis:baselines",
        task_types=(Project.TaskType.SINGLE, Project.TaskType.SPANS),
    ),
    AnalysisKind(
        name=AnalysisRun.Kind.SLICES.value,
        summary="Per-slice model accuracy, HLP, gap and potential gain over every metadata field.",
        params=BaselineParams,
        job=slices_job,
        page="analysis:slices",
        task_types=(Project.TaskType.SINGLE, Project.TaskType.SPANS),
    ),
    AnalysisKind(
        name=AnalysisRun.Kind.DRIFT.value,
        summary="Label, metadata, text-length and confidence drift between two batches.",
        params=DriftParams,
        job=drift_job,
        page="analysis:drift",
        task_types=(Project.TaskType.SINGLE, Project.TaskType.MULTI, Project.TaskType.SPANS),
    ),
    AnalysisKind(
        name=AnalysisRun.Kind.MODEL_REFRESH.value,
        summary="The built-in model's probabilities for every item (and the uploaded models'), "
        "the queue's uncertainty or ActiveLab scores written to the items, and the model's "
        "accuracy against the consensus; started every N new annotations.",
        params=ModelRefreshParams,
        job=model_refresh_job,
        page="labeling:dashboard",
        task_types=(Project.TaskType.SINGLE,),
    ),
)
BY_NAME = {kind.name: kind for kind in KINDS}


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
    if kind not in BY_NAME:
        raise ValueError(f"Unknown kind {kind!r}; allowed: {', '.join(BY_NAME)}.")
    if project.task_type not in BY_NAME[kind].task_types:
        covered = ", ".join(Project.TaskType(t).label.lower() for t in BY_NAME[kind].task_types)
        task = project.get_task_type_display().lower()
        detail = f"{BY_NAME[kind].title} runs on {covered} projects only; this one is {task}."
        raise ValidationError({"detail": detail})
    checked = BY_NAME[kind].params(data=params, context={"project": project})
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
