"""The Slices page: start a slices run; model accuracy, HLP, gap and potential gain per
metadata slice, with links to the slice's items and issues."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from analysis import figures
from analysis.models import AnalysisRun
from analysis.views.run_status import model_names, posted_params, runs_shown, start_from_page
from labeling.permissions import REVIEWER, project_for

KIND = AnalysisRun.Kind.SLICES


def _slice_links(project, row: dict) -> dict:
    if not row.get("filterable"):
        return {}
    query = urlencode({f"meta_{row['field']}": row["value"]})
    links = {"items": f"{reverse('labeling:items', args=[project.pk])}?{query}"}
    links["issues"] = f"{reverse('analysis:issues', args=[project.pk])}?{query}"
    return links


@login_required
@require_http_methods(["GET", "POST"])
def slices(request, pk):
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    if request.method == "POST":
        return start_from_page(request, access, KIND, posted_params(request, KIND))
    latest, status_run = runs_shown(project, KIND)
    context = {
        "access": access,
        "project": project,
        "run": latest,
        "status_run": status_run,
        "models": model_names(project),
        "versions": project.guidelines.published().values_list("version", flat=True),
    }
    if latest is not None:
        result = latest.result or {}
        rows = result.get("rows", [])
        for index, row in enumerate(rows):
            row["index"] = index
            row["links"] = _slice_links(project, row)
        fields = [f["field"] for f in result.get("fields", [])]
        field = request.GET.get("field")
        if field not in fields:
            field = rows[0]["field"] if rows else (fields[0] if fields else None)
        field_rows = sorted(
            (r for r in rows if r["field"] == field), key=lambda r: r.get("order", 0)
        )
        measure = {"model_key": "model_f1", "measure": "span F1"} if project.is_spans else {}
        context.update(
            result=result,
            rows=rows,
            fields=fields,
            field=field,
            field_rows=field_rows,
            slice_figure=figures.slice_bars(field_rows, field, **measure) if field_rows else None,
        )
        if project.is_spans:
            return render(request, "analysis/span_slices.html", context)
        try:
            chosen = rows[int(request.GET.get("slice", ""))]
        except (ValueError, IndexError):
            # Default: the field's slice with the largest potential gain (rows come sorted).
            chosen = next((r for r in rows if r["field"] == field), None)
        classes = result.get("classes", [])
        kind = chosen["confusion_kind"] if chosen else None
        context.update(
            chosen=chosen,
            classes=classes,
            confusion_rows=list(zip(classes, chosen["confusion"], strict=False)) if chosen else [],
            confusion_figure=(
                figures.confusion_heatmap(
                    classes,
                    chosen["confusion"],
                    title=f"{chosen['field']} = {chosen['value']}",
                    rows="final label" if kind == "model" else "others' consensus",
                    columns="model prediction" if kind == "model" else "annotator's label",
                )
                if chosen
                else None
            ),
        )
    template = "analysis/span_slices.html" if project.is_spans else "analysis/slices.html"
    return render(request, template, context)  # a span project without a run: its template
