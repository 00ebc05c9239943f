"""Queue scores for the uncertainty and ActiveLab orders, and the learning-curve simulation
that measures whether they pay off (bench/active_learning.py)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from cleanlab.multiannotator import (
    get_active_learning_scores,
    get_active_learning_scores_ensemble,
)

from analysis.metrics.active_learning import activelab_scores, uncertainty_scores

BENCH = Path(__file__).resolve().parents[2] / "bench" / "active_learning.py"


@pytest.fixture(scope="module")
def bench():
    """bench/active_learning.py, a script, imported by its path."""
    spec = importlib.util.spec_from_file_location("bench_active_learning", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def crowd(seed, n_labeled=60, n_unlabeled=25, annotators=5, classes=3):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, (n_labeled, annotators)).astype(float)
    labels[rng.random(labels.shape) < 0.5] = np.nan
    labels[np.isnan(labels).all(axis=1), 0] = 1.0  # every labeled item has a label
    probs = rng.dirichlet(np.ones(classes), n_labeled + n_unlabeled)
    return labels, probs[:n_labeled], probs[n_labeled:]


def test_uncertainty_score_is_the_top_class_probability():
    probs = np.random.default_rng(1).dirichlet(np.ones(4), 50)
    assert np.array_equal(uncertainty_scores(probs), probs.max(axis=1))


def test_activelab_scores_equal_cleanlab_on_the_same_arrays():
    labels, labeled_probs, unlabeled_probs = crowd(2)
    ours = activelab_scores(labels, labeled_probs, unlabeled_probs)
    theirs = get_active_learning_scores(
        labels_multiannotator=labels,
        pred_probs=labeled_probs,
        pred_probs_unlabeled=unlabeled_probs,
    )
    assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1])
    assert ours[0].shape == (60,) and ours[1].shape == (25,)


def test_activelab_scores_of_several_models_equal_cleanlabs_ensemble():
    labels, first, first_unlabeled = crowd(3)
    _, second, second_unlabeled = crowd(4)
    ours = activelab_scores(labels, [first, second], [first_unlabeled, second_unlabeled])
    theirs = get_active_learning_scores_ensemble(
        labels_multiannotator=labels,
        pred_probs=np.stack([first, second]),
        pred_probs_unlabeled=np.stack([first_unlabeled, second_unlabeled]),
    )
    assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1])


def test_activelab_with_no_unlabeled_item_scores_the_labeled_ones_only():
    labels, probs, _ = crowd(5)
    labeled, unlabeled = activelab_scores(labels, probs, np.zeros((0, 3)))
    theirs, _ = get_active_learning_scores(labels_multiannotator=labels, pred_probs=probs)
    assert np.array_equal(labeled, theirs) and unlabeled.shape == (0,)


def test_simulated_annotators_answer_with_their_known_accuracy(bench):
    config = bench.Config("digits", test_items=497, seed_labels=100, budget=300, refresh_every=50)
    session = bench.Session(bench.load_dataset("digits"), config, seed=7)
    truth = session.data.truth[session.pool]
    measured = (session.answers == truth[:, None]).mean(axis=0)
    assert np.allclose(session.accuracies, np.linspace(0.6, 0.9, 10))
    assert np.abs(measured - session.accuracies).max() < 0.04, measured
    # An annotator never labels the same item twice: labels 1..10 of an item come from 10
    # different annotators.
    assert (np.sort(session.next_annotator, axis=1) == np.arange(10)).all()


def test_a_small_session_learns_and_the_active_orders_beat_random_order(bench):
    config = bench.Config("digits", test_items=497, seed_labels=100, budget=300, refresh_every=50)
    data = bench.load_dataset("digits")
    curves = {order: bench.simulate(data, config, order, seed=0) for order in bench.ORDERS}
    print({order: c["accuracy"] for order, c in curves.items()})
    for order, curve in curves.items():
        assert curve["labels"] == [100, 150, 200, 250, 300]
        accuracy = np.array(curve["accuracy"])
        # Monotone-ish: a refresh may lose a little, never much; 10 classes: chance is 0.1.
        assert np.diff(accuracy).min() > -0.05, (order, accuracy)
        assert accuracy[-1] > accuracy[0] + 0.05 and accuracy[-1] > 0.6, (order, accuracy)
    # Every order starts from the same random seed labels, answered by the same annotators.
    assert len({c["accuracy"][0] for c in curves.values()}) == 1
    final = {order: c["accuracy"][-1] for order, c in curves.items()}
    assert final["uncertainty"] > final["import"] and final["activelab"] > final["import"]


def test_activelab_may_ask_an_already_labeled_item_again(bench):
    config = bench.Config("digits", test_items=497, seed_labels=100, budget=300, refresh_every=50)
    session = bench.Session(bench.load_dataset("digits"), config, seed=0)
    session.give(session.import_batch(config.seed_labels))
    training = session.training_labels()
    probs = session.probabilities(training)
    chosen = session.choose("activelab", 200, probs)
    assert len(set(chosen.tolist())) == 200
    assert (session.counts[chosen] > 0).any()  # labeled items compete with fresh ones
    uncertain = session.choose("uncertainty", 200, probs)
    assert (session.counts[uncertain] == 0).all()  # fewest labels first


def test_saving_is_the_share_of_the_budget_not_needed_to_reach_random_orders_final(bench):
    config = bench.Config("digits", test_items=497, seed_labels=100, budget=400, refresh_every=100)
    labels = [100, 200, 300, 400]
    curves = {
        "import": [{"labels": labels, "accuracy": [0.5, 0.6, 0.7, 0.8]}],
        "uncertainty": [{"labels": labels, "accuracy": [0.5, 0.81, 0.85, 0.9]}],
        "activelab": [{"labels": labels, "accuracy": [0.5, 0.6, 0.7, 0.79]}],
    }
    summary = bench.summarise(config, curves, seeds=[0])["orders"]
    assert summary["import"]["per_seed"][0]["labels_needed"] == 400
    assert summary["uncertainty"]["per_seed"][0] == {
        "seed": 0, "final_accuracy": 0.9, "labels_needed": 200, "saving": 0.5,
    }  # fmt: skip
    assert summary["activelab"]["per_seed"][0]["saving"] is None  # never reached 0.8
    assert summary["activelab"]["mean_saving"] == 0.0
    assert summary["activelab"]["seeds_reaching_target"] == 0
