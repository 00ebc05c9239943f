"""Agreement figures against published values, and the two alpha paths against each other."""

import json

import krippendorff
import numpy as np
import pytest

from analysis.metrics import agreement

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers
# x 12 units, values 1..5, "." missing. Published: nominal 0.743, ordinal 0.815.
K2011 = """
1 2 3 3 2 1 4 1 2 . . .
1 2 3 3 2 2 4 1 2 5 . 3
. 3 3 3 2 3 4 2 2 5 1 .
1 2 3 3 2 4 4 1 2 5 1 .
"""

# Fleiss (1971) as reproduced on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters,
# 5 categories; each row counts how many raters chose each category. Published: 0.210.
FLEISS_1971 = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def krippendorff_2011_matrix() -> np.ndarray:
    """(12 units, 4 observers), classes 0..4, -1 missing."""
    rows = [
        [-1 if value == "." else int(value) - 1 for value in line.split()]
        for line in K2011.strip().splitlines()
    ]
    return np.array(rows).T


def fleiss_matrix() -> np.ndarray:
    """(10 subjects, 14 ratings): the counts expanded to one column per rating."""
    return np.array([np.repeat(np.arange(5), row) for row in FLEISS_1971])


def random_matrix(seed: int, n_items=300, n_annotators=7, n_classes=4, missing=0.4):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_items)
    noisy = np.where(
        rng.random((n_items, n_annotators)) < 0.7,
        truth[:, None],
        rng.integers(0, n_classes, (n_items, n_annotators)),
    )
    return np.where(rng.random((n_items, n_annotators)) < missing, -1, noisy)


REFERENCE_CASES = {
    "krippendorff_2011": (krippendorff_2011_matrix(), 5),
    "fleiss_1971": (fleiss_matrix(), 5),
    "random_4_classes": (random_matrix(1), 4),
    "random_binary_sparse": (random_matrix(2, n_classes=2, missing=0.8), 2),
    "random_10_classes": (random_matrix(3, n_items=2000, n_annotators=20, n_classes=10), 10),
}


def test_alpha_matches_krippendorff_2011_worked_example():
    matrix = krippendorff_2011_matrix()
    assert agreement.krippendorff_alpha(matrix, 5, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert agreement.krippendorff_alpha(matrix, 5, "ordinal") == pytest.approx(0.815, abs=5e-4)


def test_fleiss_kappa_matches_the_fleiss_1971_example():
    kappa, reason = agreement.fleiss_kappa_from_counts(np.array(FLEISS_1971))
    assert reason is None
    assert kappa == pytest.approx(0.210, abs=5e-4)
    counts = agreement.value_counts(fleiss_matrix(), 5)
    assert agreement.fleiss_kappa_from_counts(counts)[0] == pytest.approx(kappa, abs=1e-12)


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_package_and_coincidence_path_give_the_same_alpha(case, level):
    matrix, n_classes = REFERENCE_CASES[case]
    package = agreement.krippendorff_alpha(matrix, n_classes, level, method="package")
    coincidence = agreement.krippendorff_alpha(matrix, n_classes, level, method="coincidence")
    assert package is not None
    assert coincidence == pytest.approx(package, abs=1e-9)
    # And both equal the package called the documented way, on reliability data.
    data = np.where(matrix >= 0, matrix, np.nan).T
    direct = krippendorff.alpha(
        reliability_data=data, level_of_measurement=level, value_domain=np.arange(n_classes)
    )
    assert package == pytest.approx(direct, abs=1e-9)


def test_percent_agreement_counts_agreeing_pairs():
    # Item 1: 3 of 3 pairs agree; item 2: 1 of 3 pairs; item 3 has one rating (no pairs).
    matrix = np.array([[0, 0, 0], [1, 1, 0], [1, -1, -1]])
    assert agreement.percent_agreement(matrix, 2) == pytest.approx(4 / 6)


def test_bootstrap_interval_contains_alpha_and_is_deterministic():
    matrix, n_classes = REFERENCE_CASES["random_4_classes"]
    counts = agreement.value_counts(matrix, n_classes)
    alpha = agreement.alpha_from_counts(counts, "nominal")
    first = agreement.bootstrap_alpha_ci(counts, "nominal", n_replicates=500, seed=7)
    again = agreement.bootstrap_alpha_ci(counts, "nominal", n_replicates=500, seed=7)
    other = agreement.bootstrap_alpha_ci(counts, "nominal", n_replicates=500, seed=8)
    assert first == again
    assert first != other
    assert first[0] < alpha < first[1]
    assert first[1] - first[0] < 0.2


def test_bootstrap_replicates_equal_alpha_of_the_resampled_items():
    """A replicate's weighted coincidence sums give exactly alpha of the resampled matrix."""
    matrix, n_classes = REFERENCE_CASES["krippendorff_2011"]
    counts = agreement.value_counts(matrix, n_classes)
    keep = agreement.pairable(counts)
    for level in ("nominal", "ordinal"):
        patterns, inverse = np.unique(counts[keep], axis=0, return_inverse=True)
        rng = np.random.default_rng(3)
        draws = rng.integers(0, keep.sum(), keep.sum())
        weights = np.bincount(inverse.ravel()[draws], minlength=len(patterns)).astype(float)
        feature = agreement._item_features(patterns, level)
        sums = np.atleast_2d(feature.T @ weights) if level == "ordinal" else weights @ feature
        replicate = agreement._alphas_from_replicates(np.atleast_2d(sums), n_classes, level)[0]
        expected = agreement.alpha_from_counts(counts[keep][draws], level, method="package")
        assert replicate == pytest.approx(expected, abs=1e-9)


def test_ordinal_bootstrap_interval_contains_ordinal_alpha():
    matrix, n_classes = REFERENCE_CASES["random_10_classes"]
    counts = agreement.value_counts(matrix, n_classes)
    alpha = agreement.alpha_from_counts(counts, "ordinal")
    low, high = agreement.bootstrap_alpha_ci(counts, "ordinal", n_replicates=200)
    assert low < alpha < high


def test_one_annotator_answers_in_words():
    matrix = np.array([[0], [1], [1]])
    report = agreement.report(matrix, ["a", "b"], ["solo"], n_replicates=50)
    assert report["alpha"] is None and report["alpha_ci"] is None
    assert report["percent_agreement"] is None and report["fleiss_kappa"] is None
    assert any("Only one annotator" in note for note in report["notes"])
    assert report["reading"] == "undefined"
    json.dumps(report, allow_nan=False)


def test_single_rating_items_are_excluded_and_counted():
    matrix = np.array([[0, 0], [1, 1], [0, 1], [1, -1], [-1, 0]])
    report = agreement.report(matrix, ["a", "b"], ["x", "y"], n_replicates=50)
    assert report["n_items_single_rating"] == 2
    assert report["n_items_used"] == 3
    assert report["n_items"] == 5 and report["n_annotations"] == 8
    assert any("2 item(s) with a single rating" in note for note in report["notes"])
    # Alpha over the three pairable items only.
    assert report["alpha"] == pytest.approx(agreement.krippendorff_alpha(matrix[:3], 2), abs=1e-6)


def test_no_variation_answers_in_words_not_nan():
    matrix = np.zeros((30, 3), dtype=int)
    report = agreement.report(matrix, ["a", "b"], ["x", "y", "z"], n_replicates=50)
    assert report["alpha"] is None
    assert report["percent_agreement"] == 1.0
    assert report["fleiss_kappa"] is None
    assert "without variation" in report["fleiss_kappa_reason"]
    assert any("No variation" in note for note in report["notes"])
    assert all(p["kappa"] is None for p in report["per_pair"])
    json.dumps(report, allow_nan=False)


def test_fleiss_kappa_is_null_with_a_reason_for_unequal_rating_counts():
    matrix = krippendorff_2011_matrix()
    kappa, reason = agreement.fleiss_kappa_from_counts(agreement.value_counts(matrix, 5))
    assert kappa is None
    assert "unequal numbers of ratings (2 to 4)" in reason


def test_cohen_kappa_pairs_match_scikit_learn_and_skip_pairs_with_few_shared_items():
    from sklearn.metrics import cohen_kappa_score

    matrix, n_classes = REFERENCE_CASES["random_10_classes"]
    matrix = matrix.copy()
    matrix[15:, 0] = -1  # annotator 0 now shares at most 15 items with anyone
    pairs = agreement.cohen_kappa_pairs(matrix, n_classes, min_shared=20)
    assert all(p["a"] != 0 for p in pairs)
    assert len(pairs) == 19 * 18 // 2
    pair = pairs[0]
    both = (matrix[:, pair["a"]] >= 0) & (matrix[:, pair["b"]] >= 0)
    expected = cohen_kappa_score(matrix[both, pair["a"]], matrix[both, pair["b"]])
    assert pair["kappa"] == pytest.approx(expected, abs=1e-12)
    assert pair["n"] == both.sum()


def test_each_annotator_is_compared_with_the_majority_of_the_others():
    # The fourth annotator is the odd one out; the last item's others are tied (skipped).
    matrix = np.array([[0, 0, 0, 1], [1, 1, 1, 0], [0, 0, 1, 1], [1, -1, -1, 0], [0, 1, -1, 0]])
    n, agree = agreement.majority_of_others(matrix, 2)
    assert n.tolist() == [4, 4, 3, 4]
    assert agree.tolist() == [2, 2, 2, 0]


def test_confusion_with_others_counts_the_other_ratings_of_each_item():
    matrix = np.array([[0, 0, 1], [1, 1, 0]])
    confusion = agreement.confusion_with_others(matrix, 2)
    assert confusion[0].tolist() == [[1, 1], [1, 1]]
    assert confusion[2].tolist() == [[0, 2], [2, 0]]


def test_per_label_alpha_is_the_binary_one_vs_rest_alpha():
    matrix, _ = REFERENCE_CASES["krippendorff_2011"]
    report = agreement.report(matrix, list("abcde"), list("ABCD"), n_replicates=0)
    binary = np.where(matrix >= 0, (matrix == 2).astype(int), -1)
    row = next(r for r in report["per_label"] if r["label"] == "c")
    assert row["alpha"] == pytest.approx(agreement.krippendorff_alpha(binary, 2), abs=1e-6)


def test_multilabel_alpha_is_the_mean_of_the_per_label_binary_alphas():
    rng = np.random.default_rng(5)
    chosen = (rng.random((200, 4, 3)) < np.array([0.2, 0.5, 0.8])).astype(np.int8)
    chosen[rng.random((200, 4)) < 0.3] = -1
    report = agreement.report_multilabel(chosen, ["x", "y", "z"], list("ABCD"), n_replicates=200)
    per_label = [agreement.krippendorff_alpha(chosen[:, :, c], 2) for c in range(3)]
    assert report["alpha"] == pytest.approx(np.mean(per_label), abs=1e-6)
    assert [r["alpha"] for r in report["per_label"]] == pytest.approx(per_label, abs=1e-6)
    assert report["alpha_ci"][0] < report["alpha"] < report["alpha_ci"][1]
    json.dumps(report, allow_nan=False)


def test_item_entropy_is_zero_when_unanimous_and_one_bit_for_an_even_split():
    counts = np.array([[3, 0], [1, 1], [0, 0], [2, 2]])
    assert agreement.item_entropy(counts).tolist() == [0.0, 1.0, 0.0, 1.0]


def test_readings_follow_krippendorffs_thresholds():
    assert agreement.reading(0.8) == "reliable"
    assert agreement.reading(0.7) == "tentative"
    assert agreement.reading(0.5) == "not reliable"
    assert agreement.reading(None) == "undefined"


def test_large_data_takes_the_coincidence_path_with_the_same_value():
    matrix, n_classes = REFERENCE_CASES["random_10_classes"]
    counts = agreement.value_counts(matrix, n_classes)
    assert agreement.package_fits(counts)
    big = np.tile(counts, (1000, 1))  # 2,000,000 units: too big for the package's arrays
    assert not agreement.package_fits(big)
    assert agreement.alpha_from_counts(big, "nominal") == pytest.approx(
        agreement.alpha_from_counts(counts, "nominal", method="package"), abs=1e-4
    )


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_one_vs_rest_alphas_from_the_coincidence_matrix_equal_the_recoded_data(case):
    matrix, n_classes = REFERENCE_CASES[case]
    counts = agreement.value_counts(matrix, n_classes)
    from_blocks = agreement.one_vs_rest_alphas(agreement.coincidence_matrix(counts))
    for c in range(n_classes):
        recoded = np.where(matrix >= 0, (matrix == c).astype(int), -1)
        expected = agreement.krippendorff_alpha(recoded, 2, method="package")
        if expected is None:
            assert from_blocks[c] is None
        else:
            assert from_blocks[c] == pytest.approx(expected, abs=1e-9)
