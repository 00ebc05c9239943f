"""Below the ORM: hand-written statements, COPY, and integer arrays straight from a cursor.

Everything else in Concord uses the ORM. Code comes here only for a hot path or a bulk path
where a measurement showed the ORM costing more than the work itself, and says which:

- Hot paths, the statements every annotator runs on every item (`next`, `submit`, API token
  authentication, the project with the member's role): `columns`, `fetch`, `fetch_one`,
  `insert`. The ORM compiles each query anew: for a one-row lookup that costs about 0.9 ms of
  Python against 0.2 ms for the same statement through a cursor (0.4 ms through
  `Model.objects.raw`), measured on the item table; `next` and `submit` run about ten
  statements each (bench/labeling_load.py measures the whole path). They still build real
  model instances: values pass through each field's converters as the ORM applies them.
- Bulk writes, PostgreSQL's `COPY ... FROM STDIN`: `copy_in_rows` takes tuples and falls back
  to `bulk_create` on other databases (one ORM object per result row cost 3 s of a 4.4 s
  label-issue run at 20,000 items, bench/label_issues.py); `copy_in_text` streams lines the
  caller encoded with `copy_escape` and `copy_defaults`, for the largest writes (an import of
  1,000,000 CSV rows takes 10.4 s where PostgreSQL's COPY of the same rows, already encoded,
  takes 7.6 s, bench/import_items.py); it is PostgreSQL's only, and its callers keep their
  `bulk_create` branch for SQLite.
- Bulk reads: `int_rows` reads integer columns through a server-side cursor into one
  preallocated numpy array, about 3x faster than iterating the queryset (every analysis and
  export reads all of a project's annotations this way); `driver_rows` reads a page of text
  columns in one fetch without Django's converter loop (the export's pages); `positions`
  finds ids in a sorted id array, the way those arrays are joined.

Hand-written SQL elsewhere stays beside the rule it implements and meets the same bar: the
annotator's hot path (the queue's claim, the submit service, `permissions.project_for`, token
authentication, reading through `fetch`), bulk updates (`queue.progress_refresh`, the
import's foreign-key checks) and statements the ORM cannot express (`selectors.item_json_keys`).

Tested in tests/labeling/test_rawsql.py, which runs on SQLite and on PostgreSQL: `fetch`
against the ORM field by field for every model it reads, `insert` against `save`, COPY round
trips of awkward values (unicode, tabs, line breaks, backslashes, JSON) read back through the
ORM, NUL refused alike on both, `int_rows`, `driver_rows` and `positions` against the ORM
and plain Python.
"""

import json
import re
from collections.abc import Iterable
from functools import cache

import numpy as np
from django.db import connection, connections
from django.db.models import CharField, JSONField, TextField
from psycopg.copy import QueuedLibpqWriter

COPY_WRITE_CHARS = 1 << 20  # text sent to the server per COPY write
INSERT_BATCH = 5_000  # rows per bulk_create where there is no COPY
FETCH_ROWS = 50_000  # rows per fetch from a server-side cursor
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# A JSON text's \u0000 escape (an odd number of backslashes before it), which jsonb refuses.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")

# --------------------------------------------------------------------------------------
# Statements into model instances (hot paths)


def _ordered(model, attnames: tuple[str, ...] | None) -> tuple[str, ...]:
    """The field names in the model's own order (which `Model.from_db` expects); all by default."""
    fields = model._meta.concrete_fields
    return tuple(f.attname for f in fields if attnames is None or f.attname in attnames)


@cache
def _converters(model, attnames: tuple[str, ...]) -> list[tuple]:
    """(field, [converter, ...]) per selected field, as the ORM's compiler would apply them."""
    fields = [model._meta.get_field(name) for name in attnames]
    return [
        (
            field,
            connection.ops.get_db_converters(field.get_col(model._meta.db_table))
            + field.get_db_converters(connection),
        )
        for field in fields
    ]


def columns(model, attnames: tuple[str, ...] | None = None, alias: str = "") -> str:
    """The select list for `fetch` (all concrete fields by default), optionally table-qualified."""
    prefix = f"{alias}." if alias else ""
    names = _ordered(model, attnames)
    return ", ".join(prefix + model._meta.get_field(name).column for name in names)


def fetch_with_extra(model, sql: str, params, attnames: tuple[str, ...] | None = None):
    """(instance of `model`, extra values) per row of `sql`, whose select list is
    `columns(model, attnames)` followed by any further columns: their values come back beside
    the instance, as a tuple, never set on it."""
    attnames = _ordered(model, attnames)
    converters = _converters(model, attnames)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found = []
    for row in rows:
        values = []
        for value, (field, field_converters) in zip(row, converters, strict=False):
            for convert in field_converters:
                value = convert(value, field, connection)
            values.append(value)
        found.append((model.from_db(connection.alias, attnames, values), row[len(attnames) :]))
    return found


def fetch(model, sql: str, params, attnames: tuple[str, ...] | None = None):
    """Instances of `model` from `sql`, whose select list is `columns(model, attnames)`."""
    return [instance for instance, _extra in fetch_with_extra(model, sql, params, attnames)]


def fetch_one(model, sql: str, params, attnames=None):
    found = fetch(model, sql, params, attnames)
    return found[0] if found else None


def insert(instance) -> None:
    """INSERT the new instance and set its primary key (auto_now fields filled in as by save)."""
    meta = instance._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    sql = (
        f"INSERT INTO {meta.db_table} ({', '.join(f.column for f in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {meta.pk.column}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias


# --------------------------------------------------------------------------------------
# COPY in (bulk writes)


class NulRefused(ValueError):
    """A value holds a NUL character, which PostgreSQL text and jsonb cannot store; it is
    refused on every database alike."""

    def __init__(self, where: str):
        super().__init__(f"{where} holds a NUL character, which the database cannot store.")


def copy_escape(value: str) -> str:
    """`value` as COPY's text format spells it (backslash, tab and line breaks escaped)."""
    return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value


def copy_defaults(model, given: tuple[str, ...]) -> tuple[str, str]:
    """Columns that COPY must fill with their Django defaults (NOT NULL with a default).

    COPY bypasses the ORM, so a field added later with a Python-side default would otherwise
    make every COPY into `model` fail. Returns (", col1, col2", "\\tvalue1\\tvalue2") to append
    to the column list and to each line.
    """
    names, values = [], []
    for f in _defaulted_fields(model, given):
        value = f.get_db_prep_save(f.get_default(), connection)
        if hasattr(value, "dumps"):  # psycopg's Jsonb adapter
            value = value.dumps(value.obj)
        elif isinstance(value, bool):
            value = "t" if value else "f"
        names.append(f.column)
        values.append(copy_escape(str(value)))
    return "".join(f", {n}" for n in names), "".join(f"\t{v}" for v in values)


def _defaulted_fields(model, given) -> list:
    """NOT NULL fields of `model` with a default that are not among the `given` columns."""
    return [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key or f.column in given or f.null or not f.has_default())
    ]


def copy_in_text(sql: str, lines: Iterable[str]) -> None:
    """Stream COPY text-format lines (each ending in a newline) into `COPY ... FROM STDIN`.

    PostgreSQL only. Runs inside the caller's transaction; a NUL character anywhere raises
    NulRefused and the COPY is abandoned.
    """
    with connection.cursor() as cursor:
        raw = cursor.cursor
        # A writer thread sends each buffer while this thread builds the next one.
        with raw.copy(sql, writer=QueuedLibpqWriter(raw)) as copy:
            buffer, size = [], 0
            for line in lines:
                buffer.append(line)
                size += len(line)
                if size > COPY_WRITE_CHARS:
                    copy.write(_nul_free("".join(buffer)).encode())
                    buffer, size = [], 0
            if buffer:
                copy.write(_nul_free("".join(buffer)).encode())


def _nul_free(text: str) -> str:
    if "\x00" in text:
        raise NulRefused("A COPY line")
    return text


def _json_text(value, column: str) -> str:
    text = json.dumps(value)
    if "\\u0000" in text and _JSON_NUL.search(text):
        raise NulRefused(f"Column {column}")
    return text


def copy_in_rows(model, columns: list[str], rows: Iterable[tuple]) -> None:
    """Insert `rows` (tuples in `columns` order, column names as in the table) into `model`:
    COPY on PostgreSQL, `bulk_create` in batches elsewhere.

    NOT NULL columns left out of `columns` get their Django default (COPY bypasses the ORM,
    so a field added later would otherwise fail every COPY); any other NOT NULL column must
    be given. JSON columns take Python objects. A NUL character in a text or JSON value
    raises NulRefused on every database. Runs inside the caller's transaction.
    """
    fields = {f.column: f for f in model._meta.concrete_fields}
    defaulted = _defaulted_fields(model, columns)
    if defaulted:
        defaults = tuple(f.get_default() for f in defaulted)
        columns = [*columns, *(f.column for f in defaulted)]
        rows = (tuple(row) + defaults for row in rows)
    json_at = [i for i, c in enumerate(columns) if isinstance(fields[c], JSONField)]
    text_at = [i for i, c in enumerate(columns) if isinstance(fields[c], CharField | TextField)]

    def checked(row: tuple) -> list:
        row = list(row)
        for i in json_at:
            row[i] = _json_text(row[i], columns[i])
        for i in text_at:
            if row[i] is not None and "\x00" in row[i]:
                raise NulRefused(f"Column {columns[i]}")
        return row

    if connection.vendor == "postgresql":
        sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(checked(row) if json_at or text_at else row)
        return
    names = [fields[c].attname for c in columns]
    batch = []
    for row in rows:
        checked(row)
        batch.append(model(**dict(zip(names, row, strict=True))))
        if len(batch) >= INSERT_BATCH:
            model.objects.bulk_create(batch)
            batch = []
    if batch:
        model.objects.bulk_create(batch)


# --------------------------------------------------------------------------------------
# Bulk reads into numpy


def int_rows(queryset, *, width: int) -> np.ndarray:
    """(n, width) int64 array of a `values_list` queryset of non-null integer columns.

    Read through a server-side cursor in FETCH_ROWS-row blocks straight into one preallocated
    array: no Django row objects, about 3x faster than iterating the queryset.
    """
    n = queryset.count()
    out = np.empty((n, width), dtype=np.int64)
    extra = []
    filled = 0
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            if len(rows[0]) != width:  # e.g. a model ordering added to SELECT DISTINCT
                raise ValueError(f"The query selects {len(rows[0])} columns, not {width}.")
            block = np.array(rows, dtype=np.int64).reshape(-1, width)
            take = min(len(block), n - filled)
            out[filled : filled + take] = block[:take]
            filled += take
            if take < len(block):  # rows added since the count
                extra.append(block[take:])
    if extra:
        return np.concatenate([out, *extra])
    return out[:filled]


def driver_rows(queryset) -> list[tuple]:
    """The rows of a `values_list` queryset as the database driver returns them, in one fetch.

    No Django converter runs: only for columns that need none (text, numeric casts). Django's
    own iteration fetches 100 rows per driver call and passes every row through its converter
    loop: with it, an export of 200,000 items took 0.08 s more CPU than the 0.43 s (Parquet)
    to 0.58 s (CSV) it takes through here (time.process_time, bench/export.py's database).
    """
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def positions(ids, among: np.ndarray) -> np.ndarray:
    """Index of each of `ids` in the ascending array `among`, -1 where absent. (n,) int64."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(among):
        return np.full(len(ids), -1, dtype=np.int64)
    found = np.clip(np.searchsorted(among, ids), 0, len(among) - 1)
    return np.where(among[found] == ids, found, -1).astype(np.int64)
