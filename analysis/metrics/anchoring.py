"""Anchoring: what a model's suggestion does to the labels annotators give.

A suggestion an annotator accepts without looking inflates agreement (everyone copies the
same answer) and hides the model's errors. This module measures it on single-label
annotations in long form, one entry per annotation:

- item, annotator, label: (n,) int, the item's position, the annotator's position and the
  class index given;
- shown: (n,) int, the class index of the suggestion the annotator was shown, -1 where none;
- reference: (n_items,) int, the item's known right class (a gold answer or a reviewer's
  label), -1 where none is known.

Figures (`report`):

- acceptance: share of the shown annotations whose label equals the suggestion.
- agreement with and without a suggestion: Krippendorff's alpha (nominal) and pairwise
  percent agreement among the annotations of each group, an item counting in a group when
  two of its annotations are in it. Only where both groups have such items.
- accuracy against the reference: of annotations shown a right suggestion, shown a wrong
  one, and shown none.
- followed_wrong: of annotations shown a suggestion the reference says is wrong, the share
  that gave that wrong class: the verdict's figure. Annotators who never saw a suggestion
  also pick that same wrong class sometimes (their own errors), measured on the items'
  unsuggested annotations as `followed_wrong_by_chance`; `anchoring` is the excess beyond it,
  (followed_wrong - by_chance) / (1 - by_chance): the share of wrong suggestions taken
  *because* they were shown. Without a reference nothing says which suggestions were wrong:
  the block says so (not measurable) and keeps acceptance and agreement.

Intervals are 95% percentile bootstraps that resample items (an item's annotations are not
independent), pooled by distinct per-item rows as `intervals.ratio_difference_interval`.
Below MIN_WRONG_SHOWN annotations shown a wrong suggestion the verdict is "too few".
"""

from __future__ import annotations

import numpy as np

from analysis.metrics.agreement import (
    alpha_from_counts,
    bootstrap_alpha_ci,
    percent_agreement_from_counts,
)
from analysis.metrics.intervals import BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED, CONFIDENCE

# The fewest annotations shown a wrong suggestion (against a known reference) that a verdict
# on following wrong suggestions rests on: at 30 the interval of a rate near 40% is already
# about +/-17 points wide; below it the page says "too few items to judge".
MIN_WRONG_SHOWN = 30


def _replicate_ratios(
    numerators: np.ndarray, denominators: np.ndarray, *, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """(n_replicates, k) ratios sum(num_j)/sum(den_j) over items resampled with replacement.

    numerators, denominators: (n_items, k) per-item sums. Items with identical rows are pooled
    and each replicate is one multinomial draw over the distinct rows (exact and fast). A
    ratio whose denominator is 0 in a replicate is NaN.
    """
    columns = np.hstack([numerators, denominators]).astype(np.float64)
    patterns, counts = np.unique(columns, axis=0, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(columns), counts / counts.sum(), size=BOOTSTRAP_REPLICATES)
    sums = draws @ patterns
    k = numerators.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[:, :k] / np.where(sums[:, k:] > 0, sums[:, k:], np.nan)


def _interval(replicates: np.ndarray) -> list[float] | None:
    replicates = replicates[np.isfinite(replicates)]
    if not len(replicates):
        return None
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return [float(low), float(high)]


def _rate(hits: np.ndarray, trials: np.ndarray) -> dict:
    """{rate, ci, n} of sum(hits)/sum(trials) with the item bootstrap; per-item (n_items,)."""
    n = int(trials.sum())
    if n == 0:
        return {"rate": None, "ci": None, "n": 0}
    replicates = _replicate_ratios(hits[:, None], trials[:, None])[:, 0]
    return {"rate": float(hits.sum() / n), "ci": _interval(replicates), "n": n}


def _per_item(item: np.ndarray, mask: np.ndarray, n_items: int) -> np.ndarray:
    return np.bincount(item[mask], minlength=n_items).astype(np.float64)


def _group_agreement(item, label, mask, n_items: int, n_classes: int) -> dict:
    """Alpha (with its item-bootstrap interval) and percent agreement of the annotations in
    `mask`, on the items where at least two of them fall."""
    counts = np.zeros((n_items, n_classes), dtype=np.int64)
    np.add.at(counts, (item[mask], label[mask]), 1)
    counts = counts[counts.sum(axis=1) >= 2]
    if not len(counts):
        return {"n_items": 0, "alpha": None, "alpha_ci": None, "percent_agreement": None}
    return {
        "n_items": int(len(counts)),
        "alpha": alpha_from_counts(counts, "nominal"),
        "alpha_ci": bootstrap_alpha_ci(counts, "nominal"),
        "percent_agreement": percent_agreement_from_counts(counts),
    }


def item_suggestions(item: np.ndarray, shown: np.ndarray, n_items: int) -> np.ndarray:
    """(n_items,) the class each item's suggestion named (read from the annotations that were
    shown one; the largest class index where they differ), -1 where none was shown."""
    out = np.full(n_items, -1, dtype=np.int64)
    was_shown = shown >= 0
    np.maximum.at(out, item[was_shown], shown[was_shown].astype(np.int64))
    return out


def report(
    *,
    item: np.ndarray,
    label: np.ndarray,
    shown: np.ndarray,
    reference: np.ndarray,
    n_classes: int,
    class_names: list[str] | None = None,
) -> dict | None:
    """The anchoring figures (module docstring); None when no annotation was shown a
    suggestion. Rates are shares in [0, 1] with `ci` [low, high] and `n` (their denominator).
    """
    item = np.asarray(item, dtype=np.int64)
    label = np.asarray(label, dtype=np.int64)
    shown = np.asarray(shown, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    n_items = len(reference)
    was_shown = shown >= 0
    if not was_shown.any():
        return None
    not_shown = ~was_shown
    accepted = was_shown & (label == shown)
    result: dict = {
        "n_annotations": int(len(item)),
        "n_shown": int(was_shown.sum()),
        "n_not_shown": int(not_shown.sum()),
        "acceptance": _rate(
            _per_item(item, accepted, n_items), _per_item(item, was_shown, n_items)
        ),
    }
    with_group = _group_agreement(item, label, was_shown, n_items, n_classes)
    without_group = _group_agreement(item, label, not_shown, n_items, n_classes)
    result["agreement"] = (
        {"with_suggestion": with_group, "without_suggestion": without_group}
        if with_group["n_items"] and without_group["n_items"]
        else None
    )
    if class_names is not None:
        shown_classes = np.bincount(shown[was_shown], minlength=n_classes)
        result["shown_by_class"] = [
            {"label": name, "n": int(n)} for name, n in zip(class_names, shown_classes, strict=True)
        ]
    result.update(_against_reference(item, label, shown, reference, n_items))
    return result


def _against_reference(item, label, shown, reference, n_items: int) -> dict:
    ref = reference[item]  # each annotation's item reference
    known = ref >= 0
    was_shown = shown >= 0
    right_shown = known & was_shown & (shown == ref)
    wrong_shown = known & was_shown & (shown != ref)
    unshown_known = known & ~was_shown
    correct = label == ref
    n_wrong = int(wrong_shown.sum())
    out: dict = {
        "n_reference": int((reference >= 0).sum()),
        "n_shown_with_reference": int((known & was_shown).sum()),
        "measurable": bool((known & was_shown).any()),
    }
    if not out["measurable"]:
        return out | {
            "suggestion_accuracy": None,
            "accuracy": None,
            "followed_wrong": None,
            "followed_wrong_by_chance": None,
            "anchoring": None,
            "enough": False,
        }

    def per(mask: np.ndarray) -> np.ndarray:
        return _per_item(item, mask, n_items)

    suggested = item_suggestions(item, shown, n_items)
    # The unsuggested annotations of items whose (recorded) suggestion is wrong: how often an
    # annotator left alone picks that same wrong class.
    item_wrong = (suggested >= 0) & (reference >= 0) & (suggested != reference)
    alone_on_wrong = ~was_shown & item_wrong[item]
    picked_it = alone_on_wrong & (label == suggested[item])
    followed = wrong_shown & (label == shown)
    out["suggestion_accuracy"] = _rate(per(right_shown), per(known & was_shown))
    out["accuracy"] = {
        "suggestion_right": _rate(per(right_shown & correct), per(right_shown)),
        "suggestion_wrong": _rate(per(wrong_shown & correct), per(wrong_shown)),
        "no_suggestion": _rate(per(unshown_known & correct), per(unshown_known)),
    }
    out["followed_wrong"] = _rate(per(followed), per(wrong_shown))
    out["followed_wrong_by_chance"] = _rate(per(picked_it), per(alone_on_wrong))
    out["anchoring"] = _excess(per(followed), per(wrong_shown), per(picked_it), per(alone_on_wrong))
    out["enough"] = n_wrong >= MIN_WRONG_SHOWN
    return out


def _excess(followed, wrong_shown, picked, alone) -> dict | None:
    """(f - c) / (1 - c) with f = followed/wrong_shown, c = picked/alone, and its bootstrap
    interval; None without both groups (or when c is 1)."""
    if wrong_shown.sum() == 0 or alone.sum() == 0:
        return None
    f = followed.sum() / wrong_shown.sum()
    c = picked.sum() / alone.sum()
    if c >= 1:
        return None
    ratios = _replicate_ratios(
        np.column_stack([followed, picked]), np.column_stack([wrong_shown, alone])
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        replicates = (ratios[:, 0] - ratios[:, 1]) / (1 - ratios[:, 1])
    return {"rate": float((f - c) / (1 - c)), "ci": _interval(replicates)}


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def verdict(result: dict | None) -> str:
    """The plain sentence the agreement page leads the anchoring section with."""
    if result is None:
        return "No annotation was shown a suggestion."
    if not result["measurable"]:
        return (
            "Not measurable: no item shown a suggestion has a gold or reviewed label, so "
            "nothing says which suggestions were wrong. Acceptance and agreement are shown; "
            "review items or add gold questions to measure anchoring."
        )
    followed = result["followed_wrong"]
    if not result["enough"]:
        return (
            f"Too few items to judge: {followed['n']} annotation"
            f"{'' if followed['n'] == 1 else 's'} were shown a suggestion that the gold or "
            f"reviewed label says was wrong; a verdict needs at least {MIN_WRONG_SHOWN}."
        )
    low, high = followed["ci"]
    sentence = (
        f"Annotators followed a wrong suggestion in {_percent(followed['rate'])} of cases "
        f"(95% interval {_percent(low)}–{_percent(high)}, {followed['n']:,} annotations)."
    )
    chance, excess = result["followed_wrong_by_chance"], result["anchoring"]
    if chance["rate"] is not None and excess is not None:
        sentence += (
            f" Without a suggestion, {_percent(chance['rate'])} chose that same wrong label, "
            f"so {_percent(max(excess['rate'], 0.0))} of wrong suggestions were taken because "
            "they were shown."
        )
    return sentence
