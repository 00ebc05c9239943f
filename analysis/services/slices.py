"""The slices job: every metadata field (and text length) cut into slices, each with model
accuracy, HLP, the gap between them and the potential gain of closing it."""

from __future__ import annotations

import numpy as np

from analysis import loaders
from analysis.metrics import baselines as baseline_metrics
from analysis.metrics import slices as metrics
from analysis.services.baselines import BaselineParams, label_state, model_probs
from analysis.services.run_recording import RunRecorder
from labeling.models import Project


def slices_job(recorder: RunRecorder) -> None:
    """Everything the `analysis.run_slices` task does, reporting progress on the way."""
    project = recorder.project
    if project.is_spans:
        from analysis.services.span_baselines import span_slices_job

        return span_slices_job(recorder)
    params = BaselineParams.parse(recorder.params, project=project)  # the same parameters
    if project.is_multi_label:
        raise ValueError("Baselines and slices cover single-label and span projects only.")
    recorder.progress(0.05, "loading item metadata")
    attributes = loaders.item_attributes(project=project)
    recorder.progress(0.25, "loading annotations and reviews")
    state = label_state(
        project=project, version=params.guideline_version, item_ids=attributes.item_ids
    )
    recorder.progress(0.4, "loading model predictions")
    probs, model_note = model_probs(project=project, model=params.model, item_ids=state.item_ids)
    predicted = baseline_metrics.predicted_labels(probs) if probs is not None else None
    issue, issue_run = loaders.issue_flags(project=project, item_ids=state.item_ids)
    recorder.progress(0.5, "scoring annotators against the others")
    loo = baseline_metrics.leave_one_out(
        state.item_index,
        state.label_index,
        n_items=state.n_items,
        n_classes=state.n_classes,
        counts=state.counts,
    )
    recorder.progress(0.65, "cutting slices")
    text_length = attributes.text_length if project.data_type == Project.DataType.TEXT else None
    dims = metrics.dimensions(attributes.metadata, text_length)
    rows = metrics.slice_rows(
        dims,
        n_classes=state.n_classes,
        final=state.final,
        item_index=state.item_index,
        label_index=state.label_index,
        credit=loo.credit,
        has_reference=loo.has_reference,
        reference=loo.reference,
        predicted=predicted,
        issue=issue,
        level="ordinal" if project.ordered else "nominal",
    )
    overall_model = (
        baseline_metrics.model_accuracy(probs, state.final)["accuracy"]
        if probs is not None
        else None
    )
    result = {
        "rows": rows,
        "n_items": state.n_items,
        "n_labeled": int((state.final >= 0).sum()),
        "fields": [{"field": d.field, "kind": d.kind, "n_values": len(d.values)} for d in dims],
        "classes": state.class_names,
        "overall": {
            "model_accuracy": overall_model,
            "hlp": loo.accuracy,
            "gap": (
                loo.accuracy - overall_model
                if loo.accuracy is not None and overall_model is not None
                else None
            ),
        },
        "model_name": params.model,
        "model_note": model_note,
        "issue_run": issue_run,
        "min_reliable": metrics.MIN_RELIABLE,
        "guideline_version": params.guideline_version,
    }
    recorder.finish(json_ready(result))


def json_ready(value):
    """numpy scalars and tuples -> JSON-ready Python values."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
