"""Which item should get the next label: queue scores for the `uncertainty` and `activelab` orders.

Lower score = ask first, for both orders, so the queue reads one ascending column
(`Item.priority`).

- ``uncertainty_scores``: the top class's probability (least confident first). Shape: pred_probs
  (n, K) -> (n,).
- ``activelab_scores``: cleanlab's ActiveLab (``cleanlab.multiannotator.
  get_active_learning_scores``, or ``get_active_learning_scores_ensemble`` for several models):
  one score per labeled item (how much one more annotator label would improve its consensus)
  and per unlabeled item (how much a first label would help), on one comparable scale, so an
  item already labeled by others can come before a fresh one.
- ``queue_priorities``: one of the two for every item of a project, from the annotation
  matrix and one or several models' probabilities (the model-refresh job writes it to
  ``Item.priority``); ``consensus_accuracy``: how often the models' top class equals the
  majority label (the refresh's accuracy).

Pure: numpy/cleanlab only, no Django.
"""

from __future__ import annotations

import numpy as np
from cleanlab.multiannotator import (
    get_active_learning_scores,
    get_active_learning_scores_ensemble,
)

from analysis.metrics.consensus import majority_from_counts
from analysis.metrics.label_issues import vote_table


def uncertainty_scores(pred_probs: np.ndarray) -> np.ndarray:
    """(n, K) probabilities -> (n,) top-class probability; the least confident item is lowest."""
    return np.asarray(pred_probs, dtype=float).max(axis=1)


def activelab_scores(
    labels_multiannotator: np.ndarray,
    pred_probs_labeled: np.ndarray | list[np.ndarray],
    pred_probs_unlabeled: np.ndarray | list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """ActiveLab scores of labeled and unlabeled items (lowest first = most useful next label).

    labels_multiannotator: (n_labeled, n_annotators) float, the class index each annotator gave,
        NaN where they gave none; every row has at least one label.
    pred_probs_labeled: (n_labeled, K) out-of-sample probabilities, or a list of such arrays
        (one per model: the ensemble form).
    pred_probs_unlabeled: (n_unlabeled, K) probabilities (or a list, matching), may have 0 rows.
    Returns (labeled_scores (n_labeled,), unlabeled_scores (n_unlabeled,)).
    """
    ensemble = isinstance(pred_probs_labeled, list)
    if ensemble and len(pred_probs_labeled) == 1:
        ensemble = False
        pred_probs_labeled, pred_probs_unlabeled = pred_probs_labeled[0], pred_probs_unlabeled[0]
    score = get_active_learning_scores_ensemble if ensemble else get_active_learning_scores
    if ensemble:
        pred_probs_labeled = np.stack(pred_probs_labeled)
        pred_probs_unlabeled = np.stack(pred_probs_unlabeled)
    n_unlabeled = pred_probs_unlabeled.shape[-2]
    labeled, unlabeled = score(
        labels_multiannotator=np.asarray(labels_multiannotator, dtype=float),
        pred_probs=pred_probs_labeled,
        pred_probs_unlabeled=pred_probs_unlabeled if n_unlabeled else None,
    )
    return np.asarray(labeled, dtype=float), np.asarray(unlabeled if n_unlabeled else [], float)


ORDERS = ("uncertainty", "activelab")


def queue_priorities(
    order: str, labels: np.ndarray, pred_probs: list[np.ndarray]
) -> tuple[np.ndarray, str]:
    """The queue priority of every item for `order` (lowest first), and the method used.

    labels: (n_items, n_annotators) int class indices, -1 where an annotator gave none; rows
        without any label are the unlabeled items.
    pred_probs: one (n_items, K) array per model, no NaN (an ensemble when several).
    Returns (priorities (n_items,) float, method): "uncertainty" is the top-class probability
    of the models' mean; "activelab" is `activelab_scores` over the labeled and unlabeled
    rows, put back in item order (with no labeled item at all, ActiveLab has no annotators to
    weigh, so it falls back to "uncertainty" and says so through the method).
    """
    if order not in ORDERS:
        raise ValueError(f"Unknown queue order {order!r}; allowed: {', '.join(ORDERS)}.")
    labels = np.asarray(labels)
    labeled = (labels >= 0).any(axis=1)
    if order == "uncertainty" or not labeled.any():
        return uncertainty_scores(np.mean(pred_probs, axis=0)), "uncertainty"
    given = labels[labeled]
    # Annotators with no label among these items (e.g. only gold answers) carry no signal.
    given = given[:, (given >= 0).any(axis=0)]
    labels_multiannotator = np.where(given >= 0, given, np.nan).astype(float)
    labeled_scores, unlabeled_scores = activelab_scores(
        labels_multiannotator,
        [p[labeled] for p in pred_probs],
        [p[~labeled] for p in pred_probs],
    )
    out = np.empty(len(labels), dtype=float)
    out[labeled], out[~labeled] = labeled_scores, unlabeled_scores
    return out, "activelab"


def consensus_accuracy(labels: np.ndarray, pred_probs: list[np.ndarray]) -> tuple[int, int]:
    """How often the models' mean top class equals the majority label: (correct, n_judged).

    labels: (n_items, n_annotators) int, -1 where not given; pred_probs as in
    `queue_priorities`. Judged: items with a majority label (no tie).
    """
    consensus, _, _ = majority_from_counts(vote_table(labels, pred_probs[0].shape[1]))
    judged = consensus >= 0
    predicted = np.mean(pred_probs, axis=0).argmax(axis=1)
    return int((predicted[judged] == consensus[judged]).sum()), int(judged.sum())
