"""The drift job: compare two import batches (or two creation-date ranges) of a project."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers

from analysis import loaders
from analysis.metrics import drift as metrics
from analysis.services.baselines import BUILTIN, label_state, model_probs
from analysis.services.run_params import RunParams
from analysis.services.run_recording import RunRecorder
from analysis.services.slices import json_ready
from labeling.models import ImportBatch, Item, Project
from labeling.rawsql import positions


@dataclass(frozen=True)
class Side:
    """One side of the comparison: an import batch, or items created in [start, end)."""

    batch_id: int | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    label: str = ""


@dataclass(frozen=True)
class DriftSettings:
    a: Side
    b: Side
    model: str
    guideline_version: int | None


def _moment(value, field: str, *, end: bool) -> dt.datetime | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        # A bare date is a day (parse_datetime would read it as midnight).
        day = parse_date(text) if len(text) == 10 else None
        moment = parse_datetime(text) if day is None else None
    except ValueError:  # well formed but impossible, like 2026-13-01
        moment = day = None
    if moment is None:
        if day is None:
            raise serializers.ValidationError({field: f"{field} must be a date like 2026-01-31."})
        # A date-only end includes that whole day.
        moment = dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time())
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment


def _batch_side(project: Project, key: str, batch_id: int | None) -> Side:
    if batch_id is None:
        raise serializers.ValidationError({key: f"{key} must be an import batch id."})
    batch = (
        ImportBatch.objects.filter(project=project, pk=batch_id)
        .values("pk", "filename", "created_at")
        .first()
    )
    if batch is None:
        raise serializers.ValidationError({key: f"Import batch {batch_id} is not in this project."})
    if not Item.objects.filter(batch_id=batch_id).exists():
        raise serializers.ValidationError(
            {key: f"Import batch {batch_id} holds no items (a failed or empty import)."}
        )
    return Side(batch_id=batch_id, label=f"#{batch_id} {batch['filename'] or 'import'}")


def _sides(project: Project, given: dict) -> tuple[Side, Side]:
    """Batch A and batch B: two import batches of the project, or two date ranges."""
    if given.get("batch_a") is not None or given.get("batch_b") is not None:
        a, b = (_batch_side(project, key, given.get(key)) for key in ("batch_a", "batch_b"))
        if a.batch_id == b.batch_id:
            raise serializers.ValidationError({"batch_b": "Choose two different batches."})
        return a, b
    if not any(given.get(k) for k in ("from_a", "to_a", "from_b", "to_b")):
        raise serializers.ValidationError(
            {"batch_a": "Give batch_a and batch_b, or the date ranges from_a, to_a, from_b, to_b."}
        )
    sides = []
    for side in ("a", "b"):
        start = _moment(given.get(f"from_{side}"), f"from_{side}", end=False)
        end = _moment(given.get(f"to_{side}"), f"to_{side}", end=True)
        if start and end and start >= end:
            raise serializers.ValidationError(
                {f"to_{side}": f"to_{side} must come after from_{side}."}
            )
        label = f"{given.get(f'from_{side}') or '…'} to {given.get(f'to_{side}') or '…'}"
        sides.append(Side(start=start, end=end, label=label))
    if (sides[0].start, sides[0].end) == (sides[1].start, sides[1].end):
        raise serializers.ValidationError(
            {"from_b": "Batch A and batch B cover the same dates: choose two different periods."}
        )
    return sides[0], sides[1]


def _batch_field(key: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text=f"Batch {key[-1].upper()}: the id of an import batch of this project.",
        error_messages={"invalid": f"{key} must be an import batch id."},
    )


def _moment_field(key: str) -> serializers.CharField:
    bound = (
        "from (inclusive)" if key.startswith("from") else "up to (a date-only value: the whole day)"
    )
    return serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text=f"Batch {key[-1].upper()} by date instead of batch ids: items created {bound}; "
        "a date (2026-01-31) or a date and time.",
    )


class DriftParams(RunParams):
    """Parameters of a drift run: batch A and batch B, as two import batches of the project
    (`batch_a`, `batch_b`) or as two date ranges (`from_a`, `to_a`, `from_b`, `to_b`)."""

    batch_a = _batch_field("batch_a")
    batch_b = _batch_field("batch_b")
    from_a = _moment_field("from_a")
    to_a = _moment_field("to_a")
    from_b = _moment_field("from_b")
    to_b = _moment_field("to_b")
    model = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text=f"An uploaded model's name for the confidence check (omitted: `{BUILTIN}`).",
    )
    guideline_version = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Only labels made under this guideline version (omitted: all).",
        error_messages={"invalid": "guideline_version must be a number."},
    )

    def validate(self, attrs: dict) -> dict:
        _sides(self.context["project"], attrs)
        return attrs

    def settings(self) -> DriftSettings:
        given = self.validated_data
        a, b = _sides(self.context["project"], given)
        return DriftSettings(
            a=a,
            b=b,
            model=(given.get("model") or BUILTIN)[:100],
            guideline_version=given.get("guideline_version"),
        )


def drift_job(recorder: RunRecorder) -> None:
    """Everything the `analysis.run_drift` task does, reporting progress on the way."""
    project = recorder.project
    params = DriftParams.parse(recorder.params, project=project)
    recorder.progress(0.05, "loading batch A")
    side_a = _attributes(project, params.a)
    recorder.progress(0.2, "loading batch B")
    side_b = _attributes(project, params.b)
    if not len(side_a.item_ids) or not len(side_b.item_ids):
        empty = "A" if not len(side_a.item_ids) else "B"
        raise ValueError(f"Batch {empty} has no items; choose another batch or date range.")
    recorder.progress(0.35, "loading labels")
    both_ids = np.union1d(side_a.item_ids, side_b.item_ids)
    state = label_state(project=project, version=params.guideline_version, item_ids=both_ids)
    final_a = state.final[positions(side_a.item_ids, both_ids)]
    final_b = state.final[positions(side_b.item_ids, both_ids)]
    probs, model_note = model_probs(project=project, model=params.model, item_ids=both_ids)
    confidence_a = confidence_b = None
    if probs is not None:
        top = np.nanmax(np.where(np.isnan(probs), -np.inf, probs), axis=1)
        top[np.isinf(top)] = np.nan
        confidence_a = top[positions(side_a.item_ids, both_ids)]
        confidence_b = top[positions(side_b.item_ids, both_ids)]
    recorder.progress(0.6, "comparing distributions")
    is_text = project.data_type == Project.DataType.TEXT
    report = metrics.drift_report(
        class_names=state.class_names,
        labels_a=final_a,
        labels_b=final_b,
        metadata_a=side_a.metadata,
        metadata_b=side_b.metadata,
        text_length_a=side_a.text_length if is_text else None,
        text_length_b=side_b.text_length if is_text else None,
        confidence_a=confidence_a,
        confidence_b=confidence_b,
    )
    report.update(
        {
            "a": params.a.label,
            "b": params.b.label,
            "batch_a": params.a.batch_id,
            "batch_b": params.b.batch_id,
            "model_name": params.model,
            "model_note": model_note,
            "thresholds": {
                "p_value": metrics.P_VALUE,
                "js_distance": metrics.JS_DRIFT,
                "psi_moderate": metrics.PSI_MODERATE,
                "psi_major": metrics.PSI_MAJOR,
                "ks_statistic": metrics.KS_DRIFT,
            },
        }
    )
    recorder.finish(json_ready(report))


def _attributes(project: Project, side: Side) -> loaders.ItemAttributes:
    return loaders.item_attributes(
        project=project, batch_id=side.batch_id, created_from=side.start, created_before=side.end
    )
