"""The baselines and slices jobs of a span project, in exact span F1
(`analysis.metrics.span_baselines`): HLP against the others' consensus and the reviews, a
token model's F1 against the final spans, per entity type and per metadata slice.

`baselines_job` and `slices_job` (analysis/services/baselines.py, slices.py) hand span
projects here; the parameters are theirs (`BaselineParams`). The model is a stored token
model by name: an uploaded one, or `builtin`, which the span label-issue job stores.
"""

from __future__ import annotations

import numpy as np

from analysis import loaders
from analysis.metrics import slices as slice_metrics
from analysis.metrics import span_baselines as metrics
from analysis.metrics.span_tags import sequence_offsets, token_ranges
from analysis.services.baselines import (
    BUILTIN,
    BaselineParams,
    BaselineSettings,
    baselines_persist,
    usernames,
)
from analysis.services.run_recording import RunRecorder
from analysis.services.slices import json_ready
from labeling.models import Project
from labeling.rawsql import positions

NO_TOKEN_MODEL = (
    "No token model yet. Run Find label issues to train the built-in model, or upload token "
    "predictions; until then the page shows human-level performance only."
)
DECODING = (
    "Model spans: each token takes its most probable class; consecutive tokens of one type "
    "make one span (IO decoding)."
)


def span_inputs(
    *, project: Project, settings: BaselineSettings
) -> tuple[loaders.SpanRows, metrics.Inputs, str | None]:
    """The project's span annotations, reviews and model spans as the metrics take them, and
    a sentence saying why there is no model (None when there is one)."""
    rows = loaders.span_rows(project=project, version=settings.guideline_version)
    reviewed, (pos, char_start, char_end, label), reviewer = loaders.span_reviews(
        project=project,
        item_ids=rows.item_ids,
        class_ids=rows.class_ids,
        annotator_ids=rows.annotator_ids,
    )
    start, end, on_tokens = token_ranges(
        pos, char_start, char_end, rows.item_lengths, rows.token_starts, rows.token_ends
    )
    review = metrics.Spans(pos, start, end, label).take(on_tokens)
    predicted, predicted_items, note = model_spans(project=project, model=settings.model, rows=rows)
    inputs = metrics.Inputs(
        item_lengths=rows.item_lengths,
        annotation_item=rows.annotation_item,
        annotation_annotator=rows.annotation_annotator,
        span_annotation=rows.span_annotation,
        span_start=rows.span_start,
        span_end=rows.span_end,
        span_label=rows.span_label,
        n_types=len(rows.class_names),
        n_annotators=len(rows.annotator_ids),
        reviewed=reviewed,
        review=review,
        reviewer_annotator=reviewer,
        predicted=predicted,
        predicted_items=predicted_items,
        tie_rule=project.tie_rule,
    )
    return rows, inputs, note


def model_spans(
    *, project: Project, model: str, rows: loaders.SpanRows
) -> tuple[metrics.Spans | None, np.ndarray | None, str | None]:
    """The token model's spans over `rows`' items (IO decoding), which items it covers, and a
    note: why there is no model, or how many items it left out."""
    try:
        stored = loaders.token_predictions(project=project, model=model)
    except LookupError:
        if model == BUILTIN:
            return None, None, NO_TOKEN_MODEL
        return None, None, f"The project has no token predictions named {model!r}."
    except ValueError as exc:
        return None, None, str(exc)
    at = positions(stored.item_ids, rows.item_ids)
    lengths = np.diff(stored.offsets)
    fits = (at >= 0) & (lengths == rows.item_lengths[np.maximum(at, 0)])
    if not fits.any():
        return None, None, f"The predictions {model!r} cover none of the annotated items."
    kept_lengths = lengths[fits]
    take = np.repeat(stored.offsets[:-1][fits], kept_lengths) + (
        np.arange(int(kept_lengths.sum()), dtype=np.int64)
        - np.repeat(sequence_offsets(kept_lengths)[:-1], kept_lengths)
    )
    spans = metrics.model_spans(stored.probs[take], kept_lengths)
    item = at[fits]
    covered = np.zeros(len(rows.item_ids), dtype=bool)
    covered[item] = True
    spans = metrics.Spans(item[spans.sequence], spans.start, spans.end, spans.label)
    note = None
    stale = int(((at >= 0) & ~fits).sum())
    if stale:
        note = (
            f"{stale} items' predictions have another token count than the item's text now; "
            "they are left out."
        )
    return spans, covered, note


def span_baselines_job(recorder: RunRecorder) -> None:
    """The `analysis.run_baselines` task on a span project, reporting progress on the way."""
    project = recorder.project
    settings = BaselineParams.parse(recorder.params, project=project)
    recorder.progress(0.05, "loading span annotations, reviews and token predictions")
    rows, inputs, model_note = span_inputs(project=project, settings=settings)
    recorder.progress(0.4, "scoring annotators against the others' consensus")
    report = metrics.baselines(inputs)
    recorder.progress(0.85, "measuring speed")
    seconds = loaders.annotator_seconds(project=project, version=settings.guideline_version)
    names = usernames(rows.annotator_ids)
    per_annotator = []
    for row in report.pop("per_annotator"):
        user_id = int(rows.annotator_ids[row.pop("annotator_index")])
        per_annotator.append(
            {
                "annotator": names.get(user_id, str(user_id)),
                "annotator_id": user_id,
                **row,
                "seconds_per_item": seconds.get(user_id),
            }
        )
    per_annotator.sort(key=lambda r: (r["hlp"] is None, -(r["hlp"] or 0.0), r["annotator"]))
    types = rows.class_names
    model = report["model"]
    hlp_types = report["hlp_consensus"].pop("per_type")
    model_types = model.pop("per_type") if model else [None] * len(types)
    final_types = report.pop("final_per_type")
    result = {
        "task": "spans",
        **report,
        "per_type": [
            {
                "label": name,
                "hlp": h["f1"],
                "hlp_ci": h["ci"],
                "n_reference": h["n_reference"],
                "model": m["f1"] if m else None,
                "model_ci": m["ci"] if m else None,
                "n_final_spans": n_final,
            }
            for name, h, m, n_final in zip(types, hlp_types, model_types, final_types, strict=True)
        ],
        "per_annotator": per_annotator,
        "model_name": settings.model,
        "model_note": model_note,
        "decoding": DECODING,
        "classes": types,
        "n_items": len(rows.item_ids),
        "n_annotations": len(rows.annotation_item),
        "n_spans": len(rows.span_annotation),
        "guideline_version": settings.guideline_version,
    }
    recorder.finish(
        json_ready(result), persist=lambda run: baselines_persist(run=run, rows=per_annotator)
    )


def span_slices_job(recorder: RunRecorder) -> None:
    """The `analysis.run_slices` task on a span project, reporting progress on the way."""
    project = recorder.project
    settings = BaselineParams.parse(recorder.params, project=project)
    recorder.progress(0.05, "loading item metadata")
    attributes = loaders.item_attributes(project=project)
    recorder.progress(0.2, "loading span annotations, reviews and token predictions")
    rows, inputs, model_note = span_inputs(project=project, settings=settings)
    recorder.progress(0.5, "cutting slices and scoring them")
    dims = slice_metrics.dimensions(attributes.metadata, attributes.text_length)
    item_of = positions(attributes.item_ids, rows.item_ids)
    slice_rows, overall = metrics.slice_rows(
        dims, inputs, item_of=item_of, n_universe=len(attributes.item_ids)
    )
    result = {
        "task": "spans",
        "rows": slice_rows,
        "overall": overall,
        "n_items": len(attributes.item_ids),
        "n_labeled": int((item_of >= 0).sum()),
        "fields": [{"field": d.field, "kind": d.kind, "n_values": len(d.values)} for d in dims],
        "classes": rows.class_names,
        "model_name": settings.model,
        "model_note": model_note,
        "decoding": DECODING,
        "min_reliable": metrics.MIN_RELIABLE,
        "guideline_version": settings.guideline_version,
    }
    recorder.finish(json_ready(result))
