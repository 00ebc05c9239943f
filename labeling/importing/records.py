"""What a parser is, what it is given (ParseContext) and what it yields (records).

A parser reads one file from its start and yields, in file order, one record per row:
ItemRow, AnnotationRow or RowError, or an ItemChunk for many item rows at once. It is run
once per pass (check, write items, write annotations), so it must give the same records each
time it reads the same bytes.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from labeling.importing.readers import ByteCounter
from labeling.models import Project


class ItemRow(NamedTuple):
    row: int
    external_id: str
    # JSON text of the item's data and metadata; None while checking (only writes pay for it).
    data_json: str | None
    metadata_json: str | None


class ItemChunk(NamedTuple):
    """Consecutive item rows that all pass, checked and encoded column-wise (CSV only)."""

    first_row: int
    external_ids: list[str]
    # "external_id\tdata\tmetadata\n" lines in COPY text format; None while checking.
    copy_text: str | None


class AnnotationRow(NamedTuple):
    row: int
    external_id: str
    annotator: str
    labels: list[str]  # classification: label names ([] in span projects)
    # Span projects: the spans as the file gives them ({start, end, label} or [start, end,
    # label], labels by name), checked later against the item's text (`span_check`)...
    spans: list | None = None
    # ...and the item's text when the file gives it (None: the text the item already has).
    text: str | None = None


class RowError(NamedTuple):
    row: int | None  # None: a problem of the whole file
    reason: str


Record = ItemRow | ItemChunk | AnnotationRow | RowError


@dataclass(frozen=True)
class ParseContext:
    project: Project
    options: object  # an ImportOptions
    label_names: frozenset[str]
    # Encode items as JSON (writing) or only check them (the check pass).
    encode: bool = False
    # Items may come as ItemChunks (PostgreSQL writes, when no row can be an existing item).
    copy_chunks: bool = False

    @classmethod
    def of(cls, project: Project, options, **flags) -> "ParseContext":
        names = frozenset(project.labels.values_list("name", flat=True))
        return cls(project, options, names, **flags)

    @property
    def multi(self) -> bool:
        return self.project.is_multi_label

    @property
    def spans(self) -> bool:
        return self.project.is_spans


class Parser(NamedTuple):
    """One file format: its name on the page and the function that reads it."""

    label: str
    parse: Callable[[ByteCounter, ParseContext], Iterator[Record]]
    # The file holds items together with their annotations (Label Studio tasks): with
    # kind=items its annotations are written too and may label the file's own items, and a
    # file of no tasks (the export of an empty project) is accepted.
    bundles_annotations: bool = False
