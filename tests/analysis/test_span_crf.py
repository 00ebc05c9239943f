"""The built-in token model for span projects: out-of-fold CRF probabilities per token."""

import csv
import random

import numpy as np
import pytest
from cleanlab.token_classification.filter import find_label_issues
from sklearn_crfsuite import CRF

from analysis.metrics.out_of_sample import CannotTrain
from analysis.metrics.span_crf import (
    C1,
    C2,
    MAX_ITERATIONS,
    out_of_fold_token_probabilities,
    tag_name,
    token_features,
)
from analysis.metrics.span_tags import tags_from_spans, token_ranges
from labeling import demo_spans
from labeling.spans import token_bounds

TYPES = list(demo_spans.TYPES)


def tokens_and_tags(sentence: demo_spans.Sentence, types=TYPES) -> tuple[list[str], np.ndarray]:
    """A demo sentence's words and its spans as IOB2 tag codes."""
    bounds = token_bounds(sentence.text)
    starts = np.array([a for a, _ in bounds], dtype=np.int64)
    ends = np.array([b for _, b in bounds], dtype=np.int64)
    lengths = np.array([len(bounds)])
    sequence = np.zeros(len(sentence.spans), dtype=np.int64)
    start, end, on_tokens = token_ranges(
        sequence,
        np.array([s[0] for s in sentence.spans], dtype=np.int64),
        np.array([s[1] for s in sentence.spans], dtype=np.int64),
        lengths,
        starts,
        ends,
    )
    assert on_tokens.all()
    label = np.array([types.index(s[2]) for s in sentence.spans], dtype=np.int64)
    tags = tags_from_spans(lengths, sequence, start, end, label).astype(np.int64)
    return [sentence.text[a:b] for a, b in bounds], tags


def demo_corpus(n: int, seed: int = 1) -> tuple[list[list[str]], list[np.ndarray]]:
    pairs = [tokens_and_tags(s) for s in demo_spans.sentences(n, seed=seed)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def test_every_token_gets_a_row_over_o_and_the_types_that_sums_to_one():
    tokens, tags = demo_corpus(300)
    result = out_of_fold_token_probabilities(tokens, tags, n_types=len(TYPES))
    assert len(result.probabilities) == 300
    for words, probabilities in zip(tokens, result.probabilities, strict=True):
        assert probabilities.shape == (len(words), 1 + len(TYPES))
        assert np.allclose(probabilities.sum(axis=1), 1.0)
        assert (probabilities >= 0).all()
    assert result.scored.all()
    assert result.folds == 5
    assert result.excluded_types == []
    # type_counts: training sentences containing each type, counted here from the tags.
    expected = [sum(bool(np.isin(t, [2 * k + 1, 2 * k + 2]).any()) for t in tags) for k in range(4)]
    assert result.type_counts.tolist() == expected
    # The templates are regular: an unseen sentence's entities are still found.
    assert result.token_accuracy > 0.97
    given = np.concatenate([np.where(t > 0, (t - 1) // 2 + 1, 0) for t in tags])
    predicted = np.concatenate([p.argmax(axis=1) for p in result.probabilities])
    assert result.token_accuracy == pytest.approx((given == predicted).mean())


def test_a_sentence_is_not_scored_by_a_model_that_saw_its_tags():
    tokens, tags = demo_corpus(300)
    # A made-up word that occurs only here, tagged ORG (type 1) three times: a model trained
    # on this sentence learns the word (checked below); the out-of-fold model never saw it.
    odd = "we saw a zyzzyva , a zyzzyva and another zyzzyva today .".split()
    odd_tags = np.array([3 if w == "zyzzyva" else 0 for w in odd])
    tokens.append(odd)
    tags.append(odd_tags)
    result = out_of_fold_token_probabilities(tokens, tags, n_types=len(TYPES))
    assert result.probabilities[-1][3, 2] < 0.05
    assert result.probabilities[-1][3, 0] > 0.95
    seen_it = CRF(algorithm="lbfgs", c1=C1, c2=C2, max_iterations=MAX_ITERATIONS)
    seen_it.fit([token_features(w) for w in tokens], [[tag_name(int(t)) for t in g] for g in tags])
    assert seen_it.predict_marginals_single(token_features(odd))[3]["B-1"] > 0.5


def test_sentences_without_decided_tags_are_scored_by_the_fold_models_but_not_trained_on():
    tokens, tags = demo_corpus(300)
    # A tie on one token (-1) and a sentence without tags: both scored, neither trained on.
    undecided = tags[0].copy()
    undecided[0] = -1
    with_gaps = [undecided, None, *tags[2:]]
    result = out_of_fold_token_probabilities(tokens, with_gaps, n_types=len(TYPES))
    assert result.scored[:2].all()
    for s in (0, 1):
        assert np.allclose(result.probabilities[s].sum(axis=1), 1.0)
    # Not trained on: the counts leave them out.
    counted = out_of_fold_token_probabilities(tokens[2:], tags[2:], n_types=len(TYPES))
    assert result.type_counts.tolist() == counted.type_counts.tolist()


def test_a_type_in_fewer_sentences_than_folds_is_excluded_and_its_sentences_not_scored():
    tokens, tags = demo_corpus(300)
    tags = [t.copy() for t in tags]
    # Type 4 in three sentences only (fewer than the 5 folds). Type 5 in five sentences, three
    # of them with type 4: once those leave training, type 5 is in two, and is excluded too.
    for s in (0, 1, 2):
        tags[s][-2] = 2 * 4 + 1
    for s in (0, 1, 2, 3, 4):
        tags[s][-3] = 2 * 5 + 1
    # An undecided sentence that mentions type 4: not scored either.
    tags[5][-2], tags[5][0] = 2 * 4 + 1, -1
    result = out_of_fold_token_probabilities(tokens, tags, n_types=6)
    assert result.excluded_types == [4, 5]
    assert result.type_counts[4:].tolist() == [3, 5]
    unscored = [0, 1, 2, 3, 4, 5]
    assert not result.scored[unscored].any()
    assert all(np.isnan(result.probabilities[s]).all() for s in unscored)
    assert result.scored[6:].all()
    # The excluded types' columns are never predicted.
    assert max(p[:, 5:].max() for p in result.probabilities[6:]) < 0.01


def test_too_little_data_cannot_train_and_says_why():
    tokens, tags = demo_corpus(300)
    with pytest.raises(CannotTrain, match="too few sentences"):
        out_of_fold_token_probabilities(tokens[:4], tags[:4], n_types=len(TYPES))
    with pytest.raises(CannotTrain, match="too few sentences"):
        out_of_fold_token_probabilities(tokens, [None] * 300, n_types=len(TYPES))
    no_entities = [np.zeros(len(t), dtype=np.int64) for t in tags]
    with pytest.raises(CannotTrain, match="no entity type"):
        out_of_fold_token_probabilities(tokens, no_entities, n_types=len(TYPES))


def test_a_project_with_one_entity_type_trains_o_against_it():
    tokens, tags = demo_corpus(200)
    people_only = [np.where(t <= 2, t, 0) for t in tags]  # PER kept, other types read as O
    result = out_of_fold_token_probabilities(tokens, people_only, n_types=1)
    assert result.excluded_types == []
    assert all(p.shape == (len(w), 2) for p, w in zip(result.probabilities, tokens, strict=True))
    assert result.token_accuracy > 0.97


def test_progress_is_reported_once_per_fold():
    tokens, tags = demo_corpus(200)
    calls = []
    out_of_fold_token_probabilities(
        tokens, tags, n_types=len(TYPES), folds=3, progress=lambda f, m: calls.append((f, m))
    )
    assert calls == [(1 / 3, "fold 1 of 3"), (2 / 3, "fold 2 of 3"), (1.0, "fold 3 of 3")]


def test_spliced_sentences_keep_the_real_text_and_put_their_entities_on_tokens():
    real = ["Crust is not good.", "Wow... Loved this place.", "The mic is great."] * 20
    spliced = demo_spans.spliced_sentences(real, seed=3)
    assert len(spliced) == 60
    for text, sentence in zip(real, spliced, strict=True):
        assert text.rstrip(".") in sentence.text
        bounds = token_bounds(sentence.text)
        starts, ends = {a for a, _ in bounds}, {b for _, b in bounds}
        assert 1 <= len(sentence.spans) <= 8
        for start, end, kind in sentence.spans:
            assert start in starts and end in ends and kind in TYPES
            # An entity never reaches into the real sentence.
            assert sentence.text[start:end] not in text
        assert demo_spans.annotate(sentence, "careful", random.Random(0), rate=0) == sorted(
            sentence.spans
        )
    # One clause before, after, or both: the real sentence is not always at the start or end.
    assert any(not s.text.startswith(r) for s, r in zip(spliced, real, strict=True))
    assert any(s.text.startswith(r) for s, r in zip(spliced, real, strict=True))
    assert spliced == demo_spans.spliced_sentences(real, seed=3)


def given_types(tags: np.ndarray) -> np.ndarray:
    """IOB2 codes -> the token's type column: 0 = O, 1 + t = type t."""
    return np.where(tags > 0, (tags - 1) // 2 + 1, 0)


def test_flags_on_a_simulated_crowd_find_the_injected_errors_far_better_than_random(
    sentiment_data,
):
    # 3,000 real review sentences (CC BY 4.0) with entity clauses spliced in: the gold spans.
    texts = []
    for source in ("amazon", "imdb", "yelp"):
        with open(sentiment_data / f"{source}.tsv", newline="") as f:
            texts += [row[0] for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    gold = demo_spans.spliced_sentences(texts, seed=0)
    assert len(gold) == 3000
    # One annotation per sentence, from careful : boundary : type : misser = 2 : 1 : 1 : 1.
    rng = random.Random(5)
    habits = ["careful", "careful", "boundary_shifter", "type_confuser", "misser"]
    tokens, given, wrong = [], [], []
    for sentence in gold:
        words, gold_tags = tokens_and_tags(sentence)
        annotated = demo_spans.annotate(sentence, rng.choice(habits), rng)
        _, tags = tokens_and_tags(demo_spans.Sentence(sentence.text, annotated))
        tokens.append(words)
        given.append(tags)
        wrong.append(given_types(tags) != given_types(gold_tags))  # the injected errors

    result = out_of_fold_token_probabilities(tokens, given, n_types=len(TYPES))
    assert result.scored.all()
    flagged = find_label_issues([given_types(t) for t in given], result.probabilities, n_jobs=1)

    n_tokens = sum(len(w) for w in wrong)
    n_wrong = int(sum(w.sum() for w in wrong))
    hits = sum(bool(wrong[s][i]) for s, i in flagged)
    precision, recall = hits / len(flagged), hits / n_wrong
    # Flagging the same number of tokens at random: expected precision is the share of wrong
    # tokens, expected recall the share of tokens flagged.
    random_precision, random_recall = n_wrong / n_tokens, len(flagged) / n_tokens
    items_flagged = {s for s, _ in flagged}
    items_wrong = {s for s, w in enumerate(wrong) if w.any()}
    item_hits = len(items_flagged & items_wrong)
    item_precision = item_hits / len(items_flagged)
    item_recall = item_hits / len(items_wrong)
    random_item_precision = len(items_wrong) / len(gold)
    random_item_recall = len(items_flagged) / len(gold)
    print(
        f"\n{len(gold)} sentences, {n_tokens} tokens, {n_wrong} given a wrong type; "
        f"CRF token accuracy {result.token_accuracy:.3f}\n"
        f"tokens flagged {len(flagged)}: precision {precision:.3f} (random "
        f"{random_precision:.3f}), recall {recall:.3f} (random {random_recall:.3f})\n"
        f"items with an error {len(items_wrong)}, flagged {len(items_flagged)}: precision "
        f"{item_precision:.3f} (random {random_item_precision:.3f}), recall {item_recall:.3f} "
        f"(random {random_item_recall:.3f})"
    )
    # Measured: 75,266 tokens, 2,783 wrong; 2,291 flagged, precision 0.997, recall 0.821;
    # items 1,231 wrong, 1,111 flagged, precision 0.997, recall 0.900.
    assert n_wrong > 1000
    assert precision >= 5 * random_precision and recall >= 5 * random_recall
    assert item_precision >= 2 * random_item_precision
    assert item_recall >= 2 * random_item_recall
    assert precision >= 0.95 and recall >= 0.7
    assert item_precision >= 0.95 and item_recall >= 0.8
