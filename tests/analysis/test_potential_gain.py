"""Potential gain = (HLP - model accuracy) x share, computed exactly on a hand-checked case."""

import numpy as np
import pandas as pd
import pytest

from analysis.metrics.baselines import final_labels, leave_one_out
from analysis.metrics.consensus import vote_counts
from analysis.metrics.intervals import wilson_interval
from analysis.metrics.slices import dimensions, slice_rows

# 10 items, two annotators each (so each one's reference is the other's label).
#   source a (items 0-3): annotators disagree on item 3 (a reviewer settled it as 0)
#       HLP = 6/8 = 0.75; model right on items 0, 1 -> 2/4 = 0.5; gap 0.25, share 0.4
#       potential gain 0.25 x 0.4 = 0.1
#   source b (items 4-9): annotators always agree -> HLP 1.0; model right on 4 of 6
#       gap 1/3, share 0.6, potential gain 0.2  -> ranked first
SOURCE = ["a"] * 4 + ["b"] * 6
FIRST = np.array([0, 1, 0, 0, 1, 1, 0, 0, 1, 0])
SECOND = np.array([0, 1, 0, 1, 1, 1, 0, 0, 1, 0])
PREDICTED = np.array([0, 1, 1, 1, 1, 1, 0, 0, 0, 1])
REVIEW = np.array([-1, -1, -1, 0, -1, -1, -1, -1, -1, -1])


def case():
    item_index = np.repeat(np.arange(10), 2)
    label_index = np.column_stack([FIRST, SECOND]).ravel()
    counts = vote_counts(item_index, label_index, n_items=10, n_classes=2)
    final = final_labels(counts, REVIEW)
    loo = leave_one_out(item_index, label_index, n_items=10, n_classes=2, counts=counts)
    dims = dimensions(pd.DataFrame({"source": SOURCE}, dtype=object))
    return dict(
        n_classes=2,
        final=final,
        item_index=item_index,
        label_index=label_index,
        credit=loo.credit,
        has_reference=loo.has_reference,
        reference=loo.reference,
    ), dims


def test_potential_gain_is_gap_times_share_and_ranks_the_slices():
    inputs, dims = case()
    rows = slice_rows(dims, predicted=PREDICTED, **inputs)
    assert [(r["field"], r["value"]) for r in rows] == [("source", "b"), ("source", "a")]
    b, a = rows
    assert (a["n"], a["share"], a["hlp"], a["model_accuracy"]) == (4, 0.4, 0.75, 0.5)
    assert a["gap"] == pytest.approx(0.25)
    assert a["potential_gain"] == pytest.approx(0.1)
    assert (b["n"], b["share"], b["hlp"]) == (6, 0.6, 1.0)
    assert b["model_accuracy"] == pytest.approx(4 / 6)
    assert b["gap"] == pytest.approx(1 / 3)
    assert b["potential_gain"] == pytest.approx(0.2)
    # Per-slice confusion: rows = final label, columns = model prediction.
    assert a["confusion"] == [[1, 2], [0, 1]]
    assert b["confusion"] == [[2, 1], [1, 2]]
    # Both slices are small: marked unreliable, with a Wilson interval around the accuracy.
    assert not a["reliable"] and not b["reliable"]
    low, high = a["model_ci"]
    assert low < 0.5 < high
    assert a["model_ci"] == pytest.approx(wilson_interval(2, 4))


def test_without_a_model_gain_is_empty_and_confusion_is_between_annotators():
    inputs, dims = case()
    rows = slice_rows(dims, predicted=None, **inputs)
    assert all(r["potential_gain"] is None and r["model_accuracy"] is None for r in rows)
    a = next(r for r in rows if r["value"] == "a")
    assert a["confusion_kind"] == "annotators"
    # Rows = the other annotator's label, columns = own label; item 3 disagrees both ways.
    assert a["confusion"] == [[4, 1], [1, 2]]
    assert a["hlp"] == 0.75
