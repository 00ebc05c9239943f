"""The write passes: a checked file's items, then its annotations, inside one transaction.

On PostgreSQL rows go through `COPY ... FROM STDIN` (several times faster than INSERTs);
elsewhere through `bulk_create`. Existing items and annotations are skipped or updated as
`on_duplicate` says (the check has already refused them under `error`).
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from labeling.importing.parsers import PARSERS
from labeling.importing.progress import Progress
from labeling.importing.readers import ByteCounter, FileRejected
from labeling.importing.records import AnnotationRow, ItemChunk, ItemRow, ParseContext, Record
from labeling.importing.span_check import stored_items
from labeling.importing.validation import (
    LOOKUP_BATCH,
    FileCheck,
    Plan,
    in_batches,
    items_checked_as_read,
)
from labeling.models import Annotation, ImportBatch, Item, Profile, Project, Review
from labeling.rawsql import copy_defaults, copy_escape, copy_in_text
from labeling.spans import item_text, spans_clean

User = get_user_model()

WRITE_BATCH = 10_000


@dataclass(frozen=True)
class Write:
    """One batch's write: where its rows go, how to read them, what the check learned."""

    batch: ImportBatch
    source: ByteCounter
    ctx: ParseContext  # with encode=True
    plan: Plan
    progress: Progress
    # Set when the file is checked as it is written, in one pass (`jobs._write_while_checking`).
    check: FileCheck | None = None

    @property
    def project(self) -> Project:
        return self.ctx.project

    @property
    def options(self):
        return self.ctx.options

    def records(self) -> Iterator[Record]:
        """The file's records from its start."""
        self.source.rewind()
        records = PARSERS[self.options.format].parse(self.source, self.ctx)
        return records if self.check is None else items_checked_as_read(self.check, records)


# --------------------------------------------------------------------------------------
# COPY


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


# --------------------------------------------------------------------------------------
# Items


class NewItems:
    """The file's items that are not in the project yet, in file order (ItemRow or ItemChunk).

    Existing items are left out; under on_duplicate=update their rows are kept in `updates`
    (bounded by the number of items the project already holds). `count` grows as it is read.
    """

    def __init__(self, write: Write):
        self.write = write
        self.count = 0
        self.updates: list[ItemRow] = []

    def __iter__(self) -> Iterator[ItemRow | ItemChunk]:
        write = self.write
        existing = write.plan.existing_items
        update_existing = write.options.on_duplicate == "update"
        progress, source = write.progress, write.source
        for n, record in enumerate(write.records()):
            chunk = type(record) is ItemChunk
            if not chunk and type(record) is not ItemRow:
                continue
            if n % 50_000 == 0 or chunk:
                progress.report(0.5 + 0.45 * progress.read_share(source), "writing items")
            if chunk:  # only parsed when no item exists yet
                self.count += len(record.external_ids)
                yield record
                continue
            if record.external_id in existing:
                if update_existing:
                    self.updates.append(record)
                continue
            self.count += 1
            yield record


def _copy_lines(items: NewItems, prefix: str, suffix: str) -> Iterator[str]:
    for record in items:
        if type(record) is ItemChunk:
            # Each \n ends a row: ids with line breaks and JSON never come in chunks.
            yield prefix + record.copy_text[:-1].replace("\n", suffix + prefix) + suffix
        else:
            # JSON text never holds a raw tab or newline: only backslashes are escaped.
            yield (
                prefix
                + copy_escape(record.external_id)
                + "\t"
                + record.data_json.replace("\\", "\\\\")
                + "\t"
                + record.metadata_json.replace("\\", "\\\\")
                + suffix
            )


def write_items(write: Write) -> int:
    """Insert the file's new items; existing ones are skipped or updated per on_duplicate."""
    project, batch = write.project, write.batch
    items = NewItems(write)
    if connection.vendor == "postgresql":
        given = ("project_id", "batch_id", "external_id", "data", "metadata", "created_at")
        extra_names, extra_values = copy_defaults(Item, given)
        prefix = f"{project.pk}\t{batch.pk}\t"
        suffix = f"\t{timezone.now().isoformat()}{extra_values}\n"
        skipping = _skip_constant_fk_checks(project, batch)
        copy_in_text(
            f"COPY {Item._meta.db_table} ({', '.join(given)}{extra_names}) FROM STDIN",
            _copy_lines(items, prefix, suffix),
        )
        if skipping:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = origin")
    else:
        buffer = []
        for record in items:
            buffer.append(
                Item(
                    project=project,
                    batch=batch,
                    external_id=record.external_id,
                    data=json.loads(record.data_json),
                    metadata=json.loads(record.metadata_json),
                )
            )
            if len(buffer) >= WRITE_BATCH:
                Item.objects.bulk_create(buffer)
                buffer = []
        Item.objects.bulk_create(buffer)
    for rows in in_batches(items.updates, WRITE_BATCH):
        _update_items(project, batch, rows)
    return items.count + len(items.updates)


def _update_items(project, batch, rows: list[ItemRow]) -> None:
    by_id = {row.external_id: row for row in rows}
    items = list(Item.objects.filter(project=project, external_id__in=list(by_id)))
    spanned = set()
    if project.is_spans:  # spans are offsets into the text: it may not change under them
        spanned = set(
            Annotation.objects.filter(item__in=items).values_list("item_id", flat=True)
        ) | set(Review.objects.filter(item__in=items).values_list("item_id", flat=True))
    for item in items:
        row = by_id[item.external_id]
        data = json.loads(row.data_json)
        if item.pk in spanned and item_text(data) != item_text(item.data):
            raise FileRejected(
                row.row,
                f"item {item.external_id[:60]!r} has spans marked on its text, so its text "
                "cannot change (on_duplicate=update); import the new text under a new id",
            )
        item.data, item.metadata, item.batch = data, json.loads(row.metadata_json), batch
    Item.objects.bulk_update(items, ["data", "metadata", "batch"], batch_size=2000)


# --------------------------------------------------------------------------------------
# Annotations


def _create_annotators(plan: Plan) -> dict[str, int]:
    """Accounts for unknown annotators: inactive, no usable password, marked external."""
    missing = [name for name, uid in plan.annotators.items() if uid is None]
    for names in in_batches(missing, 2000):
        User.objects.bulk_create(
            [User(username=name, is_active=False, password=make_password(None)) for name in names],
            ignore_conflicts=True,
        )
        created = User.objects.filter(username__in=names).values_list("username", "id")
        ids = dict(created)
        Profile.objects.bulk_create(
            [Profile(user_id=ids[name], is_external=True) for name in names], ignore_conflicts=True
        )
        plan.annotators.update(ids)
    return plan.annotators


@dataclass(frozen=True)
class AnnotationTarget:
    """What every annotation of one write shares: guideline, label and annotator ids, time."""

    guideline: object  # the project's current Guideline
    annotators: dict[str, int]  # name -> user id
    labels: dict[str, int]  # label name -> id
    order: dict[int, int]  # label id -> its place in the project's label order
    stamp: object  # the created/updated time


def write_annotations(write: Write, start: float) -> int:
    """Insert (or, with on_duplicate=update, relabel) the file's annotations; `start` is the
    progress at which this pass begins."""
    project = write.project
    target = AnnotationTarget(
        guideline=project.current_guideline(),
        annotators=_create_annotators(write.plan),
        labels=dict(project.labels.values_list("name", "id")),
        order={
            label_id: i for i, label_id in enumerate(project.labels.values_list("id", flat=True))
        },
        stamp=timezone.now(),
    )
    progress, source = write.progress, write.source
    written = 0
    rows: list[AnnotationRow] = []
    for n, record in enumerate(write.records()):
        if type(record) is not AnnotationRow:
            continue
        if n % 20_000 == 0:
            progress.report(
                start + (0.95 - start) * progress.read_share(source), "writing annotations"
            )
        rows.append(record)
        if len(rows) >= LOOKUP_BATCH:
            written += _write_annotation_rows(write, target, rows)
            rows = []
    if rows:
        written += _write_annotation_rows(write, target, rows)
    return written


def _write_annotation_rows(
    write: Write, target: AnnotationTarget, rows: list[AnnotationRow]
) -> int:
    """One batch of annotation rows: new ones inserted, existing ones relabeled or left.

    Span projects: the value is the stored spans, `[[start, end, label_id], ...]`, cleaned
    against the text the item has now (the file's, written in this transaction, or its own).
    """
    external_ids = list({r.external_id for r in rows})
    spans = write.project.is_spans
    if spans:
        items = stored_items(write.project, external_ids)
        ids = {external_id: pk for external_id, (pk, _) in items.items()}
    else:
        ids = dict(
            Item.objects.filter(project=write.project, external_id__in=external_ids).values_list(
                "external_id", "id"
            )
        )
    existing, update = write.plan.existing_annotations, write.options.on_duplicate == "update"
    new, updates = [], {}
    for row in rows:
        if spans:
            label_ids = spans_clean(items[row.external_id][1], row.spans, labels=target.labels)
        else:
            label_ids = sorted((target.labels[n] for n in row.labels), key=target.order.__getitem__)
        item_id, user_id = ids[row.external_id], target.annotators[row.annotator]
        if (row.external_id, row.annotator) in existing:
            if update:
                updates[(item_id, user_id)] = label_ids
            continue
        new.append((item_id, user_id, label_ids))
    if new:
        _insert_annotations(write.project, target, new)
    if updates:
        _relabel_annotations(write.project, target, updates)
    return len(new) + len(updates)


def _value_columns(project, label_ids) -> str:
    """The COPY text of `label_id`, `labels` and `spans` for one annotation's value."""
    if project.is_spans:
        # [[start, end, label_id], ...] of ints: its JSON has no character COPY escapes.
        return "\\N\t[]\t" + json.dumps(label_ids, separators=(",", ":"))
    if project.is_multi_label:
        return "\\N\t" + json.dumps(label_ids) + "\t[]"
    return f"{label_ids[0]}\t[]\t[]"


def _insert_annotations(project, target: AnnotationTarget, new: list[tuple]) -> None:
    """`new`: (item id, annotator id, value) of each annotation; the value is its label ids,
    or in a span project its stored spans."""
    guideline, stamp, multi = target.guideline, target.stamp, project.is_multi_label
    spans = project.is_spans
    if connection.vendor == "postgresql":
        given = (
            "project_id",
            "item_id",
            "annotator_id",
            "guideline_id",
            "label_id",
            "labels",
            "spans",
            "unsure",
            "comment",
            "created_at",
            "updated_at",
        )
        extra_names, extra_values = copy_defaults(Annotation, given)
        prefix = f"{project.pk}\t"
        suffix = f"\t{guideline.pk}\t"
        tail = f"\tf\t\t{stamp.isoformat()}\t{stamp.isoformat()}{extra_values}\n"
        copy_in_text(
            f"COPY {Annotation._meta.db_table} ({', '.join(given)}{extra_names}) FROM STDIN",
            (
                f"{prefix}{item_id}\t{user_id}{suffix}{_value_columns(project, value)}{tail}"
                for item_id, user_id, value in new
            ),
        )
    else:
        Annotation.objects.bulk_create(
            Annotation(
                project=project,
                item_id=item_id,
                annotator_id=user_id,
                guideline=guideline,
                label_id=None if multi or spans else value[0],
                labels=value if multi else [],
                spans=value if spans else [],
            )
            for item_id, user_id, value in new
        )


def _relabel_annotations(project, target: AnnotationTarget, updates: dict) -> None:
    """`updates`: (item id, annotator id) -> the label ids (or spans) of its annotation."""
    multi, spans = project.is_multi_label, project.is_spans
    found = list(
        Annotation.objects.filter(
            guideline=target.guideline, item_id__in=[item_id for item_id, _ in updates]
        )
    )
    changed = []
    for annotation in found:
        value = updates.get((annotation.item_id, annotation.annotator_id))
        if value is None:
            continue
        annotation.label_id = None if multi or spans else value[0]
        annotation.labels = value if multi else []
        annotation.spans = value if spans else []
        changed.append(annotation)
    Annotation.objects.bulk_update(changed, ["label", "labels", "spans", "updated_at"])
