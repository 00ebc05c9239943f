"""Spans as IOB2 tags: encoding, decoding (checked against seqeval) and token majority."""

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities

from analysis.metrics.span_tags import (
    decode_tags,
    item_token_index,
    majority_tags,
    majority_winners,
    sequence_offsets,
    tag_names,
    tags_from_spans,
)

TYPES = ["PER", "LOC", "ORG"]
NAMES = tag_names(TYPES)


def seqeval_spans(tags, lengths):
    offsets = sequence_offsets(lengths)
    found = set()
    for s, _ in enumerate(lengths):
        names = [NAMES[t] if t >= 0 else "O" for t in tags[offsets[s] : offsets[s + 1]]]
        found |= {(s, a, b + 1, TYPES.index(kind)) for kind, a, b in get_entities(names)}
    return found


def test_decoding_any_tag_sequence_gives_the_spans_seqeval_reads():
    rng = np.random.default_rng(7)
    for _ in range(300):
        lengths = rng.integers(0, 12, size=rng.integers(1, 6))
        tags = rng.integers(-1, 7, size=lengths.sum())  # stray I- tags and undecided tokens too
        decoded = decode_tags(tags, lengths)
        assert set(zip(*(a.tolist() for a in decoded), strict=True)) == seqeval_spans(tags, lengths)
        again = decode_tags(tags_from_spans(lengths, *decoded), lengths)
        assert all((x == y).all() for x, y in zip(again, decoded, strict=True))


def test_adjacent_spans_of_one_type_stay_two_spans():
    tags = tags_from_spans(
        np.array([4]), np.array([0, 0]), np.array([0, 2]), np.array([2, 4]), np.array([1, 1])
    )
    assert [NAMES[t] for t in tags] == ["B-LOC", "I-LOC", "B-LOC", "I-LOC"]


def test_token_majority_follows_the_tie_rule_also_for_o_against_an_entity():
    # One item of 3 tokens; two annotators: "B-PER I-PER O" and "B-PER O O".
    lengths = np.array([3, 3])
    tags = tags_from_spans(lengths, np.array([0, 1]), np.array([0, 0]), np.array([2, 1]),
                           np.array([0, 0]))  # fmt: skip
    where = item_token_index(np.array([0, 0]), lengths, np.array([3]))
    unresolved, agreement = majority_tags(tags, where, n_item_tokens=3, n_types=3)
    assert unresolved.tolist() == [1, -1, 0]
    assert agreement.tolist() == [1.0, 0.5, 1.0]
    first, _ = majority_tags(tags, where, n_item_tokens=3, n_types=3, tie_rule="first_class")
    assert first.tolist() == [1, 0, 0]  # O comes first
    assert [a.tolist() for a in decode_tags(unresolved, np.array([3]))] == [[0], [0], [1], [0]]


def test_the_winners_alone_are_the_token_majority_under_both_tie_rules():
    # A seeded crowd: 1 to 4 annotators per item, some agreeing, some tied, tokens without votes.
    rng = np.random.default_rng(11)
    for _ in range(200):
        item_lengths = rng.integers(0, 9, size=rng.integers(1, 6))
        n_tokens = int(item_lengths.sum())
        annotation_item = np.repeat(
            np.arange(len(item_lengths)), rng.integers(0, 5, size=len(item_lengths))
        )
        lengths = item_lengths[annotation_item]
        guess = rng.integers(0, 7, size=n_tokens)  # what most annotators say
        where = item_token_index(annotation_item, lengths, item_lengths)
        tags = np.where(rng.random(len(where)) < 0.6, guess[where], rng.integers(-1, 7, len(where)))
        for rule in ("unresolved", "first_class"):
            expected, _ = majority_tags(
                tags, where, n_item_tokens=n_tokens, n_types=3, tie_rule=rule
            )
            winners = majority_winners(
                tags, where, n_item_tokens=n_tokens, n_types=3, tie_rule=rule
            )
            assert winners.tolist() == expected.tolist()
