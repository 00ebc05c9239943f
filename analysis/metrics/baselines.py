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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.metrics.consensus import majority_from_counts, vote_counts

MIN_REVIEWED = 30
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
    "per_annotator_n", "sufficient"}; accuracy is None unless at least MIN_REVIEWED
    reviewed items carry a scored annotation.
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
    return {
        "accuracy": float(correct.mean()) if sufficient and len(correct) else None,
        "n_items": n_items,
        "n_annotations": int(scored.sum()),
        "per_class": per_class_recall(confusion) if sufficient else None,
        "sufficient": sufficient,
        "per_annotator_correct": per_annotator_correct,
        "per_annotator_n": per_annotator_n,
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
            if k not in ("per_annotator_correct", "per_annotator_n")
        },
        "majority_class": majority_class_baseline(final, n_classes),
        "model": model,
        "gap": (hlp - model_acc) if hlp is not None and model_acc is not None else None,
        "per_annotator": per_annotator,
        "final": final,
    }
