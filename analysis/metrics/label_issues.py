"""Likely label errors: which items' labels are probably wrong, and what they should be.

Three methods, chosen by what the data offers (``find_issues`` picks one and says which):

- ``"confident_learning"``: one label per item plus out-of-sample model probabilities:
  ``cleanlab.filter.find_label_issues`` flags, ``cleanlab.rank.get_label_quality_scores``
  scores (self-confidence), the model's most probable class is the suggestion.
- ``"crowdlab"``: several annotators plus model probabilities:
  ``cleanlab.multiannotator.get_label_quality_multiannotator`` gives the consensus label, its
  quality and each annotator's quality; an item is an issue when confident learning flags its
  consensus label against the model's probabilities, and the suggestion is the model's class.
- ``"dawid_skene"``: several annotators and no model: Dawid-Skene posteriors (crowd-kit via
  ``analysis.metrics.consensus.dawid_skene``). The given label is the plain majority vote (what
  the annotators said, ties unresolved), the suggestion is the Dawid-Skene consensus, the
  quality is the posterior probability of the given label; an item is an issue when weighting
  annotators by their estimated skill changes or settles the vote.

``n_jobs=1`` everywhere: inside a Celery prefork worker cleanlab's default multiprocessing fails
("daemonic processes are not allowed to have children"), and on two cores it is not faster.

Pure: numpy/pandas/cleanlab/crowd-kit only, no Django.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from cleanlab.filter import find_label_issues
from cleanlab.multiannotator import get_label_quality_multiannotator
from cleanlab.rank import get_label_quality_scores

from analysis.metrics.consensus import dawid_skene, majority_from_counts

METHODS = ("confident_learning", "crowdlab", "dawid_skene")
MIN_MODEL_ITEMS = 100
"""Fewest judged items (the run's `n_items`) behind a ranking learned from the project itself
(the built-in model, or Dawid-Skene's per-annotator confusion matrices) before the Issues
page calls its flags "likely errors". The built-in model is cross-validated: on 100 items each
of 5 folds learns from 80, a few dozen per class, and its out-of-sample accuracy is known
only to about +/- 10 points (95% Wilson interval); below that its suggestions mostly show
what it has not learned yet. Below the minimum the page says "too few items to judge (n=...)"."""


@dataclass(frozen=True)
class LabelIssues:
    """Per-item rows (m of them, for the items that could be judged) and per-annotator scores.

    item_index: (m,) int, positions of the judged items in the caller's item axis.
    given: (m,) int class index of the label the item has now (the single label, the CROWDLAB
        consensus, or the majority vote); -1 for a tied vote.
    suggested: (m,) int class index the method proposes.
    quality: (m,) float in [0, 1]; low means the given label is likely wrong.
    is_issue: (m,) bool, flagged as a likely label error.
    rank: (m,) int, 1 for the lowest quality (ties keep item order).
    votes: (m, n_classes) int, annotators' votes per class.
    annotator_quality, annotator_agreement: (n_annotators,) float, NaN where not estimated
        (None for confident learning, which sees one label per item). Agreement is the share
        of the annotator's labels that equal the final consensus.
    model_accuracy: share of judged items whose most probable model class equals the given
        label (None without a model).
    """

    method: str
    item_index: np.ndarray
    given: np.ndarray
    suggested: np.ndarray
    quality: np.ndarray
    is_issue: np.ndarray
    rank: np.ndarray
    votes: np.ndarray
    annotator_quality: np.ndarray | None
    annotator_agreement: np.ndarray | None
    model_accuracy: float | None

    @property
    def n_items(self) -> int:
        return len(self.item_index)

    @property
    def n_issues(self) -> int:
        return int(self.is_issue.sum())


def rank_by_quality(quality: np.ndarray) -> np.ndarray:
    """(m,) 1-based ranks, lowest quality first; equal qualities keep their order."""
    order = np.argsort(quality, kind="stable")
    rank = np.empty(len(quality), dtype=np.int64)
    rank[order] = np.arange(1, len(quality) + 1)
    return rank


def vote_table(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_items, n_classes) vote counts from an (n_items, n_annotators) matrix with -1 missing."""
    labels = np.asarray(labels)
    rows, cols = np.nonzero(labels >= 0)
    flat = rows * n_classes + labels[rows, cols].astype(np.int64)
    return np.bincount(flat, minlength=len(labels) * n_classes).reshape(-1, n_classes)


def agreement_with(labels: np.ndarray, consensus: np.ndarray) -> np.ndarray:
    """(n_annotators,) share of each annotator's labels equal to `consensus` (n_items,)."""
    labels = np.asarray(labels)
    given = labels >= 0
    same = (labels == consensus[:, None]) & given
    n = given.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, same.sum(axis=0) / np.maximum(n, 1), np.nan)


def single_label_issues(
    labels: np.ndarray, pred_probs: np.ndarray, *, votes: np.ndarray | None = None
) -> LabelIssues:
    """Confident learning on one label per item.

    labels: (n,) int class indices in [0, K). pred_probs: (n, K) out-of-sample probabilities.
    """
    labels = np.asarray(labels, dtype=np.int64)
    pred_probs = np.asarray(pred_probs, dtype=np.float64)
    is_issue = find_label_issues(labels, pred_probs, n_jobs=1)
    quality = get_label_quality_scores(labels, pred_probs)
    suggested = pred_probs.argmax(axis=1)
    if votes is None:
        votes = np.zeros_like(pred_probs, dtype=np.int64)
        votes[np.arange(len(labels)), labels] = 1
    return LabelIssues(
        method="confident_learning",
        item_index=np.arange(len(labels)),
        given=labels,
        suggested=suggested,
        quality=quality,
        is_issue=is_issue,
        rank=rank_by_quality(quality),
        votes=votes,
        annotator_quality=None,
        annotator_agreement=None,
        model_accuracy=float((suggested == labels).mean()) if len(labels) else None,
    )


def crowdlab_issues(labels: np.ndarray, pred_probs: np.ndarray) -> LabelIssues:
    """CROWDLAB over several annotators plus model probabilities.

    labels: (n, A) int matrix, -1 where annotator a did not label item i; every item has at
        least one label. pred_probs: (n, K) out-of-sample probabilities.
    """
    labels = np.asarray(labels)
    pred_probs = np.asarray(pred_probs, dtype=np.float64)
    n_annotators = labels.shape[1]
    active = np.flatnonzero((labels >= 0).any(axis=0))  # cleanlab rejects empty columns
    given = labels[:, active].astype(np.float64)
    given[given < 0] = np.nan
    # An array, not a DataFrame: cleanlab copies a DataFrame twice on the way in (`replace`,
    # `astype`), 640 MB at two million items x 20 annotators; the results are the same (its
    # rows and annotators are then numbered 0..n-1, as a DataFrame's default index).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        report = get_label_quality_multiannotator(
            given, pred_probs, return_detailed_quality=False, verbose=False
        )
    label_quality = report["label_quality"]
    consensus = label_quality["consensus_label"].to_numpy(dtype=np.int64)
    quality = label_quality["consensus_quality_score"].to_numpy(dtype=np.float64)
    is_issue = find_label_issues(consensus, pred_probs, n_jobs=1)
    suggested = pred_probs.argmax(axis=1)
    stats = report["annotator_stats"]
    annotator_quality = np.full(n_annotators, np.nan)
    annotator_quality[active[stats.index.to_numpy(dtype=np.int64)]] = stats[
        "annotator_quality"
    ].to_numpy(dtype=np.float64)
    n_classes = pred_probs.shape[1]
    return LabelIssues(
        method="crowdlab",
        item_index=np.arange(len(labels)),
        given=consensus,
        suggested=suggested,
        quality=quality,
        is_issue=is_issue,
        rank=rank_by_quality(quality),
        votes=vote_table(labels, n_classes),
        annotator_quality=annotator_quality,
        annotator_agreement=agreement_with(labels, consensus),
        model_accuracy=float((suggested == consensus).mean()) if len(consensus) else None,
    )


def dawid_skene_issues(labels: np.ndarray, n_classes: int) -> LabelIssues:
    """Dawid-Skene over several annotators without any model.

    labels: (n, A) int matrix, -1 where missing; every item has at least one label.
    """
    labels = np.asarray(labels)
    posteriors, accuracy = dawid_skene(labels, n_classes)
    suggested = posteriors.argmax(axis=1).astype(np.int64)
    votes = vote_table(labels, n_classes)
    given, _, _ = majority_from_counts(votes, "unresolved")
    rows = np.arange(len(labels))
    tied = given < 0
    # A tied vote could be any of the tied classes: score it by the least probable of them.
    tied_posterior = np.where(votes == votes.max(axis=1, keepdims=True), posteriors, np.inf)
    quality = np.where(tied, tied_posterior.min(axis=1), posteriors[rows, np.maximum(given, 0)])
    return LabelIssues(
        method="dawid_skene",
        item_index=rows,
        given=given,
        suggested=suggested,
        quality=quality,
        is_issue=tied | (given != suggested),
        rank=rank_by_quality(quality),
        votes=votes,
        annotator_quality=accuracy,
        annotator_agreement=agreement_with(labels, suggested),
        model_accuracy=None,
    )


def find_issues(
    labels: np.ndarray, n_classes: int, pred_probs: np.ndarray | None = None
) -> LabelIssues:
    """Choose the method from the data and judge every item that can be judged.

    labels: (n_items, n_annotators) int matrix of class indices, -1 where missing.
    pred_probs: (n_items, n_classes) out-of-sample probabilities or None; NaN rows mark items
        the model could not score (they are left out).
    Items without any label are left out. The result's ``item_index`` points into n_items.
    """
    labels = np.asarray(labels)
    judged = (labels >= 0).any(axis=1)
    if pred_probs is not None:
        pred_probs = np.asarray(pred_probs, dtype=np.float64)
        if pred_probs.shape != (len(labels), n_classes):
            raise ValueError(
                f"pred_probs has shape {pred_probs.shape}; expected {(len(labels), n_classes)}."
            )
        judged &= ~np.isnan(pred_probs).any(axis=1)
    index = np.flatnonzero(judged)
    if len(index) == 0:
        raise ValueError("No item has both a label and model probabilities to judge.")
    # Every item judged (the usual case): the arrays themselves, not copies of them.
    everything = len(index) == len(labels)
    sub = labels if everything else labels[index]
    sub_probs = None if pred_probs is None else pred_probs if everything else pred_probs[index]
    several = bool(((sub >= 0).sum(axis=1) > 1).any())
    if pred_probs is None:
        if not several:
            raise ValueError(
                "With one label per item, finding label issues needs model probabilities: "
                "upload predictions or use the built-in model."
            )
        result = dawid_skene_issues(sub, n_classes)
    elif several:
        result = crowdlab_issues(sub, sub_probs)
    else:
        single = sub.max(axis=1).astype(np.int64)
        result = single_label_issues(single, sub_probs, votes=vote_table(sub, n_classes))
    return LabelIssues(**{**result.__dict__, "item_index": index[result.item_index]})
