"""Storing model class probabilities per item: uploads, and the built-in model's output."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction

from analysis.models import Prediction, PredictionSet
from labeling.models import Item, Project
from labeling.rawsql import copy_in_rows

SUM_TOLERANCE = 1e-3
MAX_REPORTED_ERRORS = 100


class PredictionsRejected(Exception):
    """The upload had bad rows; nothing was stored. `errors`: [{"row": n, "reason": str}]."""

    def __init__(self, errors: list[dict], n_bad: int):
        self.errors = errors
        self.n_bad = n_bad
        super().__init__(f"{n_bad} rows are invalid; nothing was stored.")


def _class_order(project: Project, classes: list) -> list[int]:
    """Column positions of the project's labels within the uploaded `classes`."""
    names = list(project.labels.order_by("order", "id").values_list("name", flat=True))
    given = [str(c) for c in classes]
    if len(set(given)) != len(given):
        raise ValidationError({"classes": "Class names must be unique."})
    if set(given) != set(names):
        unknown = sorted(set(given) - set(names))
        missing = [n for n in names if n not in given]
        parts = []
        if unknown:
            parts.append(f"unknown classes: {', '.join(unknown)}")
        if missing:
            parts.append(f"missing classes: {', '.join(missing)}")
        raise ValidationError(
            {"classes": f"Classes must be exactly the project's labels ({'; '.join(parts)})."}
        )
    return [given.index(name) for name in names]


def _item_ids_by_external_id(project: Project, external_ids: list[str]) -> dict[str, int]:
    if len(external_ids) >= 10_000:
        # A big upload covers much of the project: one streamed pass beats 10,000-id IN lists.
        wanted = set(external_ids)
        rows = Item.objects.filter(project=project).values_list("external_id", "id")
        return {e: i for e, i in rows.iterator(chunk_size=50_000) if e in wanted}
    known: dict[str, int] = {}
    for start in range(0, len(external_ids), 10_000):
        chunk = external_ids[start : start + 10_000]
        known.update(
            Item.objects.filter(project=project, external_id__in=chunk).values_list(
                "external_id", "id"
            )
        )
    return known


def predictions_upload(
    *, project: Project, model: str, classes: list, rows: Iterable[dict], user
) -> PredictionSet:
    """Validate and store one model's probabilities; replaces an earlier upload of that name.

    rows: [{"external_id": str, "probabilities": [float per class, in `classes` order]}];
    row numbers in errors count from 1 in this order. Every row must sum to 1 within 1e-3,
    every external id must be a project item, none may repeat. All or nothing.
    """
    model = str(model or "").strip()
    if not model:
        raise ValidationError({"model": "Name the model."})
    if len(model) > 100:
        raise ValidationError({"model": "The model name is longer than 100 characters."})
    if model == "builtin":
        raise ValidationError({"model": "'builtin' is reserved for Concord's own model."})
    if not isinstance(classes, list | tuple) or not classes:
        raise ValidationError({"classes": "List the class names, in probability order."})
    columns = _class_order(project, list(classes))
    n_classes = len(columns)

    errors: list[dict] = []
    n_bad = 0

    def reject(row_number: int, reason: str) -> None:
        nonlocal n_bad
        n_bad += 1
        if len(errors) < MAX_REPORTED_ERRORS:
            errors.append({"row": row_number, "reason": reason})

    external_ids: list[str] = []
    values: list[list[float]] = []
    numbers: list[int] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            reject(number, "A row must be an object with external_id and probabilities.")
            continue
        external_id = str(row.get("external_id") or "").strip()
        probabilities = row.get("probabilities")
        if not external_id:
            reject(number, "external_id is missing.")
            continue
        if external_id in seen:
            reject(number, f"external_id {external_id!r} repeats row {seen[external_id]}.")
            continue
        seen[external_id] = number
        if not isinstance(probabilities, list | tuple) or len(probabilities) != n_classes:
            reject(number, f"Give {n_classes} probabilities, one per class.")
            continue
        try:
            floats = [float(p) for p in probabilities]
        except (TypeError, ValueError):
            reject(number, "Probabilities must be numbers.")
            continue
        if any(not math.isfinite(p) or p < 0 or p > 1 for p in floats):
            reject(number, "Probabilities must be between 0 and 1.")
            continue
        total = math.fsum(floats)
        if abs(total - 1.0) > SUM_TOLERANCE:
            reject(number, f"Probabilities sum to {total:.6g}, not 1 (tolerance 1e-3).")
            continue
        external_ids.append(external_id)
        values.append(floats)
        numbers.append(number)
    if not external_ids and not n_bad:
        raise ValidationError({"rows": "The upload has no rows."})

    known = _item_ids_by_external_id(project, external_ids)
    for external_id, number in zip(external_ids, numbers, strict=True):
        if external_id not in known:
            reject(number, f"No item with external_id {external_id!r} in this project.")
    if n_bad:
        errors.sort(key=lambda e: e["row"])
        raise PredictionsRejected(errors, n_bad)

    probs = np.asarray(values, dtype=np.float64)[:, columns]
    item_ids = np.fromiter(
        (known[e] for e in external_ids), dtype=np.int64, count=len(external_ids)
    )
    names = list(project.labels.order_by("order", "id").values_list("name", flat=True))
    return predictions_store(
        project=project, model=model, classes=names, item_ids=item_ids, probs=probs, user=user
    )


def token_predictions_store(
    *,
    project: Project,
    model: str,
    classes: list[str],
    item_ids: np.ndarray,
    probs: list[np.ndarray],
    user=None,
) -> PredictionSet:
    """Replace a span project model's token probabilities (see `PredictionSet`).

    item_ids: (n,) item primary keys; probs: n arrays, the i-th (n_tokens_i, len(classes))
    with `classes` = ["O", <entity types in label order>].
    """
    if len(probs) != len(item_ids):
        raise ValueError(f"{len(probs)} probability matrices for {len(item_ids)} items")
    blobs = []
    for matrix in probs:
        matrix = np.ascontiguousarray(matrix, dtype="<f8")
        if matrix.ndim != 2 or matrix.shape[1] != len(classes):
            raise ValueError(f"a matrix has shape {matrix.shape}; expected (n, {len(classes)})")
        blobs.append(matrix.tobytes())
    return _store(
        project=project, model=model, classes=classes, item_ids=item_ids, blobs=blobs, user=user
    )


def predictions_store(
    *,
    project: Project,
    model: str,
    classes: list[str],
    item_ids: np.ndarray,
    probs: np.ndarray,
    user=None,
) -> PredictionSet:
    """Replace the model's stored probabilities in one transaction (readers never see a mix).

    item_ids: (n,) item primary keys; probs: (n, len(classes)) floats, stored as float64 bytes.
    """
    probs = np.ascontiguousarray(probs, dtype="<f8")
    if probs.shape != (len(item_ids), len(classes)):
        raise ValueError(
            f"probs has shape {probs.shape}; expected ({len(item_ids)}, {len(classes)})"
        )
    return _store(
        project=project,
        model=model,
        classes=classes,
        item_ids=item_ids,
        blobs=(row.tobytes() for row in probs),
        user=user,
    )


@transaction.atomic
def _store(*, project: Project, model: str, classes: list[str], item_ids, blobs, user):
    prediction_set = (
        PredictionSet.objects.select_for_update().filter(project=project, model=model).first()
    )
    if prediction_set is None:
        prediction_set = PredictionSet.objects.create(
            project=project, model=model, classes=list(classes), created_by=user
        )
    else:
        # A fast SQL delete: Prediction has no dependents, so no rows are loaded.
        Prediction.objects.filter(prediction_set=prediction_set)._raw_delete(Prediction.objects.db)
    copy_in_rows(
        Prediction,
        ["prediction_set_id", "item_id", "probabilities"],
        (
            (prediction_set.pk, item_id, blob)
            for item_id, blob in zip(np.asarray(item_ids).tolist(), blobs, strict=True)
        ),
    )
    PredictionSet.objects.filter(pk=prediction_set.pk).update(
        classes=list(classes), n_rows=len(item_ids), created_by=user
    )
    prediction_set.refresh_from_db()
    return prediction_set
