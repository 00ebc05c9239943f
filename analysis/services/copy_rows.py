"""Writing many result rows fast: PostgreSQL COPY, or bulk_create on other databases.

At 100,000 rows an ORM object per row costs more than the computation it stores (measured in
bench/label_issues.py: 3 s of 4.4 s at 20,000 items), so result tables are written as tuples.
"""

import json

from django.db import connection

BATCH = 5_000


def rows_insert(model, columns: list[str], rows) -> None:
    """Insert `rows` (tuples in `columns` order, column names as in the table) into `model`.

    Every NOT NULL column without a value must be in `columns`; JSON columns take Python
    objects (serialised here). Runs inside the caller's transaction.
    """
    json_columns = {
        f.column for f in model._meta.concrete_fields if f.get_internal_type() == "JSONField"
    }
    if connection.vendor == "postgresql":
        encode = [c in json_columns for c in columns]
        sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(
                    tuple(json.dumps(v) if e else v for v, e in zip(row, encode, strict=True))
                )
        return
    attnames = {f.column: f.attname for f in model._meta.concrete_fields}
    names = [attnames[c] for c in columns]
    batch = []
    for row in rows:
        batch.append(model(**dict(zip(names, row, strict=True))))
        if len(batch) >= BATCH:
            model.objects.bulk_create(batch)
            batch = []
    if batch:
        model.objects.bulk_create(batch)
