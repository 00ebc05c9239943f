"""The final spans of every item of a span project, and which items the filters keep.

DESIGN.md, "Span projects (contract)", Export: `labels=majority|dawid_skene|reviewed` decide per
token over the annotators' IOB2 tags and decode back to spans.

- `majority`: the token-level majority (`span_tags.majority_winners`: the winners of
  `majority_tags`) with the project's tie rule; a tie of `O` against an entity follows it too.
  Under `first_class` the lowest tag code wins (`O` first, then the types in label order, `B-`
  before `I-`). Under `unresolved` a tied token
  is left undecided and decodes as `O`: the item still gets its other spans (label_source
  `majority`) and its `tied_tokens` column counts the undecided tokens, so a consumer can drop
  or review those items (`exclude=unresolved` does).
- `dawid_skene`: Dawid-Skene over the same token tags (`span_tags.dawid_skene_tags`), each
  token a task; it never leaves a token undecided.
- `reviewed`: the Review's spans only. A Review wins over any aggregate, as for classification.

Decoding is `span_tags.decode_tags` (an `I-` that does not continue its type starts a span);
token ranges become character offsets with the items' token bounds (`span_tags.char_offsets`).

`agreement` of an item: the mean over its annotations of the exact span F1 (same start, end
and type) between the annotation and the exported spans, 1 where both are empty; it is what
the share of agreeing annotations is for a classification item (one span each: the share of
annotations equal to it). NaN for items without annotations or without exported spans.

Everything is computed once per export as arrays over every item id (no ORM object per item or
span): about 40 bytes per item plus 20 per exported span.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from json.encoder import encode_basestring
from operator import itemgetter
from typing import NamedTuple

import numpy as np
from django.db.models.fields.json import KT

from analysis.exports.decisions import LabelSource, filters_applied, label_issue_arrays
from analysis.exports.params import ExportParams
from analysis.loaders import span_reviews, span_rows
from analysis.metrics.span_tags import (
    char_offsets,
    dawid_skene_tags,
    decode_tags,
    item_token_index,
    majority_winners,
    sequence_offsets,
    tags_from_spans,
)
from analysis.models import AnalysisRun
from labeling.models import Item, Project
from labeling.rawsql import driver_rows, positions

MAJORITY_BLOCK = 8_192  # items per token-majority block


class ItemSpans(NamedTuple):
    """The exported spans of some items (compressed rows: item r's spans are
    `offsets[r]:offsets[r + 1]` of start, end, label).

    offsets: (m + 1,) int64; start, end: (n_spans,) int64 character offsets (Python string
    indices, end exclusive); label: (n_spans,) int class index into class_names; decided: (m,)
    bool, False for an item without a decision (its spans are None, not []).
    """

    offsets: np.ndarray
    start: np.ndarray
    end: np.ndarray
    label: np.ndarray
    decided: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.decided)

    def label_names(self) -> list[str]:
        return np.array(self.class_names, dtype=object)[self.label].tolist()

    def as_lists(self) -> list[list[dict] | None]:
        """Per item `[{start, end, label}]` (label by name), None for an undecided item."""
        dicts = [
            {"start": s, "end": e, "label": name}
            for s, e, name in zip(
                self.start.tolist(), self.end.tolist(), self.label_names(), strict=True
            )
        ]
        return self._per_item(dicts, list)

    def as_json(self) -> list[str | None]:
        """Per item the JSON text of `as_lists()` (as `json.dumps(..., ensure_ascii=False)`
        writes it), None for an undecided item; written without a Python dict per span."""
        names = np.array([encode_basestring(name) for name in self.class_names], dtype=object)
        spans = list(
            map(
                '{{"start": {}, "end": {}, "label": {}}}'.format,
                self.start.tolist(),
                self.end.tolist(),
                names[self.label].tolist(),
            )
        )
        return self._per_item(spans, lambda part: "[" + ", ".join(part) + "]")

    def as_tuples(self) -> list[list[tuple[int, int, str]] | None]:
        """Per item `[(start, end, label name)]`, None for an undecided item."""
        spans = list(zip(self.start.tolist(), self.end.tolist(), self.label_names(), strict=True))
        return self._per_item(spans, list)

    def _per_item(self, values: list, make) -> list:
        """values (one per span) cut into one `make(part)` per item (None: undecided)."""
        bounds = self.offsets.tolist()
        return [
            make(values[a:b]) if decided else None
            for a, b, decided in zip(bounds[:-1], bounds[1:], self.decided.tolist(), strict=True)
        ]


@dataclass
class SpanDecisions:
    """The exported spans of every item of a span project, in item id order.

    item_ids: (n_items,) int64 sorted; source: (n_items,) int8 LabelSource codes (NONE: no
    decision, spans None); agreement: (n_items,) float64 (see the module); n_annotations:
    (n_items,) int32; tied_tokens: (n_items,) int32 tokens a majority tie left undecided
    (decoded as O); quality, issue: from the newest label-issue run, as for classification;
    keep: (n_items,) bool after the filters. Spans: `span_offsets` (n_items + 1,) into
    `span_start`, `span_end` (character offsets) and `span_label` (class index).
    """

    item_ids: np.ndarray
    source: np.ndarray
    agreement: np.ndarray
    n_annotations: np.ndarray
    tied_tokens: np.ndarray
    quality: np.ndarray
    issue: np.ndarray
    keep: np.ndarray
    span_offsets: np.ndarray
    span_start: np.ndarray
    span_end: np.ndarray
    span_label: np.ndarray
    class_names: list[str]
    excluded: dict[str, int] = field(default_factory=dict)
    runs: list[int] = field(default_factory=list)
    # Every item's `data.text` ('' where missing), as read for the tokens: the rows need not
    # read it again.
    item_texts: list[str] | None = None

    @property
    def kept_ids(self) -> np.ndarray:
        return self.item_ids[self.keep]

    def spans_at(self, item_positions: np.ndarray) -> ItemSpans:
        """The exported spans of the items at these positions (in that order)."""
        item_positions = np.asarray(item_positions, dtype=np.int64)
        first = self.span_offsets[item_positions]
        counts = self.span_offsets[item_positions + 1] - first
        offsets = np.zeros(len(item_positions) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        at = np.repeat(first - offsets[:-1], counts) + np.arange(offsets[-1], dtype=np.int64)
        return ItemSpans(
            offsets=offsets,
            start=self.span_start[at],
            end=self.span_end[at],
            label=self.span_label[at],
            decided=self.source[item_positions] != LabelSource.NONE,
            class_names=self.class_names,
        )


def span_decisions(*, project: Project, params: ExportParams) -> SpanDecisions:
    """Compute the exported spans of every item and which items the filters keep."""
    # Every item's id, and its text for the tokens (one read of the items for both).
    ids = driver_rows(
        Item.objects.filter(project=project).order_by("id").values_list("id", KT("data__text"))
    )
    item_ids = np.fromiter(map(itemgetter(0), ids), dtype=np.int64, count=len(ids))
    texts = [text or "" for text in map(itemgetter(1), ids)]
    del ids
    n = len(item_ids)
    rows = span_rows(project=project, version=params.guideline_version, texts=(item_ids, texts))
    class_names = rows.class_names
    n_types = len(class_names)
    # Items added since item_ids was read (position -1) are not exported, nor their votes.
    row_pos = positions(rows.item_ids, item_ids)
    annotation_pos = row_pos[rows.annotation_item]
    n_annotations = np.bincount(annotation_pos[annotation_pos >= 0], minlength=n).astype(np.int32)
    source = np.zeros(n, dtype=np.int8)
    tied_tokens = np.zeros(n, dtype=np.int32)

    # The aggregate's spans, as (item position, character start, end, class index).
    aggregate = _empty_spans()
    if params.labels in ("majority", "dawid_skene") and len(rows.annotation_item):
        if params.labels == "majority":
            winner = _token_majority(rows, n_types=n_types, tie_rule=project.tie_rule)
            strategy = LabelSource.MAJORITY
        else:
            lengths = rows.annotation_lengths
            tags = tags_from_spans(
                lengths, rows.span_annotation, rows.span_start, rows.span_end, rows.span_label
            )
            winner, _ = dawid_skene_tags(
                tags,
                item_token_index(rows.annotation_item, lengths, rows.item_lengths),
                np.repeat(rows.annotation_annotator, lengths),
                n_item_tokens=int(rows.item_lengths.sum()),
                n_annotators=len(rows.annotator_ids),
                n_types=n_types,
            )
            strategy = LabelSource.DAWID_SKENE
            del tags
        # Every annotation tags every token of its item: -1 is a tie left undecided.
        undecided = np.flatnonzero(winner < 0)
        tied_row = np.searchsorted(sequence_offsets(rows.item_lengths), undecided, side="right")
        tied = np.bincount(tied_row - 1, minlength=len(rows.item_ids))
        del undecided, tied_row
        present = row_pos >= 0
        source[row_pos[present]] = strategy
        tied_tokens[row_pos[present]] = tied[present]
        sequence, start, end, label = decode_tags(winner, rows.item_lengths)
        del winner
        char_start, char_end = char_offsets(
            sequence, start, end, rows.item_lengths, rows.token_starts, rows.token_ends
        )
        pos = row_pos[sequence]
        found = pos >= 0
        aggregate = (pos[found], char_start[found], char_end[found], label[found])

    reviewed, review_spans, _ = span_reviews(
        project=project, item_ids=item_ids, class_ids=rows.class_ids
    )
    source[reviewed] = LabelSource.REVIEW
    not_reviewed = ~reviewed[aggregate[0]]
    final = tuple(
        np.concatenate([a[not_reviewed], r]) for a, r in zip(aggregate, review_spans, strict=True)
    )
    order = np.lexsort((final[1], final[0]))
    span_pos, span_start, span_end, span_label = (column[order] for column in final)
    span_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(span_pos, minlength=n), out=span_offsets[1:])

    agreement = _agreement(
        rows=rows,
        annotation_pos=annotation_pos,
        n_annotations=n_annotations,
        final=(span_pos, span_start, span_end, span_label),
        span_offsets=span_offsets,
    )
    agreement[source == LabelSource.NONE] = np.nan

    quality = np.full(n, np.nan)
    issue = np.zeros(n, dtype=bool)
    open_issue = np.zeros(n, dtype=bool)
    runs: list[int] = []
    run = AnalysisRun.objects.latest_succeeded(project, AnalysisRun.Kind.LABEL_ISSUES)
    if run is not None:
        runs.append(run.pk)
        table = label_issue_arrays(run)
        p = positions(table["item_id"], item_ids)
        found = p >= 0
        quality[p[found]] = table["quality"][found]
        issue[p[found]] = table["is_issue"][found]
        open_issue[p[found]] = table["is_issue"][found] & table["open"][found]

    keep, excluded = filters_applied(
        project=project,
        params=params,
        item_ids=item_ids,
        n_annotations=n_annotations,
        agreement=agreement,
        reviewed=reviewed,
        unresolved=(source == LabelSource.NONE) | (tied_tokens > 0),
        open_issue=open_issue,
    )
    if params.format == "conll":
        # A CoNLL file cannot say "not decided": every tag O would claim "no entities".
        undecided = source == LabelSource.NONE
        excluded["no_decision"] = int(undecided.sum())
        keep &= ~undecided
    return SpanDecisions(
        item_ids=item_ids,
        source=source,
        agreement=np.round(agreement, 6),
        n_annotations=n_annotations,
        tied_tokens=tied_tokens,
        quality=quality,
        issue=issue,
        keep=keep,
        span_offsets=span_offsets,
        span_start=span_start,
        span_end=span_end,
        span_label=span_label.astype(np.int16),
        class_names=class_names,
        excluded=excluded,
        runs=runs,
        item_texts=texts,
    )


def _token_majority(rows, *, n_types: int, tie_rule: str) -> np.ndarray:
    """(sum(item_lengths),) int64 majority tag of every token of `rows`' items (-1: a tie left
    undecided), computed MAJORITY_BLOCK items at a time.

    The annotations come sorted by item (and their spans by annotation), so a block of items
    is a slice of every array: its vote table stays small (tokens x tags) and in cache, where
    one table over a million tokens costs more to allocate than to count.
    """
    item_offsets = sequence_offsets(rows.item_lengths)
    winner = np.empty(int(item_offsets[-1]), dtype=np.int64)
    annotation_lengths = rows.annotation_lengths
    n_items = len(rows.item_ids)
    for first in range(0, n_items, MAJORITY_BLOCK):
        last = min(first + MAJORITY_BLOCK, n_items)
        a0, a1 = np.searchsorted(rows.annotation_item, [first, last])
        s0, s1 = np.searchsorted(rows.span_annotation, [a0, a1])
        lengths = annotation_lengths[a0:a1]
        tags = tags_from_spans(
            lengths,
            rows.span_annotation[s0:s1] - a0,
            rows.span_start[s0:s1],
            rows.span_end[s0:s1],
            rows.span_label[s0:s1],
        )
        token_item = item_token_index(
            rows.annotation_item[a0:a1] - first, lengths, rows.item_lengths[first:last]
        )
        t0, t1 = item_offsets[first], item_offsets[last]
        winner[t0:t1] = majority_winners(
            tags, token_item, n_item_tokens=int(t1 - t0), n_types=n_types, tie_rule=tie_rule
        )
    return winner


def _empty_spans() -> tuple[np.ndarray, ...]:
    return tuple(np.zeros(0, dtype=np.int64) for _ in range(4))


def _agreement(
    *,
    rows,
    annotation_pos: np.ndarray,
    n_annotations: np.ndarray,
    final: tuple[np.ndarray, ...],
    span_offsets: np.ndarray,
) -> np.ndarray:
    """(n_items,) float64: per item, the mean exact span F1 of its annotations against the
    exported spans (1 where both are empty); NaN without annotations."""
    n = len(n_annotations)
    agreement = np.full(n, np.nan)
    n_rows = len(annotation_pos)
    if not n_rows:
        return agreement
    span_item = rows.annotation_item[rows.span_annotation]
    ann_start, ann_end = char_offsets(
        span_item, rows.span_start, rows.span_end, rows.item_lengths,
        rows.token_starts, rows.token_ends,
    )  # fmt: skip
    ann_pos = annotation_pos[rows.span_annotation]
    matched = _isin_spans(
        (ann_pos, ann_start, ann_end, rows.span_label),
        final,
        n_items=n,
        n_types=len(rows.class_ids),
    )
    matched &= ann_pos >= 0
    tp = np.bincount(rows.span_annotation[matched], minlength=n_rows)
    given = np.bincount(rows.span_annotation, minlength=n_rows)
    counts = np.diff(span_offsets)
    exported = np.where(annotation_pos >= 0, counts[np.maximum(annotation_pos, 0)], 0)
    total = given + exported
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(total > 0, 2 * tp / np.maximum(total, 1), 1.0)
        present = annotation_pos >= 0
        sums = np.bincount(annotation_pos[present], weights=f1[present], minlength=n)
        agreement = np.where(n_annotations > 0, sums / np.maximum(n_annotations, 1), np.nan)
    return agreement


def _isin_spans(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...], *, n_items, n_types):
    """(len(a[0]),) bool: whether each span (item, start, end, type) of `a` is among `b`'s."""
    if not len(a[0]) or not len(b[0]):
        return np.zeros(len(a[0]), dtype=bool)
    width = int(max(a[2].max(), b[2].max())) + 1
    types = max(n_types, 1)
    if n_items * width * width * types < 2**62:
        # One int64 key per span, (item, start, end, type) in mixed radix; a sorted search
        # (np.isin hashes, three times slower here).
        def key(spans):
            item, start, end, label = (np.asarray(c, dtype=np.int64) for c in spans)
            return ((item * width + start) * width + end) * types + label

        among = np.sort(key(b))
        wanted = key(a)
        found = np.minimum(np.searchsorted(among, wanted), len(among) - 1)
        return among[found] == wanted
    # Texts too long for one key (never in practice): compare whole rows.
    both = np.unique(np.stack([np.concatenate(c) for c in zip(a, b, strict=True)], axis=1),
                     axis=0, return_inverse=True)[1].ravel()  # fmt: skip
    return np.isin(both[: len(a[0])], both[len(a[0]) :])
