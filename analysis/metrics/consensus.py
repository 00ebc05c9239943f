"""Consensus labels from several annotators: majority vote and Dawid-Skene.

Every function is pure (numpy/pandas, no Django). Labels come either as a dense
(n_items, n_annotators) int matrix with -1 where an annotator did not label the item, or in
long form (one entry per annotation), which is what a million-item project should use: a dense
matrix of a million items times a thousand crowd workers would not fit in memory.

Tie rule of the majority vote (deterministic, documented because it changes the dataset):

- ``"unresolved"`` (default): when two or more classes share the highest vote count the item
  has no winner (-1). A tie is a disagreement the team should look at, not a coin flip.
- ``"first_class"``: the tie goes to the lowest class index among the tied classes, i.e. the
  class that comes first in the project's label order.

crowd-kit's own ``MajorityVote`` breaks ties by its own internal order, so its accuracy on a
dataset with ties can differ from both rules above.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TIE_RULES = ("unresolved", "first_class")


def vote_counts(
    item_index: np.ndarray, label_index: np.ndarray, *, n_items: int, n_classes: int
) -> np.ndarray:
    """Votes per item and class from annotations in long form.

    item_index, label_index: (n_annotations,) int arrays; item_index in [0, n_items),
    label_index in [0, n_classes) (entries < 0 are ignored as missing).
    Returns (n_items, n_classes) int32 counts.
    """
    item_index = np.asarray(item_index)
    label_index = np.asarray(label_index)
    missing = label_index < 0
    if missing.any():
        item_index, label_index = item_index[~missing], label_index[~missing]
    # One flat bin per (item, class), built in place: a few million annotations stay cheap.
    flat = item_index.astype(np.int64, copy=True)
    flat *= n_classes
    flat += label_index
    del missing
    counts = np.bincount(flat, minlength=n_items * n_classes)
    return counts.reshape(n_items, n_classes).astype(np.int32)


def majority_from_counts(
    counts: np.ndarray, tie_rule: str = "unresolved"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Majority vote over a vote-count table.

    counts: (n_items, n_classes) non-negative ints.
    Returns (winner, agreement, n_votes):
      winner: (n_items,) int64 class index; -1 for items without votes, and for ties when
        tie_rule is "unresolved".
      agreement: (n_items,) float64 share of the item's votes that went to the most voted
        class (also for unresolved ties, where it is the tied classes' share each); NaN
        without votes.
      n_votes: (n_items,) int64 number of votes.
    """
    if tie_rule not in TIE_RULES:
        raise ValueError(f"tie_rule must be one of {', '.join(TIE_RULES)}; got {tie_rule!r}")
    counts = np.asarray(counts)
    n_votes = counts.sum(axis=1).astype(np.int64)
    top = counts.max(axis=1) if counts.shape[1] else np.zeros(len(counts), dtype=np.int64)
    # argmax returns the first (lowest) index among equal maxima: the "first_class" rule.
    winner = counts.argmax(axis=1).astype(np.int64) if counts.shape[1] else -np.ones(len(counts))
    if tie_rule == "unresolved":
        tied = (counts == top[:, None]).sum(axis=1) > 1
        winner[tied] = -1
    winner[n_votes == 0] = -1
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = np.where(n_votes > 0, top / np.maximum(n_votes, 1), np.nan)
    return winner, agreement.astype(np.float64), n_votes


def majority_vote(
    labels: np.ndarray, n_classes: int, tie_rule: str = "unresolved"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Majority vote per item.

    labels: (n_items, n_annotators) int matrix of class indices, -1 where missing.
    n_classes: number of classes K; labels are in [0, K).
    tie_rule: "unresolved" (ties give -1) or "first_class" (lowest tied class index wins).
    Returns (winner (n_items,) int, -1 for unresolved or no votes;
             agreement (n_items,) float share of votes for the winning/top class, NaN if none;
             n_votes (n_items,) int).
    """
    labels = np.asarray(labels)
    n_items = labels.shape[0]
    rows, _ = np.nonzero(labels >= 0)
    counts = vote_counts(rows, labels[labels >= 0], n_items=n_items, n_classes=n_classes)
    return majority_from_counts(counts, tie_rule)


def dawid_skene_long(
    item_index: np.ndarray,
    annotator_index: np.ndarray,
    label_index: np.ndarray,
    *,
    n_items: int,
    n_annotators: int,
    n_classes: int,
    n_iter: int = 100,
    true_labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Dawid-Skene (1979) EM over annotations in long form, computed by crowd-kit
    (`analysis.metrics.dawid_skene.LongFormDawidSkene`: its fit, each step in long form).

    item_index, annotator_index, label_index: (n_annotations,) int arrays (label < 0 ignored).
    true_labels: optional (n_items,) int array, the known class of an item (a gold question's
      answer) or -1; passed to crowd-kit's `DawidSkene.fit(data, true_labels=...)`, which holds
      those items' class at the known one in every EM step, so the annotators' confusion
      matrices learn from their answers to them.
    Returns (posteriors, annotator_accuracy):
      posteriors: (n_items, n_classes) float64, each labeled item's posterior class
        probabilities; rows of items without any annotation are all NaN.
      annotator_accuracy: (n_annotators,) float64, the estimated probability that the annotator
        gives the true class, sum_k prior_k * P(answer=k | truth=k); NaN for annotators without
        annotations.
    """
    # Imported here: crowdkit.aggregation adds 17 MB to a web process that has loaded every
    # view (measured); such a process needs it only for a Dawid-Skene export.
    from analysis.metrics.dawid_skene import LongFormDawidSkene

    item_index = np.asarray(item_index, dtype=np.int64)
    annotator_index = np.asarray(annotator_index, dtype=np.int64)
    label_index = np.asarray(label_index, dtype=np.int64)
    keep = label_index >= 0
    posteriors = np.full((n_items, n_classes), np.nan)
    accuracy = np.full(n_annotators, np.nan)
    if not keep.any():
        return posteriors, accuracy
    # int32 codes: half the memory of the one long frame the fit keeps (annotations, not
    # items, are the millions).
    frame = pd.DataFrame(
        {
            "task": item_index[keep].astype(np.int32),
            "worker": annotator_index[keep].astype(np.int32),
            "label": label_index[keep].astype(np.int32),
        }
    )
    known = None
    if true_labels is not None:
        true_labels = np.asarray(true_labels, dtype=np.int64)
        tasks = np.flatnonzero(true_labels >= 0)
        tasks = tasks[np.isin(tasks, frame["task"].to_numpy())]  # items someone answered
        if len(tasks):
            known = pd.Series(true_labels[tasks], index=tasks)
    model = LongFormDawidSkene(n_iter=n_iter).fit(frame, true_labels=known)
    # crowd-kit only knows the classes it saw; put them back into the full K columns.
    probas = model.probas_.reindex(columns=range(n_classes), fill_value=0.0)
    posteriors[probas.index.to_numpy(dtype=np.int64)] = probas.to_numpy(dtype=np.float64)

    priors = model.priors_.reindex(range(n_classes), fill_value=0.0).to_numpy(dtype=np.float64)
    errors = model.errors_  # index (worker, answer), columns true class: P(answer | truth)
    diagonal = errors.stack().rename("p").reset_index()
    diagonal.columns = ["worker", "answer", "truth", "p"]
    diagonal = diagonal[diagonal["answer"] == diagonal["truth"]]
    weighted = (
        diagonal["p"].to_numpy(dtype=np.float64)
        * priors[diagonal["truth"].to_numpy(dtype=np.int64)]
    )
    per_worker = pd.Series(weighted).groupby(diagonal["worker"].to_numpy(dtype=np.int64)).sum()
    accuracy[per_worker.index.to_numpy(dtype=np.int64)] = per_worker.to_numpy()
    return posteriors, accuracy


def dawid_skene(
    labels: np.ndarray, n_classes: int, n_iter: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Dawid-Skene consensus over a dense label matrix, through crowd-kit's ``DawidSkene``.

    labels: (n_items, n_annotators) int matrix of class indices, -1 where missing.
    Returns (posteriors (n_items, n_classes) float, NaN rows for items without labels;
             annotator_accuracy (n_annotators,) float, NaN for annotators without labels).
    The consensus label is ``posteriors.argmax(axis=1)`` for labeled items.
    """
    labels = np.asarray(labels)
    rows, cols = np.nonzero(labels >= 0)
    return dawid_skene_long(
        rows,
        cols,
        labels[rows, cols],
        n_items=labels.shape[0],
        n_annotators=labels.shape[1],
        n_classes=n_classes,
        n_iter=n_iter,
    )


def posterior_winner(posteriors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Consensus class and its probability from posteriors.

    posteriors: (n_items, n_classes) float, NaN rows for unlabeled items.
    Returns (winner (n_items,) int64, -1 for NaN rows; confidence (n_items,) float, NaN there).
    """
    posteriors = np.asarray(posteriors, dtype=np.float64)
    labeled = ~np.isnan(posteriors).any(axis=1) if posteriors.shape[1] else np.zeros(0, bool)
    filled = np.where(np.isnan(posteriors), -np.inf, posteriors)
    winner = filled.argmax(axis=1).astype(np.int64) if posteriors.shape[1] else np.zeros(0)
    winner[~labeled] = -1
    confidence = np.where(labeled, filled.max(axis=1), np.nan)
    return winner, confidence
