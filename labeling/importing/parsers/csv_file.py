"""CSV and TSV: one item or annotation per row, under a header row unless the first row is data.

The delimiter is the `delimiter` option, else tab for a `.tsv` name (see options), else the one
`csv.Sniffer` finds in the first lines (comma when it cannot tell). Without a header the
columns are named by position: column1, column2, ... Row numbers count lines as a
spreadsheet does (a header is row 1; a blank line keeps its number).

Items are checked and encoded many rows at a time where they can be (ItemChunk: no Python code
per value), and row by row where a chunk holds a row that needs a closer look.
"""

import csv
import re
from collections.abc import Iterator
from itertools import chain
from json.encoder import encode_basestring

from labeling.importing.parsers.rules import (
    content_clash,
    content_key,
    image_url_problem,
    split_labels,
)
from labeling.importing.readers import (
    ByteCounter,
    FileRejected,
    decoded_chunks,
    max_field_chars,
    text_lines,
)
from labeling.importing.records import (
    AnnotationRow,
    ItemChunk,
    ItemRow,
    ParseContext,
    Parser,
    Record,
    RowError,
)
from labeling.models import ImportBatch, Project

DELIMITERS = {"comma": ",", "tab": "\t", "semicolon": ";"}
COPY_CHUNK_ROWS = 2_000
SNIFF_CHARS = 65_536
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_COPY_LINE_BREAK = re.compile(r"[\t\n\r]")


def positional_name(index: int) -> str:
    """The name of column `index` (from 0) of a file without a header: column1, column2, ..."""
    return f"column{index + 1}"


def sniff_delimiter(text: str) -> str:
    """The delimiter of a file that begins with `text`: tab, comma or semicolon (comma when
    the first lines do not tell)."""
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;").delimiter
    except csv.Error:
        return ","


def _tabular_value_json(text: str) -> str:
    # Tabular fields that are plain JSON numbers are stored as numbers.
    return text if _JSON_NUMBER.fullmatch(text) else encode_basestring(text)


class Table:
    """A CSV file opened for one pass: its column names, and its records after the header."""

    def __init__(self, source: ByteCounter, options):
        self.options = options
        chunks = decoded_chunks(source)
        delimiter = DELIMITERS.get(options.delimiter)
        if delimiter is None:
            first = next(chunks, "")
            delimiter = sniff_delimiter(first)
            chunks = chain((first,), chunks)
        reader = csv.reader(text_lines(chunks), delimiter=delimiter)
        try:
            first_record = next(reader, None)
        except csv.Error as exc:
            first = "Row 1" if options.first_row_is_data else "The header"
            raise FileRejected(1, f"{first} is not valid CSV: {exc}.")
        if not first_record or not any(value.strip() for value in first_record):
            if options.first_row_is_data:
                raise FileRejected(1, "The file is empty: its first row is expected to hold data.")
            raise FileRejected(1, "The file is empty: a header row is expected.")
        if options.first_row_is_data:
            self.header = [positional_name(i) for i in range(len(first_record))]
            self.records = chain((first_record,), reader)
            self.rows_before = 0
        else:
            self.header = [name.strip() for name in first_record]
            if len(set(self.header)) != len(self.header):
                raise FileRejected(1, "The header repeats a column name.")
            self.records = reader
            self.rows_before = 1
        self.position = {name: i for i, name in enumerate(self.header)}

    def column(self, option: str, name: str) -> int:
        """The position of column `name`, given by the option `option`; a missing column
        rejects the file, saying which option to set and listing the columns there are."""
        if name in self.position:
            return self.position[name]
        columns = ", ".join(self.header)[:300]
        if self.options.first_row_is_data:
            found = f"the first row is data, so the columns are named by position: {columns}"
        else:
            found = f"the header has: {columns}"
        fix = f"Set {option} to one of these columns"
        if option == "id_column" and self.options.kind == ImportBatch.Kind.ITEMS:
            fix += ", or leave id_column empty to number the items by row"
        if not self.options.first_row_is_data:
            fix += "; if the file has no header row, set first_row_is_data"
        raise FileRejected(1, f"Missing column {name!r} ({found}). {fix}.")

    def numbered_records(self) -> Iterator[tuple[int, list[str]]]:
        """(row, record) of each non-blank row."""
        row = self.rows_before
        records = iter(self.records)
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileRejected(row + 1, f"Row {row + 1} is not valid CSV: {exc}.")
            row += 1
            if record:  # csv yields [] for a blank line, which keeps its number
                yield row, record


class ItemColumns:
    """Where an item's parts are in a record, and the checks and JSON encoding of a record."""

    def __init__(self, table: Table, ctx: ParseContext):
        options = ctx.options
        header = table.header
        self.header, self.n_cols, self.encode = header, len(header), ctx.encode
        self.id_name = options.id_column
        # No id column: an item's id is its row number.
        self.id_at = table.column("id_column", options.id_column) if options.id_column else None
        self.meta_at = [table.column("metadata_columns", m) for m in options.metadata_columns]
        self.data_type = ctx.project.data_type
        if self.data_type == Project.DataType.TEXT:
            self.content_at = table.column("text_column", options.text_column)
        elif self.data_type == Project.DataType.IMAGE:
            self.content_at = table.column("image_column", options.image_column)
        else:
            self.content_at = None
        self.data_at = [i for i in range(self.n_cols) if i != self.id_at and i not in self.meta_at]
        if not self.data_at:
            raise FileRejected(1, "No data columns: every column is the id or metadata.")
        clash = content_clash([header[i] for i in self.data_at], ctx.project, options)
        if clash:
            raise FileRejected(1, clash)
        keys = list(header)
        renamed = content_key(ctx.project, options)
        if renamed:
            keys[self.content_at] = renamed[1]
        # JSON objects as %-templates: the keys are encoded once, the values per row.
        self.data_template, self.meta_template = (
            "{" + ",".join(encode_basestring(keys[i]).replace("%", "%%") + ":%s" for i in at) + "}"
            for at in (self.data_at, self.meta_at)
        )
        tabular = self.data_type == Project.DataType.TABULAR
        self.value_json = _tabular_value_json if tabular else encode_basestring
        self.limit = max_field_chars()

    def row_record(self, record: list[str], row: int) -> ItemRow | RowError:
        n_cols = self.n_cols
        if len(record) != n_cols:
            return RowError(row, f"expected {n_cols} columns, found {len(record)}")
        if self.id_at is None:
            external_id = str(row)
        else:
            external_id = record[self.id_at].strip()
            if not external_id:
                return RowError(row, f"empty {self.id_name}")
            if len(external_id) > 255:
                return RowError(row, f"{self.id_name} is longer than 255 characters")
        if self.content_at is not None:
            content = record[self.content_at]
            if not content.strip():
                text = self.data_type == Project.DataType.TEXT
                return RowError(row, "empty text" if text else "empty image URL")
            if self.data_type == Project.DataType.IMAGE and (problem := image_url_problem(content)):
                return RowError(row, problem)
        limit = self.limit
        if max(map(len, record)) > limit:
            lengths = [len(value) for value in record]
            longest = lengths.index(max(lengths))
            return RowError(
                row, f"field {self.header[longest]!r} is longer than {limit:,} characters"
            )
        if not self.encode:
            return ItemRow(row, external_id, None, None)
        value_json = self.value_json
        data_json = self.data_template % tuple([value_json(record[i]) for i in self.data_at])
        meta_json = self.meta_template % tuple([encode_basestring(record[i]) for i in self.meta_at])
        return ItemRow(row, external_id, data_json, meta_json)

    def chunk_record(self, records: list[list[str]], first_row: int) -> ItemChunk | None:
        """The rows `records` (no blank line among them) checked and encoded column-wise, in
        C; None when some row needs a closer look."""
        if set(map(len, records)) != {self.n_cols}:
            return None
        columns = list(zip(*records, strict=True))
        if self.id_at is None:
            external_ids = list(map(str, range(first_row, first_row + len(records))))
        else:
            external_ids = list(map(str.strip, columns[self.id_at]))
            if not all(external_ids) or max(map(len, external_ids)) > 255:
                return None
            if _COPY_LINE_BREAK.search("".join(external_ids)):
                return None
        if self.content_at is not None:
            if not all(map(str.strip, columns[self.content_at])):
                return None
            if self.data_type == Project.DataType.IMAGE and any(
                map(image_url_problem, columns[self.content_at])
            ):
                return None
        if max(max(map(len, column)) for column in columns) > self.limit:
            return None
        if not self.encode:
            return ItemChunk(first_row, external_ids, None)
        data_json = map(
            self.data_template.__mod__,
            zip(*[map(self.value_json, columns[i]) for i in self.data_at], strict=True),
        )
        meta_json = (
            map(
                self.meta_template.__mod__,
                zip(*[map(encode_basestring, columns[i]) for i in self.meta_at], strict=True),
            )
            if self.meta_at
            else [self.meta_template] * len(records)
        )
        lines = map("\t".join, zip(external_ids, data_json, meta_json, strict=True))
        text = "\n".join(lines) + "\n"
        # Ids hold no tab or line break (checked) and JSON text never does: only \ is escaped.
        return ItemChunk(first_row, external_ids, text.replace("\\", "\\\\"))


def parse(source: ByteCounter, ctx: ParseContext) -> Iterator[Record]:
    """The file's records; its header and columns are read and checked at once."""
    if ctx.spans and ctx.options.kind == ImportBatch.Kind.ANNOTATIONS:
        raise FileRejected(
            None,
            "Spans come in JSON Lines, CoNLL or Label Studio files; a CSV file holds items only.",
        )
    table = Table(source, ctx.options)
    if ctx.options.kind == ImportBatch.Kind.ANNOTATIONS:
        return _annotations(table, ctx)
    return _items(table, ItemColumns(table, ctx), ctx.copy_chunks)


def _annotations(table: Table, ctx: ParseContext) -> Iterator[Record]:
    options = ctx.options
    id_at = table.column("id_column", options.id_column)
    annotator_at = table.column("annotator_column", options.annotator_column)
    label_at = table.column("label_column", options.label_column)
    n_cols = len(table.header)
    for row, record in table.numbered_records():
        if len(record) != n_cols:
            yield RowError(row, f"expected {n_cols} columns, found {len(record)}")
            continue
        external_id, annotator = record[id_at].strip(), record[annotator_at].strip()
        if not external_id:
            yield RowError(row, f"empty {options.id_column}")
            continue
        if not annotator:
            yield RowError(row, f"empty {options.annotator_column}")
            continue
        labels, problem = split_labels(record[label_at], ctx)
        if problem:
            yield RowError(row, problem)
            continue
        yield AnnotationRow(row, external_id, annotator, labels)


def _items(table: Table, columns: ItemColumns, copy_chunks: bool) -> Iterator[Record]:
    """The hot loop: no generator layer between the csv reader and the checks."""
    row = table.rows_before
    row_record, chunk_record = columns.row_record, columns.chunk_record
    chunk: list[list[str]] = []
    try:
        for record in table.records:
            if copy_chunks:
                chunk.append(record)
                if len(chunk) < COPY_CHUNK_ROWS:
                    continue
                if event := chunk_record(chunk, row + 1):
                    row += len(chunk)
                    chunk = []
                    yield event
                    continue
                records, chunk = chunk, []
            else:
                records = (record,)
            for record in records:
                row += 1
                if record:  # csv yields [] for a blank line, which keeps its number
                    yield row_record(record, row)
        for record in chunk:
            row += 1
            if record:
                yield row_record(record, row)
    except csv.Error as exc:
        for record in chunk:  # the rows read before the bad one
            row += 1
            if record:
                yield row_record(record, row)
        raise FileRejected(row + 1, f"Row {row + 1} is not valid CSV: {exc}.")


PARSER = Parser(label="CSV", parse=parse)
