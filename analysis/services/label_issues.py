"""The label-issues job (load -> model -> judge -> persist) and reviewers' decisions on issues.

The run's result counts items two ways. `n_items`: the items judged (they have a label and,
where a model runs, its probabilities). `n_trained`: the labeled items the built-in model
learned from, each in the folds that did not score it; items whose vote is tied and items of
a class with fewer labeled items than folds (`excluded_classes`) are left out, so it is at
most `n_items` (tied items are still judged, scored by every fold's model). `n_trained` is
None when the built-in model did not run (uploaded predictions, `model: "none"`, or a model
that could not train).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from analysis import loaders
from analysis.metrics.consensus import majority_from_counts
from analysis.metrics.label_issues import LabelIssues, find_issues, vote_table
from analysis.metrics.out_of_sample import CannotTrain, out_of_sample_probabilities
from analysis.models import AnalysisRun, AnnotatorScore, LabelIssue
from analysis.services.predictions import predictions_store
from analysis.services.run_params import RunParams
from analysis.services.run_recording import RunRecorder
from labeling.models import LabelClass, Project
from labeling.rawsql import copy_in_rows
from labeling.services.guidelines import worked_example_add
from labeling.services.queue_scores import model_refresh_ask
from labeling.services.relabeling import relabel_request
from labeling.services.reviewing import review_set
from labeling.spans import item_text, spans_after_suggestions, token_bounds

BUILTIN = "builtin"
NO_MODEL = "none"
BATCH = 5_000
MAX_FOLDS = 20


@dataclass(frozen=True)
class LabelIssueSettings:
    model: str | None  # an uploaded model's name; None or "builtin": built-in; "none": no model
    folds: int
    guideline_version: int | None


def builtin_folds_field() -> serializers.IntegerField:
    """The `folds` parameter of the jobs that train the built-in model."""
    return serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=2,
        max_value=MAX_FOLDS,
        help_text="Cross-validation folds of the built-in model (default 5).",
        error_messages={
            "invalid": "folds must be a whole number.",
            "min_value": f"folds must be between 2 and {MAX_FOLDS}.",
            "max_value": f"folds must be between 2 and {MAX_FOLDS}.",
        },
    )


class LabelIssueParams(RunParams):
    """Parameters of a label-issue run."""

    model = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text=f"An uploaded model's name; `{NO_MODEL}`: no model (annotators only, "
        f"Dawid-Skene; not on span projects, which need a token model); omitted or "
        f"`{BUILTIN}`: the built-in cross-validated model (a CRF on span projects).",
    )
    folds = builtin_folds_field()
    guideline_version = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Only annotations made under this guideline version (omitted: all).",
        error_messages={"invalid": "guideline_version must be a number."},
    )

    def settings(self) -> LabelIssueSettings:
        given = self.validated_data
        return LabelIssueSettings(
            model=given.get("model") or None,
            folds=given.get("folds") or 5,
            guideline_version=given.get("guideline_version"),
        )


def builtin_probabilities(
    recorder: RunRecorder,
    *,
    project: Project,
    item_ids: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    folds: int,
    progress_span: tuple[float, float],
):
    """The built-in model's out-of-fold probabilities for `item_ids` (the label-issue and
    model-refresh jobs), learning `labels` ((n,) class index, -1 = no label); progress per
    fold within `progress_span`. Raises CannotTrain with the reason."""
    recorder.progress(progress_span[0] - 0.05, "loading item features")
    features = loaders.item_features(project=project, item_ids=item_ids)
    if features.kind is None:
        raise CannotTrain(features.note)
    start, end = progress_span

    def fold_done(done: int, total: int) -> None:
        recorder.progress(start + (end - start) * done / total, f"fold {done} of {total} done")

    return out_of_sample_probabilities(
        features.features,
        labels,
        n_classes=n_classes,
        kind=features.kind,
        folds=folds,
        progress=fold_done,
    )


def label_issues_job(recorder: RunRecorder) -> None:
    """Everything the `analysis.run_label_issues` task does, reporting progress on the way."""
    project = recorder.project
    params = LabelIssueParams.parse(recorder.params, project=project)
    if project.task_type == Project.TaskType.SPANS:
        # Imported here: span_issues takes its settings and model names from this module.
        from analysis.services.span_issues import span_issues_job

        return span_issues_job(recorder, params)
    started = time.perf_counter()
    recorder.progress(0.02, "loading annotations")
    rows = loaders.annotation_rows(project=project, version=params.guideline_version)
    if rows.n_items == 0:
        raise ValueError("The project has no single-label annotations to check.")
    matrix = rows.matrix()
    n_classes = rows.n_classes
    # model_note: why no model judged the labels, in plain words (None when one did).
    summary: dict = {
        "model": params.model,
        "model_note": None,
        "folds": None,
        "excluded_classes": [],
        "n_trained": None,
    }
    builtin = None
    probs = None
    several_annotators = bool(((matrix >= 0).sum(axis=1) > 1).any())
    if params.model == NO_MODEL:
        summary["model_note"] = "No model, as asked: Dawid-Skene weighed the annotators."
    elif params.model and params.model != BUILTIN:
        recorder.progress(0.1, f"loading predictions {params.model!r}")
        probs = _align(rows.item_ids, *loaders.predictions(project=project, model=params.model))
    else:
        training_labels = _training_labels(matrix, n_classes)
        try:
            builtin = builtin_probabilities(
                recorder,
                project=project,
                item_ids=rows.item_ids,
                labels=training_labels,
                n_classes=n_classes,
                folds=params.folds,
                progress_span=(0.1, 0.8),
            )
        except CannotTrain as exc:
            if not several_annotators:
                raise ValueError(
                    f"The built-in model cannot run: {exc}. With one label per item there is "
                    "nothing else to judge the labels by; upload predictions instead."
                ) from exc
            summary.update(
                model=NO_MODEL,
                model_note=f"The built-in model did not run: {exc}. Dawid-Skene weighed the "
                "annotators instead.",
            )
            recorder.progress(0.8, summary["model_note"])
        else:
            probs = builtin.probabilities
            summary.update(
                model=BUILTIN,
                folds=builtin.folds,
                features=builtin.pipeline,
                excluded_classes=[rows.class_names[c] for c in builtin.excluded_classes],
                # Scored items without a training label (ties) were never trained on.
                n_trained=int((builtin.scored & (training_labels >= 0)).sum()),
            )
    recorder.progress(0.85, "finding label issues")
    judging = time.perf_counter()
    issues = find_issues(matrix, n_classes, probs)
    judged = time.perf_counter()
    n_unscored = rows.n_items - issues.n_items
    result = {
        "n_items": issues.n_items,
        "n_issues": issues.n_issues,
        "method": issues.method,
        **summary,
        "n_unjudged": n_unscored,
        "model_accuracy": issues.model_accuracy,
        "builtin_accuracy": builtin.accuracy if builtin is not None else None,
        "annotators": _annotator_summary(rows, matrix, issues),
        # Where the time went (the row writes come after and are not included).
        "timings": {
            "load_and_model_s": round(judging - started, 3),
            "judge_s": round(judged - judging, 3),
        },
    }
    recorder.progress(0.9, "saving results")

    def persist(run: AnalysisRun) -> None:
        if builtin is not None:
            scored = np.flatnonzero(builtin.scored)
            predictions_store(
                project=project,
                model=BUILTIN,
                classes=rows.class_names,
                item_ids=rows.item_ids[scored],
                probs=builtin.probabilities[scored],
                user=run.created_by,
            )
        label_issues_persist(run=run, rows=rows, issues=issues)

    note = summary["model_note"]
    recorder.finish(result, persist=persist, message=f"done: {note}" if note else "done")
    # Fresh labels were judged: the queue's scores and the suggestions follow (when used).
    model_refresh_ask(project=project)


def _align(item_ids: np.ndarray, pred_ids: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """(len(item_ids), K) probabilities for the labeled items, NaN rows where none were given
    (`pred_probs` itself when it has exactly those items: no copy of millions of rows)."""
    if np.array_equal(pred_ids, item_ids):
        return pred_probs
    out = np.full((len(item_ids), pred_probs.shape[1]), np.nan)
    if len(pred_ids) == 0:
        return out
    position = np.clip(np.searchsorted(pred_ids, item_ids), 0, len(pred_ids) - 1)
    found = pred_ids[position] == item_ids
    out[found] = pred_probs[position[found]]
    return out


def _training_labels(matrix: np.ndarray, n_classes: int) -> np.ndarray:
    """The label a model learns per item: the only label, or the majority (ties: -1, unused)."""
    winner, _, _ = majority_from_counts(vote_table(matrix, n_classes), "unresolved")
    return winner


def _annotator_summary(rows, matrix: np.ndarray, issues: LabelIssues) -> list[dict]:
    User = get_user_model()
    names = dict(
        User.objects.filter(id__in=rows.annotator_ids.tolist()).values_list("id", "username")
    )
    counts = (matrix >= 0).sum(axis=0)
    out = []
    for a, annotator_id in enumerate(rows.annotator_ids.tolist()):
        out.append(
            {
                "annotator": names.get(annotator_id, str(annotator_id)),
                "n": int(counts[a]),
                "quality": _number(issues.annotator_quality, a),
                "agreement": _number(issues.annotator_agreement, a),
            }
        )
    return out


def _number(values: np.ndarray | None, index: int) -> float | None:
    if values is None or np.isnan(values[index]):
        return None
    return float(values[index])


def label_issues_persist(*, run: AnalysisRun, rows, issues: LabelIssues) -> None:
    """Write the run's LabelIssue rows and AnnotatorScore rows in bulk."""
    class_ids = np.asarray(rows.class_ids + [0], dtype=np.int64)  # index -1 -> unused slot
    item_ids = rows.item_ids[issues.item_index]
    given = class_ids[issues.given]
    suggested = class_ids[issues.suggested]
    names = rows.class_names
    votes = issues.votes
    given_set = issues.given >= 0
    open_ = LabelIssue.Resolution.OPEN
    copy_in_rows(
        LabelIssue,
        ["run_id", "item_id", "given_label_id", "suggested_label_id", "quality", "is_issue",
         "rank", "votes", "resolution"],
        (
            (run.pk, item_id, given_id if has_given else None, suggested_id, quality, flag,
             rank, {names[k]: v for k, v in enumerate(item_votes) if v}, open_)
            for item_id, given_id, has_given, suggested_id, quality, flag, rank, item_votes in zip(
                item_ids.tolist(), given.tolist(), given_set.tolist(), suggested.tolist(),
                issues.quality.tolist(), issues.is_issue.tolist(), issues.rank.tolist(),
                votes.tolist(), strict=True,
            )
        ),
    )  # fmt: skip
    counts = (rows.matrix() >= 0).sum(axis=0) if issues.annotator_quality is not None else None
    if counts is not None:
        AnnotatorScore.objects.bulk_create(
            [
                AnnotatorScore(
                    run=run,
                    annotator_id=int(annotator_id),
                    n=int(counts[a]),
                    quality=_number(issues.annotator_quality, a),
                    agreement=_number(issues.annotator_agreement, a),
                    extra={"method": issues.method},
                )
                for a, annotator_id in enumerate(rows.annotator_ids.tolist())
            ],
            batch_size=BATCH,
        )


# --- reviewers' decisions ---

ACTIONS = ("accept", "keep", "ambiguous")


def issue_spans_accepted(issue: LabelIssue) -> list[list[int]]:
    """The spans accepting a span issue stores: its given spans with every flagged token's
    suggestion applied (`labeling.spans.spans_after_suggestions`). Raises ValidationError
    when the row flags nothing or no longer fits the item's text."""
    if not issue.flagged_tokens:
        raise ValidationError({"action": "This issue flags no token: there is nothing to accept."})
    text = item_text(issue.item.data)
    try:
        return spans_after_suggestions(issue.given_spans, issue.flagged_tokens, token_bounds(text))
    except ValueError as exc:
        raise ValidationError(
            {"action": f"The item's text changed since the run: {exc}."}
        ) from None


def issue_example_type(issue: LabelIssue) -> int | None:
    """The entity type (label id) a span issue's worked example teaches by default: the first
    flagged token's suggested type, else (every token suggested O) the first one's given
    type; None when the row flags nothing."""
    flagged = sorted(issue.flagged_tokens)
    for _start, _end, _given, suggested in flagged:
        if suggested is not None:
            return suggested
    for _start, _end, given, _suggested in flagged:
        if given is not None:
            return given
    return None


def _flagged_in_words(issue: LabelIssue, names: dict[int, str]) -> str:
    """`“London” LOC → ORG, “1833” DATE → O (not an entity)`: a span example's why."""
    text = item_text(issue.item.data)

    def name(label_id) -> str:
        return "O (not an entity)" if label_id is None else names.get(label_id, "?")

    return ", ".join(
        f"“{text[start:end]}” {'O' if given is None else names.get(given, '?')} → {name(suggested)}"
        for start, end, given, suggested in issue.flagged_tokens
    )


@transaction.atomic
def issue_resolve(
    *,
    issue: LabelIssue,
    action: str,
    user,
    relabel: bool | None = None,
    add_example: bool = False,
    why: str = "",
    label: LabelClass | str | None = None,
) -> LabelIssue:
    """Record a reviewer's decision on a likely label error.

    accept: the suggested label becomes the item's Review (it wins over any aggregate); on a
    span project the Review's spans are the given spans with each flagged token's suggestion
    applied (`issue_spans_accepted`).
    keep: the label stays; the issue is closed.
    ambiguous: the item goes back to annotators (relabel, the default) and/or becomes a worked
    example of the guideline draft with the reviewer's `why` and `label` (a class or its name;
    by default the suggested label, else the given one: the reviewer often knows better than a
    model's guess, and a tie suggests nothing). On a span project the label is the entity type
    the example teaches (by default the first flagged token's suggested type, else its given
    type) and the why ends with the flagged tokens in words. Nothing changes when the example
    is refused.
    """
    if action not in ACTIONS:
        raise ValidationError({"action": f"action must be one of {', '.join(ACTIONS)}."})
    issue = (
        LabelIssue.objects.select_for_update()
        .select_related("item", "run", "run__project")
        .get(pk=issue.pk)
    )
    project = issue.run.project
    note = why or f"Accepted the suggestion of label-issue run #{issue.run_id}."
    if action == "accept" and project.is_spans:
        spans = issue_spans_accepted(issue)
        review_set(item=issue.item, reviewer=user, spans=spans, note=note)
        resolution = LabelIssue.Resolution.ACCEPTED
    elif action == "accept":
        if issue.suggested_label_id is None:
            raise ValidationError({"action": "This issue has no suggested label to accept."})
        review_set(item=issue.item, reviewer=user, label=issue.suggested_label, note=note)
        resolution = LabelIssue.Resolution.ACCEPTED
    elif action == "keep":
        resolution = LabelIssue.Resolution.KEPT
    else:
        if relabel is None:
            relabel = not add_example
        if not relabel and not add_example:
            raise ValidationError(
                {"action": "Mark it ambiguous with relabel and/or add_example set."}
            )
        if relabel:
            relabel_request(project=project, item_ids=[issue.item_id])
        if add_example:
            if project.is_spans:
                names = dict(project.labels.values_list("pk", "name"))
                if label is None or label == "":
                    label = names.get(issue_example_type(issue))
                    if label is None:
                        raise ValidationError(
                            {"label": "Choose the entity type the example teaches."}
                        )
                if why.strip() and issue.flagged_tokens:
                    flagged = _flagged_in_words(issue, names)
                    why = f"{why.strip()}\n\nFlagged by label-issue run #{issue.run_id}: {flagged}."
            elif label is None:
                label = issue.suggested_label or issue.given_label
            worked_example_add(project=project, item=issue.item, label=label, why=why, user=user)
        resolution = LabelIssue.Resolution.AMBIGUOUS
    issue.resolution = resolution
    issue.resolved_by = user
    issue.resolved_at = timezone.now()
    issue.save(update_fields=["resolution", "resolved_by", "resolved_at"])
    return issue
