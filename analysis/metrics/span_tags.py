"""Spans as per-token IOB2 tags, in long form, and the token-level consensus of several annotators.

Every function is pure numpy. A span project's annotations become flat arrays:

- sequences (annotations, or items) have `lengths` (n_sequences,): their token counts; the
  tokens of sequence s are positions `offsets[s] : offsets[s + 1]` of a flat tag array
  (`offsets = sequence_offsets(lengths)`).
- spans are four (n_spans,) int arrays: `sequence`, `start`, `end` (token indices within the
  sequence, end exclusive) and `label` (entity type index in [0, n_types)).
- a tag is an int: 0 = `O`, 2k + 1 = `B-<type k>`, 2k + 2 = `I-<type k>` (`tag_names`);
  -1 marks a token without a decision (an unresolved tie), read as `O` when decoding.

Decoding follows IOB2 with the usual repair (seqeval's, CoNLL's): an `I-` tag that does not
continue a span of its own type starts a new span.
"""

from __future__ import annotations

import numpy as np

from analysis.metrics.consensus import (
    TIE_RULES,
    dawid_skene_long,
    majority_from_counts,
    posterior_winner,
    vote_counts,
)

OUTSIDE = 0
UNDECIDED = -1


def tag_names(type_names: list[str]) -> list[str]:
    """Tag code -> IOB2 name: ["O", "B-<t0>", "I-<t0>", "B-<t1>", ...]."""
    return ["O"] + [f"{prefix}-{name}" for name in type_names for prefix in ("B", "I")]


def n_tags(n_types: int) -> int:
    return 2 * n_types + 1


def sequence_offsets(lengths: np.ndarray) -> np.ndarray:
    """(n_sequences + 1,) int64: where each sequence's tokens start in the flat array."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def tags_from_spans(
    lengths: np.ndarray,
    sequence: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    label: np.ndarray,
) -> np.ndarray:
    """(sum(lengths),) int8/int16 IOB2 tag codes of every sequence's tokens.

    Spans must lie inside their sequence and not overlap within it (flat spans).
    """
    offsets = sequence_offsets(np.asarray(lengths))
    total = int(offsets[-1])
    dtype = np.int8 if n_tags(int(label.max(initial=0)) + 1) < 127 else np.int32
    first = offsets[sequence] + start
    last = offsets[sequence] + end
    # Mark each span's inside value at its first token and undo it after its last, then a
    # running sum fills the tokens between: one pass for a million spans.
    marks = np.zeros(total + 1, dtype=np.int64)
    inside = 2 * label.astype(np.int64) + 2
    np.add.at(marks, first, inside)
    np.add.at(marks, last, -inside)
    tags = np.cumsum(marks[:-1]).astype(dtype)
    tags[first] -= 1  # the first token of a span is its B- tag
    return tags


def decode_tags(tags: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, ...]:
    """Spans of IOB2 tag sequences (`tags` flat, `lengths` per sequence).

    Returns (sequence, start, end, label) (n_spans,) int64 arrays, ordered by sequence and
    start; `start`/`end` are token indices within the sequence, end exclusive.
    """
    tags = np.asarray(tags).astype(np.int64)
    offsets = sequence_offsets(np.asarray(lengths))
    kind = np.where(tags > 0, (tags - 1) // 2 + 1, 0)  # 0 = O (or undecided), k + 1 = type k
    begins = (tags > 0) & (tags % 2 == 1)
    first_token = np.zeros(len(tags), dtype=bool)
    first_token[offsets[:-1][np.asarray(lengths) > 0]] = True
    previous_kind = np.concatenate([[0], kind[:-1]])
    starts = (kind > 0) & (begins | first_token | (previous_kind != kind))
    start_at = np.flatnonzero(starts)
    # A span runs until the next token that starts a span, leaves its type, or starts a sequence.
    stops = starts | (kind == 0) | first_token
    stop_positions = np.append(np.flatnonzero(stops), len(tags))
    end_at = stop_positions[np.searchsorted(stop_positions, start_at, side="right")]
    sequence_end = offsets[np.searchsorted(offsets, start_at, side="right")]
    end_at = np.minimum(end_at, sequence_end)
    sequence = np.searchsorted(offsets, start_at, side="right") - 1
    return (
        sequence,
        start_at - offsets[sequence],
        end_at - offsets[sequence],
        kind[start_at] - 1,
    )


def item_token_index(
    annotation_item: np.ndarray, annotation_lengths: np.ndarray, item_lengths: np.ndarray
) -> np.ndarray:
    """For each token of each annotation (flat, annotation order), its position in the flat
    token array of the items (`sequence_offsets(item_lengths)`)."""
    annotation_lengths = np.asarray(annotation_lengths, dtype=np.int64)
    item_offsets = sequence_offsets(np.asarray(item_lengths))
    annotation_offsets = sequence_offsets(annotation_lengths)
    within = np.arange(int(annotation_offsets[-1]), dtype=np.int64) - np.repeat(
        annotation_offsets[:-1], annotation_lengths
    )
    return np.repeat(item_offsets[annotation_item], annotation_lengths) + within


def majority_tags(
    tags: np.ndarray,
    token_item_index: np.ndarray,
    *,
    n_item_tokens: int,
    n_types: int,
    tie_rule: str = "unresolved",
) -> tuple[np.ndarray, np.ndarray]:
    """Token-level majority over the annotators' IOB2 tags.

    tags: (n,) every annotation's tags, flat; token_item_index: (n,) their item-token positions
    (`item_token_index`). Ties follow `tie_rule` as for items (`consensus.majority_from_counts`):
    "unresolved" leaves a tied token UNDECIDED (-1; decoded as O), "first_class" gives it the
    lowest tag code, so `O` wins its ties against an entity.
    Returns (winner (n_item_tokens,) int64 tag, -1 for ties and tokens without votes;
             agreement (n_item_tokens,) float64 share of votes for the top tag).
    """
    counts = vote_counts(token_item_index, tags, n_items=n_item_tokens, n_classes=n_tags(n_types))
    winner, agreement, _ = majority_from_counts(counts, tie_rule)
    return winner, agreement


def majority_winners(
    tags: np.ndarray,
    token_item_index: np.ndarray,
    *,
    n_item_tokens: int,
    n_types: int,
    tie_rule: str = "unresolved",
) -> np.ndarray:
    """The winners of `majority_tags` alone (same arguments, same values: tested), about
    three times faster: the votes are counted tag by tag (a (n_tags, n_item_tokens) table), so
    the maximum, its first index and the ties are found along contiguous rows rather than
    across nine columns of each token."""
    if tie_rule not in TIE_RULES:
        raise ValueError(f"tie_rule must be one of {', '.join(TIE_RULES)}; got {tie_rule!r}")
    width = n_tags(n_types)
    voted = tags >= 0
    if not voted.all():
        tags, token_item_index = tags[voted], token_item_index[voted]
    flat = tags.astype(np.int64)
    flat *= n_item_tokens
    flat += token_item_index
    counts = np.bincount(flat, minlength=width * n_item_tokens).reshape(width, n_item_tokens)
    del flat
    top = counts.max(axis=0) if width else np.zeros(n_item_tokens, dtype=np.int64)
    # argmax gives the first (lowest) tag among equal maxima: the "first_class" rule.
    winner = counts.argmax(axis=0).astype(np.int64)
    if tie_rule == "unresolved":
        ties = (counts == top).sum(axis=0) > 1
        winner[ties] = UNDECIDED
    winner[top == 0] = UNDECIDED  # no votes
    return winner


def dawid_skene_tags(
    tags: np.ndarray,
    token_item_index: np.ndarray,
    token_annotator: np.ndarray,
    *,
    n_item_tokens: int,
    n_annotators: int,
    n_types: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Dawid-Skene (crowd-kit) over the annotators' IOB2 tags, each token a task.

    Returns (winner (n_item_tokens,) int64 tag, -1 for tokens without votes;
             confidence (n_item_tokens,) float64 posterior of the winner).
    """
    posteriors, _ = dawid_skene_long(
        token_item_index,
        token_annotator,
        tags,
        n_items=n_item_tokens,
        n_annotators=n_annotators,
        n_classes=n_tags(n_types),
    )
    return posterior_winner(posteriors)


def char_offsets(
    sequence: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    lengths: np.ndarray,
    token_starts: np.ndarray,
    token_ends: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Token ranges -> character offsets, for many spans at once.

    sequence, start, end: (n_spans,) spans as token indices within their sequence (end
    exclusive, end > start); lengths: (n_sequences,) token counts; token_starts, token_ends:
    (sum(lengths),) every token's character offsets within its text, sequence after sequence.
    Returns (char_start, char_end) (n_spans,) int64: the first token's start, the last
    token's end.
    """
    base = sequence_offsets(np.asarray(lengths))[np.asarray(sequence, dtype=np.int64)]
    return (
        np.asarray(token_starts, dtype=np.int64)[base + start],
        np.asarray(token_ends, dtype=np.int64)[base + np.asarray(end) - 1],
    )


def token_ranges(
    sequence: np.ndarray,
    char_start: np.ndarray,
    char_end: np.ndarray,
    lengths: np.ndarray,
    token_starts: np.ndarray,
    token_ends: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Character offsets -> token ranges, for many spans at once (the inverse of `char_offsets`).

    sequence, char_start, char_end: (n_spans,); lengths, token_starts, token_ends as in
    `char_offsets`. Returns (start, end, on_tokens) (n_spans,): token indices within the
    sequence (end exclusive), and whether the span starts and ends on token boundaries (where
    it does not, start/end are meaningless).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    sequence = np.asarray(sequence, dtype=np.int64)
    char_start = np.asarray(char_start, dtype=np.int64)
    char_end = np.asarray(char_end, dtype=np.int64)
    token_starts = np.asarray(token_starts, dtype=np.int64)
    token_ends = np.asarray(token_ends, dtype=np.int64)
    offsets = sequence_offsets(lengths)
    n = len(token_starts)
    if not len(sequence) or not n:
        empty = np.zeros(len(sequence), dtype=np.int64)
        return empty, empty, np.zeros(len(sequence), dtype=bool)
    # Offsets made global (sequence s at s * width) so that one sorted search finds them all.
    width = int(max(token_ends.max(), char_end.max(), char_start.max())) + 1
    token_sequence = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    starts = token_sequence * width + token_starts
    ends = token_sequence * width + token_ends
    first = np.minimum(np.searchsorted(starts, sequence * width + char_start), n - 1)
    last = np.minimum(np.searchsorted(ends, sequence * width + char_end), n - 1)
    on_tokens = (starts[first] == sequence * width + char_start) & (
        ends[last] == sequence * width + char_end
    )
    on_tokens &= last >= first
    base = offsets[sequence]
    return first - base, last + 1 - base, on_tokens
