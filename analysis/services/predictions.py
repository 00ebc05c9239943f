"""Storing model class probabilities per item: uploads, and the built-in model's output.

Span projects store token probabilities: per item one row per token of the contract's
tokenizer (`labeling.spans.token_bounds`), classes `O` then the entity types.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.fields.json import KT

from analysis.models import Prediction, PredictionSet
from analysis.services.suggestions import suggestions_refresh
from labeling.models import Item, Project
from labeling.rawsql import copy_in_rows
from labeling.spans import token_bounds_many

SUM_TOLERANCE = 1e-3
MAX_REPORTED_ERRORS = 100
OUTSIDE = "O"  # a span project's class of the tokens outside any entity (as loaders.OUTSIDE)


class PredictionsRejected(Exception):
    """The upload had bad rows; nothing was stored. `errors`: [{"row": n, "reason": str}]."""

    def __init__(self, errors: list[dict], n_bad: int):
        self.errors = errors
        self.n_bad = n_bad
        super().__init__(f"{n_bad} rows are invalid; nothing was stored.")


def _label_names(project: Project) -> list[str]:
    return list(project.labels.order_by("order", "id").values_list("name", flat=True))


def _class_order(names: list[str], classes: list, what: str = "the project's labels") -> list[int]:
    """Column positions of the expected class `names` within the uploaded `classes`."""
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
        raise ValidationError({"classes": f"Classes must be exactly {what} ({'; '.join(parts)})."})
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


class _Rejections:
    """Bad rows of an upload: all counted, the first MAX_REPORTED_ERRORS kept."""

    def __init__(self):
        self.errors: list[dict] = []
        self.n_bad = 0

    def add(self, row_number: int, reason: str) -> None:
        self.n_bad += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"row": row_number, "reason": reason})

    def raise_any(self) -> None:
        if self.n_bad:
            self.errors.sort(key=lambda e: e["row"])
            raise PredictionsRejected(self.errors, self.n_bad)


def _model_name(model) -> str:
    model = str(model or "").strip()
    if not model:
        raise ValidationError({"model": "Name the model."})
    if len(model) > 100:
        raise ValidationError({"model": "The model name is longer than 100 characters."})
    if model == "builtin":
        raise ValidationError({"model": "'builtin' is reserved for Concord's own model."})
    return model


def _checked_rows(rows: Iterable[dict], rejections: _Rejections, check) -> tuple[list, ...]:
    """(external_ids, values, row numbers) of the rows whose id is new and whose
    `check(probabilities)` gives (value, None); the others are rejected with check's reason."""
    external_ids: list[str] = []
    values: list = []
    numbers: list[int] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            rejections.add(number, "A row must be an object with external_id and probabilities.")
            continue
        external_id = str(row.get("external_id") or "").strip()
        if not external_id:
            rejections.add(number, "external_id is missing.")
            continue
        if external_id in seen:
            rejections.add(number, f"external_id {external_id!r} repeats row {seen[external_id]}.")
            continue
        seen[external_id] = number
        value, reason = check(row.get("probabilities"))
        if reason is not None:
            rejections.add(number, reason)
            continue
        external_ids.append(external_id)
        values.append(value)
        numbers.append(number)
    if not external_ids and not rejections.n_bad:
        raise ValidationError({"rows": "The upload has no rows."})
    return external_ids, values, numbers


def predictions_upload(
    *, project: Project, model: str, classes: list, rows: Iterable[dict], user
) -> PredictionSet:
    """Validate and store one model's probabilities; replaces an earlier upload of that name.

    rows: [{"external_id": str, "probabilities": [float per class, in `classes` order]}];
    row numbers in errors count from 1 in this order. Every row must sum to 1 within 1e-3,
    every external id must be a project item, none may repeat. All or nothing.
    A span project's rows hold a list of such rows, one per token (`token_predictions_upload`).
    """
    if project.is_spans:
        return token_predictions_upload(
            project=project, model=model, classes=classes, rows=rows, user=user
        )
    model = _model_name(model)
    if not isinstance(classes, list | tuple) or not classes:
        raise ValidationError({"classes": "List the class names, in probability order."})
    names = _label_names(project)
    columns = _class_order(names, list(classes))
    n_classes = len(columns)

    def check(probabilities):
        if not isinstance(probabilities, list | tuple) or len(probabilities) != n_classes:
            return None, f"Give {n_classes} probabilities, one per class."
        try:
            floats = [float(p) for p in probabilities]
        except (TypeError, ValueError):
            return None, "Probabilities must be numbers."
        if any(not math.isfinite(p) or p < 0 or p > 1 for p in floats):
            return None, "Probabilities must be between 0 and 1."
        total = math.fsum(floats)
        if abs(total - 1.0) > SUM_TOLERANCE:
            return None, f"Probabilities sum to {total:.6g}, not 1 (tolerance 1e-3)."
        return floats, None

    rejections = _Rejections()
    external_ids, values, numbers = _checked_rows(rows, rejections, check)
    known = _item_ids_by_external_id(project, external_ids)
    for external_id, number in zip(external_ids, numbers, strict=True):
        if external_id not in known:
            rejections.add(number, f"No item with external_id {external_id!r} in this project.")
    rejections.raise_any()

    probs = np.asarray(values, dtype=np.float64)[:, columns]
    item_ids = np.fromiter(
        (known[e] for e in external_ids), dtype=np.int64, count=len(external_ids)
    )
    return predictions_store(
        project=project, model=model, classes=names, item_ids=item_ids, probs=probs, user=user
    )


def _token_matrix(probabilities, n_classes: int) -> tuple[np.ndarray | None, str | None]:
    """One span row's probabilities as a (n_tokens, n_classes) float64 array, or the reason
    it is not one."""
    shape = f"Give one list of {n_classes} probabilities per token."
    if not isinstance(probabilities, list | tuple):
        return None, shape
    if not probabilities:
        return np.zeros((0, n_classes)), None
    try:
        matrix = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError):  # ragged lists, strings, objects
        return None, f"{shape} Probabilities must be numbers."
    if matrix.ndim != 2 or matrix.shape[1] != n_classes:
        return None, shape
    bad = ~np.isfinite(matrix) | (matrix < 0) | (matrix > 1)
    if bad.any():
        token = int(np.flatnonzero(bad.any(axis=1))[0]) + 1
        return None, f"Probabilities must be between 0 and 1 (token {token})."
    totals = matrix.sum(axis=1)
    off = np.flatnonzero(np.abs(totals - 1.0) > SUM_TOLERANCE)
    if len(off):
        token = int(off[0])
        return None, (
            f"The probabilities of token {token + 1} sum to {totals[token]:.6g}, not 1 "
            "(tolerance 1e-3)."
        )
    return matrix, None


def _item_texts(item_ids: list[int]) -> dict[int, str]:
    texts: dict[int, str] = {}
    for start in range(0, len(item_ids), 10_000):
        chunk = item_ids[start : start + 10_000]
        rows = Item.objects.filter(id__in=chunk).values_list("id", KT("data__text"))
        texts.update((item_id, text or "") for item_id, text in rows)
    return texts


def token_predictions_upload(
    *, project: Project, model: str, classes: list, rows: Iterable[dict], user
) -> PredictionSet:
    """Validate and store a span project model's token probabilities (DESIGN.md, "Span
    projects"); replaces an earlier upload of that name. All or nothing.

    classes: `O` and exactly the project's entity types, in any order. rows: [{"external_id",
    "probabilities": [[float per class] per token]}]: one row per token of the item's text
    (`labeling.spans.token_bounds`), each within [0, 1] and summing to 1 within 1e-3. Errors
    name the row (counting from 1) as for classification uploads.
    """
    model = _model_name(model)
    if not isinstance(classes, list | tuple) or not classes:
        raise ValidationError(
            {"classes": f"List the class names, {OUTSIDE!r} and the entity types, in "
             "probability order."}
        )  # fmt: skip
    names = [OUTSIDE, *_label_names(project)]
    columns = _class_order(names, list(classes), f"{OUTSIDE!r} and the project's entity types")
    n_classes = len(columns)
    rejections = _Rejections()
    external_ids, matrices, numbers = _checked_rows(
        rows, rejections, lambda probabilities: _token_matrix(probabilities, n_classes)
    )
    known = _item_ids_by_external_id(project, external_ids)
    texts = _item_texts([known[e] for e in external_ids if e in known])
    found = [e for e in external_ids if e in known]
    n_tokens = dict(
        zip(found, token_bounds_many([texts[known[e]] for e in found])[0].tolist(), strict=True)
    )
    for external_id, matrix, number in zip(external_ids, matrices, numbers, strict=True):
        if external_id not in known:
            rejections.add(number, f"No item with external_id {external_id!r} in this project.")
        elif len(matrix) != n_tokens[external_id]:
            rejections.add(
                number,
                f"The item has {n_tokens[external_id]} tokens; give one row of probabilities "
                f"per token (got {len(matrix)}).",
            )
    rejections.raise_any()
    item_ids = np.fromiter(
        (known[e] for e in external_ids), dtype=np.int64, count=len(external_ids)
    )
    return token_predictions_store(
        project=project,
        model=model,
        classes=names,
        item_ids=item_ids,
        probs=[matrix[:, columns] for matrix in matrices],
        user=user,
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
    # Uploads, the label-issue jobs' built-in probabilities and any later store of the
    # suggestion model all pass here: its suggestions follow its newest probabilities.
    if Project.objects.filter(pk=project.pk, suggestion_model=model).exists():
        suggestions_refresh(project=project)
    return prediction_set
