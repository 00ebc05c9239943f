"""The export page (options, filter counts, a preview, dataset versions) and the diff page.

The export form is built from `params.PARAMETERS`. Its Download button submits that same form
to the REST export, so the file is always what the form shows; htmx refreshes the preview as
the form changes. Reviewers and managers only.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from analysis.exports.params import PARAMETERS, ExportParameter, export_params_parse, query_values
from analysis.exports.plan import DatasetExport
from analysis.exports.versions import changed_rows, dataset_diff
from labeling.item_display import IMAGE_KEYS, field_text, image_src
from labeling.models import Item, Project
from labeling.permissions import REVIEWER, project_for
from labeling.spans import item_text

PREVIEW_ROWS = 20
VERSIONS_SHOWN = 50
DIFF_PAGE_SIZE = 100


class FormField(NamedTuple):
    """One export parameter as the page's form shows it.

    widget: "select", "number" or "checkboxes"; options: (value, title, chosen) per choice;
    value: the chosen value of a single-valued parameter, as text.
    """

    parameter: ExportParameter
    widget: str
    options: list[tuple[str, str, bool]]
    value: str


def form_fields(project: Project, query) -> list[FormField]:
    """The form's fields in PARAMETERS order, showing what the query chose (or the default)."""
    chosen = query_values(query)
    fields = []
    for p in PARAMETERS:
        values = chosen[p.name]
        if not values and not p.many and p.default(project) is not None:
            values = [str(p.default(project))]
        allowed = p.choices_for(project)
        if p.many:
            widget = "checkboxes"
        elif allowed is not None:
            widget = "select"
        else:
            widget = "number"
        options = [
            (str(choice), p.choice_title(choice), str(choice) in values)
            for choice in p.offered(project)
        ]
        fields.append(FormField(p, widget, options, values[0] if values else ""))
    return fields


class PreviewCell(NamedTuple):
    """A preview value for display: text (floats to 3 decimals), or an image thumbnail.

    exact: the value in full where the text shortens it (a tooltip); link: the item page, for
    an external id.
    """

    text: str
    exact: str = ""
    image: str | None = None
    empty: bool = False
    link: str | None = None


def preview_cell(column: str, value) -> PreviewCell:
    if value is None:
        return PreviewCell("—", empty=True)
    if isinstance(value, bool):
        return PreviewCell("true" if value else "false")
    if isinstance(value, float):
        return PreviewCell(f"{value:.3f}", exact=repr(value))
    if isinstance(value, dt.datetime):
        return PreviewCell(value.isoformat(timespec="seconds"), exact=value.isoformat())
    if isinstance(value, str):
        src = image_src(value)
        if src and (src.startswith("data:image/") or column in IMAGE_KEYS):
            return PreviewCell("", image=src)
        return PreviewCell(field_text(value))
    return PreviewCell(str(value))


def spans_readable(text: str, spans: list[dict] | None) -> str | None:
    """The text with each span bracketed and typed, as plain text: `[Ada Lovelace]PER met ...`
    (None without a decision; the template escapes it like any text)."""
    if spans is None:
        return None
    parts, at = [], 0
    for span in spans:
        start, end = span["start"], span["end"]
        parts += [text[at:start], "[", text[start:end], "]", span["label"]]
        at = end
    parts.append(text[at:])
    return "".join(parts)


def with_readable_spans(header: list[str], rows: list[tuple], preview: list[list[PreviewCell]]):
    """A span export's preview with each `spans` cell showing the spans in the text."""
    if "spans" not in header:
        return preview
    text_at, spans_at = header.index("text") if "text" in header else None, header.index("spans")
    for row, cells in zip(rows, preview, strict=True):
        if text_at is None:  # annotation rows: the spans as offsets
            listed = ", ".join(f"{s['start']}–{s['end']} {s['label']}" for s in row[spans_at])
            cells[spans_at] = PreviewCell(listed or "no entities")
            continue
        readable = spans_readable(row[text_at] or "", row[spans_at])
        if readable is None:
            cells[spans_at] = PreviewCell("no decision", empty=True)
        else:
            cells[spans_at] = PreviewCell(readable, exact=readable if len(readable) > 120 else "")
    return preview


def with_item_links(project, header: list[str], preview: list[list[PreviewCell]]):
    """The preview with each external id linked to its item page (one query for the page)."""
    if "external_id" not in header:
        return preview
    column = header.index("external_id")
    wanted = {row[column].text for row in preview}
    item_ids = dict(project.items.filter(external_id__in=wanted).values_list("external_id", "pk"))
    for row in preview:
        item_id = item_ids.get(row[column].text)
        if item_id is not None:
            row[column] = row[column]._replace(
                link=reverse("analysis:item", args=[project.pk, item_id])
            )
    return preview


@login_required
@require_GET
def export_page(request, pk):
    """Export options as a form, a preview of the first rows, filter counts, dataset versions."""
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    errors, plan, preview = {}, None, []
    try:
        params = export_params_parse(request.GET, project=project)
        plan = DatasetExport(project=project, params=params, typed_columns=True)
        rows = plan.preview(PREVIEW_ROWS)
        preview = [
            [preview_cell(column, value) for column, value in zip(plan.header, row, strict=True)]
            for row in rows
        ]
        preview = with_readable_spans(plan.header, rows, preview)
        preview = with_item_links(project, plan.header, preview)
    except ValidationError as exc:
        errors = exc.message_dict
    fields = form_fields(project, request.GET)
    versions = list(
        project.datasets.select_related("created_by").defer("label_snapshot")[:VERSIONS_SHOWN]
    )
    # each version beside the one before it, for a "diff" link
    versions = list(zip(versions, [*versions[1:], None]))  # noqa: B905 (one longer when empty)
    return render(
        request,
        "analysis/export.html",
        {
            "access": access,
            "project": project,
            "fields": [f for f in fields if f.widget != "checkboxes"],
            "fieldsets": [f for f in fields if f.widget == "checkboxes"],
            "format": next(f.value for f in fields if f.parameter.name == "format"),
            "errors": errors,
            "plan": plan,
            "header": plan.header if plan else [],
            "preview": preview,
            "kept": int(plan.decisions.keep.sum()) if plan else 0,
            "total": len(plan.decisions.item_ids) if plan else 0,
            "versions": versions,
        },
    )


@login_required
@require_GET
def dataset_diff_page(request, pk, a, b):
    """Version a against version b: counts, and the items whose exported label changed."""
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    found = project.datasets.select_related("created_by").in_bulk([a, b])
    if a not in found or b not in found:
        raise Http404("Dataset version not found in this project.")
    first, second = found[a], found[b]
    diff = dataset_diff(a=first, b=second)
    page = Paginator(range(len(diff.item_ids)), DIFF_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = changed_rows(diff, list(page.object_list))
    items = Item.objects.in_bulk([row["item_id"] for row in rows])
    for row in rows:
        if diff.spans:  # the span sets as bracketed text (the item's text as it is now)
            item = items.get(row["item_id"])
            text = item_text(item.data) if item else ""
            row["label_a"] = spans_readable(text, row["spans_a"])
            row["label_b"] = spans_readable(text, row["spans_b"])
    return render(
        request,
        "analysis/dataset_diff.html",
        {
            "access": access,
            "project": project,
            "a": first,
            "b": second,
            "compared": [first, second],
            "diff": diff,
            "n_changed": len(diff.item_ids),
            "page": page,
            "rows": [(row, items.get(row["item_id"])) for row in rows],
            "spans": diff.spans,
        },
    )
