"""Model rows by hand-written SQL, for the few statements every annotator runs on every item.

The ORM compiles each query anew: for a one-row lookup that costs about 0.9 ms of Python,
against 0.2 ms for the same statement through a cursor (and 0.4 ms through `Model.objects.raw`),
measured on this project's item table. `next` and `submit` run about ten statements each, so
the queue, the submit service and API authentication use these helpers
(bench/labeling_load.py measures the whole path). Everything else uses the ORM.

The helpers still build real model instances: values pass through each field's converters
(JSON, datetimes on SQLite) exactly as the ORM would apply them.
"""

from functools import cache

from django.db import connection


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
