"""Baselines and slices of a span project in exact span F1: human-level performance (HLP), a
token model's F1 against the final spans, per entity type and per metadata slice.

Pure numpy; no Django. Annotations come in long form as `analysis.loaders.SpanRows` holds them
(see `analysis.metrics.span_tags`):

    item_lengths: (n_items,) token count of each item;
    annotation_item, annotation_annotator: (n_annotations,) the item and annotator of each
        annotation, sorted by item (one annotation per item and annotator);
    span_annotation, span_start, span_end, span_label: (n_spans,) each span's annotation, its
        token range (end exclusive) and entity type in [0, n_types), sorted by annotation.

Other span sets (reviews, final spans, a model's spans) are `Spans`: the same four arrays with
`sequence` the item position instead of the annotation.

**Exact span F1**: a span counts as found when the reference has one with the same start, end
and type. Micro over items: F1 = 2 TP / (n_predicted + n_reference), summed over every compared
item (an item where both are empty adds nothing). The intervals are percentile bootstraps over
items (`analysis.metrics.intervals`), seeded: the item is the unit, because one item's spans
(and one item's annotations) are not independent of each other.

**HLP** (leave-one-out): each annotation against the consensus of the *other* annotators of
its item, on items with at least one other annotator. The consensus is the token majority of
their IOB2 tags (counted once for all annotators, less the annotation's own vote), decoded
back to spans (`span_tags.decode_tags`). Where the others tie on a token, the token takes the
tag of one of the other annotators, each with equal weight: the figures are the expectation
over that choice (one choice per annotation for all its tied tokens, so a disputed span stays
whole), the span form of the coin flip that gives a classification annotation 1/k credit
among k tied labels. Reading a tie as `O` instead, as a consensus for export does, would charge
every entity a second person missed to the annotator who marked it (with three annotators the
others are two people, and they often disagree). Pooled micro over every scored
annotation. Where reviewers have decided at least `MIN_REVIEWED` items, HLP is also measured
against the reviewed spans (a reviewer's own annotation is not scored against their review)
and becomes the headline, as on classification projects.

**Final spans** of an item: the Review's spans where it has one (`[]` included: no entities),
else the token majority of all its annotators, decoded.

**Model spans** from token probabilities, by IO decoding: each token takes its most probable
class (`O` or an entity type); consecutive tokens of the same type form one span. Token models
trained on IO or IOB tags alike give probabilities per type, not per B-/I- position, so two
adjacent entities of one type read as one span (rare in the data this is for; a stated cost).

**Verdict** (model below / at / above human level) is read from the 95% paired bootstrap
interval of HLP - model F1, and not at all under `MIN_COMPARED_ITEMS` items; per slice, the
gap is read only for slices with at least `MIN_RELIABLE` items with final spans.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from analysis.metrics.baselines import MIN_COMPARED_ITEMS, MIN_REVIEWED, gap_reading
from analysis.metrics.consensus import majority_from_counts
from analysis.metrics.intervals import ratio_difference_interval
from analysis.metrics.slices import MIN_RELIABLE, Dimension, sort_by_potential_gain
from analysis.metrics.span_tags import (
    decode_tags,
    item_token_index,
    n_tags,
    sequence_offsets,
    tags_from_spans,
)

BLOCK = 8_192  # items per consensus block: the vote table of a block stays small


class Spans(NamedTuple):
    """Spans over sequences: (n_spans,) int64 `sequence`, `start`, `end` (token indices,
    end exclusive) and `label` (type index), sorted by sequence."""

    sequence: np.ndarray
    start: np.ndarray
    end: np.ndarray
    label: np.ndarray

    @classmethod
    def empty(cls) -> Spans:
        return cls(*(np.zeros(0, dtype=np.int64) for _ in range(4)))

    def take(self, keep: np.ndarray) -> Spans:
        return Spans(*(a[keep] for a in self))

    @property
    def n(self) -> int:
        return len(self.sequence)


class Scores(NamedTuple):
    """Exact matches of predicted spans against reference spans, per sequence and type.

    tp, n_predicted, n_reference: (n_sequences, n_types) counts (float for HLP against the
    others, an expectation over who settles their ties).
    """

    tp: np.ndarray
    n_predicted: np.ndarray
    n_reference: np.ndarray

    def num_den(self, *, by: np.ndarray, n_groups: int, rows: np.ndarray | None = None):
        """Per group (n_groups,) sums of 2 TP and n_predicted + n_reference over the sequences
        `rows` (default all), sequence s in group `by[s]`, all types pooled."""
        rows = np.arange(len(self.tp)) if rows is None else rows
        num = 2 * self.tp[rows].sum(axis=1)
        den = (self.n_predicted[rows] + self.n_reference[rows]).sum(axis=1)
        return (
            np.bincount(by[rows], weights=num, minlength=n_groups),
            np.bincount(by[rows], weights=den, minlength=n_groups),
        )


def f1(num: float, den: float) -> float | None:
    """2 TP / (n_predicted + n_reference); None when both are empty."""
    return float(num / den) if den > 0 else None


def ratio_interval(num: np.ndarray, den: np.ndarray) -> tuple[float, float] | None:
    """95% percentile bootstrap interval of sum(num) / sum(den) over items (the rows), seeded:
    `intervals.ratio_difference_interval` against a ratio fixed at 0."""
    num = np.asarray(num, dtype=np.float64)
    return ratio_difference_interval(num, den, np.zeros_like(num), np.ones_like(num))


def model_spans(probs: np.ndarray, lengths: np.ndarray) -> Spans:
    """IO decoding of token probabilities.

    probs: (sum(lengths), 1 + n_types) rows of token probabilities, column 0 `O`;
    lengths: (n_sequences,) tokens per sequence. A token takes its argmax class; consecutive
    tokens of one type make one span.
    """
    best = np.asarray(probs).argmax(axis=1).astype(np.int64)
    tags = np.where(best > 0, 2 * best, 0)  # type k (column k + 1) -> its I- tag, 2k + 2
    return Spans(*decode_tags(tags, lengths))


def exact_scores(predicted: Spans, reference: Spans, *, n_sequences: int, n_types: int) -> Scores:
    """Exact matches (same sequence, start, end and type) per sequence and type.

    The spans of one set within one sequence are distinct (flat spans), so a predicted span
    matches at most one reference span.
    """
    n_types = max(int(n_types), 1)
    matched = np.zeros(predicted.n, dtype=bool)
    if predicted.n and reference.n:
        width = int(max(predicted.end.max(), reference.end.max())) + 1

        def key(spans: Spans) -> np.ndarray:
            return ((spans.sequence * width + spans.start) * width + spans.end) * n_types + (
                spans.label
            )

        matched = np.isin(key(predicted), key(reference))
    size = n_sequences * n_types

    def table(sequence, label, weights=None):
        flat = np.bincount(sequence * n_types + label, weights=weights, minlength=size)
        return flat.astype(np.int64).reshape(n_sequences, n_types)

    return Scores(
        tp=table(predicted.sequence[matched], predicted.label[matched]),
        n_predicted=table(predicted.sequence, predicted.label),
        n_reference=table(reference.sequence, reference.label),
    )


def spans_by_sequence(spans: Spans, sequence_of: np.ndarray, n_sources: int) -> Spans:
    """Copy the spans of source sequences to new sequences: new sequence j gets the spans of
    source `sequence_of[j]` (-1: none). `spans` sorted by sequence, sequences in [0, n_sources)."""
    sequence_of = np.asarray(sequence_of, dtype=np.int64)
    offsets = sequence_offsets(np.bincount(spans.sequence, minlength=n_sources))
    source = np.maximum(sequence_of, 0)
    counts = np.where(sequence_of >= 0, offsets[source + 1] - offsets[source], 0)
    starts = np.repeat(offsets[source], counts)
    take = (
        starts
        + np.arange(int(counts.sum()), dtype=np.int64)
        - np.repeat(sequence_offsets(counts)[:-1], counts)
    )
    new_sequence = np.repeat(np.arange(len(sequence_of), dtype=np.int64), counts)
    return Spans(new_sequence, spans.start[take], spans.end[take], spans.label[take])


class Consensus(NamedTuple):
    """loo: each annotation's others' consensus, as spans over annotations, once per round r
    (tied tokens settled by the r-th other annotator of the item); loo_weights: (rounds,
    n_annotations) the weight of each round for each annotation (1 / the number of others,
    0 past it); has_reference: (n_annotations,) bool, another annotator labeled the item;
    majority: every item's token majority of all its annotators, as spans over items."""

    loo: list[Spans]
    loo_weights: np.ndarray
    has_reference: np.ndarray
    majority: Spans


def consensus(
    *,
    item_lengths: np.ndarray,
    annotation_item: np.ndarray,
    span_annotation: np.ndarray,
    span_start: np.ndarray,
    span_end: np.ndarray,
    span_label: np.ndarray,
    n_types: int,
    tie_rule: str = "unresolved",
) -> Consensus:
    """The leave-one-out consensus of every annotation (one version per other annotator who
    can settle its ties, see the module docstring) and the consensus of every item
    (`tie_rule`).

    Votes are counted BLOCK items at a time (annotations sorted by item), so the (tokens x
    tags) table of a block stays small whatever the project's size.
    """
    item_lengths = np.asarray(item_lengths, dtype=np.int64)
    annotation_item = np.asarray(annotation_item, dtype=np.int64)
    span_annotation = np.asarray(span_annotation, dtype=np.int64)
    n_items = len(item_lengths)
    width = n_tags(max(int(n_types), 1))
    annotation_lengths = item_lengths[annotation_item]
    annotation_offsets = sequence_offsets(annotation_lengths)
    item_offsets = sequence_offsets(item_lengths)
    n_per_item = np.bincount(annotation_item, minlength=n_items)
    n_others = n_per_item[annotation_item] - 1
    rounds = max(int(n_others.max(initial=1)), 1)
    loo_tags = np.full((rounds, int(annotation_offsets[-1])), -1, dtype=np.int16)
    item_tags = np.full(int(item_offsets[-1]), -1, dtype=np.int64)
    for first in range(0, n_items, BLOCK):
        last = min(first + BLOCK, n_items)
        a0, a1 = np.searchsorted(annotation_item, [first, last])
        if a0 == a1:
            continue
        s0, s1 = np.searchsorted(span_annotation, [a0, a1])
        lengths = annotation_lengths[a0:a1]
        tags = tags_from_spans(
            lengths,
            span_annotation[s0:s1] - a0,
            span_start[s0:s1],
            span_end[s0:s1],
            span_label[s0:s1],
        ).astype(np.int64)
        token = item_token_index(annotation_item[a0:a1] - first, lengths, item_lengths[first:last])
        t0, t1 = item_offsets[first], item_offsets[last]
        counts = np.bincount(token * width + tags, minlength=int(t1 - t0) * width).reshape(
            -1, width
        )
        item_tags[t0:t1] = majority_from_counts(counts, tie_rule)[0]
        others = counts[token]
        others[np.arange(len(tags)), tags] -= 1
        loo = majority_from_counts(others, "unresolved")[0]
        at = np.flatnonzero((loo == -1) & (others.sum(axis=1) > 0))
        local_offsets = sequence_offsets(lengths)
        owner = np.repeat(np.arange(len(lengths)), lengths)[at]
        for r in range(rounds):
            settled = loo.copy()
            if len(at):
                other = _rth_other(annotation_item[a0:a1], r)[owner]
                settled[at] = tags[local_offsets[other] + at - local_offsets[owner]]
            loo_tags[r, annotation_offsets[a0] : annotation_offsets[a1]] = settled
    weights = np.where(
        np.arange(rounds)[:, None] < np.maximum(n_others, 1)[None, :],
        1.0 / np.maximum(n_others, 1)[None, :],
        0.0,
    )
    return Consensus(
        loo=[Spans(*decode_tags(t.astype(np.int64), annotation_lengths)) for t in loo_tags],
        loo_weights=weights,
        has_reference=n_per_item[annotation_item] >= 2,
        majority=Spans(*decode_tags(item_tags, item_lengths)),
    )


def _rth_other(annotation_item: np.ndarray, r: int) -> np.ndarray:
    """For each annotation (sorted by item), the position of the r-th other annotation of its
    item (r taken modulo the number of others); itself where the item has no other."""
    n = len(annotation_item)
    first = np.searchsorted(annotation_item, annotation_item, side="left")
    n_others = np.searchsorted(annotation_item, annotation_item, side="right") - first - 1
    own = np.arange(n) - first
    pick = r % np.maximum(n_others, 1)
    pick += pick >= own  # skip the annotation itself
    return np.where(n_others > 0, first + pick, np.arange(n))


def final_spans(majority: Spans, reviewed: np.ndarray, review: Spans) -> Spans:
    """Reviewed spans on reviewed items, the annotators' majority elsewhere (sorted by item).

    reviewed: (n_items,) bool; review: spans over items (only reviewed items')."""
    keep = ~np.asarray(reviewed, dtype=bool)[majority.sequence]
    merged = [np.concatenate([a[keep], b]) for a, b in zip(majority, review, strict=True)]
    order = np.lexsort((merged[1], merged[0]))
    return Spans(*(a[order] for a in merged))


def verdict(
    hlp_num: np.ndarray,
    hlp_den: np.ndarray,
    hlp_items: np.ndarray,
    model_num: np.ndarray,
    model_den: np.ndarray,
    model_items: np.ndarray,
    *,
    min_items: int = MIN_COMPARED_ITEMS,
) -> dict:
    """Is the model below, at or above human level?

    All (n_items,): per-item sums of 2 TP and n_predicted + n_reference for HLP and for the
    model; hlp_items / model_items bool, the item is compared (has an HLP reference / has
    both predictions and final spans). Returns {"n" (the smaller count of compared items),
    "min_items", "gap" (HLP - model F1), "gap_ci" (paired bootstrap over items), "reading"
    ("too_few", "below", "at": the interval holds 0, "above")}.
    """
    n = min(int(np.sum(hlp_items)), int(np.sum(model_items)))
    hlp, model = f1(np.sum(hlp_num), np.sum(hlp_den)), f1(np.sum(model_num), np.sum(model_den))
    gap = hlp - model if hlp is not None and model is not None else None
    gap_ci = (
        ratio_difference_interval(hlp_num, hlp_den, model_num, model_den)
        if gap is not None
        else None
    )
    reading = gap_reading(n, gap_ci, min_items)
    return {"n": n, "min_items": min_items, "gap": gap, "gap_ci": gap_ci, "reading": reading}


def _figure(num: np.ndarray, den: np.ndarray) -> tuple[float | None, tuple | None]:
    value = f1(num.sum(), den.sum())
    return value, ratio_interval(num, den) if value is not None else None


def per_type(scores: Scores, by: np.ndarray, n_groups: int) -> list[dict]:
    """Per entity type: {"f1", "ci", "n_reference"} over groups (items) `by` (n_sequences,)."""
    out = []
    for k in range(scores.tp.shape[1]):
        num = np.bincount(by, weights=2 * scores.tp[:, k], minlength=n_groups)
        den = np.bincount(
            by, weights=scores.n_predicted[:, k] + scores.n_reference[:, k], minlength=n_groups
        )
        value, ci = _figure(num, den)
        out.append(
            {"f1": value, "ci": ci, "n_reference": round(float(scores.n_reference[:, k].sum()))}
        )
    return out


class Inputs(NamedTuple):
    """A span project's annotations (module docstring shapes) and what they are compared with.

    reviewed: (n_items,) bool; review: reviewed spans over items; reviewer_annotator:
    (n_items,) annotator index of the item's reviewer, -1 when not among the annotators;
    predicted: the model's spans over items, or None without a model; predicted_items:
    (n_items,) bool, the model has probabilities for the item.
    """

    item_lengths: np.ndarray
    annotation_item: np.ndarray
    annotation_annotator: np.ndarray
    span_annotation: np.ndarray
    span_start: np.ndarray
    span_end: np.ndarray
    span_label: np.ndarray
    n_types: int
    n_annotators: int
    reviewed: np.ndarray
    review: Spans
    reviewer_annotator: np.ndarray
    predicted: Spans | None = None
    predicted_items: np.ndarray | None = None
    tie_rule: str = "unresolved"


class Compared(NamedTuple):
    """Per-item and per-annotation figures both pages read (see `compare`)."""

    n_items: int
    hlp: Scores  # annotations (with a reference) against the others' consensus
    hlp_items: np.ndarray  # (n_items,) bool, an annotation of the item has a reference
    has_reference: np.ndarray  # (n_annotations,)
    reviews: Scores  # annotations on reviewed items (not the reviewer's own) against the review
    review_scored: np.ndarray  # (n_annotations,) bool
    model: Scores | None  # items: the model's spans against the final spans
    model_items: np.ndarray  # (n_items,) bool, predictions and final spans exist
    final: Spans
    decided: np.ndarray  # (n_items,) bool: annotated or reviewed


def compare(inputs: Inputs) -> Compared:
    """Score annotations against the others' consensus and the reviews, and the model
    against the final spans."""
    annotation_item = np.asarray(inputs.annotation_item, dtype=np.int64)
    annotator = np.asarray(inputs.annotation_annotator, dtype=np.int64)
    n_items, n_annotations = len(inputs.item_lengths), len(annotation_item)
    made = consensus(
        item_lengths=inputs.item_lengths,
        annotation_item=annotation_item,
        span_annotation=inputs.span_annotation,
        span_start=inputs.span_start,
        span_end=inputs.span_end,
        span_label=inputs.span_label,
        n_types=inputs.n_types,
        tie_rule=inputs.tie_rule,
    )
    own = Spans(
        *(
            np.asarray(a, dtype=np.int64)
            for a in (inputs.span_annotation, inputs.span_start, inputs.span_end, inputs.span_label)
        )
    )
    ref = made.has_reference
    rounds = [
        exact_scores(
            own.take(ref[own.sequence]),
            loo.take(ref[loo.sequence]),
            n_sequences=n_annotations,
            n_types=inputs.n_types,
        )
        for loo in made.loo
    ]
    hlp = Scores(
        *(
            sum(w[:, None] * getattr(r, f) for w, r in zip(made.loo_weights, rounds, strict=True))
            for f in Scores._fields
        )
    )
    reviewed = np.asarray(inputs.reviewed, dtype=bool)
    review_scored = reviewed[annotation_item] & (
        np.asarray(inputs.reviewer_annotator)[annotation_item] != annotator
    )
    review_ref = spans_by_sequence(
        inputs.review, np.where(review_scored, annotation_item, -1), n_items
    )
    reviews = exact_scores(
        own.take(review_scored[own.sequence]),
        review_ref,
        n_sequences=n_annotations,
        n_types=inputs.n_types,
    )
    final = final_spans(made.majority, reviewed, inputs.review)
    decided = reviewed | (np.bincount(annotation_item, minlength=n_items) > 0)
    model = None
    model_items = np.zeros(n_items, dtype=bool)
    if inputs.predicted is not None:
        model_items = decided & np.asarray(inputs.predicted_items, dtype=bool)
        model = exact_scores(
            inputs.predicted.take(model_items[inputs.predicted.sequence]),
            final.take(model_items[final.sequence]),
            n_sequences=n_items,
            n_types=inputs.n_types,
        )
    hlp_items = np.bincount(annotation_item[ref], minlength=n_items) > 0
    return Compared(
        n_items=n_items,
        hlp=hlp,
        hlp_items=hlp_items,
        has_reference=ref,
        reviews=reviews,
        review_scored=review_scored,
        model=model,
        model_items=model_items,
        final=final,
        decided=decided,
    )


def baselines(inputs: Inputs) -> dict:
    """Everything the span baselines page shows, with annotators and types as indices.

    Returns {"hlp", "hlp_ci", "hlp_source" ("reviews" or "consensus"), "hlp_consensus"
    {"f1", "ci", "n_items", "n_annotations", "per_type"}, "hlp_reviews" {"f1", "ci", "n_items",
    "n_annotations", "sufficient", "min_reviewed"}, "model" {"f1", "ci", "n_items",
    "per_type"} or None, "gap", "verdict" (see `verdict`; None without a model),
    "per_annotator" [{"annotator_index", "n", "n_shared", "hlp", "n_reviewed",
    "hlp_reviews"}], "n_final" (items), "n_final_spans", "final_per_type" (spans of each
    type among the final spans), "n_reviewed"}; per_type lists hold
    {"f1", "ci", "n_reference"} in type order.
    """
    done = compare(inputs)
    n_items = done.n_items
    annotation_item = np.asarray(inputs.annotation_item, dtype=np.int64)
    annotator = np.asarray(inputs.annotation_annotator, dtype=np.int64)
    hlp_num, hlp_den = done.hlp.num_den(by=annotation_item, n_groups=n_items)
    consensus_f1, consensus_ci = _figure(hlp_num, hlp_den)
    hlp_types = per_type(done.hlp, annotation_item, n_items)

    rev_num, rev_den = done.reviews.num_den(by=annotation_item, n_groups=n_items)
    rev_items = np.bincount(annotation_item[done.review_scored], minlength=n_items) > 0
    sufficient = int(rev_items.sum()) >= MIN_REVIEWED
    reviews_f1, reviews_ci = _figure(rev_num, rev_den) if sufficient else (None, None)

    use_reviews = reviews_f1 is not None
    headline = (rev_num, rev_den, rev_items) if use_reviews else (hlp_num, hlp_den, done.hlp_items)
    model = verdict_of = None
    if done.model is not None:
        model_num, model_den = done.model.num_den(by=np.arange(n_items), n_groups=n_items)
        model_f1, model_ci = _figure(model_num, model_den)
        model = {
            "f1": model_f1,
            "ci": model_ci,
            "n_items": int(done.model_items.sum()),
            "per_type": per_type(done.model, np.arange(n_items), n_items),
        }
        verdict_of = verdict(*headline, model_num, model_den, done.model_items)

    n_annotators = inputs.n_annotators
    per_n = np.bincount(annotator, minlength=n_annotators)
    per_shared = np.bincount(annotator[done.has_reference], minlength=n_annotators)
    a_num, a_den = done.hlp.num_den(by=annotator, n_groups=n_annotators)
    r_num, r_den = done.reviews.num_den(by=annotator, n_groups=n_annotators)
    per_reviewed = np.bincount(annotator[done.review_scored], minlength=n_annotators)
    per_annotator = [
        {
            "annotator_index": a,
            "n": int(per_n[a]),
            "n_shared": int(per_shared[a]),
            "hlp": f1(a_num[a], a_den[a]) if per_shared[a] else None,
            "n_reviewed": int(per_reviewed[a]),
            "hlp_reviews": f1(r_num[a], r_den[a]) if per_reviewed[a] >= MIN_REVIEWED else None,
        }
        for a in range(n_annotators)
    ]
    hlp = reviews_f1 if use_reviews else consensus_f1
    model_f1 = model["f1"] if model else None
    return {
        "hlp": hlp,
        "hlp_ci": reviews_ci if use_reviews else consensus_ci,
        "hlp_source": "reviews" if use_reviews else "consensus",
        "hlp_consensus": {
            "f1": consensus_f1,
            "ci": consensus_ci,
            "n_items": int(done.hlp_items.sum()),
            "n_annotations": int(done.has_reference.sum()),
            "per_type": hlp_types,
        },
        "hlp_reviews": {
            "f1": reviews_f1,
            "ci": reviews_ci,
            "n_items": int(rev_items.sum()),
            "n_annotations": int(done.review_scored.sum()),
            "sufficient": sufficient,
            "min_reviewed": MIN_REVIEWED,
        },
        "model": model,
        "gap": hlp - model_f1 if hlp is not None and model_f1 is not None else None,
        "verdict": verdict_of,
        "per_annotator": per_annotator,
        "n_final": int(done.decided.sum()),
        "n_final_spans": done.final.n,
        "final_per_type": np.bincount(done.final.label, minlength=inputs.n_types).tolist(),
        "n_reviewed": int(np.asarray(inputs.reviewed, dtype=bool).sum()),
    }


def slice_rows(
    dims: list[Dimension],
    inputs: Inputs,
    *,
    item_of: np.ndarray,
    n_universe: int,
    min_reliable: int = MIN_RELIABLE,
) -> tuple[list[dict], dict]:
    """One row per slice (every value or bin of every dimension), and the overall figures.

    dims: `analysis.metrics.slices.dimensions` over a universe of n_universe items (all the
    project's items); item_of: (n_universe,) the universe item's position in `inputs`' items,
    -1 for an item without annotations. Each row: field, kind, value, order, filterable, n
    (items), share (of the universe), n_labeled (items with final spans), model_f1, model_ci,
    hlp (against the others' consensus), hlp_ci, gap (HLP - model), gap_ci (paired bootstrap;
    only when reliable), potential_gain (gap x share), reliable (n_labeled >= min_reliable).
    Reliable rows first, each group by potential gain (largest first), then size.
    Overall: {"model_f1", "model_ci", "hlp", "hlp_ci", "gap", "gap_ci"}.
    """
    done = compare(inputs)
    n_items = done.n_items
    annotation_item = np.asarray(inputs.annotation_item, dtype=np.int64)
    item_of = np.asarray(item_of, dtype=np.int64)
    present = item_of >= 0

    def universe(values: np.ndarray) -> np.ndarray:
        out = np.zeros(n_universe, dtype=np.float64)
        out[present] = values[item_of[present]]
        return out

    hlp_num, hlp_den = (universe(v) for v in done.hlp.num_den(by=annotation_item, n_groups=n_items))
    labeled = universe(done.decided.astype(np.float64)) > 0
    if done.model is not None:
        model_num, model_den = (
            universe(v) for v in done.model.num_den(by=np.arange(n_items), n_groups=n_items)
        )
    else:
        model_num = model_den = None

    rows = []
    for dim in dims:
        for s, value in enumerate(dim.values):
            members = dim.codes == s
            n = int(members.sum())
            share = n / n_universe if n_universe else 0.0
            n_labeled = int((members & labeled).sum())
            reliable = n_labeled >= min_reliable
            hlp, hlp_ci = _figure(hlp_num[members], hlp_den[members])
            model_f1 = model_ci = gap = gap_ci = None
            if model_num is not None:
                model_f1, model_ci = _figure(model_num[members], model_den[members])
            if hlp is not None and model_f1 is not None:
                gap = hlp - model_f1
                if reliable:
                    gap_ci = ratio_difference_interval(
                        hlp_num[members], hlp_den[members], model_num[members], model_den[members]
                    )
            rows.append(
                {
                    "field": dim.field,
                    "kind": dim.kind,
                    "value": value,
                    "order": s,
                    "filterable": dim.filterable,
                    "n": n,
                    "share": share,
                    "n_labeled": n_labeled,
                    "model_f1": model_f1,
                    "model_ci": model_ci,
                    "hlp": hlp,
                    "hlp_ci": hlp_ci,
                    "gap": gap,
                    "gap_ci": gap_ci,
                    "potential_gain": gap * share if gap is not None else None,
                    "reliable": reliable,
                }
            )
    sort_by_potential_gain(rows)
    hlp, hlp_ci = _figure(hlp_num, hlp_den)
    overall = {"hlp": hlp, "hlp_ci": hlp_ci, "model_f1": None, "model_ci": None}
    overall.update(gap=None, gap_ci=None)
    if model_num is not None:
        overall["model_f1"], overall["model_ci"] = _figure(model_num, model_den)
        if hlp is not None and overall["model_f1"] is not None:
            overall["gap"] = hlp - overall["model_f1"]
            overall["gap_ci"] = ratio_difference_interval(hlp_num, hlp_den, model_num, model_den)
    return rows, overall
