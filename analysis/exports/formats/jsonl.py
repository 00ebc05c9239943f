"""JSON Lines: one JSON object per item (or annotation), keys in column order, typed values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from analysis.exports.formats.file_format import FileFormat

if TYPE_CHECKING:  # the plan imports the registry (see file_format.py)
    from analysis.exports.plan import DatasetExport


def _json_or_text(value):
    if value is None:
        return None
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def write(export: DatasetExport) -> Iterator[bytes]:
    header = export.header
    json_kinds = {c.name for c in export.columns if c.kind == "json"}
    for page in export.pages(typed=True):
        lines = []
        for row in page.rows():
            record = dict(zip(header, row, strict=True))
            if export.by_annotation:
                record["created_at"] = record["created_at"].isoformat()
            for name in json_kinds:
                record[name] = _json_or_text(record[name])
            lines.append(json.dumps(record, ensure_ascii=False))
        if lines:
            yield ("\n".join(lines) + "\n").encode("utf-8")


FORMAT = FileFormat(
    name="jsonl",
    content_type="application/x-ndjson; charset=utf-8",
    extension="jsonl",
    write=write,
)
