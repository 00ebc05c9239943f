"""Importing items and annotations from CSV, JSON Lines and Label Studio JSON exports.

An import reads its file in streaming passes with bounded memory:

1. validate: every row is checked and only the ids are kept (a set); nothing is written.
   Any bad row rejects the whole file: the batch is marked failed with up to 100
   `{row, reason}` errors.
2. write: the file is read again and written in one transaction, in batches. On PostgreSQL
   rows go through `COPY ... FROM STDIN` (several times faster than INSERTs); elsewhere
   through `bulk_create`.

Label Studio exports hold items and annotations together: items are written in pass 2 and
their annotations in a third pass over the file.

Row numbers in errors count the CSV header as row 1 (so they match a spreadsheet's line
numbers); JSON Lines count lines; Label Studio counts tasks from 1. `row` is null for
problems with the whole file.
"""

import codecs
import io
import json
import logging
import re
import tempfile
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import chain
from json.encoder import encode_basestring

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg.copy import QueuedLibpqWriter

from labeling.models import Annotation, ImportBatch, ImportUpload, Item, Profile, Project
from labeling.services.queue import progress_refresh

logger = logging.getLogger(__name__)
User = get_user_model()

MAX_ERRORS = 100
READ_BYTES = 1 << 20
WRITE_BATCH = 10_000
LOOKUP_BATCH = 5_000
UPLOAD_CHUNK_BYTES = 4 << 20
ON_DUPLICATE = ("error", "skip", "update")
DELIMITERS = {",": ",", "comma": ",", "\t": "\t", "tab": "\t", ";": ";", "semicolon": ";"}
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_LINE_BREAK = re.compile(r"[\t\n\r]")
COPY_CHUNK_ROWS = 2_000
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_USERNAME = re.compile(UnicodeUsernameValidator.regex)
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def max_field_chars() -> int:
    return settings.CONCORD_IMPORT_MAX_FIELD_CHARS


class FileRejected(Exception):
    """The whole file cannot be read (encoding, size, syntax); no row after it is checked."""

    def __init__(self, row: int | None, reason: str):
        super().__init__(reason)
        self.row = row
        self.reason = reason


# --------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class ImportOptions:
    format: str
    kind: str
    id_column: str = "external_id"
    text_column: str = "text"
    image_column: str = "image"
    metadata_columns: tuple[str, ...] = ()
    on_duplicate: str = "error"
    annotator_column: str = "annotator"
    label_column: str = "label"
    delimiter: str = ","

    @classmethod
    def parse(cls, *, format: str, kind: str, options: dict | None) -> "ImportOptions":
        """Validated options; raises ValidationError naming the bad option."""
        options = {k: v for k, v in (options or {}).items() if v not in (None, "")}
        errors = {}
        if format not in ImportBatch.Format.values:
            errors["format"] = f"Format must be one of {', '.join(ImportBatch.Format.values)}."
        if kind not in ImportBatch.Kind.values:
            errors["kind"] = f"Kind must be one of {', '.join(ImportBatch.Kind.values)}."
        on_duplicate = str(options.get("on_duplicate", "error"))
        if on_duplicate not in ON_DUPLICATE:
            errors["on_duplicate"] = f"on_duplicate must be one of {', '.join(ON_DUPLICATE)}."
        delimiter = DELIMITERS.get(str(options.get("delimiter", ",")))
        if delimiter is None:
            errors["delimiter"] = "delimiter must be comma, tab or semicolon."
        metadata = options.get("metadata_columns", ())
        if isinstance(metadata, str):
            metadata = [part.strip() for part in metadata.split(",")]
        metadata = tuple(dict.fromkeys(str(m).strip() for m in metadata if str(m).strip()))
        names = {}
        for name in ("id_column", "text_column", "image_column"):
            names[name] = str(options.get(name, cls.__dataclass_fields__[name].default)).strip()
        for name in ("annotator_column", "label_column"):
            names[name] = str(options.get(name, cls.__dataclass_fields__[name].default)).strip()
        if names["id_column"] in metadata:
            errors["metadata_columns"] = "The id column cannot also be a metadata column."
        if errors:
            raise ValidationError(errors)
        return cls(
            format=format,
            kind=kind,
            metadata_columns=metadata,
            on_duplicate=on_duplicate,
            delimiter=delimiter,
            **names,
        )

    def as_dict(self) -> dict:
        return {
            "id_column": self.id_column,
            "text_column": self.text_column,
            "image_column": self.image_column,
            "metadata_columns": list(self.metadata_columns),
            "on_duplicate": self.on_duplicate,
            "annotator_column": self.annotator_column,
            "label_column": self.label_column,
            "delimiter": self.delimiter,
        }


# --------------------------------------------------------------------------------------
# Reading: bytes -> strictly decoded text -> lines / JSON values


class ByteCounter:
    """Wraps a binary file: counts bytes read and enforces the upload limit."""

    def __init__(self, fileobj, limit: int):
        self.fileobj = fileobj
        self.limit = limit
        self.read_bytes = 0

    def rewind(self) -> None:
        self.fileobj.seek(0)
        self.read_bytes = 0

    def chunks(self) -> Iterator[bytes]:
        while chunk := self.fileobj.read(READ_BYTES):
            if isinstance(chunk, str):
                chunk = chunk.encode()
            self.read_bytes += len(chunk)
            if self.read_bytes > self.limit:
                raise FileRejected(
                    None, f"The file is larger than the limit of {self.limit:,} bytes."
                )
            yield chunk


def decoded_chunks(source: ByteCounter) -> Iterator[str]:
    """UTF-8 text (a leading BOM dropped); bad bytes or NUL raise FileRejected with the line."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
    lines_before = 0
    for chunk in source.chunks():
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line = lines_before + chunk[: max(exc.start, 0)].count(b"\n") + 1
            raise FileRejected(
                line,
                f"Line {line} is not UTF-8 text (byte 0x{chunk[exc.start]:02x}); is it binary?",
            )
        nul = text.find("\x00")
        if nul >= 0:
            line = lines_before + text.count("\n", 0, nul) + 1
            raise FileRejected(line, f"Line {line} holds binary content (a NUL byte).")
        lines_before += text.count("\n")
        yield text
    try:
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise FileRejected(lines_before + 1, "The file ends in the middle of a UTF-8 character.")
    if tail:
        yield tail


def text_lines(chunks: Iterator[str]) -> Iterator[str]:
    """Lines with their endings, split only at \\n, \\r\\n or \\r (as csv expects).

    Whole chunks are cut at their last line end and iterated by StringIO inside
    `chain.from_iterable`, so no Python code runs per line.
    """

    def blocks():
        pending = ""
        for text in chunks:
            text = pending + text
            cut = max(text.rfind("\n"), text.rfind("\r")) + 1
            if cut and text[cut - 1] == "\r" and cut == len(text):
                cut -= 1  # a \r at the very end may be the first half of \r\n
            if not cut:
                pending = text
                if len(pending) > 4 * max_field_chars() + 1_000_000:
                    raise FileRejected(None, "A line is far longer than the field size limit.")
                continue
            pending = text[cut:]
            yield io.StringIO(text[:cut], newline="")
        if pending:
            yield io.StringIO(pending, newline="")

    return chain.from_iterable(blocks())


def json_array_values(chunks: Iterator[str]) -> Iterator[object]:
    """The values of one top-level JSON array, decoded one at a time (bounded memory)."""
    decoder = json.JSONDecoder()
    buf, pos, state, index = "", 0, "start", 0
    limit = 8 * max_field_chars() + 16_000_000
    chunks = iter(chunks)
    exhausted = False
    while True:
        while pos < len(buf) and buf[pos] in " \t\r\n":
            pos += 1
        if pos >= len(buf) or (state == "value" and not exhausted):
            # need more text: at the end of the buffer, or to try decoding a value whole
            more = next(chunks, None)
            if more is not None:
                buf, pos = buf[pos:] + more, 0
                if state != "value" or len(buf) < 65536:
                    continue
            else:
                exhausted = True
                if pos >= len(buf):
                    if state == "done":
                        return
                    raise FileRejected(None, "The JSON ends before its closing ].")
        char = buf[pos]
        if state == "start":
            if char != "[":
                raise FileRejected(None, "A Label Studio export is a JSON list of tasks: [...].")
            pos, state = pos + 1, "first"
        elif state in ("first", "after"):
            if char == "]":
                pos, state = pos + 1, "done"
            elif state == "after":
                if char != ",":
                    raise FileRejected(index + 1, f"Expected , or ] after task {index}.")
                pos, state = pos + 1, "value"
            else:
                state = "value"
        elif state == "value":
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if not exhausted and len(buf) - pos < limit:
                    more = next(chunks, None)
                    if more is None:
                        exhausted = True
                    else:
                        buf, pos = buf[pos:] + more, 0
                    continue
                raise FileRejected(index + 1, f"Task {index + 1} is not valid JSON: {exc.msg}.")
            index += 1
            pos, state = end, "after"
            yield value
        elif state == "done":
            raise FileRejected(None, "Unexpected text after the closing ].")


# --------------------------------------------------------------------------------------
# Parsing rows: each parser yields ("item", row, external_id, data_json, metadata_json),
# ("annotation", row, external_id, annotator, labels) or ("error", row, reason).
# data_json/metadata_json are None during validation (encoding is only paid when writing).


@dataclass
class ParseContext:
    project: Project
    options: ImportOptions
    label_names: frozenset
    encode: bool = False
    # CSV items may come as ("item_chunk", first_row, external_ids, copy_text) per chunk:
    # copy_text is "external_id\tdata\tmetadata\n" lines in COPY text format (None without
    # encode).
    copy_chunks: bool = False

    @property
    def multi(self) -> bool:
        return self.project.is_multi_label


def _split_labels(value: str, ctx: ParseContext) -> tuple[list[str] | None, str | None]:
    """Label names of one cell: `a`, or for multi-label `a|b` or a JSON list."""
    value = value.strip()
    if not value:
        return None, "empty label"
    if ctx.multi:
        if value.startswith("["):
            try:
                names = json.loads(value)
            except json.JSONDecodeError:
                return None, f"label {value[:60]!r} is not a valid JSON list"
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                return None, "a JSON label list must hold label names"
        else:
            names = value.split("|")
        names = [n.strip() for n in names]
    else:
        names = [value]
    unknown = [n for n in names if n not in ctx.label_names]
    if unknown:
        return None, f"unknown label {unknown[0][:60]!r}"
    if len(set(names)) != len(names):
        return None, "a label is repeated"
    return names, None


def _check_image_url(url: str) -> str | None:
    lowered = url.strip().lower()
    if lowered.startswith(("http://", "https://", "/", "data:image/")):
        return None
    return f"image URL {url[:60]!r} must start with http://, https:// or /"


def _content_error(project: Project, values: dict, options: ImportOptions) -> str | None:
    """The rule for an item's content by data type (text needs text, image needs a URL)."""
    if project.data_type == Project.DataType.TEXT:
        text = values.get(options.text_column)
        if text is None or (isinstance(text, str) and not text.strip()):
            return "empty text"
        if not isinstance(text, str):
            return f"{options.text_column} must be a string"
    elif project.data_type == Project.DataType.IMAGE:
        url = values.get(options.image_column)
        if not isinstance(url, str) or not url.strip():
            return "empty image URL"
        return _check_image_url(url)
    elif not values:
        return "no data fields"
    return None


def csv_rows(source: ByteCounter, ctx: ParseContext) -> Iterator[tuple]:
    import csv

    options = ctx.options
    limit = max_field_chars()
    csv.field_size_limit(max(csv.field_size_limit(), limit * 4 + 16))
    reader = csv.reader(text_lines(decoded_chunks(source)), delimiter=options.delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise FileRejected(1, f"The header is not valid CSV: {exc}.")
    if not header or not any(h.strip() for h in header):
        raise FileRejected(1, "The file is empty: a header row is expected.")
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise FileRejected(1, "The header repeats a column name.")
    position = {name: i for i, name in enumerate(header)}
    n_cols = len(header)

    def need(*names):
        missing = [n for n in names if n not in position]
        if missing:
            raise FileRejected(
                1, f"Missing column {missing[0]!r} (the header has: {', '.join(header)[:300]})."
            )

    need(options.id_column, *options.metadata_columns)
    id_at = position[options.id_column]
    row = 1

    def records():
        nonlocal row
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row += 1
                raise FileRejected(row, f"Row {row} is not valid CSV: {exc}.")
            row += 1
            if record:  # csv yields [] for blank lines
                yield record
            # a blank line keeps its number, as in a spreadsheet

    if options.kind == ImportBatch.Kind.ANNOTATIONS:
        need(options.annotator_column, options.label_column)
        ann_at, label_at = position[options.annotator_column], position[options.label_column]
        for record in records():
            if len(record) != n_cols:
                yield ("error", row, f"expected {n_cols} columns, found {len(record)}")
                continue
            external_id, annotator = record[id_at].strip(), record[ann_at].strip()
            if not external_id:
                yield ("error", row, f"empty {options.id_column}")
                continue
            if not annotator:
                yield ("error", row, f"empty {options.annotator_column}")
                continue
            labels, problem = _split_labels(record[label_at], ctx)
            if problem:
                yield ("error", row, problem)
                continue
            yield ("annotation", row, external_id, annotator, labels)
        return

    # kind == items
    data_type = ctx.project.data_type
    if data_type == Project.DataType.TEXT:
        need(options.text_column)
        content_at = position[options.text_column]
    elif data_type == Project.DataType.IMAGE:
        need(options.image_column)
        content_at = position[options.image_column]
    else:
        content_at = None
    meta_at = [position[m] for m in options.metadata_columns]
    data_at = [i for i in range(n_cols) if i != id_at and i not in meta_at]
    if not data_at:
        raise FileRejected(1, "No data columns: every column is the id or metadata.")
    # JSON objects as %-templates: the keys are encoded once, the values per row.
    data_template, meta_template = (
        "{" + ",".join(encode_basestring(header[i]).replace("%", "%%") + ":%s" for i in at) + "}"
        for at in (data_at, meta_at)
    )
    tabular = data_type == Project.DataType.TABULAR
    number = _JSON_NUMBER.fullmatch

    def value_json(text: str) -> str:
        # Tabular fields that are plain JSON numbers are stored as numbers.
        return text if tabular and number(text) else encode_basestring(text)

    def row_event(record: list[str], row: int) -> tuple | None:
        if not record:
            return None  # a blank line keeps its number, as in a spreadsheet
        if len(record) != n_cols:
            return ("error", row, f"expected {n_cols} columns, found {len(record)}")
        external_id = record[id_at].strip()
        if not external_id:
            return ("error", row, f"empty {options.id_column}")
        if len(external_id) > 255:
            return ("error", row, f"{options.id_column} is longer than 255 characters")
        if content_at is not None:
            content = record[content_at]
            if not content.strip():
                return ("error", row, "empty text" if data_type == "text" else "empty image URL")
            if data_type == Project.DataType.IMAGE and (problem := _check_image_url(content)):
                return ("error", row, problem)
        if max(map(len, record)) > limit:
            longest = max(range(n_cols), key=lambda i: len(record[i]))
            return ("error", row, f"field {header[longest]!r} is longer than {limit:,} characters")
        if not ctx.encode:
            return ("item", row, external_id, None, None)
        data_json = data_template % tuple([value_json(record[i]) for i in data_at])
        meta_json = meta_template % tuple([encode_basestring(record[i]) for i in meta_at])
        return ("item", row, external_id, data_json, meta_json)

    def item_chunk(records: list[list[str]], first_row: int) -> tuple | None:
        """The event of a chunk of rows that all pass, checked and encoded column-wise in C
        (no Python code per value); None when some row needs a closer look."""
        if set(map(len, records)) != {n_cols}:
            return None
        columns = list(zip(*records, strict=True))
        external_ids = list(map(str.strip, columns[id_at]))
        if not all(external_ids) or max(map(len, external_ids)) > 255:
            return None
        if _COPY_LINE_BREAK.search("".join(external_ids)):
            return None
        if content_at is not None:
            if not all(map(str.strip, columns[content_at])):
                return None
            if data_type == Project.DataType.IMAGE and any(
                map(_check_image_url, columns[content_at])
            ):
                return None
        if max(max(map(len, column)) for column in columns) > limit:
            return None
        if not ctx.encode:
            return ("item_chunk", first_row, external_ids, None)
        data_json = map(
            data_template.__mod__,
            zip(
                *[map(value_json if tabular else encode_basestring, columns[i]) for i in data_at],
                strict=True,
            ),
        )
        meta_json = (
            map(
                meta_template.__mod__,
                zip(*[map(encode_basestring, columns[i]) for i in meta_at], strict=True),
            )
            if meta_at
            else [meta_template] * len(records)
        )
        lines = map("\t".join, zip(external_ids, data_json, meta_json, strict=True))
        text = "\n".join(lines) + "\n"
        # Ids hold no tab or line break (checked) and JSON text never does: only \ is escaped.
        return ("item_chunk", first_row, external_ids, text.replace("\\", "\\\\"))

    # The hot loop: no generator layer between the csv reader and the checks.
    chunk: list[list[str]] = []
    try:
        for record in reader:
            if ctx.copy_chunks:
                chunk.append(record)
                if len(chunk) < COPY_CHUNK_ROWS:
                    continue
                event = item_chunk(chunk, row + 1)
                if event:
                    row += len(chunk)
                    chunk = []
                    yield event
                    continue
                records, chunk = chunk, []
            else:
                records = (record,)
            for record in records:
                row += 1
                if event := row_event(record, row):
                    yield event
        for record in chunk:
            row += 1
            if event := row_event(record, row):
                yield event
    except csv.Error as exc:
        for record in chunk:  # the rows read before the bad one
            row += 1
            if event := row_event(record, row):
                yield event
        raise FileRejected(row + 1, f"Row {row + 1} is not valid CSV: {exc}.")


def _json_item(obj: dict, row: int, ctx: ParseContext, *, data=None) -> tuple:
    """An item from a JSON object: id, metadata columns (+ a `metadata` object), data fields."""
    options = ctx.options
    if data is None:
        data = {k: v for k, v in obj.items() if k not in (options.id_column, "metadata")}
        external_id = obj.get(options.id_column)
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    else:
        external_id, metadata = obj["external_id"], obj["metadata"]
    if external_id is None or (isinstance(external_id, str) and not external_id.strip()):
        return ("error", row, f"empty {options.id_column}")
    if not isinstance(external_id, (str, int)) or isinstance(external_id, bool):
        return ("error", row, f"{options.id_column} must be a string or a number")
    external_id = str(external_id).strip()
    if len(external_id) > 255:
        return ("error", row, f"{options.id_column} is longer than 255 characters")
    metadata = dict(metadata)
    for name in options.metadata_columns:
        if name in data:
            metadata[name] = data.pop(name)
    problem = _content_error(ctx.project, data, options)
    if problem:
        return ("error", row, problem)
    limit = max_field_chars()
    data_json, meta_json = _encode_json(data), _encode_json(metadata)
    for name, value in (*data.items(), *metadata.items()):
        if len(_encode_json(value)) > limit if not isinstance(value, str) else len(value) > limit:
            return ("error", row, f"field {name!r} is longer than {limit:,} characters")
    if "\\u0000" in data_json or "\\u0000" in meta_json:
        return ("error", row, "a value holds a NUL character")
    try:
        data_json.encode()
        meta_json.encode()
    except UnicodeEncodeError:
        return ("error", row, "a value holds invalid Unicode (a lone surrogate)")
    if ctx.encode:
        return ("item", row, external_id, data_json, meta_json)
    return ("item", row, external_id, None, None)


def jsonl_rows(source: ByteCounter, ctx: ParseContext) -> Iterator[tuple]:
    options = ctx.options
    row = 0
    for line in text_lines(decoded_chunks(source)):
        row += 1
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield ("error", row, f"not valid JSON: {exc.msg}")
            continue
        if not isinstance(obj, dict):
            yield ("error", row, "each line must be a JSON object")
            continue
        if options.kind == ImportBatch.Kind.ITEMS:
            yield _json_item(obj, row, ctx)
            continue
        external_id = obj.get(options.id_column)
        annotator = obj.get(options.annotator_column)
        if external_id in (None, "") or not isinstance(external_id, (str, int)):
            yield ("error", row, f"empty {options.id_column}")
            continue
        if not isinstance(annotator, str) or not annotator.strip():
            yield ("error", row, f"empty {options.annotator_column}")
            continue
        value = obj.get(options.label_column, obj.get("labels"))
        if isinstance(value, list):
            value = _encode_json(value) if ctx.multi else "|".join(map(str, value))
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            yield ("error", row, f"empty {options.label_column}")
            continue
        labels, problem = _split_labels(str(value), ctx)
        if problem:
            yield ("error", row, problem)
            continue
        yield ("annotation", row, str(external_id).strip(), annotator.strip(), labels)


def labelstudio_annotator(completed_by) -> str | None:
    """An account name for Label Studio's `completed_by`: an int id or a user object."""
    if isinstance(completed_by, bool):
        return None
    if isinstance(completed_by, int):
        return f"labelstudio-{completed_by}"
    if isinstance(completed_by, str) and completed_by.strip():
        return completed_by.strip()
    if isinstance(completed_by, dict):
        for key in ("username", "email"):
            value = completed_by.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        if isinstance(completed_by.get("id"), int):
            return f"labelstudio-{completed_by['id']}"
    return None


def labelstudio_rows(source: ByteCounter, ctx: ParseContext) -> Iterator[tuple]:
    """Tasks -> their item (kind=items) and the choices of each non-cancelled annotation."""
    options = ctx.options
    row = 0
    for task in json_array_values(decoded_chunks(source)):
        row += 1
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            yield ("error", row, "a task must be an object with a `data` object")
            continue
        data = dict(task["data"])
        external_id = data.pop(options.id_column, None)
        if external_id in (None, ""):
            external_id = task.get("id")
        metadata = task.get("meta") if isinstance(task.get("meta"), dict) else {}
        item = _json_item({"external_id": external_id, "metadata": metadata}, row, ctx, data=data)
        if item[0] == "error":
            yield item
            continue
        if options.kind == ImportBatch.Kind.ITEMS:
            yield item
        external_id = item[2]
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            yield ("error", row, "`annotations` must be a list")
            continue
        for annotation in annotations:
            if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                continue
            choices = []
            for result in annotation.get("result") or []:
                value = result.get("value") if isinstance(result, dict) else None
                if isinstance(value, dict) and isinstance(value.get("choices"), list):
                    choices.extend(str(c) for c in value["choices"])
            if not choices:
                continue  # no classification in this annotation (e.g. other controls only)
            annotator = labelstudio_annotator(annotation.get("completed_by"))
            if annotator is None:
                yield ("error", row, "an annotation has no usable completed_by")
                continue
            if not ctx.multi and len(choices) > 1:
                yield (
                    "error",
                    row,
                    f"{len(choices)} choices in one annotation of a single-label project",
                )
                continue
            labels, problem = _split_labels(_encode_json(choices) if ctx.multi else choices[0], ctx)
            if problem:
                yield ("error", row, problem)
                continue
            yield ("annotation", row, external_id, annotator, labels)


PARSERS = {"csv": csv_rows, "jsonl": jsonl_rows, "labelstudio": labelstudio_rows}


# --------------------------------------------------------------------------------------
# Pass 1: validation


@dataclass
class Plan:
    """What pass 1 learned: enough to write without looking at the file's content again."""

    n_items: int = 0
    n_annotations: int = 0
    existing_items: set = field(default_factory=set)  # external ids already in the project
    annotators: dict = field(default_factory=dict)  # name -> user id (None: to be created)
    existing_annotations: set = field(default_factory=set)  # (external_id, annotator)


class ErrorList:
    def __init__(self):
        self.errors: list[dict] = []
        self.count = 0

    def add(self, row: int | None, reason: str) -> None:
        self.count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"row": row, "reason": reason})

    def __bool__(self) -> bool:
        return self.count > 0


def _chunks(values, size: int = LOOKUP_BATCH):
    values = list(values) if not isinstance(values, list) else values
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _validate(project, options, source, progress) -> tuple[Plan, ErrorList]:
    ctx = ParseContext(
        project,
        options,
        frozenset(project.labels.values_list("name", flat=True)),
        copy_chunks=True,
    )
    errors = ErrorList()
    plan = Plan()
    item_ids: set[str] = set()
    # Annotations: ids are interned to small ints so (item, annotator) pairs fit in int64 arrays.
    ann_items: dict[str, int] = {}
    ann_item_row = array("q")
    annotators: dict[str, int] = {}
    pair_keys, pair_rows = array("q"), array("q")

    def check_new(row: int, external_id: str) -> None:
        if external_id in item_ids:
            errors.add(row, f"duplicate {options.id_column} {external_id[:60]!r} within the file")
        else:
            item_ids.add(external_id)

    try:
        for n, event in enumerate(PARSERS[options.format](source, ctx)):
            tag = event[0]
            if n % 50_000 == 0 or tag == "item_chunk":
                progress.report(
                    0.45 * source.read_bytes / max(progress.size, 1), "checking the file"
                )
            if tag == "item_chunk":
                _, first_row, external_ids, _ = event
                chunk_ids = set(external_ids)
                if len(chunk_ids) == len(external_ids) and item_ids.isdisjoint(chunk_ids):
                    item_ids.update(chunk_ids)
                else:  # a repeated id: find its rows
                    for i, external_id in enumerate(external_ids):
                        check_new(first_row + i, external_id)
            elif tag == "item":
                check_new(event[1], event[2])
            elif tag == "annotation":
                _, row, external_id, annotator, _ = event
                if len(annotator) > 150 or not _USERNAME.fullmatch(annotator):
                    errors.add(row, f"annotator {annotator[:60]!r} is not a valid user name")
                    continue
                index = ann_items.get(external_id)
                if index is None:
                    index = ann_items[external_id] = len(ann_items)
                    ann_item_row.append(row)
                who = annotators.setdefault(annotator, len(annotators))
                pair_keys.append(index << 24 | who)
                pair_rows.append(row)
            else:
                errors.add(event[1], event[2])
    except FileRejected as exc:
        errors.add(exc.row, exc.reason)
        return plan, errors
    plan.n_items = len(item_ids)
    plan.n_annotations = len(pair_keys)
    if options.kind == ImportBatch.Kind.ITEMS and options.format != "labelstudio" and not item_ids:
        if not errors:
            errors.add(None, "The file has no rows.")
    if options.kind == ImportBatch.Kind.ANNOTATIONS and not pair_keys and not errors:
        errors.add(None, "The file has no annotations.")
    if len(annotators) >= 1 << 24:
        errors.add(None, "Too many distinct annotators in one file.")

    # Items already in the project.
    if item_ids and project.items.exists():
        for chunk in _chunks(item_ids):
            plan.existing_items.update(
                Item.objects.filter(project=project, external_id__in=chunk).values_list(
                    "external_id", flat=True
                )
            )
        if plan.existing_items and options.on_duplicate == "error" and errors.count < MAX_ERRORS:
            # A third, cheap pass finds the rows (only when such a conflict exists).
            source.rewind()
            row_by_row = replace(ctx, copy_chunks=False)
            for event in PARSERS[options.format](source, row_by_row):
                if event[0] == "item" and event[2] in plan.existing_items:
                    errors.add(
                        event[1],
                        f"{options.id_column} {event[2][:60]!r} already exists in the project"
                        " (on_duplicate=error)",
                    )
                    if len(errors.errors) >= MAX_ERRORS:
                        break
    item_ids.clear()  # free the ids before the annotations are checked

    if pair_keys:
        _validate_annotations(
            project,
            options,
            plan,
            errors,
            ann_items,
            ann_item_row,
            annotators,
            pair_keys,
            pair_rows,
            source,
            ctx,
        )
    progress.report(0.5, "file checked")
    return plan, errors


def _validate_annotations(
    project,
    options,
    plan,
    errors,
    ann_items,
    ann_item_row,
    annotators,
    pair_keys,
    pair_rows,
    source,
    ctx,
):
    keys = np.frombuffer(pair_keys, dtype=np.int64)
    rows = np.frombuffer(pair_rows, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeated = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1]) + 1
    for row in np.sort(rows[order][repeated])[:MAX_ERRORS]:
        errors.add(int(row), "the same annotator labels the same item twice in the file")
    errors.count += max(len(repeated) - MAX_ERRORS, 0)

    # Items must exist: in the project, or (Label Studio items import) in this very file.
    if options.format == "labelstudio" and options.kind == ImportBatch.Kind.ITEMS:
        known = set(ann_items)
    else:
        known = set()
        for chunk in _chunks(list(ann_items)):
            known.update(
                Item.objects.filter(project=project, external_id__in=chunk).values_list(
                    "external_id", flat=True
                )
            )
        missing = [(ann_item_row[i], ext) for ext, i in ann_items.items() if ext not in known]
        for row, ext in sorted(missing)[:MAX_ERRORS]:
            errors.add(row, f"unknown item {ext[:60]!r}")
    if project.current_guideline() is None:
        errors.add(
            None, "The project has no published guideline version to stamp annotations with."
        )
        return

    for chunk in _chunks(list(annotators)):
        plan.annotators.update(
            User.objects.filter(username__in=chunk).values_list("username", "id")
        )
    for name in annotators:
        plan.annotators.setdefault(name, None)

    guideline = project.current_guideline()
    if Annotation.objects.filter(project=project, guideline=guideline).exists():
        names = [n for n, uid in plan.annotators.items() if uid is not None]
        for chunk in _chunks(list(ann_items)):
            plan.existing_annotations.update(
                Annotation.objects.filter(
                    project=project,
                    guideline=guideline,
                    item__external_id__in=chunk,
                    annotator__username__in=names,
                ).values_list("item__external_id", "annotator__username")
            )
        if (
            plan.existing_annotations
            and options.on_duplicate == "error"
            and errors.count < MAX_ERRORS
        ):
            source.rewind()
            for event in PARSERS[options.format](source, ctx):
                if event[0] == "annotation" and (event[2], event[3]) in plan.existing_annotations:
                    errors.add(
                        event[1],
                        f"{event[3][:60]!r} already labeled {event[2][:60]!r} under guideline "
                        f"v{guideline.version} (on_duplicate=error)",
                    )
                    if len(errors.errors) >= MAX_ERRORS:
                        break


# --------------------------------------------------------------------------------------
# Pass 2: writing


def _copy_text(value: str) -> str:
    return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value


def _default_columns(model, given: tuple[str, ...]) -> tuple[str, str]:
    """Columns that COPY must fill with their Django defaults (NOT NULL with a default).

    COPY bypasses the ORM, so a field added later with a Python-side default would otherwise
    make every import fail. Returns (", col1, col2", "\\tvalue1\\tvalue2").
    """
    names, values = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key or f.column in given or f.null or not f.has_default():
            continue
        value = f.get_db_prep_save(f.get_default(), connection)
        if hasattr(value, "dumps"):  # psycopg's Jsonb adapter
            value = value.dumps(value.obj)
        elif isinstance(value, bool):
            value = "t" if value else "f"
        names.append(f.column)
        values.append(_copy_text(str(value)))
    return "".join(f", {n}" for n in names), "".join(f"\t{v}" for v in values)


def _skip_constant_fk_checks(project, batch) -> bool:
    """Check the items' two foreign keys once instead of once per row, where allowed.

    Every row of an items COPY has the same `project_id` and `batch_id`; PostgreSQL would run
    two foreign-key lookups per row at commit (as long as the COPY itself). Locking the two
    referenced rows `FOR KEY SHARE` gives the same guarantee the per-row checks give (they
    exist and cannot be deleted until commit); `session_replication_role = replica` then
    skips the per-row triggers, as bulk loaders do. It needs the privilege to set that
    parameter (superuser, or `GRANT SET ON PARAMETER` on PostgreSQL 15+); without it the
    checks simply run per row. The parameter is reset right after the COPY.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {Project._meta.db_table} WHERE id = %s FOR KEY SHARE", [project.pk]
        )
        cursor.execute(
            f"SELECT 1 FROM {ImportBatch._meta.db_table} WHERE id = %s FOR KEY SHARE", [batch.pk]
        )
        try:
            with transaction.atomic():
                cursor.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            return False
    return True


def _copy(sql: str, lines) -> None:
    """Stream tab-separated text lines into `COPY ... FROM STDIN` in ~1 MB writes."""
    with connection.cursor() as cursor:
        raw = cursor.cursor
        # A writer thread sends each buffer while this thread builds the next one.
        with raw.copy(sql, writer=QueuedLibpqWriter(raw)) as copy:
            buffer, size = [], 0
            for line in lines:
                buffer.append(line)
                size += len(line)
                if size > READ_BYTES:
                    copy.write("".join(buffer).encode())
                    buffer, size = [], 0
            if buffer:
                copy.write("".join(buffer).encode())


def _write_items(batch, project, options, source, ctx, plan, progress) -> int:
    """Insert the file's new items; existing ones are skipped or updated per on_duplicate."""
    existing = plan.existing_items
    update_existing = options.on_duplicate == "update"
    updates: list[tuple] = []  # bounded by the number of items the project already holds
    count = 0

    def new_items():
        nonlocal count
        for n, event in enumerate(PARSERS[options.format](source, ctx)):
            if event[0] not in ("item", "item_chunk"):
                continue
            if n % 50_000 == 0 or event[0] == "item_chunk":
                fraction = 0.5 + 0.45 * source.read_bytes / max(progress.size, 1)
                progress.report(fraction, "writing items")
            if event[0] == "item_chunk":  # only parsed when no item exists yet
                count += len(event[2])
                yield event
                continue
            if event[2] in existing:
                if update_existing:
                    updates.append(event[2:])
                continue
            count += 1
            yield event

    if connection.vendor == "postgresql":
        given = ("project_id", "batch_id", "external_id", "data", "metadata", "created_at")
        extra_names, extra_values = _default_columns(Item, given)
        prefix = f"{project.pk}\t{batch.pk}\t"
        suffix = f"\t{timezone.now().isoformat()}{extra_values}\n"
        skipping = _skip_constant_fk_checks(project, batch)

        def lines():
            for event in new_items():
                if event[0] == "item_chunk":
                    # Each \n ends a row: ids with line breaks and JSON never come in chunks.
                    yield prefix + event[3][:-1].replace("\n", suffix + prefix) + suffix
                else:
                    # JSON text never holds a raw tab or newline: only backslashes are escaped.
                    yield (
                        prefix
                        + _copy_text(event[2])
                        + "\t"
                        + event[3].replace("\\", "\\\\")
                        + "\t"
                        + event[4].replace("\\", "\\\\")
                        + suffix
                    )

        _copy(f"COPY {Item._meta.db_table} ({', '.join(given)}{extra_names}) FROM STDIN", lines())
        if skipping:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = origin")
    else:
        buffer = []
        for event in new_items():
            buffer.append(
                Item(
                    project=project,
                    batch=batch,
                    external_id=event[2],
                    data=json.loads(event[3]),
                    metadata=json.loads(event[4]),
                )
            )
            if len(buffer) >= WRITE_BATCH:
                Item.objects.bulk_create(buffer)
                buffer = []
        Item.objects.bulk_create(buffer)
    for chunk in _chunks(updates, WRITE_BATCH):
        _update_items(project, batch, chunk)
    return count + len(updates)


def _update_items(project, batch, rows) -> None:
    by_id = {external_id: (data, meta) for external_id, data, meta in rows}
    items = list(Item.objects.filter(project=project, external_id__in=list(by_id)))
    for item in items:
        data, meta = by_id[item.external_id]
        item.data, item.metadata, item.batch = json.loads(data), json.loads(meta), batch
    Item.objects.bulk_update(items, ["data", "metadata", "batch"], batch_size=2000)


def _create_annotators(plan: Plan) -> dict[str, int]:
    """Accounts for unknown annotators: inactive, no usable password, marked external."""
    missing = [name for name, uid in plan.annotators.items() if uid is None]
    for chunk in _chunks(missing, 2000):
        User.objects.bulk_create(
            [User(username=name, is_active=False, password=make_password(None)) for name in chunk],
            ignore_conflicts=True,
        )
        created = User.objects.filter(username__in=chunk).values_list("username", "id")
        ids = dict(created)
        Profile.objects.bulk_create(
            [Profile(user_id=ids[name], is_external=True) for name in chunk], ignore_conflicts=True
        )
        plan.annotators.update(ids)
    return plan.annotators


def _write_annotations(batch, project, options, source, ctx, plan, progress, start: float) -> int:
    guideline = project.current_guideline()
    annotators = _create_annotators(plan)
    labels = dict(project.labels.values_list("name", "id"))
    order = {label_id: i for i, label_id in enumerate(project.labels.values_list("id", flat=True))}
    existing = plan.existing_annotations
    postgres = connection.vendor == "postgresql"
    stamp = timezone.now()
    written = 0
    chunk: list[tuple] = []

    def flush(rows):
        nonlocal written
        ids = dict(
            Item.objects.filter(
                project=project, external_id__in=list({r[2] for r in rows})
            ).values_list("external_id", "id")
        )
        new, updates = [], {}
        for _, _, external_id, annotator, names in rows:
            label_ids = sorted((labels[n] for n in names), key=order.__getitem__)
            key = (external_id, annotator)
            value = (ids[external_id], annotators[annotator], label_ids)
            if key in existing:
                if options.on_duplicate == "update":
                    updates[(value[0], value[1])] = label_ids
                continue
            new.append(value)
        multi = project.is_multi_label
        if postgres and new:
            given = (
                "project_id",
                "item_id",
                "annotator_id",
                "guideline_id",
                "label_id",
                "labels",
                "unsure",
                "comment",
                "created_at",
                "updated_at",
            )
            extra_names, extra_values = _default_columns(Annotation, given)
            prefix = f"{project.pk}\t"
            suffix = f"\t{guideline.pk}\t"
            tail = f"\tf\t\t{stamp.isoformat()}\t{stamp.isoformat()}{extra_values}\n"
            _copy(
                f"COPY {Annotation._meta.db_table} ({', '.join(given)}{extra_names}) FROM STDIN",
                (
                    f"{prefix}{item_id}\t{user_id}{suffix}"
                    + ("\\N\t" + json.dumps(label_ids) if multi else f"{label_ids[0]}\t[]")
                    + tail
                    for item_id, user_id, label_ids in new
                ),
            )
        elif new:
            Annotation.objects.bulk_create(
                Annotation(
                    project=project,
                    item_id=item_id,
                    annotator_id=user_id,
                    guideline=guideline,
                    label_id=None if multi else label_ids[0],
                    labels=label_ids if multi else [],
                )
                for item_id, user_id, label_ids in new
            )
        if updates:
            found = list(
                Annotation.objects.filter(guideline=guideline, item_id__in=[k[0] for k in updates])
            )
            changed = []
            for annotation in found:
                label_ids = updates.get((annotation.item_id, annotation.annotator_id))
                if label_ids is None:
                    continue
                annotation.label_id = None if multi else label_ids[0]
                annotation.labels = label_ids if multi else []
                changed.append(annotation)
            Annotation.objects.bulk_update(changed, ["label", "labels", "updated_at"])
        written += len(new) + len(updates)

    for n, event in enumerate(PARSERS[options.format](source, ctx)):
        if event[0] != "annotation":
            continue
        if n % 20_000 == 0:
            progress.report(
                start + (0.95 - start) * source.read_bytes / max(progress.size, 1),
                "writing annotations",
            )
        chunk.append(event)
        if len(chunk) >= LOOKUP_BATCH:
            flush(chunk)
            chunk = []
    if chunk:
        flush(chunk)
    return written


# --------------------------------------------------------------------------------------
# Progress (visible to the page while the write transaction is still open)


class Progress:
    """Writes a batch's progress at most every 0.5 s.

    Inside the write transaction the update goes through a short-lived thread, which has its
    own database connection, so pollers see it before the commit (PostgreSQL only: SQLite
    would wait on the writer's lock).
    """

    def __init__(self, batch_id: int, size: int, enabled: bool):
        self.batch_id, self.size, self.enabled = batch_id, size, enabled
        self.last = 0.0

    def report(self, fraction: float, message: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        fraction = min(max(float(fraction), 0.0), 1.0)
        if not connection.in_atomic_block:
            _set_batch(self.batch_id, progress=fraction, message=message[:255])
        elif connection.vendor == "postgresql":
            thread = threading.Thread(
                target=_set_progress_elsewhere, args=(self.batch_id, fraction, message)
            )
            thread.start()
            thread.join(timeout=5)


def _set_progress_elsewhere(batch_id, fraction, message):
    from django.db import connection as thread_connection

    try:
        _set_batch(batch_id, progress=fraction, message=message[:255])
    except DatabaseError:
        logger.warning("could not record the progress of import %s", batch_id)
    finally:
        thread_connection.close()


def _set_batch(batch_id: int, **fields) -> None:
    ImportBatch.objects.filter(pk=batch_id).update(**fields)


# --------------------------------------------------------------------------------------
# Entry points


def _file_size(fileobj) -> int:
    size = getattr(fileobj, "size", None)
    if isinstance(size, int):
        return size
    position = fileobj.tell()
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(position)
    return size


def _fail(batch: ImportBatch, errors: list[dict], message: str) -> ImportBatch:
    batch.status, batch.errors, batch.rows = ImportBatch.Status.FAILED, errors, 0
    batch.message, batch.finished_at = message[:255], timezone.now()
    _set_batch(
        batch.pk,
        status=batch.status,
        errors=errors,
        rows=0,
        message=batch.message,
        finished_at=batch.finished_at,
    )
    return batch


def _process(batch: ImportBatch, fileobj, *, report_progress: bool) -> ImportBatch:
    """Validate then write one batch's file; the batch ends succeeded or failed."""
    project = batch.project
    options = ImportOptions.parse(format=batch.format, kind=batch.kind, options=batch.options)
    size = _file_size(fileobj)
    limit = settings.CONCORD_MAX_UPLOAD_BYTES
    progress = Progress(batch.pk, size, report_progress)
    if size > limit:
        return _fail(
            batch,
            [{"row": None, "reason": f"The file is {size:,} bytes; the limit is {limit:,}."}],
            "rejected: file too large",
        )
    fileobj.seek(0)
    source = ByteCounter(fileobj, limit)
    progress.report(0.0, "checking the file", force=True)
    plan, errors = _validate(project, options, source, progress)
    if errors:
        more = (
            f" ({errors.count:,} problems; the first {MAX_ERRORS} are listed)"
            if errors.count > MAX_ERRORS
            else ""
        )
        return _fail(batch, errors.errors, f"rejected: nothing was imported{more}")

    ctx = ParseContext(
        project,
        options,
        frozenset(project.labels.values_list("name", flat=True)),
        encode=True,
        # Chunks carry COPY text: for PostgreSQL, and only when no row can be an existing item.
        copy_chunks=connection.vendor == "postgresql" and not plan.existing_items,
    )
    try:
        with transaction.atomic():
            rows = 0
            writes_items = options.kind == ImportBatch.Kind.ITEMS
            if writes_items:
                source.rewind()
                rows = _write_items(batch, project, options, source, ctx, plan, progress)
            if plan.n_annotations:
                source.rewind()
                start = 0.75 if writes_items else 0.5
                rows_annotations = _write_annotations(
                    batch, project, options, source, ctx, plan, progress, start
                )
                rows = rows if writes_items else rows_annotations
                batch.message = f"{rows_annotations:,} annotations"
                # Bulk-written annotations bypass the queue's per-item counters.
                progress_refresh(project=project)
    except FileRejected as exc:  # the file changed between the passes
        return _fail(
            batch, [{"row": exc.row, "reason": exc.reason}], "rejected: nothing was imported"
        )
    except Exception as exc:
        # E.g. a concurrent import or deletion changed the project between the two passes.
        logger.exception("import %s failed while writing", batch.pk)
        first_line = (str(exc).splitlines() or [""])[0][:200]
        reason = (
            "Writing failed; nothing was imported "
            f"({type(exc).__name__}: {first_line}). Try the import again."
        )
        return _fail(batch, [{"row": None, "reason": reason}], "failed while writing")
    batch.status, batch.rows, batch.errors, batch.progress = (
        ImportBatch.Status.SUCCEEDED,
        rows,
        [],
        1.0,
    )
    skipped = len(plan.existing_items) if options.on_duplicate == "skip" else 0
    parts = [f"{rows:,} rows"]
    if options.kind == ImportBatch.Kind.ITEMS and plan.n_annotations:
        parts.append(f"{plan.n_annotations:,} annotations")
    if skipped:
        parts.append(f"{skipped:,} existing items skipped")
    batch.message, batch.finished_at = "imported " + ", ".join(parts), timezone.now()
    _set_batch(
        batch.pk,
        status=batch.status,
        rows=rows,
        errors=[],
        progress=1.0,
        message=batch.message[:255],
        finished_at=batch.finished_at,
    )
    return batch


def _batch_create(*, project, filename, format, kind, options, user, status) -> ImportBatch:
    parsed = ImportOptions.parse(format=format, kind=kind, options=options)
    return ImportBatch.objects.create(
        project=project,
        kind=kind,
        format=format,
        filename=(filename or "")[:255],
        options=parsed.as_dict(),
        status=status,
        created_by=user if user is not None and user.is_authenticated else None,
    )


def import_file(
    *, project: Project, fileobj, filename: str, format: str, kind: str, options: dict | None, user
) -> ImportBatch:
    """Import a file now, in this process. Returns the batch, succeeded or failed with errors.

    Raises ValidationError only for bad options (unknown format, kind, on_duplicate...).
    """
    batch = _batch_create(
        project=project,
        filename=filename,
        format=format,
        kind=kind,
        options=options,
        user=user,
        status=ImportBatch.Status.RUNNING,
    )
    return _process(batch, fileobj, report_progress=False)


class QueueUnavailable(Exception):
    """The job queue cannot be reached; the batch was recorded as failed."""


def import_submit(
    *, project: Project, fileobj, filename: str, format: str, kind: str, options: dict | None, user
) -> ImportBatch:
    """Import small files at once; store larger ones in the database and queue a job.

    The bytes go to the database (not a local disk) because a worker may run on another
    machine. Raises QueueUnavailable when the job cannot be queued.
    """
    size = _file_size(fileobj)
    if size <= settings.CONCORD_IMPORT_ASYNC_BYTES or size > settings.CONCORD_MAX_UPLOAD_BYTES:
        return import_file(
            project=project,
            fileobj=fileobj,
            filename=filename,
            format=format,
            kind=kind,
            options=options,
            user=user,
        )
    batch = _batch_create(
        project=project,
        filename=filename,
        format=format,
        kind=kind,
        options=options,
        user=user,
        status=ImportBatch.Status.QUEUED,
    )
    fileobj.seek(0)
    with transaction.atomic():
        seq = 0
        while chunk := fileobj.read(UPLOAD_CHUNK_BYTES):
            ImportUpload.objects.create(batch=batch, seq=seq, data=chunk)
            seq += 1
    batch.message = "queued"
    _set_batch(batch.pk, message="queued")
    transaction.on_commit(lambda: _enqueue(batch))
    return batch


def _enqueue(batch: ImportBatch) -> None:
    from kombu.exceptions import OperationalError

    from config.celery import app as celery_app

    try:
        celery_app.send_task("labeling.run_import", args=[batch.pk], retry=True)
    except OperationalError as exc:
        _fail(batch, [{"row": None, "reason": "The job queue is unavailable."}], "not started")
        ImportUpload.objects.filter(batch=batch).delete()
        raise QueueUnavailable("The job queue is unavailable; try again shortly.") from exc


def _download(batch: ImportBatch):
    """The stored upload copied to a local temporary file, one chunk in memory at a time.

    The write pass streams COPY on the database connection, so the file cannot be read from
    that same connection while it runs.
    """
    local = tempfile.SpooledTemporaryFile(max_size=16 << 20)
    seqs = ImportUpload.objects.filter(batch=batch).order_by("seq").values_list("seq", flat=True)
    for seq in list(seqs):
        data = ImportUpload.objects.filter(batch=batch, seq=seq).values_list("data", flat=True)
        local.write(bytes(data.get()))
    local.seek(0)
    return local


def import_run(*, batch_id: int) -> ImportBatch | None:
    """Process a queued batch from its stored upload (the Celery task calls this)."""
    batch = ImportBatch.objects.select_related("project").filter(pk=batch_id).first()
    if batch is None or batch.status in (ImportBatch.Status.SUCCEEDED, ImportBatch.Status.FAILED):
        return batch  # deleted, or a redelivered job that already finished
    _set_batch(batch.pk, status=ImportBatch.Status.RUNNING, progress=0.0, message="started")
    batch.status = ImportBatch.Status.RUNNING
    try:
        with _download(batch) as upload:
            batch = _process(batch, upload, report_progress=True)
    except Exception as exc:
        logger.exception("import %s failed", batch_id)
        batch = _fail(
            batch,
            [{"row": None, "reason": f"The import job failed: {type(exc).__name__}: {exc}"[:500]}],
            "failed",
        )
    ImportUpload.objects.filter(batch_id=batch_id).delete()
    return batch
