"""Agreement between annotators who mark spans: pairwise span F1 and Krippendorff's alpha over
tokens.

Pure numpy; no Django. The input is a span project's annotations in long form, as
`analysis.loaders.SpanRows` holds them (see `analysis.metrics.span_tags`):

    item_lengths: (n_items,) token count of each item;
    annotation_item, annotation_annotator: (n_annotations,) the item and the annotator of each
        annotation (one annotation per item and annotator);
    span_annotation, span_start, span_end, span_label: (n_spans,) each span's annotation, its
        token range (end exclusive) and its entity type in [0, n_types), sorted by annotation
        and start; the spans of one annotation do not overlap.

Span F1 of two annotators on the items they share (an item both left empty is shared, with
nothing to match): exact counts a span as matched when the other marked the same start, end and
type; partial when the other marked an overlapping span of the same type (precision: share of
A's spans overlapping one of B's, recall: share of B's overlapping one of A's, F1 = 2PR/(P+R)).
Each pair's F1 is micro (pooled over its shared items); `span_f1` is the mean over pairs. A pair
that marked nothing at all on its shared items has no F1 (0/0) and is left out of the mean.

Everything is counted from one search: every span of an annotation looks up, in each other
annotation of its item, the last span of its type starting before it ends (spans of one
annotation and type are sorted and disjoint, so that one span is the only candidate for an
overlap, and for an exact match). No Python loop runs per span or per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.metrics import agreement
from analysis.metrics.span_tags import item_token_index, sequence_offsets, tags_from_spans

OUTSIDE_NAME = "O"


@dataclass(frozen=True)
class SpanPairCounts:
    """Match counts of every pair of annotations of one item.

    Annotation pairs (n_pairs,): `first`, `second` annotation indices, the first's annotator
    the lower index; `n_first`, `n_second` their span counts; `exact` spans matched exactly;
    `overlap_first` (`overlap_second`): the first's (second's) spans overlapping a same-type
    span of the other.
    Annotator pairs (n_groups,): `group_a` < `group_b` annotator indices, `group` (n_pairs,) the
    annotator pair of each annotation pair, and per annotator pair and type (n_groups, n_types):
    `n_a`, `n_b`, `exact_ab`, `overlap_a`, `overlap_b`.
    """

    first: np.ndarray
    second: np.ndarray
    n_first: np.ndarray
    n_second: np.ndarray
    exact: np.ndarray
    overlap_first: np.ndarray
    overlap_second: np.ndarray
    group: np.ndarray
    group_a: np.ndarray
    group_b: np.ndarray
    n_a: np.ndarray
    n_b: np.ndarray
    exact_ab: np.ndarray
    overlap_a: np.ndarray
    overlap_b: np.ndarray

    @property
    def shared_items(self) -> np.ndarray:
        """(n_groups,) items each annotator pair shares."""
        return np.bincount(self.group, minlength=len(self.group_a))


def annotation_pairs(
    annotation_item: np.ndarray, annotation_annotator: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of annotations of the same item: (first, second) (n_pairs,) int64 annotation
    indices, the first's annotator index lower than the second's.

    One pass per rank distance within an item (bounded by the annotators per item), not per item.
    """
    annotation_item = np.asarray(annotation_item, dtype=np.int64)
    annotation_annotator = np.asarray(annotation_annotator, dtype=np.int64)
    order = np.lexsort((annotation_annotator, annotation_item))
    item = annotation_item[order]
    largest = int(np.bincount(item).max()) if len(item) else 0
    firsts, seconds = [], []
    for distance in range(1, largest):
        at = np.flatnonzero(item[:-distance] == item[distance:])
        firsts.append(order[at])
        seconds.append(order[at + distance])
    first = np.concatenate(firsts) if firsts else np.zeros(0, dtype=np.int64)
    second = np.concatenate(seconds) if seconds else np.zeros(0, dtype=np.int64)
    distinct = annotation_annotator[first] != annotation_annotator[second]
    return first[distinct], second[distinct]


def _span_lookup(
    n_annotations: int,
    n_types: int,
    span_annotation: np.ndarray,
    span_start: np.ndarray,
    span_end: np.ndarray,
    span_label: np.ndarray,
):
    """Spans keyed by (annotation, type, start) as one sorted int64, for `searchsorted`."""
    width = int(max(span_end.max(initial=0), 1)) + 1
    if n_annotations * max(n_types, 1) * width >= 2**62:
        raise ValueError("Too many annotations, types and tokens to key spans in 64 bits.")
    key = (span_annotation * n_types + span_label) * width + span_start
    order = np.argsort(key, kind="stable")
    return width, key[order], span_start[order], span_end[order]


def pair_counts(
    *,
    annotation_item: np.ndarray,
    annotation_annotator: np.ndarray,
    span_annotation: np.ndarray,
    span_start: np.ndarray,
    span_end: np.ndarray,
    span_label: np.ndarray,
    n_types: int,
) -> SpanPairCounts:
    """Exact and overlapping matches of every annotation pair, and per annotator pair and type.

    Shapes as in the module docstring.
    """
    span_annotation = np.asarray(span_annotation, dtype=np.int64)
    span_start = np.asarray(span_start, dtype=np.int64)
    span_end = np.asarray(span_end, dtype=np.int64)
    span_label = np.asarray(span_label, dtype=np.int64)
    annotation_annotator = np.asarray(annotation_annotator, dtype=np.int64)
    n_annotations = len(annotation_item)
    n_types = max(int(n_types), 1)
    first, second = annotation_pairs(annotation_item, annotation_annotator)
    n_pairs = len(first)
    span_count = np.bincount(span_annotation, minlength=n_annotations)
    span_offsets = sequence_offsets(span_count)

    # Both directions: query q asks, for one span of annotation `source`, about `target`.
    source = np.concatenate([first, second])
    target = np.concatenate([second, first])
    per_direction = span_count[source]
    direction = np.repeat(np.arange(2 * n_pairs, dtype=np.int64), per_direction)
    within = np.arange(len(direction), dtype=np.int64) - np.repeat(
        sequence_offsets(per_direction)[:-1], per_direction
    )
    span = span_offsets[source][direction] + within
    del within  # temporaries go as soon as they are used: a million spans make big arrays
    label = span_label[span]
    start, end = span_start[span], span_end[span]
    del span

    width, keys, found_start, found_end = _span_lookup(
        n_annotations, n_types, span_annotation, span_start, span_end, span_label
    )
    base = (target[direction] * n_types + label) * width
    at = np.searchsorted(keys, base + end - 1, side="right") - 1
    valid = at >= 0
    at[~valid] = 0
    valid &= keys[at] >= base  # the same annotation and type
    del base
    overlap = valid & (found_end[at] > start)
    exact = valid & (found_start[at] == start) & (found_end[at] == end)
    del at, valid, start, end, keys, found_start, found_end

    forward = direction < n_pairs
    pair = direction % max(n_pairs, 1)
    pair_exact = np.bincount(pair[forward], weights=exact[forward], minlength=n_pairs)
    pair_overlap = np.bincount(direction, weights=overlap, minlength=2 * n_pairs)

    group_key = annotation_annotator[first] * (int(annotation_annotator.max(initial=0)) + 1)
    group_key = group_key + annotation_annotator[second]
    keys_present, group = np.unique(group_key, return_inverse=True)
    group = group.ravel()
    n_groups = len(keys_present)
    n_annotators = int(annotation_annotator.max(initial=0)) + 1
    cell = group[pair] * n_types + label  # (annotator pair, type) of each query
    size = n_groups * n_types

    def by_cell(mask, weights=None):
        w = None if weights is None else weights[mask].astype(np.float64)
        counts = np.bincount(cell[mask], weights=w, minlength=size)
        return np.rint(counts).astype(np.int64).reshape(n_groups, n_types)

    return SpanPairCounts(
        first=first,
        second=second,
        n_first=span_count[first],
        n_second=span_count[second],
        exact=np.rint(pair_exact).astype(np.int64),
        overlap_first=np.rint(pair_overlap[:n_pairs]).astype(np.int64),
        overlap_second=np.rint(pair_overlap[n_pairs:]).astype(np.int64),
        group=group,
        group_a=keys_present // n_annotators,
        group_b=keys_present % n_annotators,
        n_a=by_cell(forward),
        n_b=by_cell(~forward),
        exact_ab=by_cell(forward, exact),
        overlap_a=by_cell(forward, overlap),
        overlap_b=by_cell(~forward, overlap),
    )


def _divide(numerator, denominator) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.divide(
        numerator, denominator, out=np.full(numerator.shape, np.nan), where=denominator > 0
    )


def exact_f1(exact, n_a, n_b) -> np.ndarray:
    """Micro F1 = 2 matches / (A's spans + B's spans); NaN where neither marked a span."""
    return _divide(2 * np.asarray(exact), np.asarray(n_a) + np.asarray(n_b))


def partial_f1(overlap_a, n_a, overlap_b, n_b) -> np.ndarray:
    """F1 = 2PR/(P+R), P = overlap_a / n_a, R = overlap_b / n_b; NaN where neither marked a
    span, 0 where only one did (the other's precision or recall is 0)."""
    n_a = np.asarray(n_a, dtype=np.float64)
    n_b = np.asarray(n_b, dtype=np.float64)
    precision = np.nan_to_num(_divide(overlap_a, n_a))
    recall = np.nan_to_num(_divide(overlap_b, n_b))
    f1 = np.nan_to_num(_divide(2 * precision * recall, precision + recall))
    return np.where(n_a + n_b > 0, f1, np.nan)


def item_mean_f1(counts: SpanPairCounts, annotation_item: np.ndarray, n_items: int):
    """(n_items,) mean pairwise exact F1 of each item's annotation pairs (1.0 when both of a
    pair left the item empty; NaN for items with fewer than two annotations), and (n_items,)
    annotations per item."""
    annotation_item = np.asarray(annotation_item, dtype=np.int64)
    f1 = exact_f1(counts.exact, counts.n_first, counts.n_second)
    f1 = np.where(np.isnan(f1), 1.0, f1)  # both empty: they agree there is nothing to mark
    item = annotation_item[counts.first]
    total = np.bincount(item, weights=f1, minlength=n_items)
    n_pairs = np.bincount(item, minlength=n_items)
    return _divide(total, n_pairs), np.bincount(annotation_item, minlength=n_items)


def token_value_counts(
    *,
    item_lengths: np.ndarray,
    annotation_item: np.ndarray,
    span_annotation: np.ndarray,
    span_start: np.ndarray,
    span_end: np.ndarray,
    span_label: np.ndarray,
    n_types: int,
) -> np.ndarray:
    """(n_item_tokens, n_types + 1) int64: per token of every item (flat, item order), how many
    annotations gave it each value: 0 = O, k + 1 = entity type k (IOB2 tag t has type
    (t + 1) // 2)."""
    item_lengths = np.asarray(item_lengths, dtype=np.int64)
    annotation_item = np.asarray(annotation_item, dtype=np.int64)
    annotation_lengths = item_lengths[annotation_item]
    tags = tags_from_spans(
        annotation_lengths,
        np.asarray(span_annotation, dtype=np.int64),
        np.asarray(span_start, dtype=np.int64),
        np.asarray(span_end, dtype=np.int64),
        np.asarray(span_label, dtype=np.int64),
    )
    values = (tags.astype(np.int64) + 1) // 2
    position = item_token_index(annotation_item, annotation_lengths, item_lengths)
    n_values = int(n_types) + 1
    n_tokens = int(item_lengths.sum())
    flat = np.bincount(position * n_values + values, minlength=n_tokens * n_values)
    return flat.reshape(n_tokens, n_values)


def token_alpha(counts: np.ndarray) -> float | None:
    """Krippendorff's alpha (nominal) over tokens: counts (n_tokens, n_values) from
    `token_value_counts`; tokens with fewer than two annotations do not count."""
    return agreement.alpha_from_counts(counts, "nominal")


def token_alpha_ci(
    counts: np.ndarray,
    token_item: np.ndarray,
    *,
    n_replicates: int = agreement.BOOTSTRAP_REPLICATES,
    seed: int = agreement.BOOTSTRAP_SEED,
    confidence: float = 0.95,
) -> list[float] | None:
    """Percentile bootstrap interval of `token_alpha` that resamples ITEMS (sentences) with
    all their tokens: the tokens of one sentence are not independent.

    token_item: (n_tokens,) the item of each token.
    """
    if n_replicates <= 0:
        return None
    replicates = agreement.bootstrap_clustered_alphas(
        counts, token_item, "nominal", n_replicates, seed
    )
    return agreement.interval(replicates, confidence)


def _round(value) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 6)


def _mean(values: np.ndarray) -> float | None:
    defined = values[np.isfinite(values)]
    return float(defined.mean()) if len(defined) else None


def report(
    *,
    item_lengths: np.ndarray,
    annotation_item: np.ndarray,
    annotation_annotator: np.ndarray,
    span_annotation: np.ndarray,
    span_start: np.ndarray,
    span_end: np.ndarray,
    span_label: np.ndarray,
    class_names: Sequence[str],
    annotator_names: Sequence[str],
    n_replicates: int = agreement.BOOTSTRAP_REPLICATES,
    seed: int = agreement.BOOTSTRAP_SEED,
    min_items: int = agreement.MIN_SHARED_ITEMS,
    counts: SpanPairCounts | None = None,
) -> dict:
    """The JSON-ready agreement report of a span project (or of one guideline version).

    Arrays as in the module docstring; annotator_names: (n_annotators,) names of the
    annotator indices. Contract keys: span_f1, span_f1_partial, token_alpha, token_alpha_ci,
    per_label [{label, span_f1}], per_annotator [{annotator, n, span_f1}], n_items,
    n_annotations, n_spans; plus reading, per_pair, n_items_used, n_pairs, too_few, min_items,
    notes. `counts`: `pair_counts` of the same arrays, when the caller has them already.
    """
    n_types = len(class_names)
    item_lengths = np.asarray(item_lengths, dtype=np.int64)
    annotation_item = np.asarray(annotation_item, dtype=np.int64)
    annotation_annotator = np.asarray(annotation_annotator, dtype=np.int64)
    n_items = len(item_lengths)
    if counts is None:
        counts = pair_counts(
            annotation_item=annotation_item,
            annotation_annotator=annotation_annotator,
            span_annotation=span_annotation,
            span_start=span_start,
            span_end=span_end,
            span_label=span_label,
            n_types=n_types,
        )
    per_item = np.bincount(annotation_item, minlength=n_items)
    n_used = int((per_item >= 2).sum())
    n_annotators = len(np.unique(annotation_annotator))
    notes: list[str] = []
    single = int((per_item == 1).sum())
    if single:
        notes.append(
            f"{single} item(s) with a single annotation were excluded (agreement needs two)."
        )
    if len(annotation_item) == 0:
        notes.append("No annotations yet, so there is nothing to measure.")
    elif n_annotators < 2:
        notes.append("Only one annotator: agreement needs at least two.")
    elif n_used == 0:
        notes.append("No item has two annotations yet, so agreement cannot be measured.")

    # Per annotator pair, pooled over its shared items and over the types.
    n_a, n_b = counts.n_a.sum(axis=1), counts.n_b.sum(axis=1)
    exact_ab = counts.exact_ab.sum(axis=1)
    overlap_a, overlap_b = counts.overlap_a.sum(axis=1), counts.overlap_b.sum(axis=1)
    pair_exact = exact_f1(exact_ab, n_a, n_b)
    pair_partial = partial_f1(overlap_a, n_a, overlap_b, n_b)
    span_f1 = _mean(pair_exact)
    span_f1_partial = _mean(pair_partial)
    if n_used and span_f1 is None:
        notes.append("No annotator marked any span on a shared item: span F1 is undefined.")
    shared = counts.shared_items
    per_pair = [
        {
            "a": str(annotator_names[a]),
            "b": str(annotator_names[b]),
            "n": int(n),
            "span_f1": _round(f),
            "span_f1_partial": _round(p),
        }
        for a, b, n, f, p in zip(
            counts.group_a.tolist(),
            counts.group_b.tolist(),
            shared.tolist(),
            pair_exact.tolist(),
            pair_partial.tolist(),
            strict=True,
        )
    ]

    label_exact = exact_f1(counts.exact_ab, counts.n_a, counts.n_b)  # (n_groups, n_types)
    label_partial = partial_f1(counts.overlap_a, counts.n_a, counts.overlap_b, counts.n_b)
    span_label = np.asarray(span_label, dtype=np.int64)
    label_spans = np.bincount(span_label, minlength=n_types)
    per_label = [
        {
            "label": str(name),
            "n": int(label_spans[t]),
            "span_f1": _round(_mean(label_exact[:, t])) if len(label_exact) else None,
            "span_f1_partial": _round(_mean(label_partial[:, t])) if len(label_partial) else None,
        }
        for t, name in enumerate(class_names)
    ]

    # Per annotator: every pair it is in, pooled, its own spans on one side.
    size = len(annotator_names)
    own_n = np.bincount(counts.group_a, n_a, size) + np.bincount(counts.group_b, n_b, size)
    other_n = np.bincount(counts.group_a, n_b, size) + np.bincount(counts.group_b, n_a, size)
    matched = np.bincount(counts.group_a, exact_ab, size) + np.bincount(
        counts.group_b, exact_ab, size
    )
    own_overlap = np.bincount(counts.group_a, overlap_a, size) + np.bincount(
        counts.group_b, overlap_b, size
    )
    other_overlap = np.bincount(counts.group_a, overlap_b, size) + np.bincount(
        counts.group_b, overlap_a, size
    )
    annotator_exact = exact_f1(matched, own_n, other_n)
    annotator_partial = partial_f1(own_overlap, own_n, other_overlap, other_n)
    shared_annotation = per_item[annotation_item] >= 2
    compared = np.bincount(annotation_annotator[shared_annotation], minlength=size)
    made = np.bincount(annotation_annotator, minlength=size)
    spans_made = np.bincount(
        annotation_annotator[np.asarray(span_annotation, dtype=np.int64)], minlength=size
    )
    per_annotator = [
        {
            "annotator": str(annotator_names[a]),
            "n": int(compared[a]),
            "n_annotations": int(made[a]),
            "n_spans": int(spans_made[a]),
            "span_f1": _round(annotator_exact[a]),
            "span_f1_partial": _round(annotator_partial[a]),
            "too_few": bool(compared[a] < min_items),
        }
        for a in range(size)
        if made[a]
    ]

    values = token_value_counts(
        item_lengths=item_lengths,
        annotation_item=annotation_item,
        span_annotation=span_annotation,
        span_start=span_start,
        span_end=span_end,
        span_label=span_label,
        n_types=n_types,
    )
    alpha = token_alpha(values) if n_used else None
    ci = None
    if alpha is not None:
        token_item = np.repeat(np.arange(n_items, dtype=np.int64), item_lengths)
        ci = token_alpha_ci(values, token_item, n_replicates=n_replicates, seed=seed)
    elif n_used and n_annotators >= 2:
        notes.append("No variation over tokens (every token has one value): alpha is undefined.")
    n_tokens_used = int((values.sum(axis=1) >= 2).sum())
    too_few = n_used < min_items
    if too_few and n_used:
        notes.append(
            f"Too few items to judge (n={n_used}): agreement on fewer than {min_items} items "
            "shared by two annotators is mostly noise."
        )
    return {
        "task": "spans",
        "span_f1": _round(span_f1),
        "span_f1_partial": _round(span_f1_partial),
        "token_alpha": _round(alpha),
        "token_alpha_ci": None if ci is None else [_round(ci[0]), _round(ci[1])],
        "reading": agreement.reading(alpha),
        "level": "nominal",
        "per_label": per_label,
        "per_annotator": per_annotator,
        "per_pair": per_pair,
        "n_items": int((per_item > 0).sum()),
        "n_annotations": int(len(annotation_item)),
        "n_spans": int(len(span_label)),
        "n_items_used": n_used,
        "n_items_single_rating": single,
        "n_tokens_used": n_tokens_used,
        "n_pairs": int(np.isfinite(pair_exact).sum()),
        "min_items": int(min_items),
        "too_few": bool(too_few),
        "notes": notes,
    }
