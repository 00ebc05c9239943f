"""Exporting a cleaned dataset: consensus labels, filters, streamed formats, dataset versions.

How an export runs, and why it stays in constant memory at a million items:

1. The label decisions are computed once, as numpy arrays over every item id of the project
   (about 40 bytes per item): the annotations come from `analysis.loaders.annotation_rows`,
   reviews and label-issue rows from `values_list`. No ORM object is built per row.
2. The kept item ids are streamed in keyset pages (`id BETWEEN first AND last`, ordered by
   id) with `values_list`; each page is written by csv.writer / json / a pyarrow row group and
   handed to `StreamingHttpResponse` as bytes, then dropped.
3. Every recorded export is a `DatasetVersion`. Its row is created before the first byte and
   completed (row count, sha256 of exactly the bytes sent) when the stream ends, so a download
   that was cut off leaves a version without a checksum instead of a wrong one.

Determinism (a version downloads byte-identical while the data is unchanged): rows come in
item id order (annotations: annotation id order), columns in a fixed order (data and metadata
keys sorted), no timestamps of the export itself inside the file, floats written by repr,
and Parquet written by pyarrow from explicit arrays and a fixed schema.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import BigIntegerField, BooleanField, FloatField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from analysis.loaders import annotation_rows, annotation_votes, int_rows, label_classes
from analysis.metrics.consensus import (
    dawid_skene_long,
    majority_from_counts,
    posterior_winner,
    vote_counts,
)
from labeling.models import Annotation, DatasetVersion, Item, Project, Review
from labeling.selectors import item_json_keys, newest_label_issue_run

FORMATS = ("csv", "jsonl", "parquet", "labelstudio")
STRATEGIES = tuple(Project.LabelStrategy.values)
EXCLUDES = ("open_issues", "ambiguous", "unresolved")
EXCLUDE_TITLES = {
    "open_issues": "Open label issues",
    "ambiguous": "Marked ambiguous",
    "unresolved": "Unresolved (ties, below overlap)",
}
INCLUDES = ("annotations",)
ITEM_COLUMNS = ("external_id", "label", "label_source", "agreement", "n_annotations")
ITEM_COLUMNS += ("quality", "issue")
ANNOTATION_COLUMNS = ("external_id", "annotator", "label", "guideline_version", "created_at")
PAGE_SIZE = 10_000
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "labelstudio": "application/json; charset=utf-8",
}
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet", "labelstudio": "json"}
# label_source codes in the decision arrays
NO_SOURCE, REVIEW = 0, 1
SOURCE_NAMES = {NO_SOURCE: None, REVIEW: "review", 2: "majority", 3: "dawid_skene", 4: "crowdlab"}
STRATEGY_SOURCE = {"majority": 2, "dawid_skene": 3, "crowdlab": 4, "reviewed": NO_SOURCE}


@dataclass(frozen=True)
class ExportParams:
    format: str
    labels: str
    exclude: tuple[str, ...] = ()
    min_agreement: float | None = None
    guideline_version: int | None = None
    include: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "format": self.format,
            "labels": self.labels,
            "exclude": list(self.exclude),
            "min_agreement": self.min_agreement,
            "guideline_version": self.guideline_version,
            "include": list(self.include),
        }


def _values(query: Mapping, name: str) -> list[str]:
    """`a,b` and repeated `?x=a&x=b` both work."""
    raw = query.getlist(name) if hasattr(query, "getlist") else query.get(name)
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    return [part.strip() for value in raw for part in str(value).split(",") if part.strip()]


def export_params_parse(query: Mapping, *, project: Project) -> ExportParams:
    """Validate export parameters; a ValidationError lists the allowed values per field."""
    errors: dict[str, str] = {}
    fmt = (_values(query, "format") or ["csv"])[0]
    if fmt not in FORMATS:
        errors["format"] = f"Unknown format {fmt!r}; allowed: {', '.join(FORMATS)}."
    labels = (_values(query, "labels") or [project.default_label_strategy])[0]
    if labels not in STRATEGIES:
        errors["labels"] = f"Unknown labels {labels!r}; allowed: {', '.join(STRATEGIES)}."
    exclude = _values(query, "exclude")
    bad = [e for e in exclude if e not in EXCLUDES]
    if bad:
        errors["exclude"] = f"Unknown exclude {', '.join(bad)}; allowed: {', '.join(EXCLUDES)}."
    include = _values(query, "include")
    bad = [i for i in include if i not in INCLUDES]
    if bad:
        errors["include"] = f"Unknown include {', '.join(bad)}; allowed: {', '.join(INCLUDES)}."
    min_agreement = None
    raw = _values(query, "min_agreement")
    if raw:
        try:
            min_agreement = float(raw[0])
        except ValueError:
            min_agreement = float("nan")
        if not 0.0 <= min_agreement <= 1.0:
            errors["min_agreement"] = "min_agreement must be a number from 0 to 1."
    guideline_version = None
    raw = _values(query, "guideline_version")
    if raw:
        versions = list(
            project.guidelines.filter(published_at__isnull=False)
            .order_by("version")
            .values_list("version", flat=True)
        )
        try:
            guideline_version = int(raw[0])
        except ValueError:
            guideline_version = None
        if guideline_version not in versions:
            allowed = ", ".join(str(v) for v in versions) or "none published"
            errors["guideline_version"] = (
                f"Unknown guideline_version {raw[0]!r}; allowed: {allowed}."
            )
    if project.is_multi_label and not errors:
        errors["labels"] = "Exports of multi-label projects are not supported yet."
    if errors:
        raise ValidationError(errors)
    return ExportParams(
        format=fmt,
        labels=labels,
        exclude=tuple(sorted(set(exclude))),
        min_agreement=min_agreement,
        guideline_version=guideline_version,
        include=tuple(sorted(set(include))),
    )


@dataclass
class LabelDecisions:
    """One decision per item of the project, in item id order.

    item_ids: (n_items,) int64 sorted; label: (n_items,) int16 class index, -1 for none;
    source: (n_items,) int8 (see SOURCE_NAMES); agreement: (n_items,) float64 share of the
    item's annotations that agree with the exported label (NaN without annotations or label);
    n_annotations: (n_items,) int32; quality: (n_items,) float64 (NaN without a label-issue
    run row); issue: (n_items,) bool; keep: (n_items,) bool after the filters.
    """

    item_ids: np.ndarray
    label: np.ndarray
    source: np.ndarray
    agreement: np.ndarray
    n_annotations: np.ndarray
    quality: np.ndarray
    issue: np.ndarray
    keep: np.ndarray
    class_names: list[str]
    excluded: dict[str, int] = field(default_factory=dict)
    runs: list[int] = field(default_factory=list)

    def snapshot(self) -> bytes:
        """Compressed arrays of the exported items' ids and label indices, for diffs.

        An .npz of (item id gaps, label indices, class names), deflated at level 1: ids are
        stored as gaps, which compress to almost nothing, and level 1 keeps a million rows
        well under a second.
        """
        ids = self.item_ids[self.keep]
        buffer = io.BytesIO()
        np.savez(
            buffer,
            item_id_gaps=np.diff(ids, prepend=0),
            labels=self.label[self.keep],
            class_names=np.array(self.class_names, dtype=str),
        )
        return zlib.compress(buffer.getvalue(), 1)


def _positions(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each id in sorted_ids, and whether it is there at all."""
    pos = np.searchsorted(sorted_ids, ids)
    pos = np.minimum(pos, max(len(sorted_ids) - 1, 0))
    found = sorted_ids[pos] == ids if len(sorted_ids) else np.zeros(len(ids), bool)
    return pos, found


def _int_array(queryset, width: int) -> np.ndarray:
    flat = np.fromiter(
        itertools.chain.from_iterable(queryset.iterator(chunk_size=50_000)), dtype=np.int64
    )
    return flat.reshape(-1, width)


def label_decisions(*, project: Project, params: ExportParams) -> LabelDecisions:
    """Compute the exported label of every item and which items the filters keep."""

    item_ids = int_rows(
        Item.objects.filter(project=project).order_by("id").values_list("id"), width=1
    )[:, 0]
    n = len(item_ids)
    class_id_list, class_names = label_classes(project)
    class_ids = np.asarray(class_id_list, dtype=np.int64)
    n_classes = len(class_ids)
    rows = None
    if params.labels == "dawid_skene":
        # Dawid-Skene needs who labeled what; the other strategies only need the votes.
        rows = annotation_rows(project=project, version=params.guideline_version)
        pos, _ = _positions(item_ids, rows.item_ids)
        item_pos = pos[rows.item_index] if len(rows.item_index) else np.zeros(0, np.int64)
        label_index = rows.label_index
    else:
        item_pos, label_index = annotation_votes(
            project=project, item_ids=item_ids, version=params.guideline_version
        )
    counts = vote_counts(item_pos, label_index, n_items=n, n_classes=n_classes)
    del item_pos, label_index
    n_annotations = counts.sum(axis=1).astype(np.int32)

    label = np.full(n, -1, dtype=np.int16)
    source = np.zeros(n, dtype=np.int8)
    quality = np.full(n, np.nan)
    issue = np.zeros(n, dtype=bool)
    open_issue = np.zeros(n, dtype=bool)
    runs: list[int] = []

    def class_index(label_ids: np.ndarray) -> np.ndarray:
        order = np.argsort(class_ids)
        idx = np.searchsorted(class_ids[order], label_ids)
        return order[np.minimum(idx, len(order) - 1)]

    run = newest_label_issue_run(project=project)
    if run is not None:
        runs.append(run.pk)
        issue_table = _label_issue_arrays(run)
        if len(issue_table["item_id"]):
            p, found = _positions(item_ids, issue_table["item_id"])
            p = p[found]
            quality[p] = issue_table["quality"][found]
            flagged = issue_table["is_issue"][found]
            issue[p] = flagged
            open_issue[p] = flagged & issue_table["open"][found]
            if params.labels == "crowdlab":
                # CROWDLAB's consensus: the run's suggested label where it made one, else the
                # label the run considered given.
                chosen = issue_table["label_id"][found]
                has = chosen >= 0
                label[p[has]] = class_index(chosen[has])
                source[p[has]] = STRATEGY_SOURCE["crowdlab"]
    elif params.labels == "crowdlab":
        raise ValidationError(
            {"labels": "labels=crowdlab needs a succeeded label-issue run; start one first."}
        )

    majority, majority_share, _ = majority_from_counts(counts, project.tie_rule)
    if params.labels == "majority":
        label[:] = majority
        source[majority >= 0] = STRATEGY_SOURCE["majority"]
    elif rows is not None and len(rows.item_index):
        posteriors, _ = dawid_skene_long(
            rows.item_index,
            rows.annotator_index,
            rows.label_index,
            n_items=rows.n_items,
            n_annotators=rows.n_annotators,
            n_classes=n_classes,
        )
        winner, _ = posterior_winner(posteriors)
        has = winner >= 0
        label[pos[has]] = winner[has]
        source[pos[has]] = STRATEGY_SOURCE["dawid_skene"]

    reviews = _int_array(
        Review.objects.filter(item__project=project, label__isnull=False).values_list(
            "item_id", "label_id"
        ),
        2,
    )
    reviewed = np.zeros(n, dtype=bool)
    if len(reviews):
        p, found = _positions(item_ids, reviews[:, 0])
        label[p[found]] = class_index(reviews[found, 1])
        source[p[found]] = REVIEW
        reviewed[p[found]] = True

    with np.errstate(invalid="ignore", divide="ignore"):
        safe = np.maximum(label, 0).astype(np.int64)
        agreement = counts[np.arange(n), safe] / n_annotations if n else np.zeros(0)
    agreement = np.where((label >= 0) & (n_annotations > 0), agreement, np.nan)
    if params.labels == "majority":
        # For majority ties left unresolved the share of the tied top classes is still shown.
        agreement = np.where(label < 0, majority_share, agreement)

    excluded: dict[str, int] = {}
    keep = np.ones(n, dtype=bool)
    if params.guideline_version is not None:
        drop = n_annotations == 0
        excluded["guideline_version"] = int(drop.sum())
        keep &= ~drop
    masks = {
        "open_issues": open_issue,
        "ambiguous": _ambiguous(project=project, item_ids=item_ids),
        "unresolved": ~reviewed & ((label < 0) | (n_annotations < project.overlap)),
    }
    for name in params.exclude:
        excluded[name] = int(masks[name].sum())
        keep &= ~masks[name]
    if params.min_agreement is not None:
        # Reviewed items pass: a reviewer's decision stands whatever the annotators said.
        drop = ~reviewed & ~(agreement >= params.min_agreement)
        excluded["min_agreement"] = int(drop.sum())
        keep &= ~drop
    return LabelDecisions(
        item_ids=item_ids,
        label=label,
        source=source,
        agreement=np.round(agreement, 6),
        n_annotations=n_annotations,
        quality=quality,
        issue=issue,
        keep=keep,
        class_names=class_names,
        excluded=excluded,
        runs=runs,
    )


def _label_issue_arrays(run) -> dict[str, np.ndarray]:
    """A label-issue run's rows as arrays (filled block by block: constant extra memory).

    item_id, label_id (suggested, else given; -1 for none): (m,) int64; quality: (m,)
    float64; is_issue, open (resolution still open): (m,) bool.
    """
    from analysis.models import LabelIssue

    queryset = LabelIssue.objects.filter(run=run).values_list(
        "item_id", "suggested_label_id", "given_label_id", "quality", "is_issue", "resolution"
    )
    m = queryset.count()
    out = {
        "item_id": np.empty(m, dtype=np.int64),
        "label_id": np.full(m, -1, dtype=np.int64),
        "quality": np.full(m, np.nan),
        "is_issue": np.zeros(m, dtype=bool),
        "open": np.zeros(m, dtype=bool),
    }
    rows = queryset.iterator(chunk_size=50_000)
    filled = 0
    while block := list(itertools.islice(rows, 50_000)):
        block = block[: m - filled]  # rows added since the count are left out
        end = filled + len(block)
        out["item_id"][filled:end] = [r[0] for r in block]
        out["label_id"][filled:end] = [
            r[1] if r[1] is not None else (r[2] if r[2] is not None else -1) for r in block
        ]
        out["quality"][filled:end] = [np.nan if r[3] is None else r[3] for r in block]
        out["is_issue"][filled:end] = [bool(r[4]) for r in block]
        out["open"][filled:end] = [r[5] == LabelIssue.Resolution.OPEN for r in block]
        filled = end
    return {key: value[:filled] for key, value in out.items()}


def _ambiguous(*, project: Project, item_ids: np.ndarray) -> np.ndarray:
    """Items a reviewer marked ambiguous in any label-issue run of the project."""
    from analysis.models import LabelIssue

    ids = np.fromiter(
        LabelIssue.objects.filter(run__project=project, resolution=LabelIssue.Resolution.AMBIGUOUS)
        .values_list("item_id", flat=True)
        .distinct()
        .iterator(),
        dtype=np.int64,
    )
    mask = np.zeros(len(item_ids), dtype=bool)
    if len(ids):
        p, found = _positions(item_ids, ids)
        mask[p[found]] = True
    return mask


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
    """
    columns = []
    for field_name in ("data", "metadata"):
        keys = item_json_keys(project=project, field=field_name, types=types)
        for key, kinds in sorted(keys.items()):
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
            elif key in ITEM_COLUMNS:
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
    if column.kind == "bool":
        return Cast(text, BooleanField())
    return text


# ---------------------------------------------------------------------------------------------
# The export itself


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


def _csv_rows(page):
    return [[_csv_value(v) for v in row] for row in page]


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if value != value else repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class DatasetExport:
    """A planned export: decisions computed, columns known; `stream()` yields the bytes."""

    def __init__(
        self, *, project: Project, params: ExportParams, version: DatasetVersion | None = None
    ):
        self.project = project
        self.params = params
        self.version = version
        self.decisions = label_decisions(project=project, params=params)
        self.columns = (
            []
            if self.by_annotation
            else json_columns(project=project, types=params.format != "csv")
        )
        self.row_count = 0
        self.sha256 = ""

    @property
    def by_annotation(self) -> bool:
        return "annotations" in self.params.include

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.params.format]

    def filename(self) -> str:
        suffix = f"-v{self.version.pk}" if self.version else ""
        ext = EXTENSIONS[self.params.format]
        return f"concord-project-{self.project.pk}-dataset{suffix}.{ext}"

    @property
    def header(self) -> list[str]:
        if self.by_annotation:
            return list(ANNOTATION_COLUMNS)
        return list(ITEM_COLUMNS) + [c.name for c in self.columns]

    # -- rows ---------------------------------------------------------------------------------

    def _kept_ids(self) -> np.ndarray:
        return self.decisions.item_ids[self.decisions.keep]

    def item_pages(self, *, typed: bool, whole_json: bool = False) -> Iterator[list[tuple]]:
        """Pages of item rows: the fixed columns then the data/metadata columns.

        typed: JSON values as Python ints/floats/bools (else CSV text);
        whole_json: rows end with the item's full `data` and `metadata` dicts instead.
        """
        d = self.decisions
        label_names = np.array([*d.class_names, None], dtype=object)  # index -1 -> None
        source_names = np.array([SOURCE_NAMES[k] for k in sorted(SOURCE_NAMES)], dtype=object)
        kept = np.flatnonzero(d.keep)
        if whole_json:
            fields = ["data", "metadata"]
        elif typed:
            fields = [_typed_expression(c) for c in self.columns]
        else:
            fields = [KeyTextTransform(c.key, c.field) for c in self.columns]
        connection = connections[Item.objects.db]
        bool_text = np.array(["false", "true"], dtype=object)
        bool_at = set()
        if typed and not whole_json:
            bool_at = {2 + i for i, c in enumerate(self.columns) if c.kind == "bool"}
        for start in range(0, len(kept), PAGE_SIZE):
            positions = kept[start : start + PAGE_SIZE]
            ids = d.item_ids[positions]
            found = Item.objects.filter(
                project=self.project, id__gte=int(ids[0]), id__lte=int(ids[-1])
            ).order_by("id")
            rows = found.values_list("id", "external_id", *fields)
            if whole_json:
                fetched = list(rows)  # Django decodes the JSON columns
            else:
                # Text and cast columns need no conversion: skip Django's row machinery.
                sql, sql_params = rows.query.sql_with_params()
                with connection.cursor() as cursor:
                    cursor.execute(sql, sql_params)
                    fetched = cursor.fetchall()
                if bool_at and connection.vendor != "postgresql":
                    # SQLite has no boolean type: its cast gives 0/1.
                    fetched = [
                        tuple(
                            bool(v) if i in bool_at and v is not None else v
                            for i, v in enumerate(r)
                        )
                        for r in fetched
                    ]
            by_id = {row[0]: row for row in fetched}
            agreement = d.agreement[positions]
            quality = d.quality[positions]
            columns = zip(
                ids.tolist(),
                label_names[d.label[positions]].tolist(),
                source_names[d.source[positions]].tolist(),
                np.where(np.isnan(agreement), None, agreement).tolist(),
                d.n_annotations[positions].tolist(),
                np.where(np.isnan(quality), None, quality).tolist(),
                d.issue[positions].tolist()
                if typed
                else bool_text[d.issue[positions].astype(np.intp)].tolist(),
                strict=True,
            )
            page = []
            for item_id, label, source, agreement_value, count, quality_value, issue in columns:
                row = by_id.get(item_id)
                if row is None:  # deleted since the decisions were made
                    continue
                page.append(
                    (row[1], label, source, agreement_value, count, quality_value, issue, *row[2:])
                )
            yield page

    def annotation_pages(self) -> Iterator[list[tuple]]:
        """Pages of `external_id, annotator, label, guideline_version, created_at` rows."""
        kept_ids = self._kept_ids()
        queryset = Annotation.objects.filter(project=self.project, label__isnull=False)
        if self.params.guideline_version is not None:
            queryset = queryset.filter(guideline__version=self.params.guideline_version)
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
                )[:PAGE_SIZE]
            )
            if not rows:
                return
            last = rows[-1][0]
            item_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
            _, keep = _positions(kept_ids, item_ids)
            yield [r[2:] for r, k in zip(rows, keep.tolist(), strict=True) if k]

    def preview(self, n: int = 20) -> list[dict]:
        """The first n rows as dicts (column -> value), for the export page."""
        pages = self.annotation_pages() if self.by_annotation else self.item_pages(typed=True)
        header = self.header
        out = []
        for page in pages:
            for row in page:
                out.append(dict(zip(header, row, strict=True)))
                if len(out) >= n:
                    return out
        return out

    # -- formats ------------------------------------------------------------------------------

    def _pages(self, *, typed: bool) -> Iterator[list[tuple]]:
        if self.by_annotation:
            for page in self.annotation_pages():
                if not typed:
                    page = [(*r[:4], r[4].isoformat()) for r in page]
                yield page
        else:
            yield from self.item_pages(typed=typed)

    def _csv(self) -> Iterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        for page in self._pages(typed=False):
            # Item rows arrive CSV-ready (text, None for empty, "true"/"false"); the per-value
            # conversion is only needed for annotation rows.
            writer.writerows(page if not self.by_annotation else _csv_rows(page))
            self.row_count += len(page)
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode("utf-8")

    def _jsonl(self) -> Iterator[bytes]:
        header = self.header
        json_kinds = {c.name for c in self.columns if c.kind == "json"}
        for page in self._pages(typed=True):
            lines = []
            for row in page:
                record = dict(zip(header, row, strict=True))
                if self.by_annotation:
                    record["created_at"] = record["created_at"].isoformat()
                for name in json_kinds:
                    record[name] = _json_or_text(record[name])
                lines.append(json.dumps(record, ensure_ascii=False))
            self.row_count += len(page)
            if lines:
                yield ("\n".join(lines) + "\n").encode("utf-8")

    def parquet_schema(self):
        import pyarrow as pa

        if self.by_annotation:
            return pa.schema(
                [
                    ("external_id", pa.string()),
                    ("annotator", pa.string()),
                    ("label", pa.string()),
                    ("guideline_version", pa.int64()),
                    ("created_at", pa.timestamp("us", tz="UTC")),
                ]
            )
        kinds = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
        return pa.schema(
            [
                ("external_id", pa.string()),
                ("label", pa.string()),
                ("label_source", pa.string()),
                ("agreement", pa.float64()),
                ("n_annotations", pa.int64()),
                ("quality", pa.float64()),
                ("issue", pa.bool_()),
                *[(c.name, kinds.get(c.kind, pa.string())) for c in self.columns],
            ]
        )

    def _parquet(self) -> Iterator[bytes]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self.parquet_schema()
        sink = _Sink()
        # No statistics of the export's own time or host are written; the "created_by" footer
        # names only the pyarrow version, so the bytes depend on the data alone.
        writer = pq.ParquetWriter(sink, schema, compression="zstd")
        for page in self._pages(typed=True):
            if not page:
                continue
            columns = list(zip(*page, strict=True))
            table = pa.Table.from_arrays(
                [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
                schema=schema,
            )
            writer.write_table(table, row_group_size=len(page))
            self.row_count += len(page)
            yield sink.take()
        writer.close()
        yield sink.take()

    def _labelstudio(self) -> Iterator[bytes]:
        """A JSON array of Label Studio tasks: data, meta, annotations[].result[].value.choices.

        Each annotation's `completed_by` is `{id, username, email}`: Label Studio resolves the
        annotator by email, Concord's importer by username. `concord` adds the guideline version
        and the unsure flag; the exported consensus label comes as a Label Studio prediction.
        """
        to_name = "image" if self.project.data_type == Project.DataType.IMAGE else "text"
        yield b"["
        first = True
        for page in self.item_pages(typed=True, whole_json=True):
            if not page:
                continue
            ids = [row[0] for row in page]
            by_external = _annotations_by_item(self.project, ids, self.params.guideline_version)
            chunks = []
            for row in page:
                external_id, label, source, agreement = row[0], row[1], row[2], row[3]
                data, metadata = row[7], row[8]
                task = {
                    "data": {**data, "external_id": external_id},
                    "meta": metadata,
                    "annotations": [
                        {
                            "completed_by": {"id": a[0], "username": a[1], "email": a[7]},
                            "result": [_choice(a[2], to_name)],
                            "created_at": a[4],
                            "lead_time": a[5],
                            "concord": {
                                "annotator": a[1],
                                "guideline_version": a[3],
                                "unsure": a[6],
                            },
                        }
                        for a in by_external.get(external_id, [])
                    ],
                }
                if label is not None:
                    task["predictions"] = [
                        {
                            "model_version": f"concord-{source}",
                            "score": agreement,
                            "result": [_choice(label, to_name)],
                        }
                    ]
                chunks.append(json.dumps(task, ensure_ascii=False))
            self.row_count += len(page)
            body = ",\n".join(chunks)
            yield (("\n" if first else ",\n") + body).encode("utf-8")
            first = False
        yield b"\n]\n"

    def stream(self) -> Iterator[bytes]:
        """The export's bytes; records row count and sha256 on the version when complete."""
        producer = {
            "csv": self._csv,
            "jsonl": self._jsonl,
            "parquet": self._parquet,
            "labelstudio": self._labelstudio,
        }[self.params.format]
        digest = hashlib.sha256()
        for chunk in producer():
            if chunk:
                digest.update(chunk)
                yield chunk
        self.sha256 = digest.hexdigest()
        if self.version is not None and not self.version.sha256:
            DatasetVersion.objects.filter(pk=self.version.pk).update(
                sha256=self.sha256, row_count=self.row_count
            )
            self.version.sha256, self.version.row_count = self.sha256, self.row_count


def _json_or_text(value):
    if value is None:
        return None
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _choice(label: str, to_name: str) -> dict:
    return {
        "from_name": "label",
        "to_name": to_name,
        "type": "choices",
        "value": {"choices": [label]},
    }


def _annotations_by_item(project: Project, external_ids: list[str], version: int | None):
    """The page's annotations, grouped by the item's external id, in annotation id order."""
    queryset = Annotation.objects.filter(
        project=project, item__external_id__in=external_ids, label__isnull=False
    )
    if version is not None:
        queryset = queryset.filter(guideline__version=version)
    grouped: dict[str, list] = {}
    for row in queryset.order_by("id").values_list(
        "item__external_id",
        "annotator_id",
        "annotator__username",
        "label__name",
        "guideline__version",
        "created_at",
        "lead_time_ms",
        "unsure",
        "annotator__email",
    ):
        created = row[5].isoformat()
        lead = None if row[6] is None else row[6] / 1000
        # Label Studio matches annotators by email; Concord's importer by username.
        email = row[8] or f"{row[2]}@concord.invalid"
        grouped.setdefault(row[0], []).append(
            (row[1], row[2], row[3], row[4], created, lead, row[7], email)
        )
    return grouped


def dataset_export(*, project: Project, params: ExportParams, user) -> DatasetExport:
    """Plan an export and record it as a new DatasetVersion (completed when the stream ends)."""
    plan = DatasetExport(project=project, params=params)
    guideline = params.guideline_version
    if guideline is None:
        current = project.current_guideline()
        guideline = current.version if current else None
    plan.version = DatasetVersion.objects.create(
        project=project,
        params=params.as_dict(),
        format=params.format,
        row_count=0,
        guideline_version=guideline,
        runs=plan.decisions.runs,
        label_snapshot=plan.decisions.snapshot(),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    return plan


def dataset_version_export(*, version: DatasetVersion) -> DatasetExport:
    """Export a recorded version again with its stored parameters (no new version recorded)."""
    stored = version.params
    params = ExportParams(
        format=stored["format"],
        labels=stored["labels"],
        exclude=tuple(stored.get("exclude") or ()),
        min_agreement=stored.get("min_agreement"),
        guideline_version=stored.get("guideline_version"),
        include=tuple(stored.get("include") or ()),
    )
    return DatasetExport(project=version.project, params=params, version=version)


def snapshot_load(blob: bytes | memoryview | None) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids (n,) int64, label names (n,) object, None where no label) of a snapshot."""
    if not blob:
        return np.zeros(0, np.int64), np.zeros(0, object)
    with np.load(io.BytesIO(zlib.decompress(bytes(blob)))) as arrays:
        names = np.append(arrays["class_names"].astype(object), None)
        ids = np.cumsum(arrays["item_id_gaps"])
        return ids, names[arrays["labels"]]  # label -1 picks the trailing None


def dataset_diff(*, a: DatasetVersion, b: DatasetVersion) -> dict:
    """Items whose exported label differs between two versions, plus items added or removed.

    Returns {"changed": (item_ids, labels_a, labels_b), "added": n, "removed": n}.
    """
    ids_a, labels_a = snapshot_load(a.label_snapshot)
    ids_b, labels_b = snapshot_load(b.label_snapshot)
    common, in_a, in_b = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    changed = labels_a[in_a] != labels_b[in_b]
    return {
        "changed": (common[changed], labels_a[in_a][changed], labels_b[in_b][changed]),
        "added": int(len(ids_b) - len(common)),
        "removed": int(len(ids_a) - len(common)),
    }
