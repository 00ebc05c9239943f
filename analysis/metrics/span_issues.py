"""Likely span label errors: which tokens of which items are probably mislabeled, and how
close each annotator's tokens are to the consensus.

Token classes: 0 = `O` (outside any entity), 1 + t = entity type t. An IOB2 tag
(`span_tags`) becomes its type's class, B- and I- alike (`token_types`): the model's columns
are `O` then the types (DESIGN.md, "Span projects"), as cleanlab's token classification takes
them.

- flags: ``cleanlab.token_classification.filter.find_label_issues`` (confident learning over
  every judged token, ``n_jobs=1``: inside a Celery prefork worker cleanlab's multiprocessing
  fails, "daemonic processes are not allowed to have children");
- item scores: ``cleanlab.token_classification.rank.get_label_quality_scores`` (the lowest
  token self-confidence of the item);
- the suggestion for a flagged token: the model's most probable class.

Arrays are flat, sequence after sequence (`span_tags.sequence_offsets`). Pure: numpy and
cleanlab only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cleanlab.token_classification.filter import find_label_issues
from cleanlab.token_classification.rank import get_label_quality_scores

from analysis.metrics.label_issues import rank_by_quality
from analysis.metrics.span_tags import sequence_offsets

METHOD = "token_confident_learning"
LEFT_OUT = -1  # a token without a given class (a tied vote): not judged


def token_types(tags: np.ndarray) -> np.ndarray:
    """IOB2 tag codes -> token classes (0 = O, 1 + t = type t); -1 (undecided) stays -1.
    (n,) int64."""
    tags = np.asarray(tags).astype(np.int64)
    return np.where(tags > 0, (tags - 1) // 2 + 1, np.where(tags < 0, LEFT_OUT, 0))


@dataclass(frozen=True)
class SpanIssues:
    """The judged items' scores and the flagged tokens.

    item_index: (m,) positions of the judged items in the caller's item axis, ascending.
    quality: (m,) float in [0, 1], cleanlab's item label quality score (low: likely wrong).
    rank: (m,) 1 for the lowest quality (ties keep item order).
    is_issue: (m,) bool, the item has a flagged token.
    flagged_item: (f,) the flagged tokens' item positions (caller's item axis), and
    flagged_token: (f,) their index within the item, ordered by item then token;
    flagged_given, flagged_suggested: (f,) the given class and the model's most probable one.
    n_tokens: tokens judged; model_token_accuracy: share of them whose most probable class is
    the given one.
    """

    item_index: np.ndarray
    quality: np.ndarray
    rank: np.ndarray
    is_issue: np.ndarray
    flagged_item: np.ndarray
    flagged_token: np.ndarray
    flagged_given: np.ndarray
    flagged_suggested: np.ndarray
    n_tokens: int
    model_token_accuracy: float | None
    method: str = METHOD

    @property
    def n_items(self) -> int:
        return len(self.item_index)

    @property
    def n_issues(self) -> int:
        return int(self.is_issue.sum())

    @property
    def n_flagged_tokens(self) -> int:
        return len(self.flagged_item)


def find_span_issues(
    labels: np.ndarray,
    lengths: np.ndarray,
    pred_probs: np.ndarray,
    *,
    judged: np.ndarray | None = None,
) -> SpanIssues:
    """cleanlab's token classification on the judged items.

    labels: (T,) int given class per token (0 = O, 1 + t), LEFT_OUT (-1) for a token left out
    of the judgement; lengths: (n,) tokens per item (T = sum); pred_probs: (T, 1 + n_types)
    out-of-sample probabilities (rows of items not judged may be NaN); judged: (n,) bool, the
    items with probabilities (default: all). Items without a token to judge are left out.
    cleanlab sees, per judged item in item order, the labels and probability rows of its
    judged tokens: with no token left out these are exactly the caller's arrays.
    """
    labels = np.asarray(labels, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    pred_probs = np.asarray(pred_probs, dtype=np.float64)
    offsets = sequence_offsets(lengths)
    kept = labels >= 0
    token_item = np.repeat(np.arange(len(lengths)), lengths)
    kept_per_item = np.bincount(token_item[kept], minlength=len(lengths))
    judge = kept_per_item > 0 if judged is None else np.asarray(judged, bool) & (kept_per_item > 0)
    item_index = np.flatnonzero(judge)
    use = kept & judge[token_item]
    positions = np.flatnonzero(use)  # global token positions cleanlab sees, in its order
    cut = sequence_offsets(kept_per_item[item_index])[1:-1]
    if len(positions) == len(labels):  # every token judged: views, no copy
        given, probs = labels, pred_probs
    else:
        given, probs = labels[positions], pred_probs[positions]
    given_lists = np.split(given, cut)
    prob_lists = np.split(probs, cut)
    empty = np.zeros(0, dtype=np.int64)
    if not len(item_index):
        return SpanIssues(
            item_index=item_index, quality=np.zeros(0), rank=empty, is_issue=np.zeros(0, bool),
            flagged_item=empty, flagged_token=empty, flagged_given=empty,
            flagged_suggested=empty, n_tokens=0, model_token_accuracy=None,
        )  # fmt: skip
    flagged = find_label_issues(given_lists, prob_lists, n_jobs=1)
    quality, _ = get_label_quality_scores(given_lists, prob_lists)
    quality = np.asarray(quality, dtype=np.float64)
    if flagged:
        pairs = np.asarray(flagged, dtype=np.int64).reshape(-1, 2)
        flat = positions[sequence_offsets(kept_per_item[item_index])[pairs[:, 0]] + pairs[:, 1]]
        flat.sort()
    else:
        flat = empty
    suggested_all = probs.argmax(axis=1)
    flagged_item = token_item[flat]
    is_issue = np.zeros(len(lengths), dtype=bool)
    is_issue[flagged_item] = True
    return SpanIssues(
        item_index=item_index,
        quality=quality,
        rank=rank_by_quality(quality),
        is_issue=is_issue[item_index],
        flagged_item=flagged_item,
        flagged_token=flat - offsets[flagged_item],
        flagged_given=labels[flat],
        flagged_suggested=pred_probs[flat].argmax(axis=1),
        n_tokens=len(positions),
        model_token_accuracy=float((suggested_all == given).mean()),
    )


@dataclass(frozen=True)
class AnnotatorTokenScores:
    """Per annotator (n_annotators,): how their tokens compare with the consensus and a model.

    n_tokens: their tokens where the consensus decided; agreement: the share of those whose
    class is the consensus class (NaN without any). n_shared_tokens, quality: the same over
    the items that have another annotation too (where the consensus is not their answer
    alone). model_agreement: the share of their tokens whose class is the model's most
    probable one (NaN without a model or without scored tokens).
    """

    n_tokens: np.ndarray
    agreement: np.ndarray
    n_shared_tokens: np.ndarray
    quality: np.ndarray
    model_agreement: np.ndarray


def annotator_token_scores(
    given: np.ndarray,
    token_item_index: np.ndarray,
    token_annotator: np.ndarray,
    *,
    n_annotators: int,
    consensus: np.ndarray,
    shared: np.ndarray,
    model: np.ndarray | None = None,
) -> AnnotatorTokenScores:
    """Token accuracy of each annotator against the consensus (and a model).

    given: (n,) every annotation's token classes, flat; token_item_index: (n,) their
    positions among the items' tokens (`span_tags.item_token_index`); token_annotator: (n,)
    annotator index; consensus: (T,) consensus class per item token, -1 where undecided;
    shared: (T,) bool, the token's item has two annotations or more; model: (T,) the model's
    most probable class per item token, -1 where it scored none.
    """
    given = np.asarray(given, dtype=np.int64)
    token_item_index = np.asarray(token_item_index, dtype=np.int64)
    token_annotator = np.asarray(token_annotator, dtype=np.int64)
    target = np.asarray(consensus, dtype=np.int64)[token_item_index]
    decided = target >= 0
    correct = decided & (given == target)
    in_shared = decided & np.asarray(shared, bool)[token_item_index]

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(token_annotator[mask], minlength=n_annotators).astype(np.int64)

    def share(hits: np.ndarray, total: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, hits / np.maximum(total, 1), np.nan)

    n_tokens = count(decided)
    n_shared = count(in_shared)
    if model is None:
        model_agreement = np.full(n_annotators, np.nan)
    else:
        predicted = np.asarray(model, dtype=np.int64)[token_item_index]
        scored = predicted >= 0
        model_agreement = share(count(scored & (predicted == given)), count(scored))
    return AnnotatorTokenScores(
        n_tokens=n_tokens,
        agreement=share(count(correct), n_tokens),
        n_shared_tokens=n_shared,
        quality=share(count(correct & in_shared), n_shared),
        model_agreement=model_agreement,
    )
