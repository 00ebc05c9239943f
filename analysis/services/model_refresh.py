"""The model-refresh job: the models' probabilities for every item, the queue's scores, and
asking for a refresh when one is due.

What the job does (single-label projects; `kinds` refuses multi-label and span projects,
whose queue has no scored order yet):

1. Loads the annotations, leaving out those on gold items (`Item.is_gold`), and every
   regular item.
2. Probabilities for every item from the models it has: the built-in model (out-of-fold
   probabilities for labeled items as in the label-issue job; an item without a label, or
   with a tied vote, gets the mean of the K fold models, each fit on (K-1)/K of the labeled
   items), stored as the prediction set `builtin` for the suggestions and the baselines; and
   the project's uploaded prediction sets, newest first. An upload joins the ensemble when it
   covers every item the models before it cover; otherwise it is named in
   `skipped_models`. When the built-in model cannot train, the newest upload alone is used.
   An item is scored when every model of the ensemble has probabilities for it.
3. Scores for the project's queue order (`analysis.metrics.active_learning.queue_priorities`):
   `uncertainty` (the mean top-class probability) or `activelab` (cleanlab's ActiveLab, its
   ensemble form with several models). Overlap stays the cap on labels per item: full items
   get no priority (NULL), the others are ordered by the score whether others labeled them
   or not. With the import or random order nothing is written to the queue (the run still
   refreshes the probabilities for the suggestions).
4. Writes `Item.priority` for every regular item in bulk (`priorities_write`, short
   transactions of a few thousand rows so annotators never wait on the write), once
   everything is computed: a run that fails while loading or computing leaves the earlier
   priorities as they were (only a database failure during the write itself would leave
   some items with the new scores, which are as valid as the old ones).

The result (`run.result`, the Dashboard's learning curve reads it): `model`, `order`,
`n_annotations`, `n_labeled_items`, `n_scored`, `accuracy` (the ensemble's top class against
the majority label of labeled items without a tie; the built-in model's labeled items are
judged out of fold), `accuracy_interval` (Wilson, 95%), `n_judged`; plus `method`,
`skipped_models` and `note`.

Refreshes are asked for by labeling (`labeling.services.queue_scores`, every
`scores_refresh_every` new annotations) and after every successful label-issue run;
analysis/tasks.py's `request_model_refresh` starts the run when `model_refresh_needed`.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from analysis import loaders
from analysis.metrics.active_learning import consensus_accuracy, queue_priorities
from analysis.metrics.consensus import majority_from_counts
from analysis.metrics.intervals import wilson_interval
from analysis.metrics.label_issues import vote_table
from analysis.metrics.out_of_sample import CannotTrain
from analysis.models import AnalysisRun, PredictionSet
from analysis.services.baselines import model_probs
from analysis.services.label_issues import (
    BUILTIN,
    builtin_folds_field,
    builtin_probabilities,
)
from analysis.services.predictions import predictions_store
from analysis.services.run_params import RunParams
from analysis.services.run_recording import RunRecorder, runs_fail_stuck
from analysis.services.suggestions import suggestions_refresh
from labeling.models import Item, Project
from labeling.rawsql import positions
from labeling.services.queue import SCORED_ORDERS
from labeling.services.queue_scores import refresh_wanted

WRITE_CHUNK = 5_000  # items per UPDATE ... FROM (VALUES ...), one short transaction each


class ModelRefreshParams(RunParams):
    """Parameters of a model refresh."""

    folds = builtin_folds_field()

    def settings(self) -> int:
        return self.validated_data.get("folds") or 5


def model_refresh_job(recorder: RunRecorder) -> None:
    """Everything the `analysis.run_model_refresh` task does, reporting progress on the way."""
    project = recorder.project
    folds = ModelRefreshParams.parse(recorder.params, project=project)
    if project.task_type != Project.TaskType.SINGLE:
        raise ValueError("Model refresh covers single-label projects only.")
    recorder.progress(0.02, "loading items and annotations")
    items = loaders.queue_items(project=project)
    rows = loaders.annotation_rows(project=project).without_items(items.gold_ids)
    # Annotations of every regular item, as an (n_items, n_annotators) matrix (-1: none).
    labels = np.full((len(items.item_ids), rows.n_annotators), -1, dtype=np.int16)
    at = positions(rows.item_ids, items.item_ids)
    labels[at[rows.item_index], rows.annotator_index] = rows.label_index
    n_classes = rows.n_classes
    notes: list[str] = []

    builtin = None
    consensus, _, _ = majority_from_counts(vote_table(labels, n_classes))
    try:
        builtin = builtin_probabilities(
            recorder,
            project=project,
            item_ids=items.item_ids,
            labels=consensus,
            n_classes=n_classes,
            folds=folds,
            progress_span=(0.1, 0.7),
        )
    except CannotTrain as exc:
        notes.append(f"The built-in model did not run: {exc}.")
    recorder.progress(0.72, "loading uploaded predictions")
    models, skipped = _ensemble(project, items.item_ids, builtin)
    if not models:
        raise ValueError(
            " ".join(notes)
            + " The project has no uploaded predictions either, so there is nothing to score "
            "the items with; the queue keeps its earlier scores."
        )
    names = [name for name, _ in models]
    probs = [p for _, p in models]
    scored = np.all([np.isfinite(p).all(axis=1) for p in probs], axis=0)
    correct, n_judged = consensus_accuracy(labels[scored], [p[scored] for p in probs])
    interval = wilson_interval(correct, n_judged)
    order = project.queue_order
    method = None
    priorities = np.zeros(0)
    write = order in SCORED_ORDERS
    if write:
        recorder.progress(0.8, f"scoring the items ({order})")
        priorities, method = queue_priorities(order, labels[scored], [p[scored] for p in probs])
        if method != order:
            notes.append("No labeled item yet: ActiveLab fell back to the model's uncertainty.")
    else:
        notes.append(f"The queue order is {order}: no queue scores written.")
    full = items.done_count >= project.overlap
    ask = scored & ~full
    result = {
        "model": "+".join(names),
        "order": order,
        "n_annotations": int(len(rows.item_index)),
        "n_labeled_items": int((labels >= 0).any(axis=1).sum()),
        "n_scored": int(ask.sum()) if write else 0,
        "accuracy": correct / n_judged if n_judged else None,
        "accuracy_interval": list(interval) if interval else None,
        "n_judged": n_judged,
        "method": method,
        "skipped_models": skipped,
        "note": " ".join(notes) or None,
    }
    recorder.progress(0.9, "saving probabilities and queue scores")
    if write:
        # Every item: its score, or NULL (full, no model could score it, or a gold question).
        by_item = np.full(len(items.item_ids), np.nan)
        by_item[scored] = priorities
        by_item[~ask] = np.nan
        priorities_write(
            project=project,
            item_ids=np.concatenate([items.item_ids, items.gold_ids]),
            priorities=np.concatenate([by_item, np.full(len(items.gold_ids), np.nan)]),
        )

    def persist(run: AnalysisRun) -> None:
        if builtin is not None:
            kept = np.flatnonzero(builtin.scored)
            predictions_store(
                project=project,
                model=BUILTIN,
                classes=rows.class_names,
                item_ids=items.item_ids[kept],
                probs=builtin.probabilities[kept],
                user=run.created_by,
            )  # refreshes the suggestions too when the built-in model is their source
        if project.suggestion_model != BUILTIN:
            suggestions_refresh(project=project)  # an upload chosen as the source since

    recorder.finish(result, persist=persist)


def _ensemble(project: Project, item_ids: np.ndarray, builtin) -> tuple[list, list[str]]:
    """The models that score the items: [(name, (n_items, K) probabilities, NaN rows where
    none)], and the names of uploads left out (they do not cover the others' items)."""
    models = []
    if builtin is not None:
        models.append((BUILTIN, np.where(builtin.scored[:, None], builtin.probabilities, np.nan)))
    skipped = []
    uploads = (
        PredictionSet.objects.filter(project=project)
        .exclude(model=BUILTIN)
        .order_by("-created_at", "-id")
        .values_list("model", flat=True)
    )
    for name in uploads:
        probs, _ = model_probs(project=project, model=name, item_ids=item_ids)
        if probs is None:
            skipped.append(name)
            continue
        if models:
            covered = np.isfinite(probs).all(axis=1)
            wanted = np.all([np.isfinite(p).all(axis=1) for _, p in models], axis=0)
            if not covered[wanted].all():
                skipped.append(name)
                continue
        models.append((name, probs))
    return models, skipped


def priorities_write(*, project: Project, item_ids: np.ndarray, priorities: np.ndarray) -> int:
    """Set `Item.priority` of the given items of the project (NaN: NULL, no score); returns
    the number of items changed.

    One UPDATE ... FROM (VALUES ...) per chunk of WRITE_CHUNK items, each its own short
    transaction, touching only the rows whose priority changes: a claim skips a row being
    written (`SKIP LOCKED`) and a submit waits for it, so no row stays locked longer than one
    chunk's statement (tens of milliseconds), where one transaction over a million rows would
    hold them all for its whole length. Call outside a transaction.
    """
    table = Item._meta.db_table
    ids = np.asarray(item_ids, dtype=np.int64).tolist()
    values = [None if np.isnan(v) else v for v in np.asarray(priorities, dtype=float).tolist()]
    changed = 0
    with connection.cursor() as cursor:
        for start in range(0, len(ids), WRITE_CHUNK):
            end = start + WRITE_CHUNK
            chunk = list(zip(ids[start:end], values[start:end], strict=True))
            rows = ", ".join(["(%s, %s)"] * len(chunk))
            # VALUES columns are column1, column2 on PostgreSQL and SQLite alike; the cast
            # types a chunk whose priorities are all NULL.
            with transaction.atomic():
                cursor.execute(
                    f"UPDATE {table} SET priority = CAST(v.column2 AS double precision) "
                    f"FROM (VALUES {rows}) AS v "
                    f"WHERE {table}.id = v.column1 AND {table}.project_id = %s "
                    f"AND {table}.priority IS DISTINCT FROM CAST(v.column2 AS double precision)",
                    [x for pair in chunk for x in pair] + [project.pk],
                )
                changed += cursor.rowcount
    return changed


def model_refresh_needed(*, project: Project) -> bool:
    """Whether a refresh of the project should start now: something reads its scores (a scored
    queue order or suggestions), its task type has a refresh, and no refresh of it is queued
    or running. A run whose worker died is failed first, and a run queued for longer than the
    run timeout (its message lost) no longer counts, so neither blocks refreshes for ever."""
    if not refresh_wanted(project) or project.task_type != Project.TaskType.SINGLE:
        return False
    runs_fail_stuck()
    lost = timezone.now() - timedelta(seconds=settings.CONCORD_RUN_TIMEOUT_SECONDS)
    return not AnalysisRun.objects.filter(
        Q(status=AnalysisRun.Status.RUNNING)
        | Q(status=AnalysisRun.Status.QUEUED, created_at__gte=lost),
        project=project,
        kind=AnalysisRun.Kind.MODEL_REFRESH,
    ).exists()
