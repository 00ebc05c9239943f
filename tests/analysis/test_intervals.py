"""95% intervals behind every verdict, checked against published values and scipy."""

import numpy as np
import pytest
from scipy import stats

from analysis.metrics.intervals import (
    difference_interval,
    ratio_difference_interval,
    wilson_interval,
)


def test_wilson_interval_matches_the_textbook_value():
    # Newcombe (1998), table I: 81 of 263 -> 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson_interval(0, 0) is None


@pytest.mark.parametrize(
    ("successes", "n", "published"),
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I,
    # method 3 (score / Wilson): the small-sample and boundary examples.
    [(15, 148, (0.0624, 0.1605)), (0, 20, (0.0, 0.1611)), (1, 29, (0.0061, 0.1718))],
)
def test_wilson_interval_matches_newcombes_examples_and_scipy(successes, n, published):
    low, high = wilson_interval(successes, n)
    assert (round(low, 4), round(high, 4)) == published
    reference = stats.binomtest(successes, n).proportion_ci(0.95, method="wilson")
    assert (low, high) == pytest.approx((reference.low, reference.high), abs=1e-12)


@pytest.mark.parametrize(
    ("counts", "published"),
    # Newcombe (1998), "Interval estimation for the difference between independent
    # proportions", table II, method 10 (hybrid score), examples (a), (b), (c) and (e).
    [
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.0582, 0.8062)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ],
)
def test_difference_interval_matches_newcombes_hybrid_score_examples(counts, published):
    low, high = difference_interval(*counts)
    assert (round(low, 4), round(high, 4)) == published


def test_difference_interval_is_undefined_without_items():
    assert difference_interval(0, 0, 3, 10) is None


def test_paired_bootstrap_agrees_with_scipys_bootstrap_over_items():
    """HLP minus model accuracy on 300 items, resampled by item: this module's pooled
    multinomial bootstrap and scipy.stats.bootstrap (an independent implementation resampling
    item indices) give the same percentile interval up to Monte Carlo error."""
    rng = np.random.default_rng(5)
    n = 300
    scored = rng.integers(0, 4, n).astype(float)  # 0-3 scored annotations per item
    credit = np.minimum(scored, rng.binomial(scored.astype(int), 0.85)).astype(float)
    credit[rng.random(n) < 0.1] -= 0.5  # tie credits
    credit = np.clip(credit, 0, None)
    model_scored = (rng.random(n) < 0.9).astype(float)
    model_hit = model_scored * (rng.random(n) < 0.7)

    ours = ratio_difference_interval(credit, scored, model_hit, model_scored, n_replicates=8000)

    def gap(index, axis=-1):
        index = index.astype(int)
        return credit[index].sum(axis) / scored[index].sum(axis) - (
            model_hit[index].sum(axis) / model_scored[index].sum(axis)
        )

    theirs = stats.bootstrap(
        (np.arange(n),),
        gap,
        n_resamples=8000,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(6),
    ).confidence_interval
    point = credit.sum() / scored.sum() - model_hit.sum() / model_scored.sum()
    assert ours[0] < point < ours[1]
    assert ours == pytest.approx((theirs.low, theirs.high), abs=0.006)


def test_paired_bootstrap_is_repeatable_and_undefined_without_a_denominator():
    ones = np.ones(50)
    hits = (np.arange(50) % 4 != 0).astype(float)
    first = ratio_difference_interval(ones, ones, hits, ones)
    assert first == ratio_difference_interval(ones, ones, hits, ones)  # fixed seed
    assert first[0] <= 0.25 <= first[1]
    assert ratio_difference_interval(ones, np.zeros(50), hits, ones) is None
