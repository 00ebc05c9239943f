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

Pure: numpy/cleanlab only, no Django.
"""

from __future__ import annotations

import numpy as np
from cleanlab.multiannotator import (
    get_active_learning_scores,
    get_active_learning_scores_ensemble,
)


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
