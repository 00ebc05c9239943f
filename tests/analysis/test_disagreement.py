"""Label entropy per item, checked against scipy's independent entropy."""

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from analysis.metrics.disagreement import label_entropy


def test_entropy_matches_scipy_and_the_two_to_one_split_is_0_918_bits():
    # item 0: 2x class 0, 1x class 1; item 1: unanimous; item 2: one label; item 3: 1/1/1
    item_index = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3])
    label_index = np.array([0, 0, 1, 2, 2, 1, 0, 1, 2])
    entropy, n = label_entropy(item_index, label_index, n_items=4, n_classes=3)
    assert n.tolist() == [3, 2, 1, 3]
    assert entropy[0] == pytest.approx(scipy_entropy([2, 1], base=3))
    assert entropy[0] * np.log2(3) == pytest.approx(0.918296, abs=1e-6)  # bits
    assert entropy[1] == 0.0 and entropy[2] == 0.0  # unanimous; a single label
    assert entropy[3] == pytest.approx(1.0)  # spread evenly over all classes


def test_one_class_has_no_disagreement():
    entropy, n = label_entropy(np.array([0, 0]), np.array([0, 0]), n_items=1, n_classes=1)
    assert entropy.tolist() == [0.0] and n.tolist() == [2]
