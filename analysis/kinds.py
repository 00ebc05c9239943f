"""The kinds of analysis run, one entry each: the Celery tasks (analysis/tasks.py), the runs
API (analysis/api/runs.py) and the pages (analysis/views/) read them from here.

A new kind is one entry here plus its service: a job `job(recorder)` and a `RunParams`
serializer beside it in analysis/services/<kind>.py, its value in `AnalysisRun.Kind` (with
the migration of the field's choices) and the page named by `page`.
"""

from collections.abc import Callable
from dataclasses import dataclass

from analysis.models import AnalysisRun
from analysis.services.agreement import AgreementParams, agreement_job
from analysis.services.baselines import BaselineParams, baselines_job
from analysis.services.drift import DriftParams, drift_job
from analysis.services.label_issues import LabelIssueParams, label_issues_job
from analysis.services.run_params import RunParams
from analysis.services.run_recording import RunRecorder
from analysis.services.slices import slices_job


@dataclass(frozen=True)
class AnalysisKind:
    name: str  # an AnalysisRun.Kind value; its Celery task is `analysis.run_<name>`
    summary: str  # what the job computes (the task's and the API schema's description)
    params: type[RunParams]
    job: Callable[[RunRecorder], None]
    page: str  # URL name of the page that starts it and shows its newest result

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
    ),
    AnalysisKind(
        name=AnalysisRun.Kind.LABEL_ISSUES.value,
        summary="Likely label errors: built-in cross-validated model or uploaded predictions, "
        "then confident learning, CROWDLAB or Dawid-Skene.",
        params=LabelIssueParams,
        job=label_issues_job,
        page="analysis:issues",
    ),
    AnalysisKind(
        name=AnalysisRun.Kind.BASELINES.value,
        summary="Human-level performance (leave-one-out consensus and reviews), the "
        "majority-class baseline and model accuracy.",
        params=BaselineParams,
        job=baselines_job,
        page="analysis:baselines",
    ),
    AnalysisKind(
        name=AnalysisRun.Kind.SLICES.value,
        summary="Per-slice model accuracy, HLP, gap and potential gain over every metadata field.",
        params=BaselineParams,
        job=slices_job,
        page="analysis:slices",
    ),
    AnalysisKind(
        name=AnalysisRun.Kind.DRIFT.value,
        summary="Label, metadata, text-length and confidence drift between two batches.",
        params=DriftParams,
        job=drift_job,
        page="analysis:drift",
    ),
)
BY_NAME = {kind.name: kind for kind in KINDS}
