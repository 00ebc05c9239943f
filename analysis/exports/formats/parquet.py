"""Parquet (zstd): one row group per page, written by pyarrow from explicit arrays and a fixed
schema, so the bytes depend on the data alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from analysis.exports.formats.file_format import FileFormat

if TYPE_CHECKING:  # the plan imports the registry (see file_format.py)
    from analysis.exports.plan import DatasetExport

KINDS = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


def schema(export: DatasetExport) -> pa.Schema:
    if export.by_annotation:
        return pa.schema(
            [
                ("external_id", pa.string()),
                ("annotator", pa.string()),
                ("label", pa.string()),
                ("guideline_version", pa.int64()),
                ("created_at", pa.timestamp("us", tz="UTC")),
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
        columns = page.columns()
        table = pa.Table.from_arrays(
            [pa.array(col, type=f.type) for col, f in zip(columns, file_schema, strict=True)],
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
