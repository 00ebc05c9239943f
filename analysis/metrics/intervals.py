"""How sure a figure is: 95% intervals for the proportions and differences the pages judge by.

Pure functions over numpy (no Django). Three intervals, each for the shape of its question:

- `wilson_interval`: one proportion, successes out of n independent trials (Wilson 1927). It
  stays inside [0, 1] and keeps close to its nominal coverage for small n, where the textbook
  p +/- 1.96 se interval collapses to a point at 0/n or n/n.
- `difference_interval`: the difference of two *independent* proportions, p1 - p2, by
  Newcombe's hybrid score method (Newcombe 1998, method 10), built from the two Wilson
  intervals; used for a share that moved between two batches.
- `ratio_difference_interval`: the difference of two ratios measured on the *same* items,
  sum(num_a)/sum(den_a) - sum(num_b)/sum(den_b) (HLP, scored over annotations, minus model
  accuracy, scored over items), by the percentile bootstrap resampling items. Items are the
  unit because one item's annotations are not independent of each other.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

CONFIDENCE = 0.95
BOOTSTRAP_REPLICATES = 2000
BOOTSTRAP_SEED = 20260101


def _z(confidence: float) -> float:
    return float(norm.ppf(0.5 + confidence / 2))


def wilson_interval(
    successes: float, n: float, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Wilson score interval for the proportion successes/n; None when n == 0.

    successes may be fractional (a tied reference gives 1/k credit); it is used as a count.
    """
    if n <= 0:
        return None
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def difference_interval(
    successes_1: float, n_1: float, successes_2: float, n_2: float,
    confidence: float = CONFIDENCE,
) -> tuple[float, float] | None:  # fmt: skip
    """Newcombe's hybrid score interval for p1 - p2 of two independent samples.

    p1 = successes_1 / n_1, p2 = successes_2 / n_2; None when either n is 0.
    """
    first = wilson_interval(successes_1, n_1, confidence)
    second = wilson_interval(successes_2, n_2, confidence)
    if first is None or second is None:
        return None
    p1, p2 = successes_1 / n_1, successes_2 / n_2
    delta = p1 - p2
    low = delta - math.sqrt((p1 - first[0]) ** 2 + (second[1] - p2) ** 2)
    high = delta + math.sqrt((first[1] - p1) ** 2 + (p2 - second[0]) ** 2)
    return (max(-1.0, low), min(1.0, high))


def ratio_difference_interval(
    num_a: np.ndarray,
    den_a: np.ndarray,
    num_b: np.ndarray,
    den_b: np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of sum(num_a)/sum(den_a) - sum(num_b)/sum(den_b).

    num_a, den_a, num_b, den_b: (n_items,) per-item sums (for HLP: the credit of the item's
    scored annotations and how many there are; for a model: 1/0 hit and 1/0 scored). Items
    are resampled with replacement, the same items for both ratios (a paired bootstrap).
    Items with identical rows are pooled, so each replicate is one multinomial draw over the
    distinct rows: exact, and fast for a million items (the values take few distinct
    combinations). Replicates in which a denominator is 0 are left out.
    Returns None when either ratio is undefined on the full sample.
    """
    columns = np.column_stack([num_a, den_a, num_b, den_b]).astype(np.float64)
    if not len(columns) or columns[:, 1].sum() <= 0 or columns[:, 3].sum() <= 0:
        return None
    patterns, counts = np.unique(columns, axis=0, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(columns), counts / counts.sum(), size=n_replicates)
    sums = draws @ patterns  # (n_replicates, 4)
    defined = (sums[:, 1] > 0) & (sums[:, 3] > 0)
    sums = sums[defined]
    differences = sums[:, 0] / sums[:, 1] - sums[:, 2] / sums[:, 3]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return (float(low), float(high))
