"""The exported rows: the kept items (or their annotations) read in keyset pages.

Item ids are taken PAGE_SIZE at a time from the decisions' kept ids and read with one
`id BETWEEN first AND last` query each (`values_list`, no ORM object per row). A page is a
NamedTuple of columns: columns are what the numpy decisions and Parquet hold, and a format
that writes rows gets them from `zip` without building a Python object per row.
A span project's pages (`SpanItemPage`, `SpanAnnotationPage`) carry their spans as arrays
(`span_decisions.ItemSpans`) for formats that write them directly (JSONL, Parquet, CoNLL).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import NamedTuple

import numpy as np
from django.db import connections
from django.db.models import BigIntegerField, BooleanField, FloatField, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from analysis.exports.decisions import LabelDecisions, LabelSource
from analysis.exports.span_decisions import ItemSpans, SpanDecisions
from analysis.loaders import class_positions, label_classes, stored_span_arrays
from labeling.models import Annotation, Item, Project
from labeling.rawsql import driver_rows, positions
from labeling.selectors import item_json_keys

ITEM_COLUMNS = ("external_id", "label", "label_source", "agreement", "n_annotations")
ITEM_COLUMNS += ("quality", "issue")
# suggestion_label / suggestion_model: the model suggestion the annotator was shown (empty:
# none; suggestion_label is empty on span projects, whose suggestions are spans).
SUGGESTION_COLUMNS = ("suggestion_label", "suggestion_model")
ANNOTATION_COLUMNS = (
    "external_id", "annotator", "label", "guideline_version", "created_at", *SUGGESTION_COLUMNS,
)  # fmt: skip
# Span projects (DESIGN.md, "Span projects (contract)", Export); `tied_tokens` added here.
SPAN_ITEM_COLUMNS = ("external_id", "text", "spans", "label_source", "agreement")
SPAN_ITEM_COLUMNS += ("n_annotations", "quality", "issue", "tied_tokens")
SPAN_ANNOTATION_COLUMNS = (
    "external_id", "annotator", "spans", "guideline_version", "created_at", *SUGGESTION_COLUMNS,
)  # fmt: skip
PAGE_SIZE = 10_000


class ItemPage(NamedTuple):
    """A page of exported items, column by column (each a sequence in item id order): the
    ITEM_COLUMNS, then `fields`, one sequence per data/metadata column of the export.

    In text pages (CSV) the column values are text (None for empty) and issue is "true" or
    "false"; in typed pages they are ints, floats and bools where the column's kind says.
    """

    external_id: Sequence[str]
    label: Sequence[str | None]
    label_source: Sequence[str | None]
    agreement: Sequence[float | None]
    n_annotations: Sequence[int]
    quality: Sequence[float | None]
    issue: Sequence[bool | str]
    fields: Sequence[Sequence]

    @property
    def n_rows(self) -> int:
        return len(self.external_id)

    def columns(self) -> list[Sequence]:
        """Every column of the export, in header order."""
        return [*self[:7], *self.fields]

    def rows(self) -> Iterator[tuple]:
        """The page row by row, values in header order."""
        return zip(*self.columns(), strict=True)


class ItemDocument(NamedTuple):
    """One exported item with its whole `data` and `metadata` objects (Label Studio tasks)."""

    external_id: str
    label: str | None
    label_source: str | None
    agreement: float | None
    n_annotations: int
    quality: float | None
    issue: bool
    data: dict
    metadata: dict


class ItemDocumentPage(NamedTuple):
    """A page of exported items with their whole `data` and `metadata`, column by column."""

    external_id: Sequence[str]
    label: Sequence[str | None]
    label_source: Sequence[str | None]
    agreement: Sequence[float | None]
    n_annotations: Sequence[int]
    quality: Sequence[float | None]
    issue: Sequence[bool]
    data: Sequence[dict]
    metadata: Sequence[dict]

    @property
    def n_rows(self) -> int:
        return len(self.external_id)

    def rows(self) -> Iterator[ItemDocument]:
        return map(ItemDocument._make, zip(*self, strict=True))


class AnnotationPage(NamedTuple):
    """A page of annotations of the kept items (`include=annotations`), column by column, in
    ANNOTATION_COLUMNS order."""

    external_id: Sequence[str]
    annotator: Sequence[str]
    label: Sequence[str]
    guideline_version: Sequence[int]
    created_at: Sequence[datetime]
    suggestion_label: Sequence[str | None]
    suggestion_model: Sequence[str]

    @property
    def n_rows(self) -> int:
        return len(self.external_id)

    def columns(self) -> list[Sequence]:
        return list(self)

    def rows(self) -> Iterator[tuple]:
        return zip(*self, strict=True)


# ---------------------------------------------------------------------------------------------
# Columns of the item's data and metadata


@dataclass(frozen=True)
class JsonColumn:
    field: str  # "data" or "metadata"
    key: str
    name: str  # column name in the export
    kind: str  # "string", "int", "float", "bool", "json"


def json_columns(*, project: Project, types: bool = True) -> list[JsonColumn]:
    """Data fields (named as the key) then metadata (named `metadata.<key>`), keys sorted.

    A data key that collides with a fixed column is named `data.<key>`. With types=False
    (CSV, where every value is text) the value types are not looked up and kind is "string".
    In a span project the fixed columns are SPAN_ITEM_COLUMNS and `data.text` is the `text`
    column, not a field of its own.
    """
    fixed = SPAN_ITEM_COLUMNS if project.is_spans else ITEM_COLUMNS
    columns = []
    for field_name in ("data", "metadata"):
        if project.is_spans and field_name == "data" and types:
            # Span items rarely have data besides their text: find the keys first (three
            # times faster than their types) and look the types up only if there are others.
            keys = item_json_keys(project=project, field=field_name, types=False)
            if set(keys) - {"text"}:
                keys = item_json_keys(project=project, field=field_name, types=True)
        else:
            keys = item_json_keys(project=project, field=field_name, types=types)
        for key, kinds in sorted(keys.items()):
            if project.is_spans and field_name == "data" and key == "text":
                continue
            if kinds <= {"int"}:
                kind = "int" if kinds else "string"
            elif kinds <= {"int", "float"}:
                kind = "float"
            elif kinds == {"bool"}:
                kind = "bool"
            elif kinds == {"string"}:
                kind = "string"
            else:
                kind = "json"
            if field_name == "metadata":
                name = f"metadata.{key}"
            elif key in fixed:
                name = f"data.{key}"
            else:
                name = key
            columns.append(JsonColumn(field_name, key, name, kind))
    return columns


def _typed_expression(column: JsonColumn):
    text = KeyTextTransform(column.key, column.field)
    if column.kind == "int":
        return Cast(text, BigIntegerField())
    if column.kind == "float":
        return Cast(text, FloatField())
    if column.kind == "bool" and connections[Item.objects.db].vendor == "postgresql":
        return Cast(text, BooleanField())
    # SQLite's key text of a JSON true is "true", which its cast reads as 0: see _sqlite_bool.
    return text


def _sqlite_bool(value) -> bool | None:
    """A bool column's value as SQLite gives it: "true", "false", "null" or None."""
    return None if value is None or value == "null" else value in ("true", 1, "1", True)


# ---------------------------------------------------------------------------------------------
# Pages


def transpose(rows: list[tuple], width: int) -> list[list]:
    """Rows to columns. Not `zip(*rows)`: that holds one iterator per row at once, and ten
    thousand live iterators per page drive objects into the garbage collector's oldest
    generation, whose full collections then cost more than writing the page."""
    return [list(map(itemgetter(i), rows)) for i in range(width)]


def _kept_item_rows(
    *, project: Project, decisions, fields: list, whole_json: bool = False
) -> Iterator[tuple[np.ndarray, list[list]]]:
    """The kept items PAGE_SIZE at a time: (their positions in the decisions, the columns
    `external_id, *fields` of those still present, as lists)."""
    d = decisions
    kept = np.flatnonzero(d.keep)
    for start in range(0, len(kept), PAGE_SIZE):
        page_positions = kept[start : start + PAGE_SIZE]
        ids = d.item_ids[page_positions]
        found = Item.objects.filter(
            project=project, id__gte=int(ids[0]), id__lte=int(ids[-1])
        ).order_by("id")
        rows = found.values_list("id", "external_id", *fields)
        # Django decodes the JSON columns; text and cast columns need no conversion.
        fetched = list(rows) if whole_json else driver_rows(rows)
        # The range holds items the filters left out, and kept items may have been deleted
        # since the decisions were made: take the kept ones that are still there.
        fetched_ids = np.fromiter(map(itemgetter(0), fetched), dtype=np.int64, count=len(fetched))
        at = positions(ids, fetched_ids)
        present = at >= 0
        if not present.all():
            page_positions, at = page_positions[present], at[present]
        if len(fetched) != len(at):
            fetched = [fetched[i] for i in at.tolist()]
        yield page_positions, transpose(fetched, 2 + len(fields))[1:]


def _decided_columns(d, page_positions: np.ndarray, *, typed: bool) -> dict[str, list]:
    """The decision columns every item row has, for the items at page_positions."""
    source_names = np.array([source.column_value for source in LabelSource], dtype=object)
    agreement = d.agreement[page_positions]
    quality = d.quality[page_positions]
    issue = d.issue[page_positions]
    bool_text = np.array(["false", "true"], dtype=object)
    return {
        "label_source": source_names[d.source[page_positions]].tolist(),
        "agreement": np.where(np.isnan(agreement), None, agreement).tolist(),
        "n_annotations": d.n_annotations[page_positions].tolist(),
        "quality": np.where(np.isnan(quality), None, quality).tolist(),
        "issue": issue.tolist() if typed else bool_text[issue.astype(np.intp)].tolist(),
    }


def _field_expressions(columns: list[JsonColumn], *, typed: bool) -> list:
    if typed:
        return [_typed_expression(c) for c in columns]
    return [KeyTextTransform(c.key, c.field) for c in columns]


def _sqlite_bools(columns: list[JsonColumn], *, typed: bool) -> list[int]:
    """Indices of the bool columns whose values need converting: SQLite has no boolean type
    and gives their JSON text (and driver_rows runs no converter)."""
    if typed and connections[Item.objects.db].vendor != "postgresql":
        return [i for i, c in enumerate(columns) if c.kind == "bool"]
    return []


def item_pages(
    *,
    project: Project,
    decisions: LabelDecisions,
    columns: list[JsonColumn],
    typed: bool,
    whole_json: bool = False,
) -> Iterator[ItemPage] | Iterator[ItemDocumentPage]:
    """Pages of the kept items: ItemPages, or ItemDocumentPages with whole_json.

    typed: JSON values as Python ints/floats/bools (else CSV text).
    """
    d = decisions
    label_names = np.array([*d.class_names, None], dtype=object)  # index -1 -> None
    if whole_json:
        fields = ["data", "metadata"]
    else:
        fields = _field_expressions(columns, typed=typed)
    bool_fields = [] if whole_json else _sqlite_bools(columns, typed=typed)
    pages = _kept_item_rows(project=project, decisions=d, fields=fields, whole_json=whole_json)
    for page_positions, by_column in pages:
        for i in bool_fields:
            by_column[1 + i] = list(map(_sqlite_bool, by_column[1 + i]))
        decided = _decided_columns(d, page_positions, typed=typed)
        values = (
            by_column[0],
            label_names[d.label[page_positions]].tolist(),
            *decided.values(),
        )
        if whole_json:
            yield ItemDocumentPage(*values, data=by_column[1], metadata=by_column[2])
        else:
            yield ItemPage(*values, fields=by_column[1:])


def annotation_pages(
    *, project: Project, kept_ids: np.ndarray, guideline_version: int | None
) -> Iterator[AnnotationPage]:
    """Pages of the annotations of the kept items (single-label), in annotation id order."""
    queryset = Annotation.objects.filter(project=project, label__isnull=False)
    if guideline_version is not None:
        queryset = queryset.filter(guideline__version=guideline_version)
    last = 0
    while True:
        rows = list(
            queryset.filter(id__gt=last)
            .order_by("id")
            .values_list(
                "id",
                "item_id",
                "item__external_id",
                "annotator__username",
                "label__name",
                "guideline__version",
                "created_at",
                "suggestion_label__name",
                "suggestion_model",
            )[:PAGE_SIZE]
        )
        if not rows:
            return
        last = rows[-1][0]
        item_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        keep = positions(item_ids, kept_ids) >= 0
        kept_rows = [r[2:] for r, k in zip(rows, keep.tolist(), strict=True) if k]
        yield AnnotationPage(*transpose(kept_rows, 7))


# ---------------------------------------------------------------------------------------------
# Span projects


class SpanItemPage(NamedTuple):
    """A page of exported items of a span project, column by column (SPAN_ITEM_COLUMNS, then
    `fields`). `spans` holds the page's spans as arrays (`ItemSpans`); `columns()` and `rows()`
    give them as lists of `{start, end, label}` (typed pages) or as their JSON text (text
    pages, CSV), None for an item without a decision.
    """

    external_id: Sequence[str]
    text: Sequence[str]
    spans: ItemSpans
    label_source: Sequence[str | None]
    agreement: Sequence[float | None]
    n_annotations: Sequence[int]
    quality: Sequence[float | None]
    issue: Sequence[bool | str]
    tied_tokens: Sequence[int]
    fields: Sequence[Sequence]
    typed: bool = True

    @property
    def n_rows(self) -> int:
        return len(self.external_id)

    def columns(self) -> list[Sequence]:
        spans = self.spans.as_lists() if self.typed else self.spans.as_json()
        return [self.external_id, self.text, spans, *self[3:9], *self.fields]

    def rows(self) -> Iterator[tuple]:
        return zip(*self.columns(), strict=True)


class SpanAnnotationPage(NamedTuple):
    """A page of annotations of a span project's kept items (`include=annotations`), in
    SPAN_ANNOTATION_COLUMNS order; spans as in SpanItemPage. `texts`: each annotation's item
    text (for CoNLL and Label Studio, not a column)."""

    external_id: Sequence[str]
    annotator: Sequence[str]
    spans: ItemSpans
    guideline_version: Sequence[int]
    created_at: Sequence[datetime]
    suggestion_label: Sequence[str | None]
    suggestion_model: Sequence[str]
    texts: Sequence[str]
    typed: bool = True

    @property
    def n_rows(self) -> int:
        return len(self.external_id)

    def columns(self) -> list[Sequence]:
        spans = self.spans.as_lists() if self.typed else self.spans.as_json()
        return [
            self.external_id, self.annotator, spans, self.guideline_version, self.created_at,
            self.suggestion_label, self.suggestion_model,
        ]  # fmt: skip

    def rows(self) -> Iterator[tuple]:
        return zip(*self.columns(), strict=True)


def span_item_pages(
    *,
    project: Project,
    decisions: SpanDecisions,
    columns: list[JsonColumn],
    typed: bool,
    whole_json: bool = False,
) -> Iterator[SpanItemPage]:
    """Pages of the kept items of a span project (typed: see `item_pages`). With whole_json
    `fields` are two columns: the items' whole `data` and `metadata` objects."""
    d = decisions
    # The texts the decisions read for the tokens, rather than a second read of each.
    texts = d.item_texts
    text_field = [] if texts is not None else [KeyTextTransform("text", "data")]
    if whole_json:
        fields = [*text_field, "data", "metadata"]
        bool_fields = []
    else:
        fields = [*text_field, *_field_expressions(columns, typed=typed)]
        bool_fields = _sqlite_bools(columns, typed=typed)
    pages = _kept_item_rows(project=project, decisions=d, fields=fields, whole_json=whole_json)
    for page_positions, by_column in pages:
        if texts is not None:
            by_column.insert(1, [texts[i] for i in page_positions.tolist()])
        else:
            by_column[1] = [text or "" for text in by_column[1]]
        for i in bool_fields:
            by_column[2 + i] = list(map(_sqlite_bool, by_column[2 + i]))
        decided = _decided_columns(d, page_positions, typed=typed)
        yield SpanItemPage(
            by_column[0],
            by_column[1],
            d.spans_at(page_positions),
            *decided.values(),
            tied_tokens=d.tied_tokens[page_positions].tolist(),
            fields=by_column[2:],
            typed=typed,
        )


def span_annotation_pages(
    *, project: Project, kept_ids: np.ndarray, guideline_version: int | None, typed: bool
) -> Iterator[SpanAnnotationPage]:
    """Pages of the annotations of a span project's kept items, in annotation id order."""
    class_ids, class_names = label_classes(project)
    queryset = Annotation.objects.filter(project=project)
    if guideline_version is not None:
        queryset = queryset.filter(guideline__version=guideline_version)
    last = 0
    while True:
        rows = list(
            queryset.filter(id__gt=last)
            .order_by("id")
            .annotate(spans_text=Cast("spans", TextField()))
            .values_list(
                "id",
                "item_id",
                "item__external_id",
                "annotator__username",
                "spans_text",
                "guideline__version",
                "created_at",
                "suggestion_label__name",
                "suggestion_model",
                KeyTextTransform("text", "item__data"),
            )[:PAGE_SIZE]
        )
        if not rows:
            return
        last = rows[-1][0]
        item_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        keep = positions(item_ids, kept_ids) >= 0
        kept_rows = [r[2:] for r, k in zip(rows, keep.tolist(), strict=True) if k]
        columns = transpose(kept_rows, 8)
        counts, spans = stored_span_arrays([text or "[]" for text in columns[2]])
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        yield SpanAnnotationPage(
            external_id=columns[0],
            annotator=columns[1],
            spans=ItemSpans(
                offsets=offsets,
                start=spans[:, 0],
                end=spans[:, 1],
                label=class_positions(class_ids, spans[:, 2]),
                decided=np.ones(len(counts), dtype=bool),
                class_names=class_names,
            ),
            guideline_version=columns[3],
            created_at=columns[4],
            suggestion_label=columns[5],
            suggestion_model=columns[6],
            texts=[text or "" for text in columns[7]],
            typed=typed,
        )
