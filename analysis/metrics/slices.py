"""Per-slice error breakdown: where is the model furthest below human-level performance?

Pure functions over numpy/pandas (no Django). A *dimension* is one way of cutting the items
(a metadata field, or text length); a *slice* is one value (or bin) of a dimension.

Per slice ("Machine Learning in Production", Ng, error analysis):

    gap            = hlp - model_accuracy      how far the model is below humans there
    potential_gain = gap x share               how much overall accuracy closing it could add

Accuracies carry 95% Wilson intervals and the gap a paired bootstrap interval over the slice's
items (`analysis.metrics.intervals`). Slices with fewer than `MIN_RELIABLE` labeled items are
too small to judge: their gap is not read and they rank after the slices that can be judged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.metrics.agreement import alpha_from_counts
from analysis.metrics.consensus import vote_counts
from analysis.metrics.intervals import ratio_difference_interval, wilson_interval

MIN_RELIABLE = 30
"""Fewest *labeled* items (items with a final label: a review or the annotators' majority) a
slice needs before its gap and potential gain are read. Labeled, not all items: the model is
scored and HLP measured only on labeled items, so unlabeled ones add no evidence. Under 30 the
95% Wilson interval of an accuracy near 0.8 spans about 30 points, wider than the gaps worth
acting on, so such a slice is shown as "too few items to judge (n=...)" and ranked last."""
MAX_VALUES = 50  # categorical values per field kept as slices (the most frequent ones)
NUMERIC_MIN_DISTINCT = 11  # a numeric field with fewer distinct values is categorical
N_BINS = 4
TEXT_LENGTH_FIELD = "text_length"


@dataclass(frozen=True)
class Dimension:
    """One way to cut the items.

    field: metadata key (or "text_length"); kind: "categorical", "numeric" or "text_length".
    codes: (n_items,) int64 slice index per item in [0, len(values)), -1 where missing or
      in a value beyond the MAX_VALUES most frequent ones.
    values: display value per slice: the category, or a bin like "[12, 40)".
    filterable: True when a value can be used as an equality filter on the metadata field.
    """

    field: str
    kind: str
    codes: np.ndarray
    values: list[str]
    filterable: bool


def categorical_dimension(field: str, values, *, max_values: int = MAX_VALUES) -> Dimension:
    """values: (n_items,) array-like of category values, None/NaN where missing."""
    series = pd.Series(values, dtype=object)
    present = series.notna()
    as_text = series[present].map(_category_text)
    frequency = as_text.value_counts(sort=True)
    kept = list(frequency.index[:max_values])
    position = {value: i for i, value in enumerate(kept)}
    codes = np.full(len(series), -1, dtype=np.int64)
    codes[present.to_numpy()] = as_text.map(lambda v: position.get(v, -1)).to_numpy(np.int64)
    return Dimension(field=field, kind="categorical", codes=codes, values=kept, filterable=True)


def _category_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def numeric_dimension(field: str, values, *, n_bins: int = N_BINS, kind: str = "numeric"):
    """Quantile bins of a numeric field.

    values: (n_items,) float array, NaN where missing. Equal-count bins from the quantiles;
    duplicate edges (heavily tied values) merge bins. Returns None when all values are equal
    or missing.
    """
    x = np.asarray(values, dtype=np.float64)
    present = ~np.isnan(x)
    if present.sum() == 0:
        return None
    edges = np.unique(np.quantile(x[present], np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        return None
    codes = np.full(len(x), -1, dtype=np.int64)
    codes[present] = np.searchsorted(edges[1:-1], x[present], side="right")
    labels = [
        f"[{_num(edges[i])}, {_num(edges[i + 1])}{']' if i == len(edges) - 2 else ')'}"
        for i in range(len(edges) - 1)
    ]
    return Dimension(field=field, kind=kind, codes=codes, values=labels, filterable=False)


def _num(value: float) -> str:
    return f"{value:.4g}"


def dimensions(metadata: pd.DataFrame, text_length: np.ndarray | None = None) -> list[Dimension]:
    """Every metadata column becomes a dimension, plus text length in quantile bins.

    metadata: (n_items, n_fields) DataFrame of raw metadata values (object dtype, NaN/None
    where an item lacks the field). A column whose present values all parse as numbers and
    take at least NUMERIC_MIN_DISTINCT distinct values is numeric (quantile bins); others are
    categorical. text_length: (n_items,) characters per item, NaN where the item has no text.
    """
    out = []
    for field in metadata.columns:
        column = metadata[field]
        if not column.notna().any():
            continue
        numeric = numeric_values(column)
        if numeric is not None:
            dimension = numeric_dimension(str(field), numeric)
        else:
            dimension = categorical_dimension(str(field), column.to_numpy(dtype=object))
        if dimension is not None and len(dimension.values):
            out.append(dimension)
    if text_length is not None:
        name = TEXT_LENGTH_FIELD if TEXT_LENGTH_FIELD not in metadata.columns else "text_chars"
        dimension = numeric_dimension(name, text_length, kind="text_length")
        if dimension is not None:
            out.append(dimension)
    return out


def numeric_values(column: pd.Series) -> np.ndarray | None:
    """(n,) float64 values (NaN where missing) when the column is numeric, else None.

    Numeric means: every present value parses as a number (JSON numbers or numeric text)
    and there are at least NUMERIC_MIN_DISTINCT distinct values (fewer are categories,
    e.g. a 1-5 rating).
    """
    present = column.notna()
    numeric = pd.to_numeric(column[present].map(_plain_number), errors="coerce")
    if not present.any() or numeric.isna().any() or numeric.nunique() < NUMERIC_MIN_DISTINCT:
        return None
    full = np.full(len(column), np.nan)
    full[present.to_numpy()] = numeric.to_numpy(dtype=np.float64)
    return full


def _plain_number(value):
    # Booleans are categories, not 0/1 numbers.
    return None if isinstance(value, bool) else value


def slice_rows(
    dims: list[Dimension],
    *,
    n_classes: int,
    final: np.ndarray,
    item_index: np.ndarray,
    label_index: np.ndarray,
    credit: np.ndarray,
    has_reference: np.ndarray,
    reference: np.ndarray,
    predicted: np.ndarray | None = None,
    issue: np.ndarray | None = None,
    level: str = "nominal",
    min_reliable: int = MIN_RELIABLE,
) -> list[dict]:
    """One row per slice, sorted by potential gain (largest first; rows without one last).

    final: (n_items,) int final label, -1 unknown. predicted: (n_items,) int model class,
    -1 where the model has no prediction; None when there is no model.
    item_index, label_index: (n_annotations,) annotations in long form.
    credit, has_reference, reference: (n_annotations,) from `baselines.leave_one_out`.
    issue: (n_items,) float 1.0 flagged as a likely label error, 0.0 checked and fine, NaN
    not checked; None without a label-issue run.

    Each row: field, kind, value, order (position of the value or bin in its dimension:
    categories by frequency, bins low to high), filterable, n (items), share (of all
    items), n_labeled, model_accuracy, model_n, model_ci, hlp, hlp_n (scored annotations),
    hlp_ci, gap, gap_ci (paired bootstrap over the slice's items; None when the slice is not
    reliable), potential_gain, alpha, issue_rate, issue_n, reliable (n_labeled >=
    min_reliable), confusion (n_classes x n_classes, rows = final label and cols = model
    prediction; without a model rows = others' consensus and cols = annotator label),
    confusion_kind ("model"/"annotators").
    Reliable rows come first, each group sorted by potential gain.
    """
    final = np.asarray(final, dtype=np.int64)
    item_index = np.asarray(item_index, dtype=np.int64)
    label_index = np.asarray(label_index, dtype=np.int64)
    n_items = len(final)
    counts = vote_counts(item_index, label_index, n_items=n_items, n_classes=n_classes)
    has_reference = np.asarray(has_reference, dtype=bool)
    credit = np.asarray(credit, dtype=np.float64)
    per_item_hlp = (
        np.bincount(item_index[has_reference], weights=credit[has_reference], minlength=n_items),
        np.bincount(item_index[has_reference], minlength=n_items).astype(np.float64),
    )
    rows = []
    for dim in dims:
        rows.extend(
            _rows_of_dimension(
                dim,
                n_classes=n_classes,
                n_items=n_items,
                final=final,
                counts=counts,
                item_index=item_index,
                label_index=label_index,
                credit=credit,
                has_reference=has_reference,
                per_item_hlp=per_item_hlp,
                reference=np.asarray(reference, dtype=np.int64),
                predicted=predicted,
                issue=issue,
                level=level,
                min_reliable=min_reliable,
            )
        )
    sort_by_potential_gain(rows)
    return rows


def _rows_of_dimension(dim: Dimension, *, n_classes, n_items, final, counts, item_index,
                       label_index, credit, has_reference, per_item_hlp, reference, predicted,
                       issue, level, min_reliable) -> list[dict]:  # fmt: skip
    k = len(dim.values)
    codes = dim.codes
    in_slice = codes >= 0
    n = np.bincount(codes[in_slice], minlength=k)
    labeled = np.bincount(codes[in_slice & (final >= 0)], minlength=k)

    ann_codes = codes[item_index]
    scored = (ann_codes >= 0) & has_reference
    hlp_n = np.bincount(ann_codes[scored], minlength=k)
    hlp_sum = np.bincount(ann_codes[scored], weights=credit[scored], minlength=k)

    if predicted is not None:
        predicted = np.asarray(predicted, dtype=np.int64)
        both = in_slice & (predicted >= 0) & (final >= 0)
        model_n = np.bincount(codes[both], minlength=k)
        model_hit = np.bincount(codes[both], weights=predicted[both] == final[both], minlength=k)
        confusion = np.zeros((k, n_classes, n_classes), dtype=np.int64)
        np.add.at(confusion, (codes[both], final[both], predicted[both]), 1)
        confusion_kind = "model"
        item_scored = both.astype(np.float64)
        item_hit = (both & (predicted == final)).astype(np.float64)
    else:
        model_n = model_hit = None
        resolved = (ann_codes >= 0) & (reference >= 0)
        confusion = np.zeros((k, n_classes, n_classes), dtype=np.int64)
        np.add.at(confusion, (ann_codes[resolved], reference[resolved], label_index[resolved]), 1)
        confusion_kind = "annotators"

    if issue is not None:
        issue = np.asarray(issue, dtype=np.float64)
        checked = in_slice & ~np.isnan(issue)
        issue_n = np.bincount(codes[checked], minlength=k)
        issue_hit = np.bincount(codes[checked], weights=issue[checked], minlength=k)
    else:
        issue_n = issue_hit = None

    rows = []
    for s in range(k):
        hlp = float(hlp_sum[s] / hlp_n[s]) if hlp_n[s] else None
        model_acc = float(model_hit[s] / model_n[s]) if model_n is not None and model_n[s] else None
        share = float(n[s] / n_items) if n_items else 0.0
        gap = hlp - model_acc if hlp is not None and model_acc is not None else None
        reliable = bool(labeled[s] >= min_reliable)
        gap_ci = None
        if gap is not None and reliable:
            members = codes == s
            gap_ci = ratio_difference_interval(
                per_item_hlp[0][members],
                per_item_hlp[1][members],
                item_hit[members],
                item_scored[members],
            )
        rows.append(
            {
                "field": dim.field,
                "kind": dim.kind,
                "value": dim.values[s],
                "order": s,
                "filterable": dim.filterable,
                "n": int(n[s]),
                "share": share,
                "n_labeled": int(labeled[s]),
                "model_accuracy": model_acc,
                "model_n": int(model_n[s]) if model_n is not None else 0,
                "model_ci": (
                    wilson_interval(model_hit[s], model_n[s]) if model_n is not None else None
                ),
                "hlp": hlp,
                "hlp_n": int(hlp_n[s]),
                "hlp_ci": wilson_interval(hlp_sum[s], hlp_n[s]),
                "gap": gap,
                "gap_ci": gap_ci,
                "potential_gain": gap * share if gap is not None else None,
                "alpha": alpha_from_counts(counts[codes == s], level),
                "issue_rate": (
                    float(issue_hit[s] / issue_n[s]) if issue_n is not None and issue_n[s] else None
                ),
                "issue_n": int(issue_n[s]) if issue_n is not None else 0,
                "reliable": reliable,
                "confusion": confusion[s].tolist(),
                "confusion_kind": confusion_kind,
            }
        )
    return rows


def sort_by_potential_gain(rows: list[dict]) -> None:
    """Order slice rows in place: reliable ones first, by potential gain (largest first), then
    the rest (small slices, no gain) by size."""
    rows.sort(
        key=lambda r: (
            not r["reliable"],
            r["potential_gain"] is None,
            -(r["potential_gain"] or 0.0),
            -r["n"],
        )
    )
