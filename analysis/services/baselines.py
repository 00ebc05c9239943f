"""The baselines job: human-level performance, majority-class baseline, model accuracy.

Also the pieces the slices and drift jobs share: the project's labels as arrays with their
final labels (`label_state`) and a model's probabilities aligned to items (`model_probs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from rest_framework import serializers

from analysis import loaders
from analysis.metrics import baselines as metrics
from analysis.metrics.consensus import vote_counts
from analysis.models import AnalysisRun, AnnotatorScore
from analysis.services.run_params import RunParams
from analysis.services.run_recording import RunRecorder
from labeling.models import Project
from labeling.rawsql import positions

BUILTIN = "builtin"
BATCH = 5_000


@dataclass(frozen=True)
class BaselineSettings:
    model: str  # an uploaded model's name, or "builtin" (the label-issue job's predictions)
    guideline_version: int | None


class BaselineParams(RunParams):
    """Parameters of a baselines run, and of a slices run (the same two)."""

    model = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=100,
        help_text=f"An uploaded model's name (omitted: `{BUILTIN}`, the predictions of the "
        "newest label-issue run's built-in model).",
        error_messages={"max_length": "model names are at most 100 characters."},
    )
    guideline_version = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="Only annotations made under this guideline version (omitted: all).",
        error_messages={
            "invalid": "guideline_version must be a number.",
            "min_value": "guideline_version starts at 1.",
        },
    )

    def settings(self) -> BaselineSettings:
        given = self.validated_data
        return BaselineSettings(
            model=given.get("model") or BUILTIN, guideline_version=given.get("guideline_version")
        )


@dataclass(frozen=True)
class LabelState:
    """A project's single-label annotations over a fixed, ascending list of items.

    item_ids: (n_items,); item_index, annotator_index, label_index: (n_annotations,) long
    form; annotator_ids: (n_annotators,); review, reviewer_annotator: (n_items,) (see
    loaders.reviews); counts: (n_items, n_classes) votes; final: (n_items,) final label
    (review, else the annotators' majority under the project's tie rule; -1 none).
    """

    item_ids: np.ndarray
    class_names: list[str]
    item_index: np.ndarray
    annotator_index: np.ndarray
    label_index: np.ndarray
    annotator_ids: np.ndarray
    review: np.ndarray
    reviewer_annotator: np.ndarray
    counts: np.ndarray
    final: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def label_state(
    *, project: Project, version: int | None, item_ids: np.ndarray | None = None
) -> LabelState:
    """Load annotations and reviews; `item_ids` (ascending) fixes the items (default: the
    annotated ones); annotations of other items are left out."""
    rows = loaders.annotation_rows(project=project, version=version)
    universe = rows.item_ids if item_ids is None else np.asarray(item_ids, dtype=np.int64)
    item_index = positions(rows.item_ids, universe)[rows.item_index]
    keep = item_index >= 0
    item_index = item_index[keep]
    annotator_index = rows.annotator_index[keep]
    label_index = rows.label_index[keep].astype(np.int64)
    review, reviewer = loaders.reviews(
        project=project,
        item_ids=universe,
        class_ids=rows.class_ids,
        annotator_ids=rows.annotator_ids,
    )
    counts = vote_counts(item_index, label_index, n_items=len(universe), n_classes=rows.n_classes)
    final = metrics.final_labels(counts, review, tie_rule=project.tie_rule)
    return LabelState(
        item_ids=universe,
        class_names=rows.class_names,
        item_index=item_index,
        annotator_index=annotator_index,
        label_index=label_index,
        annotator_ids=rows.annotator_ids,
        review=review,
        reviewer_annotator=reviewer,
        counts=counts,
        final=final,
    )


def model_probs(
    *, project: Project, model: str, item_ids: np.ndarray
) -> tuple[np.ndarray | None, str | None]:
    """A model's probabilities aligned to `item_ids` ((n, n_classes), NaN rows where the model
    has no prediction), or (None, a sentence saying why there are none)."""
    try:
        pred_ids, probs = loaders.predictions(project=project, model=model)
    except LookupError:
        if model == BUILTIN:
            return None, (
                "No predictions of the built-in model: the label-issues job stores them when "
                "its model can learn from the items (text, table fields or embeddings, with "
                "enough labeled items per class). Run it, or upload predictions."
            )
        return None, f"The project has no predictions named {model!r}."
    except ValueError as exc:
        return None, str(exc)
    aligned = np.full((len(item_ids), probs.shape[1]), np.nan)
    at = positions(pred_ids, np.asarray(item_ids, dtype=np.int64))
    aligned[at[at >= 0]] = probs[at >= 0]
    if np.isnan(aligned).all():
        return None, f"The predictions {model!r} cover none of the labeled items."
    return aligned, None


def usernames(user_ids) -> dict[int, str]:
    users = get_user_model().objects.filter(pk__in=[int(u) for u in user_ids])
    return dict(users.values_list("pk", "username"))


def baselines_job(recorder: RunRecorder) -> None:
    """Everything the `analysis.run_baselines` task does, reporting progress on the way."""
    project = recorder.project
    if project.is_spans:
        from analysis.services.span_baselines import span_baselines_job

        return span_baselines_job(recorder)
    params = BaselineParams.parse(recorder.params, project=project)
    if project.is_multi_label:
        raise ValueError("Baselines and slices cover single-label and span projects only.")
    recorder.progress(0.05, "loading annotations")
    state = label_state(project=project, version=params.guideline_version)
    recorder.progress(0.35, "loading model predictions")
    probs, model_note = model_probs(project=project, model=params.model, item_ids=state.item_ids)
    recorder.progress(0.5, "scoring annotators against the others")
    report = metrics.baselines(
        state.item_index,
        state.annotator_index,
        state.label_index,
        n_items=state.n_items,
        n_annotators=len(state.annotator_ids),
        n_classes=state.n_classes,
        review=state.review,
        reviewer_annotator=state.reviewer_annotator,
        probs=probs,
        tie_rule=project.tie_rule,
    )
    recorder.progress(0.8, "measuring speed")
    seconds = loaders.annotator_seconds(project=project, version=params.guideline_version)
    names = usernames(state.annotator_ids)
    per_annotator = []
    for row in report["per_annotator"]:
        user_id = int(state.annotator_ids[row.pop("annotator_index")])
        per_annotator.append(
            {
                "annotator": names.get(user_id, str(user_id)),
                "annotator_id": user_id,
                **row,
                "seconds_per_item": seconds.get(user_id),
            }
        )
    per_annotator.sort(key=lambda r: (r["hlp"] is None, -(r["hlp"] or 0.0), r["annotator"]))
    result = _result(state, report, per_annotator, params, model_note)
    recorder.finish(result, persist=lambda run: baselines_persist(run=run, rows=per_annotator))


def _result(state, report, per_annotator, params, model_note) -> dict:
    classes = state.class_names

    def by_class(values):
        if values is None:
            return None
        return [{"label": classes[c], "accuracy": v} for c, v in enumerate(values)]

    majority = report["majority_class"]
    model = report["model"]
    reviews = report["hlp_reviews"]
    return {
        "hlp": report["hlp"],
        "hlp_source": report["hlp_source"],
        "majority_class": majority["accuracy"],
        "majority_class_label": (
            classes[majority["label_index"]] if majority["label_index"] is not None else None
        ),
        "model": model["accuracy"] if model else None,
        "model_name": params.model,
        "model_note": model_note,
        "model_n": model["n"] if model else 0,
        "model_per_class": by_class(model["per_class"]) if model else None,
        "model_confusion": model["confusion"] if model else None,
        "gap": report["gap"],
        "verdict": report["verdict"],
        "hlp_consensus": {
            "accuracy": report["hlp_consensus"]["accuracy"],
            "n": report["hlp_consensus"]["n"],
            "per_class": by_class(report["hlp_consensus"]["per_class"]),
            "confusion": report["hlp_consensus"]["confusion"],
        },
        "hlp_reviews": {
            "accuracy": reviews["accuracy"],
            "n_items": reviews["n_items"],
            "n_annotations": reviews["n_annotations"],
            "per_class": by_class(reviews["per_class"]),
            "sufficient": reviews["sufficient"],
            "min_reviewed": metrics.MIN_REVIEWED,
        },
        "per_annotator": per_annotator,
        "classes": classes,
        "n_items": state.n_items,
        "n_annotations": int(len(state.label_index)),
        "n_final": int((state.final >= 0).sum()),
        "guideline_version": params.guideline_version,
    }


def baselines_persist(*, run: AnalysisRun, rows: list[dict]) -> None:
    """Per-annotator HLP as AnnotatorScore rows: agreement = HLP against the others'
    consensus, quality = HLP against reviews (when enough), extra = counts and speed."""
    AnnotatorScore.objects.filter(run=run).delete()
    for start in range(0, len(rows), BATCH):
        AnnotatorScore.objects.bulk_create(
            AnnotatorScore(
                run=run,
                annotator_id=row["annotator_id"],
                n=row["n"],
                agreement=row["hlp"],
                quality=row["hlp_reviews"],
                extra={
                    "n_shared": row["n_shared"],
                    "n_reviewed": row["n_reviewed"],
                    "seconds_per_item": row["seconds_per_item"],
                },
            )
            for row in rows[start : start + BATCH]
        )
