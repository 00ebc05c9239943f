"""CoNLL: one token per line with its tag in the last whitespace-separated column, a blank line
between sentences (the CoNLL-2003 NER shape). Each sentence is an item whose text is its
tokens joined by single spaces; its tags become spans for the `annotator` option's annotator.

- `-DOCSTART-` lines are ignored; a `# id = <external_id>` line before a sentence names its
  item, else sentences are `s1`, `s2`, ... in file order; other `# key = value` lines before a
  sentence (CoNLL-U's `# text = ...`) are comments.
- Tags are `O`, `B-<label>`, `I-<label>` or a bare `<label>` (IO): IOB2, IOB1 and IO are read
  by one rule, so none has to be declared: a `B-` starts a span, and an `I-` (or bare label)
  continues the span before it when that span has its type, else starts one.
- A token's edges are always edges of the contract's tokens (`labeling.spans`), which never
  cross whitespace: a span over "U.S." covers the four tokens U . S . of the text.

Rows count lines; a sentence's row is the line of its first token (or of its `# id` line).
Tags are read only when they become annotations (an annotator is given, or kind=annotations).
"""

import re
from collections.abc import Iterator

from labeling.importing.parsers.rules import json_item
from labeling.importing.readers import ByteCounter, FileRejected, decoded_chunks, text_lines
from labeling.importing.records import AnnotationRow, ParseContext, Parser, Record, RowError
from labeling.models import ImportBatch

DOCSTART = "-DOCSTART-"
_ID_LINE = re.compile(r"#\s*id\s*=\s*(.*?)\s*")
_COMMENT = re.compile(r"#\s*[\w.-]+\s*=.*")
_TAG = re.compile(r"([BI])-(.+)")


def spans_from_tags(
    tokens: list[str], tags: list[str], rows: list[int], ctx: ParseContext
) -> tuple[list[list], RowError | None]:
    """The sentence's spans `[start, end, label]` on its space-joined text, or the first bad tag.

    An I- tag continues the span before it only when that span has its type (so IOB2, IOB1
    and IO decode alike, as seqeval's `get_entities` reads them).
    """
    spans: list[list] = []
    current = None
    position = 0
    for token, tag, row in zip(tokens, tags, rows, strict=True):
        start, end = position, position + len(token)
        position = end + 1
        if tag == "O":
            current = None
            continue
        match = _TAG.fullmatch(tag)
        prefix, label = match.groups() if match else ("I", tag)
        if label not in ctx.label_names:
            if not match and "-" in tag:
                why = f"tag {tag[:60]!r} is not O, B-<label> or I-<label> (IOB2, IOB1 or IO)"
            else:
                why = f"unknown label {label[:60]!r} in tag {tag[:60]!r}"
            return [], RowError(row, why)
        if prefix == "I" and current is not None and current[2] == label:
            current[1] = end
        else:
            current = [start, end, label]
            spans.append(current)
    return spans, None


class Sentence:
    """The sentence being read: its tokens, tags and their lines, and its id line."""

    def __init__(self):
        self.tokens: list[str] = []
        self.tags: list[str] = []
        self.rows: list[int] = []
        self.named: tuple[str, int] | None = None  # (external id, line) from `# id =`
        self.problem: RowError | None = None

    def __bool__(self) -> bool:
        return bool(self.tokens) or self.problem is not None


def _sentence_records(sentence: Sentence, number: int, ctx: ParseContext) -> Iterator[Record]:
    options = ctx.options
    if sentence.problem:
        yield sentence.problem
        return
    external_id, row = sentence.named or (f"s{number}", sentence.rows[0])
    text = " ".join(sentence.tokens)
    item = json_item(row, external_id, {options.text_column: text}, {}, ctx)
    if type(item) is RowError:
        yield item
        return
    items = options.kind == ImportBatch.Kind.ITEMS
    if items:
        yield item
    if not options.annotator:
        return
    spans, problem = spans_from_tags(sentence.tokens, sentence.tags, sentence.rows, ctx)
    if problem:
        yield RowError(problem.row, f"sentence {item.external_id[:60]!r}: {problem.reason}")
        return
    yield AnnotationRow(row, item.external_id, options.annotator, [], spans, text)


def parse(source: ByteCounter, ctx: ParseContext) -> Iterator[Record]:
    if not ctx.spans:
        raise FileRejected(
            None, "A CoNLL file holds entity spans: import it into a project of task type spans."
        )
    sentence, number = Sentence(), 0
    for row, line in enumerate(text_lines(decoded_chunks(source)), start=1):
        fields = line.split()
        if not fields or fields[0] == DOCSTART:
            if sentence:
                number += 1
                yield from _sentence_records(sentence, number, ctx)
            sentence = Sentence()
            continue
        if not sentence.tokens and fields[0].startswith("#"):
            stripped = line.strip()
            if named := _ID_LINE.fullmatch(stripped):
                sentence.named = (named.group(1), row)
                continue
            if _COMMENT.fullmatch(stripped):
                continue
        if len(fields) < 2 and sentence.problem is None:
            sentence.problem = RowError(
                row, f"expected a token and its tag, found only {fields[0][:60]!r}"
            )
        sentence.tokens.append(fields[0])
        sentence.tags.append(fields[-1])
        sentence.rows.append(row)
    if sentence:
        number += 1
        yield from _sentence_records(sentence, number, ctx)


PARSER = Parser(label="CoNLL (IOB2, IOB1, IO)", parse=parse)
