"""The check pass: the whole file is read once and nothing is written.

It returns a Plan (what the write passes need to know without looking at the content again)
and the errors: any error rejects the whole file. Memory stays bounded by the ids: item ids
in a set, annotations as (item, annotator) pairs of small ints in int64 arrays.
"""

import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator

from labeling.importing.parsers import PARSERS
from labeling.importing.progress import Progress
from labeling.importing.readers import ByteCounter, FileRejected
from labeling.importing.records import (
    AnnotationRow,
    ItemChunk,
    ItemRow,
    ParseContext,
    Parser,
    Record,
)
from labeling.importing.span_check import SpanCheck
from labeling.models import Annotation, ImportBatch, Item, Project

User = get_user_model()

MAX_ERRORS = 100
LOOKUP_BATCH = 5_000
_USERNAME = re.compile(UnicodeUsernameValidator.regex)


@dataclass
class Plan:
    """What the check learned: enough to write without looking at the file's content again."""

    n_items: int = 0
    n_annotations: int = 0
    existing_items: set = field(default_factory=set)  # external ids already in the project
    annotators: dict = field(default_factory=dict)  # name -> user id (None: to be created)
    existing_annotations: set = field(default_factory=set)  # (external_id, annotator)


class ErrorList:
    """Every problem is counted; the first MAX_ERRORS are kept as `{row, reason}`."""

    def __init__(self):
        self.errors: list[dict] = []
        self.count = 0

    def add(self, row: int | None, reason: str) -> None:
        self.count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"row": row, "reason": reason})

    @property
    def full(self) -> bool:
        return len(self.errors) >= MAX_ERRORS

    def __bool__(self) -> bool:
        return self.count > 0


def in_batches(values, size: int = LOOKUP_BATCH) -> Iterator[list]:
    values = values if isinstance(values, list) else list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass
class AnnotationsSeen:
    """The file's annotations interned to small ints, so (item, annotator) pairs fit in int64."""

    items: dict[str, int] = field(default_factory=dict)  # external id -> index
    item_rows: array = field(default_factory=lambda: array("q"))  # first row naming each item
    annotators: dict[str, int] = field(default_factory=dict)  # name -> index
    pair_keys: array = field(default_factory=lambda: array("q"))  # item << 24 | annotator
    pair_rows: array = field(default_factory=lambda: array("q"))

    def add(self, record: AnnotationRow) -> None:
        index = self.items.get(record.external_id)
        if index is None:
            index = self.items[record.external_id] = len(self.items)
            self.item_rows.append(record.row)
        who = self.annotators.setdefault(record.annotator, len(self.annotators))
        self.pair_keys.append(index << 24 | who)
        self.pair_rows.append(record.row)


@dataclass
class FileCheck:
    """One file's check: what it reads, and what it has found so far."""

    project: Project
    options: object  # an ImportOptions
    source: ByteCounter
    progress: Progress
    ctx: ParseContext
    plan: Plan = field(default_factory=Plan)
    errors: ErrorList = field(default_factory=ErrorList)
    item_ids: set[str] = field(default_factory=set)
    annotations: AnnotationsSeen = field(default_factory=AnnotationsSeen)
    spans: SpanCheck | None = None  # span projects: each annotation's spans on its text

    @property
    def parser(self) -> Parser:
        return PARSERS[self.options.format]

    def reread(self, ctx: ParseContext | None = None) -> Iterator[Record]:
        """The file's records from its start again."""
        self.source.rewind()
        return self.parser.parse(self.source, ctx or self.ctx)

    def note_item(self, row: int, external_id: str) -> None:
        if external_id in self.item_ids:
            self.errors.add(
                row, f"duplicate {self.options.id_column} {external_id[:60]!r} within the file"
            )
        else:
            self.item_ids.add(external_id)

    def note_chunk(self, chunk: ItemChunk) -> None:
        ids = set(chunk.external_ids)
        if len(ids) == len(chunk.external_ids) and self.item_ids.isdisjoint(ids):
            self.item_ids.update(ids)
        else:  # a repeated id: find its rows
            for i, external_id in enumerate(chunk.external_ids):
                self.note_item(chunk.first_row + i, external_id)

    def note_annotation(self, record: AnnotationRow) -> None:
        if len(record.annotator) > 150 or not _USERNAME.fullmatch(record.annotator):
            self.errors.add(
                record.row, f"annotator {record.annotator[:60]!r} is not a valid user name"
            )
            return
        self.annotations.add(record)
        if self.spans is not None:
            self.spans.add(record)


class NeedsFullCheck(Exception):
    """Checking while writing met what only the full check handles (a row with a problem, an
    annotation, an empty file): the caller rolls the write back and runs the two passes."""


def items_checked_as_read(check: FileCheck, records: Iterator[Record]) -> Iterator[Record]:
    """The records of a file of new items only, each checked as `_read` checks it before it
    is passed on; raises NeedsFullCheck at the first record that is not a clean item."""
    for record in records:
        if type(record) is ItemChunk:
            check.note_chunk(record)
        elif type(record) is ItemRow:
            check.note_item(record.row, record.external_id)
        else:
            raise NeedsFullCheck
        if check.errors:
            raise NeedsFullCheck
        yield record


def validate(
    *, project: Project, options, source: ByteCounter, progress: Progress
) -> tuple[Plan, ErrorList]:
    """Check the whole file; the plan is meaningful only when there are no errors."""
    check = FileCheck(
        project, options, source, progress, ParseContext.of(project, options, copy_chunks=True)
    )
    items_kind = options.kind == ImportBatch.Kind.ITEMS
    if project.is_spans:
        check.spans = SpanCheck(project, items_kind, check.errors, LOOKUP_BATCH)
    try:
        _read(check)
    except FileRejected as exc:
        check.errors.add(exc.row, exc.reason)
        return check.plan, check.errors
    if check.spans is not None:
        check.spans.finish()
    plan, errors = check.plan, check.errors
    plan.n_items = len(check.item_ids)
    plan.n_annotations = len(check.annotations.pair_keys)
    if items_kind and not check.parser.bundles_annotations and not check.item_ids and not errors:
        errors.add(None, "The file has no rows.")
    if not items_kind and not plan.n_annotations and not errors:
        errors.add(None, "The file has no annotations.")
    if len(check.annotations.annotators) >= 1 << 24:
        errors.add(None, "Too many distinct annotators in one file.")
    if check.item_ids and project.items.exists():
        _check_existing_items(check)
        if (
            check.spans is not None
            and plan.existing_items
            and plan.n_annotations
            and options.on_duplicate == "skip"
        ):
            records = (r for r in check.reread() if type(r) is AnnotationRow)
            check.spans.against_existing(records, plan.existing_items)
    check.item_ids.clear()  # free the ids before the annotations are checked
    if plan.n_annotations:
        _check_annotations(check)
    progress.report(0.5, "file checked")
    return plan, errors


def _read(check: FileCheck) -> None:
    """The one full read: ids noted, row errors listed."""
    source, progress = check.source, check.progress
    for n, record in enumerate(check.parser.parse(source, check.ctx)):
        chunk = type(record) is ItemChunk
        if n % 50_000 == 0 or chunk:
            progress.report(0.45 * progress.read_share(source), "checking the file")
        if chunk:
            check.note_chunk(record)
        elif type(record) is ItemRow:
            check.note_item(record.row, record.external_id)
        elif type(record) is AnnotationRow:
            check.note_annotation(record)
        else:
            check.errors.add(record.row, record.reason)


def _check_existing_items(check: FileCheck) -> None:
    plan, errors, options = check.plan, check.errors, check.options
    for ids in in_batches(check.item_ids):
        plan.existing_items.update(
            Item.objects.filter(project=check.project, external_id__in=ids).values_list(
                "external_id", flat=True
            )
        )
    if not plan.existing_items or options.on_duplicate != "error" or errors.count >= MAX_ERRORS:
        return
    # A third, cheap pass finds the rows (only when such a conflict exists).
    for record in check.reread(replace(check.ctx, copy_chunks=False)):
        if type(record) is ItemRow and record.external_id in plan.existing_items:
            errors.add(
                record.row,
                f"{options.id_column} {record.external_id[:60]!r} already exists in the project"
                " (on_duplicate=error)",
            )
            if errors.full:
                break


def _check_annotations(check: FileCheck) -> None:
    plan, errors, seen, project = check.plan, check.errors, check.annotations, check.project
    keys = np.frombuffer(seen.pair_keys, dtype=np.int64)
    rows = np.frombuffer(seen.pair_rows, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeated = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1]) + 1
    for row in np.sort(rows[order][repeated])[:MAX_ERRORS]:
        errors.add(int(row), "the same annotator labels the same item twice in the file")
    errors.count += max(len(repeated) - MAX_ERRORS, 0)

    # Items must exist: in the project, or (a file of items with their annotations) in it.
    if check.options.kind == ImportBatch.Kind.ITEMS:
        known = set(seen.items)
    else:
        known = set()
        for ids in in_batches(seen.items):
            known.update(
                Item.objects.filter(project=project, external_id__in=ids).values_list(
                    "external_id", flat=True
                )
            )
        missing = [(seen.item_rows[i], ext) for ext, i in seen.items.items() if ext not in known]
        for row, ext in sorted(missing)[:MAX_ERRORS]:
            errors.add(row, f"unknown item {ext[:60]!r}")
    guideline = project.current_guideline()
    if guideline is None:
        errors.add(
            None, "The project has no published guideline version to stamp annotations with."
        )
        return

    for names in in_batches(seen.annotators):
        plan.annotators.update(
            User.objects.filter(username__in=names).values_list("username", "id")
        )
    for name in seen.annotators:
        plan.annotators.setdefault(name, None)

    if Annotation.objects.filter(project=project, guideline=guideline).exists():
        _check_existing_annotations(check, guideline)


def _check_existing_annotations(check: FileCheck, guideline) -> None:
    plan, errors, project = check.plan, check.errors, check.project
    names = [n for n, uid in plan.annotators.items() if uid is not None]
    for ids in in_batches(check.annotations.items):
        plan.existing_annotations.update(
            Annotation.objects.filter(
                project=project,
                guideline=guideline,
                item__external_id__in=ids,
                annotator__username__in=names,
            ).values_list("item__external_id", "annotator__username")
        )
    if (
        not plan.existing_annotations
        or check.options.on_duplicate != "error"
        or errors.count >= MAX_ERRORS
    ):
        return
    for record in check.reread():
        if (
            type(record) is AnnotationRow
            and (record.external_id, record.annotator) in plan.existing_annotations
        ):
            errors.add(
                record.row,
                f"{record.annotator[:60]!r} already labeled {record.external_id[:60]!r} under "
                f"guideline v{guideline.version} (on_duplicate=error)",
            )
            if errors.full:
                break
