"""Inter-annotator agreement: how far a team's labels can be trusted.

Pure functions over numpy arrays; no Django. The common input is a label matrix:

    labels: (n_items, n_annotators) int array of class indices 0..n_classes-1, -1 where the
    annotator did not label the item.

Krippendorff's alpha comes from the `krippendorff` package while its (units x classes^2)
working arrays fit in memory and from the coincidence matrix built with one sparse matrix
product beyond that; both give the same value (tests check it to 1e-9 on every reference
case). Every function answers None (with a reason in `report`'s notes) rather than NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import krippendorff
import numpy as np
import sklearn
from scipy import sparse
from sklearn.metrics import cohen_kappa_score

LEVELS = ("nominal", "ordinal")
# The package builds several float64 (units, classes, classes) arrays; above this many bytes
# the coincidence path answers instead (identical value, a fraction of the memory).
PACKAGE_MEMORY_LIMIT = 256 * 1024 * 1024
PACKAGE_TEMPORARIES = 4
MIN_SHARED_ITEMS = 20
BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 20110101
BOOTSTRAP_CHUNK = 50
RELIABLE = 0.800
TENTATIVE = 0.667


# ---------------------------------------------------------------------------------------------
# Building blocks


def value_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_items, n_classes) int64: how many annotators gave each class to each item.

    labels: (n_items, n_annotators) int, -1 for missing.
    """
    labels = np.asarray(labels)
    n_items = labels.shape[0]
    rows, cols = np.nonzero(labels >= 0)
    flat = rows.astype(np.int64) * n_classes + labels[rows, cols].astype(np.int64)
    return np.bincount(flat, minlength=n_items * n_classes).reshape(n_items, n_classes)


def pairable(counts: np.ndarray) -> np.ndarray:
    """(n_items,) bool: items with at least two ratings (the only ones alpha can use)."""
    return counts.sum(axis=1) >= 2


def coincidence_matrix(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's (n_classes, n_classes) coincidence matrix from value counts.

    counts: (n_items, n_classes). o[c, k] = sum over items u with m_u >= 2 ratings of
    (n_uc * n_uk - [c == k] * n_uc) / (m_u - 1), built with one sparse matrix product.
    """
    counts = counts[pairable(counts)]
    weight = 1.0 / (counts.sum(axis=1) - 1.0)
    c = sparse.csr_matrix(counts.astype(np.float64))
    product = (c.T @ sparse.diags(weight) @ c).toarray()
    return product - np.diag(weight @ counts)


def distance_matrix(n_v: np.ndarray, level: str) -> np.ndarray:
    """(n_classes, n_classes) squared distances for `level` ("nominal" or "ordinal").

    n_v: (n_classes,) pairable values per class (the coincidence matrix's marginals), which
    the ordinal metric needs: d(c, k) = (sum_{g=c..k} n_g - (n_c + n_k) / 2) ** 2.
    """
    n_classes = len(n_v)
    if level == "nominal":
        return 1.0 - np.eye(n_classes)
    if level == "ordinal":
        index = np.arange(n_classes)
        low = np.minimum(index[:, None], index[None, :])
        high = np.maximum(index[:, None], index[None, :])
        cumulative = np.concatenate([[0.0], np.cumsum(n_v)])
        between = cumulative[high + 1] - cumulative[low]
        return (between - (n_v[low] + n_v[high]) / 2.0) ** 2
    raise ValueError(f"Unknown level {level!r}; allowed: {', '.join(LEVELS)}.")


def alpha_from_coincidences(o: np.ndarray, level: str = "nominal") -> float | None:
    """Alpha = 1 - D_o / D_e from a (n_classes, n_classes) coincidence matrix.

    None when the expected disagreement is zero (no variation among the values).
    """
    n_v = o.sum(axis=0)
    n = n_v.sum()
    if n < 2:
        return None
    d = distance_matrix(n_v, level)
    expected = ((np.outer(n_v, n_v) - np.diag(n_v)) * d).sum() / (n - 1)
    if expected <= 0:
        return None
    return float(1.0 - (o * d).sum() / expected)


def package_fits(counts: np.ndarray) -> bool:
    n_units = int(pairable(counts).sum())
    n_classes = counts.shape[1]
    return n_units * n_classes * n_classes * 8 * PACKAGE_TEMPORARIES <= PACKAGE_MEMORY_LIMIT


def alpha_from_counts(
    counts: np.ndarray, level: str = "nominal", method: str = "auto"
) -> float | None:
    """Krippendorff's alpha from (n_items, n_classes) value counts.

    method: "package" (krippendorff.alpha), "coincidence" (one sparse product) or "auto"
    (the package while its working arrays fit in PACKAGE_MEMORY_LIMIT).
    None when no item has two ratings or the values do not vary.
    """
    if level not in LEVELS:
        raise ValueError(f"Unknown level {level!r}; allowed: {', '.join(LEVELS)}.")
    if method not in ("auto", "package", "coincidence"):
        raise ValueError(f"Unknown method {method!r}; allowed: auto, package, coincidence.")
    keep = pairable(counts)
    if not keep.any() or counts.shape[1] < 2:
        return None
    o = coincidence_matrix(counts)
    if alpha_from_coincidences(o, level) is None:
        return None  # no variation: the package would divide zero by zero
    if method == "coincidence" or (method == "auto" and not package_fits(counts)):
        return alpha_from_coincidences(o, level)
    return float(
        krippendorff.alpha(
            value_counts=counts[keep],
            value_domain=np.arange(counts.shape[1]),
            level_of_measurement=level,
        )
    )


def krippendorff_alpha(
    labels: np.ndarray, n_classes: int, level: str = "nominal", method: str = "auto"
) -> float | None:
    """Krippendorff's alpha of a (n_items, n_annotators) label matrix (-1 missing)."""
    return alpha_from_counts(value_counts(labels, n_classes), level, method)


def percent_agreement(labels: np.ndarray, n_classes: int) -> float | None:
    """Share of agreeing pairs among all pairs of ratings on the same item.

    labels: (n_items, n_annotators) int, -1 for missing. None when no item has two ratings.
    """
    return percent_agreement_from_counts(value_counts(labels, n_classes))


def percent_agreement_from_counts(counts: np.ndarray) -> float | None:
    m = counts.sum(axis=1)
    pairs = (m * (m - 1) // 2).sum()
    if pairs == 0:
        return None
    agreeing = (counts * (counts - 1) // 2).sum()
    return float(agreeing / pairs)


def fleiss_kappa_from_counts(counts: np.ndarray) -> tuple[float | None, str | None]:
    """Fleiss' kappa over items with >= 2 ratings; (None, reason) when it does not apply.

    counts: (n_items, n_classes). Fleiss (1971) assumes every item has the same number m of
    ratings; P_i = (sum_j n_ij^2 - m) / (m (m - 1)), kappa = (mean P_i - P_e) / (1 - P_e).
    """
    counts = counts[pairable(counts)]
    if len(counts) == 0:
        return None, "no item has two ratings"
    m = counts.sum(axis=1)
    if (m != m[0]).any():
        return None, (
            f"items have unequal numbers of ratings ({int(m.min())} to {int(m.max())}); "
            "Fleiss' kappa needs the same number on every item"
        )
    m = float(m[0])
    p_item = ((counts.astype(np.float64) ** 2).sum(axis=1) - m) / (m * (m - 1))
    p_class = counts.sum(axis=0) / counts.sum()
    p_e = float((p_class**2).sum())
    if p_e >= 1.0:
        return None, "every rating is the same class; kappa is undefined without variation"
    return float((p_item.mean() - p_e) / (1.0 - p_e)), None


def item_entropy(counts: np.ndarray) -> np.ndarray:
    """(n_items,) Shannon entropy in bits of each item's label distribution (0: unanimous).

    counts: (n_items, n_classes).
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(share > 0, -share * np.log2(share), 0.0)
    return terms.sum(axis=1) + 0.0  # + 0.0 turns -0.0 into 0.0


def reading(alpha: float | None) -> str:
    """Krippendorff's plain reading of an alpha value."""
    if alpha is None:
        return "undefined"
    if alpha >= RELIABLE:
        return "reliable"
    if alpha >= TENTATIVE:
        return "tentative"
    return "not reliable"


# ---------------------------------------------------------------------------------------------
# Bootstrap: each replicate is a weighted sum of per-item coincidence contributions


def _item_features(counts: np.ndarray, level: str) -> sparse.csr_matrix | np.ndarray:
    """Per-item contributions whose weighted sums give a replicate's coincidence statistics.

    nominal: dense (n_units, n_classes + 1) = the item's row marginals and its diagonal sum.
    ordinal: sparse (n_units, n_classes^2) = the item's whole coincidence contribution.
    Only pairable units (m >= 2) are included.
    """
    counts = counts[pairable(counts)].astype(np.float64)
    weight = 1.0 / (counts.sum(axis=1) - 1.0)
    if level == "nominal":
        diagonal = ((counts * (counts - 1)).sum(axis=1) * weight)[:, None]
        return np.hstack([counts, diagonal])
    n_classes = counts.shape[1]
    rows, cols = np.nonzero(counts)
    pair_items, pair_c, pair_k = [], [], []
    # Expand each item's non-zero classes into its (c, k) pairs.
    order = np.argsort(rows, kind="stable")
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, np.arange(len(counts)))
    ends = np.searchsorted(rows, np.arange(len(counts)), side="right")
    width = int((ends - starts).max()) if len(counts) else 0
    for a in range(width):
        for b in range(width):
            has = (starts + a < ends) & (starts + b < ends)
            items = np.nonzero(has)[0]
            pair_items.append(items)
            pair_c.append(cols[starts[items] + a])
            pair_k.append(cols[starts[items] + b])
    items = np.concatenate(pair_items) if pair_items else np.zeros(0, dtype=np.int64)
    c = np.concatenate(pair_c) if pair_c else np.zeros(0, dtype=np.int64)
    k = np.concatenate(pair_k) if pair_k else np.zeros(0, dtype=np.int64)
    values = (counts[items, c] * counts[items, k] - (c == k) * counts[items, c]) * weight[items]
    return sparse.csr_matrix(
        (values, (items, c * n_classes + k)), shape=(len(counts), n_classes * n_classes)
    )


def _alphas_from_replicates(sums: np.ndarray, n_classes: int, level: str) -> np.ndarray:
    """(n_replicates,) alpha per replicate from the weighted feature sums (NaN: undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if level == "nominal":
            n_v = sums[:, :n_classes]
            n = n_v.sum(axis=1)
            observed = n - sums[:, n_classes]
            expected = (n**2 - (n_v**2).sum(axis=1)) / (n - 1)
            return 1.0 - observed / np.where(expected > 0, expected, np.nan)
        out = np.empty(len(sums))
        for r, flat in enumerate(sums):
            o = flat.reshape(n_classes, n_classes)
            value = alpha_from_coincidences(o, level)
            out[r] = np.nan if value is None else value
        return out


def count_patterns(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows of a (n_items, n_columns) count matrix.

    Returns (patterns (n_patterns, n_columns), inverse (n_items,) pattern of each row,
    frequency (n_patterns,)). Rows are encoded as one int64 number when they fit, which is
    ~20x faster than np.unique(axis=0).
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size == 0:
        return counts[:0], np.zeros(len(counts), dtype=np.int64), np.zeros(0, dtype=np.int64)
    base = int(counts.max()) + 1
    if counts.min() >= 0 and counts.shape[1] * math.log2(base) < 62:
        key = counts @ (base ** np.arange(counts.shape[1], dtype=np.int64))
        _, first, inverse, frequency = np.unique(
            key, return_index=True, return_inverse=True, return_counts=True
        )
        return counts[first], inverse.ravel(), frequency
    patterns, inverse, frequency = np.unique(
        counts, axis=0, return_inverse=True, return_counts=True
    )
    return patterns, inverse.ravel(), frequency


def bootstrap_replicate_alphas(
    counts_per_part: Sequence[np.ndarray],
    level: str = "nominal",
    n_replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
) -> np.ndarray:
    """(n_replicates, n_parts) alphas over the same resampled items for each part.

    counts_per_part: list of (n_items, n_classes_p) value counts over the SAME items (one
    part for single-label data, one binary part per label for multi-label data). Items are
    resampled with replacement among items pairable in the first part.

    Items with the same value counts contribute the same coincidences, so a replicate is a
    weighted sum over the distinct count patterns; with few patterns (the usual case: 5
    ratings of 10 classes have at most 2002) the weights are one multinomial draw per
    replicate, which is exact and fast.
    """
    keep = pairable(counts_per_part[0])
    n_units = int(keep.sum())
    if n_units == 0:
        return np.full((0, len(counts_per_part)), np.nan)
    stacked = np.hstack([c[keep] for c in counts_per_part])
    patterns, inverse, frequency = count_patterns(stacked)
    bounds = np.cumsum([0] + [c.shape[1] for c in counts_per_part])
    features = [
        _item_features(patterns[:, bounds[p] : bounds[p + 1]], level)
        for p in range(len(counts_per_part))
    ]
    return _resampled_alphas(
        features,
        [c.shape[1] for c in counts_per_part],
        inverse,
        frequency,
        level=level,
        n_replicates=n_replicates,
        seed=seed,
    )


def _resampled_alphas(
    features: Sequence[sparse.csr_matrix | np.ndarray],
    n_classes_per_part: Sequence[int],
    inverse: np.ndarray,
    frequency: np.ndarray,
    *,
    level: str,
    n_replicates: int,
    seed: int,
) -> np.ndarray:
    """(n_replicates, n_parts) alphas of bootstrap resamples of the sampling units.

    features: per part, (n_patterns, n_features) summed coincidence features of each distinct
    unit pattern (`_item_features`, summed over a unit's values when a unit is a cluster);
    inverse: (n_units,) each unit's pattern; frequency: (n_patterns,) units per pattern.
    """
    n_units = len(inverse)
    n_patterns = len(frequency)
    rng = np.random.default_rng(seed)
    use_multinomial = n_patterns <= max(1000, n_units // 20)
    out = np.empty((n_replicates, len(features)))
    for start in range(0, n_replicates, BOOTSTRAP_CHUNK):
        size = min(BOOTSTRAP_CHUNK, n_replicates - start)
        if use_multinomial:
            weights = rng.multinomial(n_units, frequency / n_units, size=size)
        else:
            draws = inverse[rng.integers(0, n_units, size=(size, n_units))]
            flat = (draws + (np.arange(size) * n_patterns)[:, None]).ravel()
            weights = np.bincount(flat, minlength=size * n_patterns).reshape(size, n_patterns)
        weights = weights.astype(np.float64)
        for p, (feature, n_classes) in enumerate(zip(features, n_classes_per_part, strict=True)):
            if sparse.issparse(feature):
                sums = np.asarray(feature.T @ weights.T).T
            else:
                sums = weights @ feature
            out[start : start + size, p] = _alphas_from_replicates(sums, n_classes, level)
    return out


def bootstrap_clustered_alphas(
    counts: np.ndarray,
    clusters: np.ndarray,
    level: str = "nominal",
    n_replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
) -> np.ndarray:
    """(n_replicates,) alphas of a bootstrap that resamples CLUSTERS of units, not units.

    counts: (n_units, n_classes) value counts of the units (tokens, say); clusters: (n_units,)
    int, the cluster (the sentence) each unit belongs to. Units of one cluster are not
    independent, so the clusters are drawn with replacement, each bringing all its pairable
    units: a replicate's coincidences are the weighted sum of each cluster's summed unit
    features (`_item_features`), so a replicate costs one matrix product.
    """
    counts = np.asarray(counts)
    keep = pairable(counts)
    if not keep.any():
        return np.full(0, np.nan)
    _, cluster_index = np.unique(np.asarray(clusters)[keep], return_inverse=True)
    cluster_index = cluster_index.ravel()
    n_clusters = int(cluster_index.max()) + 1
    unit_features = _item_features(counts[keep], level)
    members = sparse.csr_matrix(
        (np.ones(len(cluster_index)), (cluster_index, np.arange(len(cluster_index)))),
        shape=(n_clusters, len(cluster_index)),
    )
    summed = members @ unit_features
    if sparse.issparse(summed):
        summed = sparse.csr_matrix(summed)
        inverse, frequency = np.arange(n_clusters), np.ones(n_clusters, dtype=np.int64)
    else:
        # Clusters with the same summed features (say, sentences all agreed on, of one length)
        # are one pattern: the multinomial shortcut applies when patterns are few.
        summed, inverse, frequency = np.unique(
            summed, axis=0, return_inverse=True, return_counts=True
        )
        inverse = inverse.ravel()
    return _resampled_alphas(
        [summed],
        [counts.shape[1]],
        inverse,
        frequency,
        level=level,
        n_replicates=n_replicates,
        seed=seed,
    )[:, 0]


def bootstrap_alpha_ci(
    counts: np.ndarray,
    level: str = "nominal",
    n_replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = 0.95,
) -> list[float] | None:
    """Percentile bootstrap interval [low, high] for alpha, resampling items (fixed seed)."""
    return interval(
        bootstrap_replicate_alphas([counts], level, n_replicates, seed)[:, 0], confidence
    )


def interval(replicates: np.ndarray, confidence: float = 0.95) -> list[float] | None:
    finite = replicates[np.isfinite(replicates)]
    if len(finite) < 2:
        return None
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return [float(low), float(high)]


# ---------------------------------------------------------------------------------------------
# Per annotator, per pair, per label


def cohen_kappa_pairs(
    labels: np.ndarray, n_classes: int, min_shared: int = MIN_SHARED_ITEMS
) -> list[dict]:
    """Cohen's kappa (scikit-learn) for every annotator pair sharing >= min_shared items.

    labels: (n_items, n_annotators). Returns [{a, b, n, kappa}] with a < b annotator indices;
    kappa None when both annotators used one and the same class throughout.

    Every pair's (n_classes, n_classes) table of joint labels comes from one sparse product
    of the one-hot ratings; scikit-learn then scores each table (its cells as weighted
    samples), which is the same kappa as on the raw label pairs (tested) at a fraction of
    the cost.
    """
    n_items, n_annotators = labels.shape
    rows, annotators = np.nonzero(labels >= 0)
    ones = np.ones(len(rows))
    one_hot = sparse.csr_matrix(
        (ones, (rows, annotators * n_classes + labels[rows, annotators])),
        shape=(n_items, n_annotators * n_classes),
    )
    joint = one_hot.T @ one_hot
    # Small enough (the usual case): slice a dense array instead of the sparse matrix.
    joint = joint.toarray() if joint.shape[0] ** 2 <= 4_000_000 else joint.tocsr()
    presence = sparse.csr_matrix((ones, (rows, annotators)), shape=(n_items, n_annotators))
    shared = (presence.T @ presence).toarray()
    a_idx, b_idx = np.nonzero(np.triu(shared >= min_shared, k=1))
    first, second = (g.ravel() for g in np.indices((n_classes, n_classes)))
    class_list = list(range(n_classes))
    out = []
    # The inputs are known-good integer arrays: skip scikit-learn's per-call validation.
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        for a, b in zip(a_idx.tolist(), b_idx.tolist(), strict=True):
            block = joint[a * n_classes : (a + 1) * n_classes, b * n_classes : (b + 1) * n_classes]
            table = (block.toarray() if sparse.issparse(block) else block).ravel()
            used = table > 0
            if used.sum() == 1 and first[used][0] == second[used][0]:
                kappa = None  # one and the same class throughout: kappa is 0/0
            else:
                value = cohen_kappa_score(
                    first[used], second[used], labels=class_list, sample_weight=table[used]
                )
                kappa = float(value) if math.isfinite(value) else None
            out.append({"a": a, "b": b, "n": int(shared[a, b]), "kappa": kappa})
    return out


def _ratings_and_others(labels: np.ndarray, n_classes: int):
    """Long form of a label matrix: for every rating, its item, annotator, class, and the
    (n_ratings, n_classes) int16 counts of the OTHER annotators' classes on the same item."""
    counts = value_counts(labels, n_classes).astype(np.int16)
    rows, annotators = np.nonzero(labels >= 0)
    own = labels[rows, annotators].astype(np.int64)
    others = counts[rows]
    others[np.arange(len(rows)), own] -= 1
    return rows, annotators, own, counts, others


def majority_of_others(labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each annotator against the majority label of the other annotators of the same items.

    labels: (n_items, n_annotators). Returns (n, agree), each (n_annotators,) int: items the
    annotator shares with at least one other rating whose majority is unique (ties skipped),
    and how many of those the annotator's label equals.
    """
    _, annotators, own, _, others = _ratings_and_others(labels, n_classes)
    top = others.max(axis=1) if len(others) else np.zeros(0, dtype=np.int16)
    unique_top = (others == top[:, None]).sum(axis=1) == 1
    usable = (top > 0) & unique_top
    agree = usable & (others.argmax(axis=1) == own)
    n_annotators = labels.shape[1]
    return (
        np.bincount(annotators[usable], minlength=n_annotators),
        np.bincount(annotators[agree], minlength=n_annotators),
    )


def confusion_with_others(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_annotators, n_classes, n_classes): [a, c, k] = ratings k by others on items a rated c.

    One sparse product: (annotator, own class) x items indicator times the item counts, minus
    the annotator's own rating.
    """
    n_items, n_annotators = labels.shape
    counts = value_counts(labels, n_classes)
    rows, annotators = np.nonzero(labels >= 0)
    own = labels[rows, annotators].astype(np.int64)
    key = annotators * n_classes + own
    size = n_annotators * n_classes
    indicator = sparse.csr_matrix((np.ones(len(rows)), (key, rows)), shape=(size, n_items))
    total = np.asarray(indicator @ counts).reshape(n_annotators, n_classes, n_classes)
    own_counts = np.bincount(key, minlength=size).reshape(n_annotators, n_classes)
    total -= own_counts[:, :, None] * np.eye(n_classes, dtype=np.int64)[None, :, :]
    return np.rint(total).astype(int)


def one_vs_rest_alphas(o: np.ndarray) -> list[float | None]:
    """Per class, the nominal alpha of "this class or not" from a (V, V) coincidence matrix.

    Merging values adds up their coincidences, so each binary matrix is a sum of o's blocks:
    identical to alpha of the recoded data (tested), without touching the items again.
    """
    out = []
    total = o.sum()
    for c in range(len(o)):
        inside, row, col = o[c, c], o[c].sum(), o[:, c].sum()
        binary = np.array([[total - row - col + inside, col - inside], [row - inside, inside]])
        out.append(alpha_from_coincidences(binary, "nominal"))
    return out


def one_vs_rest_counts(counts: np.ndarray) -> list[np.ndarray]:
    """Per class c, (n_items, 2) counts of [not c, c]: the binary one-vs-rest question."""
    m = counts.sum(axis=1)
    return [np.stack([m - counts[:, c], counts[:, c]], axis=1) for c in range(counts.shape[1])]


# ---------------------------------------------------------------------------------------------
# The report


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def summary(
    counts_per_part: Sequence[np.ndarray],
    *,
    level: str = "nominal",
    n_replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
    n_annotators: int,
) -> dict:
    """The contract's headline figures for one set of items.

    counts_per_part: [counts] for single-label data; one (n_items, 2) binary part per label
    for multi-label data (alpha is then the mean of the per-label alphas).
    """
    notes: list[str] = []
    first = counts_per_part[0]
    m = first.sum(axis=1)
    rated = m > 0
    single = int((m == 1).sum())
    n_pairable = int((m >= 2).sum())
    out = {
        "n_items": int(rated.sum()),
        "n_annotations": int(m.sum()),
        "n_items_single_rating": single,
        "n_items_used": n_pairable,
    }
    if single:
        notes.append(
            f"{single} item(s) with a single rating were excluded (agreement needs two ratings)."
        )
    alphas = [alpha_from_counts(c, level) for c in counts_per_part]
    if out["n_annotations"] == 0:
        notes.append("No annotations yet, so there is nothing to measure.")
    elif n_annotators < 2:
        notes.append("Only one annotator: agreement needs at least two.")
    elif n_pairable == 0:
        notes.append("No item has two ratings yet, so agreement cannot be measured.")
    elif any(a is None for a in alphas):
        notes.append(
            "No variation: every rating is the same class, so alpha is undefined (there is "
            "nothing to disagree about)."
            if len(alphas) == 1
            else "Some labels never vary; their alpha is undefined and left out of the mean."
        )
    defined = [a for a in alphas if a is not None]
    alpha = float(np.mean(defined)) if defined else None
    ci = None
    if alpha is not None and n_replicates > 0:
        replicates = bootstrap_replicate_alphas(counts_per_part, level, n_replicates, seed)
        chosen = replicates[:, [i for i, a in enumerate(alphas) if a is not None]]
        # Mean over the parts defined in each replicate (a resample may lose all variation).
        finite = np.isfinite(chosen)
        n_finite = finite.sum(axis=1)
        means = np.divide(
            np.where(finite, chosen, 0.0).sum(axis=1),
            n_finite,
            out=np.full(len(chosen), np.nan),
            where=n_finite > 0,
        )
        ci = interval(means)
    agreements = [percent_agreement_from_counts(c) for c in counts_per_part]
    agreements = [a for a in agreements if a is not None]
    fleiss = [fleiss_kappa_from_counts(c) for c in counts_per_part]
    fleiss_values = [f for f, _ in fleiss]
    fleiss_kappa = (
        float(np.mean(fleiss_values))
        if fleiss_values and all(f is not None for f in fleiss_values)
        else None
    )
    fleiss_reason = next((reason for _, reason in fleiss if reason), None)
    if fleiss_kappa is None and fleiss_reason and n_pairable:
        notes.append(f"Fleiss' kappa not applicable: {fleiss_reason}.")
    out.update(
        alpha=_round(alpha),
        alpha_ci=None if ci is None else [_round(ci[0]), _round(ci[1])],
        reading=reading(alpha),
        percent_agreement=_round(np.mean(agreements)) if agreements else None,
        fleiss_kappa=_round(fleiss_kappa),
        fleiss_kappa_reason=None if fleiss_kappa is not None else fleiss_reason,
        level=level,
        notes=notes,
    )
    return out


def report(
    labels: np.ndarray,
    class_names: Sequence[str],
    annotator_names: Sequence[str],
    *,
    ordered: bool = False,
    versions: Sequence[tuple[int, np.ndarray, Sequence[str]]] = (),
    n_replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
    min_shared: int = MIN_SHARED_ITEMS,
) -> dict:
    """The JSON-ready agreement report of a single-label project.

    labels: (n_items, n_annotators) int matrix, -1 missing; columns named by annotator_names.
    versions: [(guideline version, its (n_items_v, n_annotators_v) matrix, its column names)].
    Contract keys: alpha, alpha_ci, percent_agreement, fleiss_kappa, n_items, n_annotations,
    by_guideline_version, per_annotator; plus per_pair, per_label, confusion, notes.
    """
    n_classes = len(class_names)
    level = "ordinal" if ordered else "nominal"
    counts = value_counts(labels, n_classes)
    active = (labels >= 0).any(axis=0)
    out = summary(
        [counts], level=level, n_replicates=n_replicates, seed=seed, n_annotators=int(active.sum())
    )
    out["by_guideline_version"] = [
        {
            "version": int(version),
            **summary(
                [value_counts(matrix, n_classes)],
                level=level,
                n_replicates=n_replicates,
                seed=seed,
                n_annotators=int((matrix >= 0).any(axis=0).sum()),
            ),
            "per_annotator": per_annotator(matrix, n_classes, names),
        }
        for version, matrix, names in versions
    ]
    out["per_annotator"] = per_annotator(labels, n_classes, annotator_names)
    ratings = (labels >= 0).sum(axis=0)
    out["per_pair"] = [
        {
            "a": str(annotator_names[p["a"]]),
            "b": str(annotator_names[p["b"]]),
            "n": p["n"],
            "kappa": _round(p["kappa"]),
        }
        for p in cohen_kappa_pairs(labels, n_classes, min_shared)
    ]
    if not out["per_pair"] and out["n_items_used"]:
        out["notes"].append(
            f"No annotator pair shares {min_shared} or more items, so no Cohen's kappa."
        )
    class_counts = counts.sum(axis=0)
    label_alphas = (
        one_vs_rest_alphas(coincidence_matrix(counts))
        if pairable(counts).any()
        else [None] * n_classes
    )
    out["per_label"] = [
        {
            "label": str(name),
            "n": int(class_counts[c]),
            "alpha": _round(alpha),
            "percent_agreement": _round(percent_agreement_from_counts(part)),
        }
        for c, (name, part, alpha) in enumerate(
            zip(class_names, one_vs_rest_counts(counts), label_alphas, strict=True)
        )
    ]
    confusion = confusion_with_others(labels, n_classes)
    out["confusion"] = {
        "labels": [str(c) for c in class_names],
        "annotators": [
            {"annotator": str(annotator_names[a]), "matrix": confusion[a].tolist()}
            for a in range(labels.shape[1])
            if ratings[a]
        ],
    }
    out["multi_label"] = False
    return out


def per_annotator(labels: np.ndarray, n_classes: int, names: Sequence[str]) -> list[dict]:
    """[{annotator, n, n_annotations, agreement}]: agreement with the majority of the others.

    labels: (n_items, n_annotators); names: (n_annotators,) column names.
    """
    n, agree = majority_of_others(labels, n_classes)
    ratings = (labels >= 0).sum(axis=0)
    return [
        {
            "annotator": str(names[a]),
            "n": int(n[a]),
            "n_annotations": int(ratings[a]),
            "agreement": _round(agree[a] / n[a]) if n[a] else None,
        }
        for a in range(labels.shape[1])
        if ratings[a]
    ]


def per_annotator_multilabel(chosen: np.ndarray, names: Sequence[str]) -> list[dict]:
    """As `per_annotator`, pooling each label's decisions; chosen: (items, annotators, labels)."""
    n_total = np.zeros(chosen.shape[1], dtype=np.int64)
    agree_total = np.zeros(chosen.shape[1], dtype=np.int64)
    for c in range(chosen.shape[2]):
        n, agree = majority_of_others(chosen[:, :, c], 2)
        n_total += n
        agree_total += agree
    ratings = (chosen[:, :, 0] >= 0).sum(axis=0) if chosen.size else n_total
    return [
        {
            "annotator": str(names[a]),
            "n": int(ratings[a]),
            "n_annotations": int(ratings[a]),
            "agreement": _round(agree_total[a] / n_total[a]) if n_total[a] else None,
        }
        for a in range(chosen.shape[1])
        if ratings[a]
    ]


def multilabel_entropy(chosen: np.ndarray) -> np.ndarray:
    """(n_items,) summed binary entropy (bits) of each label's chosen/not-chosen split."""
    return sum(item_entropy(part) for part in multilabel_parts(chosen))


def multilabel_parts(chosen: np.ndarray) -> list[np.ndarray]:
    """Per label, (n_items, 2) counts [not chosen, chosen] from a multi-label array.

    chosen: (n_items, n_annotators, n_labels) int8: 1 chosen, 0 not chosen, -1 not labeled.
    """
    return [value_counts(chosen[:, :, c], 2) for c in range(chosen.shape[2])]


def report_multilabel(
    chosen: np.ndarray,
    class_names: Sequence[str],
    annotator_names: Sequence[str],
    *,
    versions: Sequence[tuple[int, np.ndarray, Sequence[str]]] = (),
    n_replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
    min_shared: int = MIN_SHARED_ITEMS,
) -> dict:
    """The agreement report of a multi-label project: binary alpha per label and their mean.

    chosen: (n_items, n_annotators, n_labels) int8, -1 where the annotator did not label the
    item. Keys as in `report`; per_pair holds Cohen's kappa averaged over the labels.
    """
    parts = multilabel_parts(chosen)
    active = (chosen[:, :, 0] >= 0).any(axis=0) if chosen.size else np.zeros(0, bool)
    out = summary(
        parts, level="nominal", n_replicates=n_replicates, seed=seed, n_annotators=int(active.sum())
    )
    out["by_guideline_version"] = [
        {
            "version": int(version),
            **summary(
                multilabel_parts(matrix),
                level="nominal",
                n_replicates=n_replicates,
                seed=seed,
                n_annotators=int((matrix[:, :, 0] >= 0).any(axis=0).sum()) if matrix.size else 0,
            ),
            "per_annotator": per_annotator_multilabel(matrix, names),
        }
        for version, matrix, names in versions
    ]
    out["per_annotator"] = per_annotator_multilabel(chosen, annotator_names)
    pair_kappas: dict[tuple[int, int], list] = {}
    for c in range(chosen.shape[2]):
        for p in cohen_kappa_pairs(chosen[:, :, c], 2, min_shared):
            pair_kappas.setdefault((p["a"], p["b"]), [p["n"], []])[1].append(p["kappa"])
    out["per_pair"] = []
    for (a, b), (n, kappas) in sorted(pair_kappas.items()):
        defined = [k for k in kappas if k is not None]
        out["per_pair"].append(
            {
                "a": str(annotator_names[a]),
                "b": str(annotator_names[b]),
                "n": n,
                "kappa": _round(np.mean(defined)) if defined else None,
            }
        )
    out["per_label"] = [
        {
            "label": str(name),
            "n": int(part[:, 1].sum()),
            "alpha": _round(alpha_from_counts(part, "nominal")),
            "percent_agreement": _round(percent_agreement_from_counts(part)),
        }
        for name, part in zip(class_names, parts, strict=True)
    ]
    out["confusion"] = {"labels": ["not chosen", "chosen"], "annotators": []}
    out["notes"].append(
        "Multi-label project: alpha is the mean of one binary alpha per label (chosen or not)."
    )
    out["multi_label"] = True
    return out
