"""The model's suggestion per item, shown to annotators (README, "Suggestions and anchoring").

`suggestions_refresh` rewrites a project's `labeling.models.Suggestion` rows from the newest
probabilities of `project.suggestion_model` (an uploaded model's name, or `builtin`): the top
class and its probability per item; on span projects the spans of the token model, each token
taking its most probable class and consecutive tokens of one type making one span (the IO
decoding the span baselines use, `span_baselines.model_spans`), with the item's mean top-class
token probability. Without a prediction set of that name the project simply has no
suggestions. Written with COPY on PostgreSQL (`copy_in_rows`), no row saved one by one.
"""

from __future__ import annotations

import numpy as np
from django.db import transaction
from django.utils import timezone

from analysis import loaders
from analysis.metrics.span_baselines import model_spans
from analysis.metrics.span_tags import char_offsets
from analysis.models import PredictionSet
from labeling.models import Project, Suggestion
from labeling.rawsql import copy_in_rows

COLUMNS = ["item_id", "model", "label_id", "probability", "spans", "updated_at"]


def suggestion_source(*, project: Project) -> PredictionSet | None:
    """The prediction set suggestions come from, or None when that model has none."""
    return PredictionSet.objects.filter(project=project, model=project.suggestion_model).first()


def _class_rows(project: Project, model: str, now):
    item_ids, probs = loaders.predictions(project=project, model=model)
    class_ids, _ = loaders.label_classes(project)
    if not len(item_ids):
        return []
    top = probs.argmax(axis=1)
    label_ids = np.asarray(class_ids, dtype=np.int64)[top].tolist()
    top_probability = probs[np.arange(len(top)), top].tolist()
    return zip(
        item_ids.tolist(),
        [model] * len(item_ids),
        label_ids,
        top_probability,
        [[]] * len(item_ids),
        [now] * len(item_ids),
        strict=True,
    )


def _span_rows(project: Project, model: str, now):
    predictions = loaders.token_predictions(project=project, model=model)
    if not len(predictions.item_ids):
        return []
    class_ids, _ = loaders.label_classes(project)
    lengths = np.diff(predictions.offsets)
    spans = model_spans(predictions.probs, lengths)
    _, starts, ends = loaders.item_token_bounds(project=project, item_ids=predictions.item_ids)
    char_start, char_end = char_offsets(
        spans.sequence, spans.start, spans.end, lengths, starts, ends
    )
    label_ids = np.asarray(class_ids, dtype=np.int64)[spans.label]
    cut = np.searchsorted(spans.sequence, np.arange(len(lengths) + 1))
    triples = np.stack([char_start, char_end, label_ids], axis=1).tolist()
    per_item = [triples[cut[i] : cut[i + 1]] for i in range(len(lengths))]
    token_item = np.repeat(np.arange(len(lengths)), lengths)
    confidence_sum = np.bincount(
        token_item, weights=predictions.probs.max(axis=1), minlength=len(lengths)
    )
    mean_confidence = np.where(lengths > 0, confidence_sum / np.maximum(lengths, 1), np.nan)
    return zip(
        predictions.item_ids.tolist(),
        [model] * len(lengths),
        [None] * len(lengths),
        [None if np.isnan(p) else float(p) for p in mean_confidence],
        per_item,
        [now] * len(lengths),
        strict=True,
    )


@transaction.atomic
def suggestions_refresh(*, project: Project) -> int:
    """Replace the project's suggestions with those of `project.suggestion_model`'s newest
    predictions; returns how many items have one (0 when that model has no predictions)."""
    project.refresh_from_db(fields=["suggestion_model", "task_type"])
    Suggestion.objects.filter(item__project=project).delete()
    model = project.suggestion_model
    if suggestion_source(project=project) is None:
        return 0
    now = timezone.now()
    rows = _span_rows(project, model, now) if project.is_spans else _class_rows(project, model, now)
    rows = list(rows)
    copy_in_rows(Suggestion, COLUMNS, rows)
    return len(rows)
