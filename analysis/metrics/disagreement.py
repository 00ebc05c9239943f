"""How much annotators disagree on each item: the entropy of its label distribution."""

import numpy as np


def label_entropy(
    item_index: np.ndarray, label_index: np.ndarray, n_items: int, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Normalized Shannon entropy of each item's labels, in [0, 1].

    item_index, label_index: (n_annotations,) int arrays; annotation k labeled item
    `item_index[k]` with class `label_index[k]` (0 <= class < n_classes).
    Returns (entropy, n): (n_items,) float arrays. entropy is H(p) / log(n_classes) of the
    item's label shares p (0 = unanimous, 1 = labels spread evenly over all classes; 0 when
    n_classes < 2); n is the number of annotations per item (entropy is 0 where n < 2).
    """
    item_index = np.asarray(item_index, dtype=np.int64)
    label_index = np.asarray(label_index, dtype=np.int64)
    counts = np.zeros((n_items, max(n_classes, 1)), dtype=np.float64)
    np.add.at(counts, (item_index, label_index), 1.0)
    n = counts.sum(axis=1)
    if n_classes < 2:
        return np.zeros(n_items), n
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = counts / n[:, None]
        terms = np.where(shares > 0, -shares * np.log(shares), 0.0)
    entropy = terms.sum(axis=1) / np.log(n_classes)
    entropy[n < 2] = 0.0
    return np.clip(entropy, 0.0, 1.0), n
