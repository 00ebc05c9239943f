"""JSON Lines: one JSON object per line, keyed like a CSV header; a `metadata` object is
merged into the item's metadata. Rows count lines.

Span projects: an item row may carry `spans` (`[{start, end, label}]`, extra keys such as
Prodigy's `token_start` ignored) and `annotator` (else the `annotator` option): the Prodigy /
spaCy record shape `{"text", "spans"}` imports as is (a Prodigy `answer` of reject or ignore
imports the item without the annotation). Without an id the item's id is a stable
hash of its text (`rules.text_id`), and later rows with the same text are more annotations of
that item. Annotation rows are `{external_id, annotator, spans}` (a `text`, when given, must
be the item's).
"""

import json
from collections.abc import Iterator

from labeling.importing.parsers.rules import encode_json, json_item, split_labels, text_id
from labeling.importing.readers import ByteCounter, decoded_chunks, text_lines
from labeling.importing.records import AnnotationRow, ParseContext, Parser, Record, RowError
from labeling.models import ImportBatch

# Prodigy's per-record bookkeeping, not the item's data: `tokens` (its own tokenization) and
# the keys that start with "_" (`_input_hash`, `_task_hash`, `_view_id`, ...).
PRODIGY_KEYS = ("tokens", "answer")


def _accepted(obj: dict) -> bool:
    """Prodigy marks each answer accept, reject or ignore: only an accepted (or unmarked)
    record's spans are an annotation; a rejected one says its spans are wrong."""
    return obj.get("answer", "accept") == "accept"


def json_objects(source: ByteCounter) -> Iterator[tuple[int, dict] | RowError]:
    """(line number, object) per non-blank line, or the line's RowError when it is not a
    JSON object (the gold import reads its lines through this too)."""
    for row, line in enumerate(text_lines(decoded_chunks(source)), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RowError(row, f"not valid JSON: {exc.msg}")
            continue
        if not isinstance(obj, dict):
            yield RowError(row, "each line must be a JSON object")
            continue
        yield row, obj


def parse(source: ByteCounter, ctx: ParseContext) -> Iterator[Record]:
    options = ctx.options
    items = options.kind == ImportBatch.Kind.ITEMS
    # Span items identified by their text: the ids already given (a repeat is the same item).
    hashed: set[str] = set()
    for parsed in json_objects(source):
        if isinstance(parsed, RowError):
            yield parsed
            continue
        row, obj = parsed
        if ctx.spans and items:
            yield from span_item_records(obj, row, ctx, hashed)
        elif ctx.spans:
            if _accepted(obj):
                yield span_annotation_record(obj, row, ctx)
        else:
            yield item_record(obj, row, ctx) if items else annotation_record(obj, row, ctx)


def item_record(obj: dict, row: int, ctx: ParseContext) -> Record:
    id_column = ctx.options.id_column
    data = {k: v for k, v in obj.items() if k not in (id_column, "metadata")}
    external_id = obj.get(id_column) if id_column else row  # no id column: the line number
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return json_item(row, external_id, data, metadata, ctx)


def annotation_record(obj: dict, row: int, ctx: ParseContext) -> Record:
    options = ctx.options
    external_id = obj.get(options.id_column)
    annotator = obj.get(options.annotator_column)
    if external_id in (None, "") or not isinstance(external_id, str | int):
        return RowError(row, f"empty {options.id_column}")
    if not isinstance(annotator, str) or not annotator.strip():
        return RowError(row, f"empty {options.annotator_column}")
    value = obj.get(options.label_column, obj.get("labels"))
    if isinstance(value, list):
        value = encode_json(value) if ctx.multi else "|".join(map(str, value))
    if not isinstance(value, str | int) or isinstance(value, bool):
        return RowError(row, f"empty {options.label_column}")
    labels, problem = split_labels(str(value), ctx)
    if problem:
        return RowError(row, problem)
    return AnnotationRow(row, str(external_id).strip(), annotator.strip(), labels)


# --------------------------------------------------------------------------------------
# Span projects


def _text(obj: dict, ctx: ParseContext) -> str | None:
    text = obj.get(ctx.options.text_column)
    return text if isinstance(text, str) else None


def _span_annotator(obj: dict, ctx: ParseContext) -> str | None:
    """The row's annotator, else the `annotator` option; None when neither is given."""
    given = obj.get(ctx.options.annotator_column)
    if isinstance(given, str) and given.strip():
        return given.strip()
    return ctx.options.annotator or None


def _spans_row(row: int, external_id: str, obj: dict, text, ctx: ParseContext) -> Record:
    annotator = _span_annotator(obj, ctx)
    if annotator is None:
        return RowError(
            row,
            f"spans without an annotator: give the annotator option or an "
            f"{ctx.options.annotator_column!r} field",
        )
    spans = obj["spans"]
    if not isinstance(spans, list):
        return RowError(row, "`spans` must be a list of {start, end, label}")
    return AnnotationRow(row, external_id, annotator, [], spans, text)


def span_item_records(obj: dict, row: int, ctx: ParseContext, hashed: set) -> Iterator[Record]:
    """An item row of a span project: the item, and its annotation when it carries `spans`."""
    options = ctx.options
    id_column, text = options.id_column, _text(obj, ctx)
    external_id = obj.get(id_column) if id_column else row
    if id_column and external_id in (None, "") and text is not None and text.strip():
        external_id = text_id(text)
        if external_id in hashed:  # the same text again: another annotation of that item
            if "spans" in obj and _accepted(obj):
                yield _spans_row(row, external_id, obj, text, ctx)
            return
        hashed.add(external_id)
    annotation_keys = ("spans", options.annotator_column, *PRODIGY_KEYS)
    data = {
        k: v
        for k, v in obj.items()
        if k not in (id_column, "metadata", *annotation_keys) and not k.startswith("_")
    }
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    item = json_item(row, external_id, data, metadata, ctx)
    yield item
    if type(item) is not RowError and "spans" in obj and _accepted(obj):
        yield _spans_row(row, item.external_id, obj, text, ctx)


def span_annotation_record(obj: dict, row: int, ctx: ParseContext) -> Record:
    """`{external_id, annotator, spans}` for an item of the project (a given text must be its)."""
    options = ctx.options
    external_id, text = obj.get(options.id_column), _text(obj, ctx)
    if external_id in (None, "") and text is not None and text.strip():
        external_id = text_id(text)
    if external_id in (None, "") or not isinstance(external_id, str | int):
        return RowError(row, f"empty {options.id_column}")
    if "spans" not in obj:
        return RowError(row, "no `spans` (give [] for a text without entities)")
    return _spans_row(row, str(external_id).strip(), obj, text, ctx)


PARSER = Parser(label="JSON Lines", parse=parse)
