"""CSV: a header line, then one line per item (or annotation); every value as text.

Item pages arrive CSV-ready as text pages (text, None for empty, "true"/"false"); only
annotation rows need their values converted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from analysis.exports.formats.file_format import FileFormat

if TYPE_CHECKING:  # the plan imports the registry (see file_format.py)
    from analysis.exports.plan import DatasetExport


def _text(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if value != value else repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def write(export: DatasetExport) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(export.header)
    for page in export.pages(typed=False):
        if export.by_annotation:
            writer.writerows([[_text(value) for value in row] for row in page.rows()])
        else:
            writer.writerows(page.rows())
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


FORMAT = FileFormat(
    name="csv",
    content_type="text/csv; charset=utf-8",
    extension="csv",
    write=write,
    typed_columns=False,
)
