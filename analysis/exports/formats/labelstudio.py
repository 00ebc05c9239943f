"""Label Studio JSON: an array of tasks (data, meta, annotations[].result[].value.choices).

Each annotation's `completed_by` is `{id, username, email}`: Label Studio resolves the
annotator by email, Concord's importer by username. `concord` adds the guideline version and
the unsure flag; the exported consensus label comes as a Label Studio prediction. The file
re-imports into Concord (and Label Studio) without loss.

A span project's results are `labels` results, as Label Studio's NER template
(`<Labels name="label" toName="text">`, `<Text name="text" value="$text">`) makes them:
`{id, from_name: "label", to_name: "text", type: "labels", value: {start, end, text, labels:
[type]}}`, offsets in code points (Python string indices, as Label Studio 1.23 counts them)
with `value.text` the covered text, so an importer can check them (DESIGN.md, "Span projects").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from django.db.models import TextField
from django.db.models.functions import Cast

from analysis.exports.formats.file_format import FileFormat
from analysis.loaders import label_classes, stored_span_arrays
from labeling.models import Annotation, Project

if TYPE_CHECKING:  # the plan imports the registry (see file_format.py)
    from analysis.exports.plan import DatasetExport


class TaskAnnotation(NamedTuple):
    annotator_id: int
    username: str
    label: str
    guideline_version: int
    created_at: str  # ISO 8601
    lead_time: float | None  # seconds
    unsure: bool
    email: str


def _choice(label: str, to_name: str) -> dict:
    return {
        "from_name": "label",
        "to_name": to_name,
        "type": "choices",
        "value": {"choices": [label]},
    }


def annotations_by_item(
    project: Project, external_ids: list[str], version: int | None
) -> dict[str, list[TaskAnnotation]]:
    """The page's annotations, grouped by the item's external id, in annotation id order."""
    queryset = Annotation.objects.filter(
        project=project, item__external_id__in=external_ids, label__isnull=False
    )
    if version is not None:
        queryset = queryset.filter(guideline__version=version)
    grouped: dict[str, list[TaskAnnotation]] = {}
    rows = queryset.order_by("id").values_list(
        "item__external_id",
        "annotator_id",
        "annotator__username",
        "label__name",
        "guideline__version",
        "created_at",
        "lead_time_ms",
        "unsure",
        "annotator__email",
    )
    for (
        external_id,
        annotator_id,
        username,
        label,
        guideline,
        created,
        lead_ms,
        unsure,
        email,
    ) in rows:
        grouped.setdefault(external_id, []).append(
            TaskAnnotation(
                annotator_id=annotator_id,
                username=username,
                label=label,
                guideline_version=guideline,
                created_at=created.isoformat(),
                lead_time=None if lead_ms is None else lead_ms / 1000,
                unsure=unsure,
                # Label Studio matches annotators by email; Concord's importer by username.
                email=email or f"{username}@concord.invalid",
            )
        )
    return grouped


def write(export: DatasetExport) -> Iterator[bytes]:
    if export.spans:
        yield from _write_span_tasks(export)
        return
    to_name = "image" if export.project.data_type == Project.DataType.IMAGE else "text"
    yield b"["
    first = True
    for page in export.pages(typed=True, whole_json=True):
        if not page.n_rows:
            continue
        by_external = annotations_by_item(
            export.project, list(page.external_id), export.params.guideline_version
        )
        chunks = []
        for row in page.rows():
            task = {
                "data": {**row.data, "external_id": row.external_id},
                "meta": row.metadata,
                "annotations": [
                    {
                        "completed_by": {"id": a.annotator_id, "username": a.username,
                                         "email": a.email},
                        "result": [_choice(a.label, to_name)],
                        "created_at": a.created_at,
                        "lead_time": a.lead_time,
                        "concord": {
                            "annotator": a.username,
                            "guideline_version": a.guideline_version,
                            "unsure": a.unsure,
                        },
                    }
                    for a in by_external.get(row.external_id, [])
                ],
            }  # fmt: skip
            if row.label is not None:
                task["predictions"] = [
                    {
                        "model_version": f"concord-{row.label_source}",
                        "score": row.agreement,
                        "result": [_choice(row.label, to_name)],
                    }
                ]
            chunks.append(json.dumps(task, ensure_ascii=False))
        body = ",\n".join(chunks)
        yield (("\n" if first else ",\n") + body).encode("utf-8")
        first = False
    yield b"\n]\n"


FORMAT = FileFormat(
    name="labelstudio",
    content_type="application/json; charset=utf-8",
    extension="json",
    write=write,
)


# ---------------------------------------------------------------------------------------------
# Span projects


def _labels_results(text: str, spans) -> list[dict]:
    """`labels` results of `(start, end, type)` spans of the text."""
    return [
        {
            "id": f"s{n}",
            "from_name": "label",
            "to_name": "text",
            "type": "labels",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]},
        }
        for n, (start, end, label) in enumerate(spans)
    ]


def span_annotations_by_item(
    project: Project, external_ids: list[str], version: int | None
) -> dict[str, list[tuple[TaskAnnotation, list[tuple[int, int, str]]]]]:
    """The page's annotations with their spans `(start, end, type)`, grouped by the item's
    external id, in annotation id order."""
    queryset = Annotation.objects.filter(project=project, item__external_id__in=external_ids)
    if version is not None:
        queryset = queryset.filter(guideline__version=version)
    rows = list(
        queryset.order_by("id")
        .annotate(spans_text=Cast("spans", TextField()))
        .values_list(
            "item__external_id",
            "annotator_id",
            "annotator__username",
            "guideline__version",
            "created_at",
            "lead_time_ms",
            "unsure",
            "annotator__email",
            "spans_text",
        )
    )
    class_ids, class_names = label_classes(project)
    names = dict(zip(class_ids, class_names, strict=True))
    counts, spans = stored_span_arrays([row[8] or "[]" for row in rows])
    offsets = np.concatenate([[0], np.cumsum(counts)]).tolist()
    spans = [(s, e, names.get(label, "")) for s, e, label in spans.tolist()]
    grouped: dict[str, list] = {}
    for n, row in enumerate(rows):
        external_id, annotator_id, username, guideline, created, lead_ms, unsure, email, _ = row
        annotation = TaskAnnotation(
            annotator_id=annotator_id,
            username=username,
            label="",
            guideline_version=guideline,
            created_at=created.isoformat(),
            lead_time=None if lead_ms is None else lead_ms / 1000,
            unsure=unsure,
            email=email or f"{username}@concord.invalid",
        )
        grouped.setdefault(external_id, []).append((annotation, spans[offsets[n] : offsets[n + 1]]))
    return grouped


def _write_span_tasks(export: DatasetExport) -> Iterator[bytes]:
    yield b"["
    first = True
    for page in export.pages(typed=True, whole_json=True):
        if not page.n_rows:
            continue
        by_external = span_annotations_by_item(
            export.project, list(page.external_id), export.params.guideline_version
        )
        exported = page.spans.as_tuples()
        chunks = []
        for n, external_id in enumerate(page.external_id):
            text = page.text[n]
            task = {
                "data": {**page.fields[0][n], "external_id": external_id},
                "meta": page.fields[1][n],
                "annotations": [
                    {
                        "completed_by": {"id": a.annotator_id, "username": a.username,
                                         "email": a.email},
                        "result": _labels_results(text, spans),
                        "created_at": a.created_at,
                        "lead_time": a.lead_time,
                        "concord": {
                            "annotator": a.username,
                            "guideline_version": a.guideline_version,
                            "unsure": a.unsure,
                        },
                    }
                    for a, spans in by_external.get(external_id, [])
                ],
            }  # fmt: skip
            if exported[n] is not None:
                task["predictions"] = [
                    {
                        "model_version": f"concord-{page.label_source[n]}",
                        "score": page.agreement[n],
                        "result": _labels_results(text, exported[n]),
                    }
                ]
            chunks.append(json.dumps(task, ensure_ascii=False))
        yield (("\n" if first else ",\n") + ",\n".join(chunks)).encode("utf-8")
        first = False
    yield b"\n]\n"
