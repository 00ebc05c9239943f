"""Parquet (zstd): one row group per page, written by pyarrow from explicit arrays and a fixed
schema, so the bytes depend on the data alone.

A span project's `spans` column is a list of structs `{start: int64, end: int64, label:
string}` (null for an item without a decision), built from the page's span arrays directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from analysis.exports.formats.file_format import FileFormat

if TYPE_CHECKING:  # the plan imports the registry (see file_format.py)
    from analysis.exports.plan import DatasetExport

KINDS = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
SPAN = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("label", pa.string())])


def schema(export: DatasetExport) -> pa.Schema:
    if export.spans and export.by_annotation:
        return pa.schema(
            [
                ("external_id", pa.string()),
                ("annotator", pa.string()),
                ("spans", pa.list_(SPAN)),
                ("guideline_version", pa.int64()),
                ("created_at", pa.timestamp("us", tz="UTC")),
                ("suggestion_label", pa.string()),
                ("suggestion_model", pa.string()),
            ]
        )
    if export.spans:
        return pa.schema(
            [
                ("external_id", pa.string()),
                ("text", pa.string()),
                ("spans", pa.list_(SPAN)),
                ("label_source", pa.string()),
                ("agreement", pa.float64()),
                ("n_annotations", pa.int64()),
                ("quality", pa.float64()),
                ("issue", pa.bool_()),
                ("tied_tokens", pa.int64()),
                *[(c.name, KINDS.get(c.kind, pa.string())) for c in export.columns],
            ]
        )
    if export.by_annotation:
        return pa.schema(
            [
                ("external_id", pa.string()),
                ("annotator", pa.string()),
                ("label", pa.string()),
                ("guideline_version", pa.int64()),
                ("created_at", pa.timestamp("us", tz="UTC")),
                ("suggestion_label", pa.string()),
                ("suggestion_model", pa.string()),
            ]
        )
    return pa.schema(
        [
            ("external_id", pa.string()),
            ("label", pa.string()),
            ("label_source", pa.string()),
            ("agreement", pa.float64()),
            ("n_annotations", pa.int64()),
            ("quality", pa.float64()),
            ("issue", pa.bool_()),
            *[(c.name, KINDS.get(c.kind, pa.string())) for c in export.columns],
        ]
    )


class _Sink:
    """A write-only file for pyarrow's ParquetWriter whose bytes are taken out after each page."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data) -> int:
        data = bytes(data)
        self.parts.append(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts = []
        return out


def _span_lists(spans) -> pa.ListArray:
    """An `ItemSpans` as a list<struct> array, null for an item without a decision."""
    values = pa.StructArray.from_arrays(
        [
            pa.array(spans.start, type=pa.int64()),
            pa.array(spans.end, type=pa.int64()),
            pa.array(spans.label_names(), type=pa.string()),
        ],
        fields=list(SPAN),
    )
    return pa.ListArray.from_arrays(
        pa.array(spans.offsets, type=pa.int32()),
        values,
        type=pa.list_(SPAN),
        mask=pa.array(~spans.decided),
    )


def write(export: DatasetExport) -> Iterator[bytes]:
    # pyarrow.parquet is imported by Parquet exports only: with the filesystems it brings
    # in it adds 7 MB to a web process that has loaded every view (measured).
    import pyarrow.parquet as pq

    file_schema = schema(export)
    sink = _Sink()
    # No statistics of the export's own time or host are written; the "created_by" footer
    # names only the pyarrow version, so the bytes depend on the data alone.
    writer = pq.ParquetWriter(sink, file_schema, compression="zstd")
    for page in export.pages(typed=True):
        if not page.n_rows:
            continue
        if export.spans:
            # The spans straight from their arrays (page.columns() would make dicts).
            spans = _span_lists(page.spans)
            if export.by_annotation:
                columns = [page.external_id, page.annotator, spans, *page[3:7]]
            else:
                columns = [page.external_id, page.text, spans, *page[3:9], *page.fields]
        else:
            columns = page.columns()
        table = pa.Table.from_arrays(
            [
                col if isinstance(col, pa.Array) else pa.array(col, type=f.type)
                for col, f in zip(columns, file_schema, strict=True)
            ],
            schema=file_schema,
        )
        writer.write_table(table, row_group_size=page.n_rows)
        yield sink.take()
    writer.close()
    yield sink.take()


FORMAT = FileFormat(
    name="parquet",
    content_type="application/vnd.apache.parquet",
    extension="parquet",
    write=write,
)
