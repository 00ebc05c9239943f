"""Baselines: human-level performance (HLP), the majority-class baseline and model accuracy.

Pure functions over numpy arrays (no Django). Annotations come in long form, one entry per
annotation, because a million items times many annotators does not fit a dense matrix:

    item_index:      (n_annotations,) int, index of the annotated item in [0, n_items)
    annotator_index: (n_annotations,) int, index of the annotator in [0, n_annotators)
    label_index:     (n_annotations,) int, the annotator's class in [0, n_classes)

HLP ("Machine Learning in Production", Ng): how often one human agrees with the reference.
Without ground truth the reference for an annotation is the **leave-one-out consensus**: the
majority of the *other* annotators of the same item (the annotator's own vote must not count,
or everybody would look better than they are). When the others tie, the annotation gets the
expected credit of a random tie-break: 1/k when its label is one of the k tied classes, else 0.
An annotation on an item nobody else labeled has no reference and does not count.

Where reviewers have set final labels on at least `MIN_REVIEWED` items, HLP is also measured
against those (a reviewer's own annotation of an item is not compared with their own review).

Verdicts ("the model is below / at / above human level", "the model beats always answering the
most frequent label") are read from 95% intervals (`model_verdict`), never from the point
figures alone, and not at all on fewer than `MIN_COMPARED_ITEMS` items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.metrics.consensus import majority_from_counts, vote_counts
from analysis.metrics.intervals import ratio_difference_interval

MIN_REVIEWED = 30
MIN_COMPARED_ITEMS = 30
"""Fewest items the model is scored on (and that have an HLP reference) before the page says
whether the model is below, at or above human level, or better than the majority-class
baseline. Under 30 items a single item moves an accuracy by more than 3 points, the 95%
interval of the model-minus-HLP gap spans 30 points or more (a coin-flip model and a perfect
one can both sit inside it), and the percentile bootstrap that gives the interval covers less
than it claims. Below it the page shows "too few items to judge (n=...)"."""
CHUNK = 1_000_000


@dataclass(frozen=True)
class LeaveOneOut:
    """Each annotation scored against the consensus of the item's other annotators.

    credit: (n_annotations,) float64 in [0, 1]: 1 agrees with the others' majority, 0 not,
      1/k when it is one of k tied classes; 0 where there is no reference.
    has_reference: (n_annotations,) bool, some other annotator labeled the item.
    confusion: (n_classes, n_classes) float64, rows = others' consensus, cols = the
      annotator's label (tied consensus split evenly over its rows).
    reference: (n_annotations,) int64 the others' majority class, -1 where they tie or
      there are none (for per-group confusion matrices).
    """

    credit: np.ndarray
    has_reference: np.ndarray
    confusion: np.ndarray
    reference: np.ndarray

    @property
    def accuracy(self) -> float | None:
        n = int(self.has_reference.sum())
        return float(self.credit.sum() / n) if n else None

    @property
    def n(self) -> int:
        return int(self.has_reference.sum())


def reference_weights(others: np.ndarray) -> np.ndarray:
    """Spread each reference over the classes tied for the most votes.

    others: (n, n_classes) vote counts of the other annotators.
    Returns (n, n_classes) float64 rows summing to 1 (or to 0 where there are no votes).
    """
    top = others.max(axis=1, keepdims=True)
    tied = (others == top) & (top > 0)
    k = tied.sum(axis=1, keepdims=True)
    return np.divide(tied, k, out=np.zeros(others.shape, dtype=np.float64), where=k > 0)


def leave_one_out(
    item_index: np.ndarray,
    label_index: np.ndarray,
    *,
    n_items: int,
    n_classes: int,
    counts: np.ndarray | None = None,
) -> LeaveOneOut:
    """Score every annotation against the majority of the other annotators of its item.

    counts: optional (n_items, n_classes) vote counts of all annotations (computed if absent).
    Works in chunks so memory stays at O(CHUNK x n_classes) beyond the inputs.
    """
    item_index = np.asarray(item_index, dtype=np.int64)
    label_index = np.asarray(label_index, dtype=np.int64)
    if counts is None:
        counts = vote_counts(item_index, label_index, n_items=n_items, n_classes=n_classes)
    n = len(item_index)
    credit = np.zeros(n, dtype=np.float64)
    has_reference = np.zeros(n, dtype=bool)
    reference = np.full(n, -1, dtype=np.int64)
    confusion = np.zeros((n_classes, n_classes), dtype=np.float64)
    for start in range(0, n, CHUNK):
        items = item_index[start : start + CHUNK]
        own = label_index[start : start + CHUNK]
        others = counts[items].astype(np.int64)
        others[np.arange(len(own)), own] -= 1
        weights = reference_weights(others)
        credit[start : start + CHUNK] = weights[np.arange(len(own)), own]
        has_reference[start : start + CHUNK] = weights.sum(axis=1) > 0
        reference[start : start + CHUNK] = np.where(
            weights.max(axis=1) == 1.0, weights.argmax(axis=1), -1
        )
        # confusion[ref, own] += weights[:, ref] for every annotation
        for c in range(n_classes):
            confusion[:, c] += weights[own == c].sum(axis=0)
    return LeaveOneOut(
        credit=credit, has_reference=has_reference, confusion=confusion, reference=reference
    )


def per_class_recall(confusion: np.ndarray) -> list[float | None]:
    """Diagonal over row sums: accuracy on the items whose reference is each class.

    confusion: (n_classes, n_classes), rows = reference, cols = prediction.
    Returns n_classes values, None for a class that never is the reference.
    """
    rows = confusion.sum(axis=1)
    return [float(confusion[c, c] / rows[c]) if rows[c] > 0 else None for c in range(len(rows))]


def final_labels(
    counts: np.ndarray, review: np.ndarray | None = None, *, tie_rule: str = "unresolved"
) -> np.ndarray:
    """The label an item ends up with: the reviewer's when set, else the annotators' majority.

    counts: (n_items, n_classes) vote counts; review: (n_items,) int, -1 where not reviewed.
    Returns (n_items,) int64, -1 where neither exists (or an unresolved tie).
    """
    winner, _, _ = majority_from_counts(counts, tie_rule=tie_rule)
    if review is not None:
        review = np.asarray(review, dtype=np.int64)
        winner = np.where(review >= 0, review, winner)
    return winner


def hlp_against_reviews(
    item_index: np.ndarray,
    annotator_index: np.ndarray,
    label_index: np.ndarray,
    review: np.ndarray,
    *,
    reviewer_annotator: np.ndarray | None = None,
    n_annotators: int,
    n_classes: int,
) -> dict:
    """Annotators' accuracy against reviewers' final labels.

    review: (n_items,) int class index, -1 where the item has no review.
    reviewer_annotator: (n_items,) int annotator index of the item's reviewer, -1 when the
      reviewer is not among the annotators (their own annotation is not scored).
    Returns {"accuracy", "n_items", "n_annotations", "per_class", "per_annotator_correct",
    "per_annotator_n", "per_item_correct", "per_item_n", "sufficient"}; accuracy is None
    unless at least MIN_REVIEWED reviewed items carry a scored annotation. The per-item
    arrays ((n_items_total,) where n_items_total = len(review)) feed the interval.
    """
    item_index = np.asarray(item_index, dtype=np.int64)
    review_of = np.asarray(review, dtype=np.int64)[item_index]
    scored = review_of >= 0
    if reviewer_annotator is not None:
        scored &= np.asarray(reviewer_annotator)[item_index] != annotator_index
    own = np.asarray(label_index, dtype=np.int64)[scored]
    ref = review_of[scored]
    n_items = int(len(np.unique(item_index[scored])))
    correct = own == ref
    confusion = np.zeros((n_classes, n_classes), dtype=np.float64)
    np.add.at(confusion, (ref, own), 1.0)
    sufficient = n_items >= MIN_REVIEWED
    per_annotator_correct = np.bincount(
        annotator_index[scored], weights=correct, minlength=n_annotators
    )
    per_annotator_n = np.bincount(annotator_index[scored], minlength=n_annotators)
    n_total = len(review)
    return {
        "accuracy": float(correct.mean()) if sufficient and len(correct) else None,
        "n_items": n_items,
        "n_annotations": int(scored.sum()),
        "per_class": per_class_recall(confusion) if sufficient else None,
        "sufficient": sufficient,
        "per_annotator_correct": per_annotator_correct,
        "per_annotator_n": per_annotator_n,
        "per_item_correct": np.bincount(item_index[scored], weights=correct, minlength=n_total),
        "per_item_n": np.bincount(item_index[scored], minlength=n_total),
    }


def majority_class_baseline(final: np.ndarray, n_classes: int) -> dict:
    """Accuracy of always answering the most frequent final label.

    final: (n_items,) int, -1 where unknown. Returns {"accuracy", "label_index", "n"}.
    """
    known = final[final >= 0]
    if not len(known):
        return {"accuracy": None, "label_index": None, "n": 0}
    counts = np.bincount(known, minlength=n_classes)
    top = int(counts.argmax())
    return {"accuracy": float(counts[top] / len(known)), "label_index": top, "n": int(len(known))}


def model_accuracy(probs: np.ndarray, final: np.ndarray) -> dict:
    """A model's accuracy against the final labels.

    probs: (n_items, n_classes) class probabilities, rows of NaN where the model has no
    prediction; final: (n_items,) int, -1 where unknown.
    Returns {"accuracy", "n", "per_class", "confusion" ((n_classes, n_classes) list, rows =
    final label, cols = predicted)}; accuracy None when no item has both.
    """
    n_classes = probs.shape[1]
    predicted = predicted_labels(probs)
    both = (predicted >= 0) & (final >= 0)
    confusion = np.zeros((n_classes, n_classes), dtype=np.float64)
    np.add.at(confusion, (final[both], predicted[both]), 1.0)
    n = int(both.sum())
    return {
        "accuracy": float((predicted[both] == final[both]).mean()) if n else None,
        "n": n,
        "per_class": per_class_recall(confusion),
        "confusion": confusion.astype(int).tolist(),
    }


def gap_reading(n: int, gap_ci: tuple | None, min_items: int) -> str:
    """The model's place against HLP from the 95% interval of HLP - model: "too_few" under
    `min_items` compared items or without an interval, "below" (the interval above 0),
    "above" (below 0), else "at"."""
    if n < min_items or gap_ci is None:
        return "too_few"
    if gap_ci[0] > 0:
        return "below"
    if gap_ci[1] < 0:
        return "above"
    return "at"


def model_verdict(
    *,
    hlp_credit: np.ndarray,
    hlp_scored: np.ndarray,
    model_hit: np.ndarray,
    model_scored: np.ndarray,
    majority_hit: np.ndarray,
    min_items: int = MIN_COMPARED_ITEMS,
) -> dict:
    """Is the model below, at or above human level, and better than the majority class?

    All arrays are (n_items,) per item: hlp_credit and hlp_scored the HLP credit of the
    item's scored annotations and how many there are (the headline HLP is
    sum(hlp_credit) / sum(hlp_scored)); model_hit 1 where the model's class equals the final
    label, model_scored 1 where the item has both; majority_hit 1 where the final label is
    the majority class. Intervals are paired bootstraps over items (`intervals`).

    Returns {"n" (the smaller of: items the model is scored on, items with an HLP reference),
    "min_items", "gap" (HLP - model), "gap_ci", "reading" ("too_few", "below": the model is
    below human level, "at": the interval holds 0, "above"), "n_model", "over_majority"
    (model - majority-class accuracy on the items the model is scored on),
    "over_majority_ci", "majority_reading" ("too_few", "better", "no_better")}.
    """
    model_scored = np.asarray(model_scored, dtype=np.float64)
    hlp_scored = np.asarray(hlp_scored, dtype=np.float64)
    n_model = int(model_scored.sum())
    n = min(n_model, int((hlp_scored > 0).sum()))
    gap = gap_ci = over = over_ci = None
    if n_model:
        model_acc = float(np.sum(model_hit) / n_model)
        over = model_acc - float(np.sum(np.asarray(majority_hit) * model_scored) / n_model)
        over_ci = ratio_difference_interval(
            model_hit, model_scored, np.asarray(majority_hit) * model_scored, model_scored
        )
        if hlp_scored.sum() > 0:
            gap = float(np.sum(hlp_credit) / hlp_scored.sum()) - model_acc
            gap_ci = ratio_difference_interval(hlp_credit, hlp_scored, model_hit, model_scored)
    reading = gap_reading(n, gap_ci, min_items)
    if n_model < min_items or over_ci is None:
        majority_reading = "too_few"
    else:
        majority_reading = "better" if over_ci[0] > 0 else "no_better"
    return {
        "n": n,
        "min_items": min_items,
        "gap": gap,
        "gap_ci": gap_ci,
        "reading": reading,
        "n_model": n_model,
        "over_majority": over,
        "over_majority_ci": over_ci,
        "majority_reading": majority_reading,
    }


def predicted_labels(probs: np.ndarray) -> np.ndarray:
    """(n_items, n_classes) probabilities -> (n_items,) argmax, -1 where the row is NaN."""
    probs = np.asarray(probs, dtype=np.float64)
    missing = np.isnan(probs).any(axis=1)
    out = np.where(missing, -1, np.nan_to_num(probs, nan=-1.0).argmax(axis=1))
    return out.astype(np.int64)


def baselines(
    item_index: np.ndarray,
    annotator_index: np.ndarray,
    label_index: np.ndarray,
    *,
    n_items: int,
    n_annotators: int,
    n_classes: int,
    review: np.ndarray | None = None,
    reviewer_annotator: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    tie_rule: str = "unresolved",
) -> dict:
    """Everything the baselines page shows, with class and annotator positions as indices.

    review: (n_items,) int, -1 where not reviewed. probs: (n_items, n_classes) or None.
    Returns a dict:
      hlp: headline HLP (against reviews when sufficient, else leave-one-out consensus)
      hlp_source: "reviews" or "consensus"
      hlp_consensus: {"accuracy", "n", "per_class"} against the others' consensus
      hlp_reviews: see `hlp_against_reviews` (without per-annotator arrays)
      majority_class: see `majority_class_baseline`
      model: see `model_accuracy`, or None without probabilities
      gap: hlp - model accuracy (None without a model)
      verdict: see `model_verdict` (None without a model)
      per_annotator: list of {"annotator_index", "n", "n_shared", "hlp", "n_reviewed",
        "hlp_reviews"} (hlp_reviews None under MIN_REVIEWED reviewed items)
      final: (n_items,) final labels (not JSON; for callers that need them)
    """
    item_index = np.asarray(item_index, dtype=np.int64)
    annotator_index = np.asarray(annotator_index, dtype=np.int64)
    label_index = np.asarray(label_index, dtype=np.int64)
    counts = vote_counts(item_index, label_index, n_items=n_items, n_classes=n_classes)
    loo = leave_one_out(
        item_index, label_index, n_items=n_items, n_classes=n_classes, counts=counts
    )
    if review is None:
        review = np.full(n_items, -1, dtype=np.int64)
    reviews = hlp_against_reviews(
        item_index,
        annotator_index,
        label_index,
        review,
        reviewer_annotator=reviewer_annotator,
        n_annotators=n_annotators,
        n_classes=n_classes,
    )
    final = final_labels(counts, review, tie_rule=tie_rule)
    model = model_accuracy(probs, final) if probs is not None else None

    per_n = np.bincount(annotator_index, minlength=n_annotators)
    per_shared = np.bincount(annotator_index, weights=loo.has_reference, minlength=n_annotators)
    per_credit = np.bincount(annotator_index, weights=loo.credit, minlength=n_annotators)
    per_annotator = []
    for a in range(n_annotators):
        n_rev = int(reviews["per_annotator_n"][a])
        per_annotator.append(
            {
                "annotator_index": a,
                "n": int(per_n[a]),
                "n_shared": int(per_shared[a]),
                "hlp": float(per_credit[a] / per_shared[a]) if per_shared[a] else None,
                "n_reviewed": n_rev,
                "hlp_reviews": (
                    float(reviews["per_annotator_correct"][a] / n_rev)
                    if n_rev >= MIN_REVIEWED
                    else None
                ),
            }
        )
    use_reviews = reviews["accuracy"] is not None
    hlp = reviews["accuracy"] if use_reviews else loo.accuracy
    model_acc = model["accuracy"] if model else None
    verdict = None
    if model is not None:
        if use_reviews:
            hlp_credit, hlp_scored = reviews["per_item_correct"], reviews["per_item_n"]
        else:
            hlp_credit = np.bincount(item_index, weights=loo.credit, minlength=n_items)
            hlp_scored = np.bincount(item_index, weights=loo.has_reference, minlength=n_items)
        predicted = predicted_labels(probs)
        scored = (predicted >= 0) & (final >= 0)
        majority_label = majority_class_baseline(final, n_classes)["label_index"]
        verdict = model_verdict(
            hlp_credit=hlp_credit,
            hlp_scored=hlp_scored,
            model_hit=(scored & (predicted == final)).astype(np.float64),
            model_scored=scored.astype(np.float64),
            majority_hit=(final == majority_label).astype(np.float64),
        )
    return {
        "hlp": hlp,
        "hlp_source": "reviews" if use_reviews else "consensus",
        "hlp_consensus": {
            "accuracy": loo.accuracy,
            "n": loo.n,
            "per_class": per_class_recall(loo.confusion),
            "confusion": np.round(loo.confusion, 3).tolist(),
        },
        "hlp_reviews": {
            k: v
            for k, v in reviews.items()
            if k
            not in ("per_annotator_correct", "per_annotator_n", "per_item_correct", "per_item_n")
        },  # fmt: skip
        "majority_class": majority_class_baseline(final, n_classes),
        "model": model,
        "gap": (hlp - model_acc) if hlp is not None and model_acc is not None else None,
        "verdict": verdict,
        "per_annotator": per_annotator,
        "final": final,
    }
