"""The Disagreements page: items of the newest agreement run ranked by how much their
annotators disagree; a reviewer resolves one, sends it back or makes it a worked example."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from analysis.models import AnalysisRun, ItemDisagreement
from labeling.models import Annotation, Item, Review
from labeling.permissions import REVIEWER, project_for
from labeling.services.guidelines import worked_example_add
from labeling.services.relabeling import relabel_request
from labeling.services.reviewing import review_set

DISAGREEMENTS_PER_PAGE = 25


def _error_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(f"{m}" for msgs in exc.message_dict.values() for m in msgs)
    return " ".join(exc.messages)


def _disagreement_action(request, project):
    item = get_object_or_404(Item, pk=request.POST.get("item"), project=project)
    action = request.POST.get("action")
    labels = [v for v in request.POST.getlist("label") if v != ""]
    label = labels if project.is_multi_label else (labels[0] if labels else None)
    if action == "resolve":
        review_set(item=item, reviewer=request.user, label=label, note=request.POST.get("note", ""))
        return f"Item {item.external_id} resolved."
    if action == "relabel":
        relabel_request(project=project, item_ids=[item.pk])
        return f"Item {item.external_id} sent back to be labeled again."
    if action == "example":
        worked_example_add(
            project=project,
            item=item,
            label=labels[0] if labels else "",
            why=request.POST.get("why", ""),
            user=request.user,
        )
        return f"Item {item.external_id} added as a worked example to the guideline draft."
    raise ValidationError({"action": "Choose resolve, relabel or example."})


def _disagreement_rows(rows: list[ItemDisagreement], labels) -> list[tuple]:
    """(row, [(annotator, label, version)], review) per row, in two queries for any number."""
    item_ids = [row.item_id for row in rows]
    given: dict[int, list] = {}
    annotations = (
        Annotation.objects.filter(item_id__in=item_ids)
        .order_by("item_id", "annotator__username", "guideline__version")
        .values_list("item_id", "annotator__username", "label__name", "labels",
                     "guideline__version")
    )  # fmt: skip
    names = {label.pk: label.name for label in labels}
    for item_id, username, label, chosen, version in annotations:
        shown = label if label is not None else ", ".join(names.get(c, "?") for c in chosen)
        given.setdefault(item_id, []).append((username, shown or "(none)", version))
    reviews = {
        r.item_id: r for r in Review.objects.filter(item_id__in=item_ids).select_related("label")
    }
    return [(row, given.get(row.item_id, []), reviews.get(row.item_id)) for row in rows]


@login_required
@require_http_methods(["GET", "POST"])
def disagreements(request, pk):
    """Items ranked by disagreement; resolving one swaps its row in place (htmx) so the
    reviewer keeps their place; without JavaScript the form redirects back to the row."""
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    labels = list(project.labels.all())
    if request.method == "POST":
        message, ok = None, True
        try:
            message = _disagreement_action(request, project)
        except ValidationError as exc:
            message, ok = _error_text(exc), False
        run = AnalysisRun.objects.latest_succeeded(project, AnalysisRun.Kind.AGREEMENT)
        row = (
            ItemDisagreement.objects.filter(run=run, item_id=request.POST.get("item"))
            .select_related("item")
            .first()
            if run is not None and str(request.POST.get("item", "")).isdigit()
            else None
        )
        if request.htmx and row is not None:
            return render(
                request,
                "analysis/_disagreement_row.html",
                {
                    "project": project,
                    "labels": labels,
                    "entry": _disagreement_rows([row], labels)[0],
                    "return_query": request.POST.get("return_query", ""),
                    "row_message": message,
                    "row_ok": ok,
                },
            )
        (messages.success if ok else messages.error)(request, message)
        query = request.POST.get("return_query", "")
        url = reverse("analysis:disagreements", args=[project.pk])
        anchor = f"#item-{row.item_id}" if row is not None else ""
        return redirect(f"{url}?{query}{anchor}" if query else f"{url}{anchor}")
    run = AnalysisRun.objects.latest_succeeded(project, AnalysisRun.Kind.AGREEMENT)
    context = {"access": access, "project": project, "run": run, "labels": labels}
    if run is not None:
        rows = (
            ItemDisagreement.objects.filter(run=run, score__gt=0)
            .select_related("item")
            .order_by("-score", "item_id")
        )
        page = Paginator(rows, DISAGREEMENTS_PER_PAGE).get_page(request.GET.get("page"))
        context.update(
            page=page,
            rows=_disagreement_rows(list(page.object_list), labels),
            n_disagreements=page.paginator.count,
            return_query=request.GET.urlencode(),
        )
    return render(request, "analysis/disagreements.html", context)
