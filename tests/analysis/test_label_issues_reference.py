"""Label issues on real data: the same flags as bare cleanlab, and the published quality.

Sentiment: 3000 review sentences (UCI "Sentiment Labelled Sentences") with 10% of the labels
flipped by a fixed seed. Dog: real crowd answers (Zheng et al., PVLDB 2017) with ground truth.
"""

import csv

import numpy as np
import pandas as pd
import pytest
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores

from analysis.metrics.label_issues import dawid_skene_issues, find_issues
from analysis.metrics.out_of_sample import out_of_sample_probabilities

FLIP_SEED = 0


def read_sentiment(folder):
    frames = [
        pd.read_csv(
            folder / f"{name}.tsv",
            sep="\t",
            header=None,
            names=["text", "label"],
            quoting=csv.QUOTE_NONE,
        ).assign(source=name)
        for name in ("amazon", "imdb", "yelp")
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def sentiment(sentiment_data):
    frame = read_sentiment(sentiment_data)
    truth = frame["label"].to_numpy()
    rng = np.random.default_rng(FLIP_SEED)
    flipped = rng.choice(len(truth), size=len(truth) // 10, replace=False)
    noisy = truth.copy()
    noisy[flipped] = 1 - noisy[flipped]
    is_flipped = np.zeros(len(truth), dtype=bool)
    is_flipped[flipped] = True
    return frame["text"].tolist(), truth, noisy, is_flipped


@pytest.fixture(scope="module")
def builtin_probs(sentiment):
    texts, _, noisy, _ = sentiment
    folds_seen = []
    oos = out_of_sample_probabilities(
        texts, noisy, n_classes=2, kind="text", folds=5, progress=lambda d, k: folds_seen.append(d)
    )
    assert folds_seen == [1, 2, 3, 4, 5]
    return oos


def test_given_probabilities_flag_exactly_what_bare_cleanlab_flags(sentiment, builtin_probs):
    _, _, noisy, _ = sentiment
    probs = builtin_probs.probabilities
    result = find_issues(noisy[:, None], 2, probs)
    bare_flags = find_label_issues(noisy, probs, n_jobs=1)
    assert result.method == "confident_learning"
    assert result.n_items == 3000
    assert np.array_equal(result.item_index, np.arange(3000))
    assert np.array_equal(result.is_issue, bare_flags)
    assert np.array_equal(result.quality, get_label_quality_scores(noisy, probs))
    assert result.n_issues == bare_flags.sum() > 0


def test_builtin_text_model_finds_the_flipped_labels(sentiment, builtin_probs):
    _, truth, noisy, is_flipped = sentiment
    assert builtin_probs.scored.all() and builtin_probs.excluded_classes == []
    result = find_issues(noisy[:, None], 2, builtin_probs.probabilities)
    flagged = result.is_issue
    precision = (flagged & is_flipped).sum() / flagged.sum()
    recall = (flagged & is_flipped).sum() / is_flipped.sum()
    accuracy_vs_truth = (builtin_probs.probabilities.argmax(axis=1) == truth).mean()
    print(
        f"\nbuilt-in text model: flagged {flagged.sum()}, precision {precision:.3f}, "
        f"recall {recall:.3f}, accuracy vs given {result.model_accuracy:.3f}, "
        f"vs truth {accuracy_vs_truth:.3f}"
    )
    # At least the figures of the per-fold-vocabulary model it replaced (issue 19).
    assert precision >= 0.423
    assert recall >= 0.733
    assert accuracy_vs_truth >= 0.818
    # The lowest-ranked items are mostly flipped ones.
    worst = np.argsort(result.rank)[:100]
    assert is_flipped[worst].mean() >= 0.6


def test_a_class_with_fewer_examples_than_folds_is_excluded_and_reported(sentiment):
    texts, _, noisy, _ = sentiment
    labels = noisy[:600].copy()
    labels[:3] = 2  # three items of a third class: fewer than 5 folds
    oos = out_of_sample_probabilities(texts[:600], labels, n_classes=3, kind="text", folds=5)
    assert oos.excluded_classes == [2]
    assert not oos.scored[:3].any() and oos.scored[3:].all()
    assert np.isnan(oos.probabilities[:3]).all()
    result = find_issues(labels[:, None], 3, oos.probabilities)
    assert 0 not in result.item_index and result.n_items == 597


def test_dog_crowd_without_features_reaches_the_dawid_skene_reference(crowd_data):
    answers = pd.read_csv(crowd_data / "dog" / "answers.csv")
    truth = pd.read_csv(crowd_data / "dog" / "truth.csv")
    questions = np.sort(answers["question"].unique())
    workers = np.sort(answers["worker"].unique())
    matrix = np.full((len(questions), len(workers)), -1)
    matrix[
        np.searchsorted(questions, answers["question"]), np.searchsorted(workers, answers["worker"])
    ] = answers["answer"]
    result = find_issues(matrix, 4)
    assert result.method == "dawid_skene"
    direct = dawid_skene_issues(matrix, 4)
    assert np.array_equal(result.suggested, direct.suggested)
    true_label = truth.set_index("question").loc[questions[result.item_index], "truth"].to_numpy()
    accuracy = (result.suggested == true_label).mean()
    print(f"\ndog Dawid-Skene consensus accuracy {accuracy:.4f} (reference 0.8426)")
    assert accuracy >= 0.8426 - 0.005
    assert result.annotator_quality.shape == (len(workers),)
    assert np.nanmin(result.annotator_quality) >= 0 and np.nanmax(result.annotator_quality) <= 1
    # Issues are items where skill weighting overturns or settles the vote.
    assert result.is_issue.sum() == ((result.given != result.suggested) | (result.given < 0)).sum()


def test_several_annotators_with_a_model_use_crowdlab(sentiment, builtin_probs):
    _, truth, noisy, _ = sentiment
    rng = np.random.default_rng(1)
    second = np.where(rng.random(len(truth)) < 0.8, truth, 1 - truth)
    matrix = np.stack([noisy, second, np.full(len(truth), -1)], axis=1)
    result = find_issues(matrix, 2, builtin_probs.probabilities)
    assert result.method == "crowdlab"
    assert np.isnan(result.annotator_quality[2])  # the empty third column
    assert result.annotator_quality[0] > 0 and result.annotator_quality[1] > 0
    assert result.votes.sum() == 6000


def test_items_without_a_training_label_are_scored_by_every_fold_model(sentiment):
    texts, truth, noisy, _ = sentiment
    labels = noisy[:600].copy()
    labels[:20] = -1  # e.g. tied votes: nothing to learn from, still worth judging
    oos = out_of_sample_probabilities(texts[:600], labels, n_classes=2, kind="text", folds=5)
    assert oos.scored.all()
    assert np.allclose(oos.probabilities.sum(axis=1), 1.0)
    # The fold models agree with the truth on most of these unseen items.
    assert (oos.probabilities[:20].argmax(axis=1) == truth[:20]).mean() >= 0.6
    # The accuracy only counts items that had a label.
    labeled = np.arange(20, 600)
    expected = (oos.probabilities[labeled].argmax(axis=1) == labels[labeled]).mean()
    assert oos.accuracy == pytest.approx(expected)
