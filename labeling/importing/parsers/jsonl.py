"""JSON Lines: one JSON object per line, keyed like a CSV header; a `metadata` object is
merged into the item's metadata. Rows count lines."""

import json
from collections.abc import Iterator

from labeling.importing.parsers.rules import encode_json, json_item, split_labels
from labeling.importing.readers import ByteCounter, decoded_chunks, text_lines
from labeling.importing.records import AnnotationRow, ParseContext, Parser, Record, RowError
from labeling.models import ImportBatch


def parse(source: ByteCounter, ctx: ParseContext) -> Iterator[Record]:
    options = ctx.options
    items = options.kind == ImportBatch.Kind.ITEMS
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


PARSER = Parser(label="JSON Lines", parse=parse)
