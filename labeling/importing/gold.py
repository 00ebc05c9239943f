"""Gold labels (`kind=gold`): the known answers of gold questions, for items already imported.

A gold row names an existing item and gives its answer; it never creates the item (import the
items first with `kind=items`, then their gold labels), so a gold question is always an item
like the others, with the same data and metadata shape.

- CSV: columns `external_id` (`id_column`) and `label` (`label_column`); multi-label cells are
  `a|b` or a JSON list, as in annotation imports.
- JSON Lines: `{"external_id", "label"}`, `{"external_id", "labels": [...]}` (multi-label), or
  `{"external_id", "spans": [{start, end, label}]}` for span projects, checked against the
  item's text by the same rule as span annotations (`span_check.span_problem`).

Checks: unknown items, an item twice in the file, unknown labels, bad spans, and (with
`on_duplicate=error`, the default) items that already have a gold label; `skip` keeps those,
`update` replaces them. Any bad row rejects the whole file, listing the rows and why. The write
is one transaction: `GoldLabel` rows in bulk (an upsert for `update`) and `Item.is_gold` set by
one UPDATE per batch of ids. Gold files are small (a few hundred to a few thousand answers):
their rows are held in memory between the check and the write.
"""

from collections.abc import Iterator

from django.db import transaction

from labeling.importing.parsers.csv_file import Table
from labeling.importing.parsers.jsonl import json_objects
from labeling.importing.parsers.rules import encode_json, split_labels
from labeling.importing.readers import ByteCounter, FileRejected
from labeling.importing.records import AnnotationRow, ParseContext, RowError
from labeling.importing.span_check import span_problem, stored_items
from labeling.importing.validation import ErrorList, in_batches
from labeling.models import GoldLabel, ImportBatch, Item
from labeling.spans import spans_clean

GOLD_FORMATS = ("csv", "jsonl")


def _csv_rows(source: ByteCounter, ctx: ParseContext) -> Iterator[AnnotationRow | RowError]:
    if ctx.spans:
        raise FileRejected(None, "Gold spans come in a JSON Lines file; a CSV file has labels.")
    table = Table(source, ctx.options)
    id_at = table.column("id_column", ctx.options.id_column)
    label_at = table.column("label_column", ctx.options.label_column)
    n_cols = len(table.header)
    for row, record in table.numbered_records():
        if len(record) != n_cols:
            yield RowError(row, f"expected {n_cols} columns, found {len(record)}")
            continue
        external_id = record[id_at].strip()
        if not external_id:
            yield RowError(row, f"empty {ctx.options.id_column}")
            continue
        labels, problem = split_labels(record[label_at], ctx)
        yield RowError(row, problem) if problem else AnnotationRow(row, external_id, "", labels)


def _jsonl_row(obj: dict, row: int, ctx: ParseContext) -> AnnotationRow | RowError:
    options = ctx.options
    external_id = obj.get(options.id_column)
    if external_id in (None, "") or not isinstance(external_id, str | int):
        return RowError(row, f"empty {options.id_column}")
    external_id = str(external_id).strip()
    if ctx.spans:
        spans = obj.get("spans")
        if not isinstance(spans, list):
            return RowError(row, "`spans` must be a list of {start, end, label} ([] = none)")
        return AnnotationRow(row, external_id, "", [], spans)
    value = obj.get(options.label_column, obj.get("labels"))
    if isinstance(value, list):
        value = encode_json(value) if ctx.multi else "|".join(map(str, value))
    if not isinstance(value, str | int) or isinstance(value, bool):
        return RowError(row, f"empty {options.label_column}")
    labels, problem = split_labels(str(value), ctx)
    return RowError(row, problem) if problem else AnnotationRow(row, external_id, "", labels)


def _jsonl_rows(source: ByteCounter, ctx: ParseContext) -> Iterator[AnnotationRow | RowError]:
    for parsed in json_objects(source):
        yield parsed if isinstance(parsed, RowError) else _jsonl_row(parsed[1], parsed[0], ctx)


def _read(source: ByteCounter, ctx: ParseContext, errors: ErrorList) -> list[AnnotationRow]:
    if ctx.options.format not in GOLD_FORMATS:
        raise FileRejected(None, "Gold labels come in CSV or JSON Lines files.")
    reader = _csv_rows if ctx.options.format == "csv" else _jsonl_rows
    rows, seen = [], {}
    for record in reader(source, ctx):
        if type(record) is RowError:
            errors.add(record.row, record.reason)
        elif record.external_id in seen:
            errors.add(
                record.row,
                f"item {record.external_id[:60]!r} is given twice (also row "
                f"{seen[record.external_id]})",
            )
        else:
            seen[record.external_id] = record.row
            rows.append(record)
    return rows


def gold_import(*, batch: ImportBatch, options, source: ByteCounter) -> tuple[int, ErrorList]:
    """Check the whole file, then write its gold labels; returns (rows written, errors).

    Nothing is written when there is any error.
    """
    project = batch.project
    ctx = ParseContext.of(project, options)
    errors = ErrorList()
    try:
        rows = _read(source, ctx, errors)
    except FileRejected as exc:
        errors.add(exc.row, exc.reason)
        return 0, errors
    if not rows and not errors:
        errors.add(None, "The file has no gold labels.")
    stored: dict[str, tuple[int, str]] = {}
    for ids in in_batches([r.external_id for r in rows]):
        stored.update(stored_items(project, ids))
    existing = set()
    for ids in in_batches([pk for pk, _ in stored.values()]):
        existing.update(GoldLabel.objects.filter(item_id__in=ids).values_list("item_id", flat=True))
    classes = dict(project.labels.values_list("name", "id"))
    golds = []
    for record in rows:
        if record.external_id not in stored:
            errors.add(record.row, f"unknown item {record.external_id[:60]!r}")
            continue
        item_id, text = stored[record.external_id]
        if item_id in existing and options.on_duplicate == "error":
            errors.add(
                record.row,
                f"item {record.external_id[:60]!r} already has a gold label (on_duplicate=error)",
            )
            continue
        if item_id in existing and options.on_duplicate == "skip":
            continue
        if ctx.spans:
            if problem := span_problem(record, text, classes):
                errors.add(record.row, problem)
                continue
            gold = GoldLabel(item_id=item_id, spans=spans_clean(text, record.spans, labels=classes))
        elif ctx.multi:
            gold = GoldLabel(item_id=item_id, labels=sorted(classes[n] for n in record.labels))
        else:
            gold = GoldLabel(item_id=item_id, label_id=classes[record.labels[0]])
        gold.created_by_id = batch.created_by_id
        golds.append(gold)
    if errors:
        return 0, errors
    with transaction.atomic():
        GoldLabel.objects.bulk_create(
            golds,
            batch_size=2_000,
            update_conflicts=True,
            unique_fields=["item"],
            update_fields=["label", "labels", "spans", "created_by"],
        )
        for ids in in_batches([g.item_id for g in golds]):
            Item.objects.filter(pk__in=ids).update(is_gold=True)
    return len(golds), errors
