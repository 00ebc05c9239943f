"""A planned export: the decisions computed and the columns known; `stream()` writes the file.

A recorded export's DatasetVersion (see `versions.py`) is created before the first byte and
completed here, with the row count and the sha256 of exactly the bytes sent, when the stream
ends: a download that was cut off leaves a version without a checksum instead of a wrong one.
Completing it is the `dataset_version.created` webhook event (its checksum is known then).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator

from analysis.exports.decisions import LabelDecisions, label_decisions
from analysis.exports.formats import FORMATS
from analysis.exports.params import ExportParams
from analysis.exports.rows import (
    ANNOTATION_COLUMNS,
    ITEM_COLUMNS,
    SPAN_ANNOTATION_COLUMNS,
    SPAN_ITEM_COLUMNS,
    annotation_pages,
    item_pages,
    json_columns,
    span_annotation_pages,
    span_item_pages,
)
from analysis.exports.span_decisions import SpanDecisions, span_decisions
from analysis.models import DatasetVersion
from labeling.models import Project
from labeling.services import webhooks


class DatasetExport:
    """An export of one project with one set of parameters (and its version, when recorded)."""

    def __init__(
        self,
        *,
        project: Project,
        params: ExportParams,
        version: DatasetVersion | None = None,
        typed_columns: bool | None = None,
    ):
        """typed_columns: look up the JSON value types of the data/metadata columns (None: as
        the format needs; the preview shows typed values whatever the format)."""
        self.project = project
        self.params = params
        self.version = version
        self.file_format = FORMATS[params.format]
        if typed_columns is None:
            typed_columns = self.file_format.typed_columns
        decide = span_decisions if project.is_spans else label_decisions
        self.decisions: LabelDecisions | SpanDecisions = decide(project=project, params=params)
        self.columns = (
            [] if self.by_annotation else json_columns(project=project, types=typed_columns)
        )
        self.row_count = 0
        self.sha256 = ""

    @property
    def by_annotation(self) -> bool:
        return "annotations" in self.params.include

    @property
    def content_type(self) -> str:
        return self.file_format.content_type

    def filename(self) -> str:
        suffix = f"-v{self.version.pk}" if self.version else ""
        ext = self.file_format.extension
        return f"concord-project-{self.project.pk}-dataset{suffix}.{ext}"

    @property
    def spans(self) -> bool:
        """Whether this is a span project's export (its rows carry `spans`, not `label`)."""
        return self.project.is_spans

    @property
    def header(self) -> list[str]:
        if self.by_annotation:
            return list(SPAN_ANNOTATION_COLUMNS if self.spans else ANNOTATION_COLUMNS)
        return list(SPAN_ITEM_COLUMNS if self.spans else ITEM_COLUMNS) + [
            c.name for c in self.columns
        ]

    def pages(self, *, typed: bool, whole_json: bool = False) -> Iterator[list]:
        """The export's rows page by page, counted into `row_count` as they are handed out.

        AnnotationPages with include=annotations, else ItemPages (ItemDocumentPages with
        whole_json, which always gives items). typed: see `rows.item_pages`. A span project
        gives SpanAnnotationPages or SpanItemPages.
        """
        if self.spans and self.by_annotation and not whole_json:
            pages = span_annotation_pages(
                project=self.project,
                kept_ids=self.decisions.kept_ids,
                guideline_version=self.params.guideline_version,
                typed=typed,
            )
        elif self.spans:
            pages = span_item_pages(
                project=self.project,
                decisions=self.decisions,
                columns=self.columns,
                typed=typed,
                whole_json=whole_json,
            )
        elif self.by_annotation and not whole_json:
            pages = annotation_pages(
                project=self.project,
                kept_ids=self.decisions.kept_ids,
                guideline_version=self.params.guideline_version,
            )
        else:
            pages = item_pages(
                project=self.project,
                decisions=self.decisions,
                columns=self.columns,
                typed=typed,
                whole_json=whole_json,
            )
        for page in pages:
            self.row_count += page.n_rows
            yield page

    def preview(self, n: int = 20) -> list[tuple]:
        """The first n rows in header order, for the export page (made with typed_columns)."""
        out: list[tuple] = []
        for page in self.pages(typed=True):
            out.extend(itertools.islice(page.rows(), n - len(out)))
            if len(out) >= n:
                break
        return out

    def stream(self) -> Iterator[bytes]:
        """The file's bytes; records row count and sha256 on the version when complete."""
        digest = hashlib.sha256()
        for chunk in self.file_format.write(self):
            if chunk:
                digest.update(chunk)
                yield chunk
        self.sha256 = digest.hexdigest()
        if self.version is not None and not self.version.sha256:
            DatasetVersion.objects.filter(pk=self.version.pk).update(
                sha256=self.sha256, row_count=self.row_count
            )
            self.version.sha256, self.version.row_count = self.sha256, self.row_count
            version = self.version
            webhooks.emit(
                project_id=self.project.pk,
                event="dataset_version.created",
                data=lambda: {
                    "id": version.pk,
                    "format": version.format,
                    "rows": version.row_count,
                    "sha256": version.sha256,
                    "guideline_version": version.guideline_version,
                    "params": version.params,
                    "download": version.download_path,
                },
            )
