"""The label-issues review queue page (reviewers and managers).

Kept apart from analysis/views.py (the agreement pages) so parallel work does not collide;
the keyboard actions post to the REST resolve endpoint from labeling/static/concord/issues.js.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from analysis.metrics.intervals import wilson_interval
from analysis.metrics.label_issues import MIN_MODEL_ITEMS
from analysis.models import AnalysisRun, AnnotatorScore, LabelIssue, PredictionSet
from analysis.selectors import label_issue_rows, metadata_keys
from analysis.services.issue_examples import issue_example_add
from analysis.services.label_issues import BUILTIN, NO_MODEL, label_issue_params
from analysis.services.runs import run_create
from config.celery import JobQueueUnavailable
from labeling.models import Annotation
from labeling.permissions import REVIEWER, project_for

ISSUES_PER_PAGE = 50
# Methods whose ranking is learned from this project's own labels (an uploaded model's
# training set is unknown to Concord, so it gets no sample-size verdict).
LEARNED_HERE = ("dawid_skene",)


def _start(request, project):
    params = {"model": request.POST.get("model") or None, "folds": request.POST.get("folds")}
    params = {k: v for k, v in params.items() if v not in (None, "")}
    if params.get("model") == BUILTIN:
        params.pop("model")
    try:
        parsed = label_issue_params(params)
    except ValidationError as exc:
        text = " ".join(m for msgs in exc.message_dict.values() for m in msgs)
        if request.htmx:
            return HttpResponse(f'<p class="message error">{text}</p>', status=400)
        messages.error(request, text)
        return redirect("analysis:issues", project.pk)
    # Folds matter only to the built-in model; store clean, typed parameters.
    params = {"model": parsed.model} if parsed.model else {"folds": parsed.folds}
    try:
        run = run_create(
            project=project, kind=AnalysisRun.Kind.LABEL_ISSUES, params=params, user=request.user
        )
    except JobQueueUnavailable as exc:
        if request.htmx:
            return HttpResponse(f'<p class="message error">{exc}</p>', status=503)
        messages.error(request, str(exc))
        return redirect("analysis:issues", project.pk)
    if request.htmx:
        return render(request, "analysis/_run_status.html", {"run": run})
    return redirect("analysis:issues", project.pk)


def _filters(request) -> dict:
    """The page's filters; by default open issues only."""
    query = request.GET
    filters = {
        "label": query.get("label", ""),
        "suggested": query.get("suggested", ""),
        "max_quality": query.get("max_quality", ""),
        "is_issue": "true" if query.get("all") != "1" else "",
        "resolution": query.get("resolution", "open" if "resolution" not in query else ""),
    }
    meta_key, meta_value = query.get("meta_key", ""), query.get("meta_value", "")
    if meta_key and meta_value:
        filters[f"meta_{meta_key}"] = meta_value
    return filters


@login_required
@require_http_methods(["GET", "POST"])
def issues(request, pk):
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    if request.method == "POST":
        return _start(request, project)
    runs = AnalysisRun.objects.filter(project=project, kind=AnalysisRun.Kind.LABEL_ISSUES)
    run = AnalysisRun.objects.latest_succeeded(project, AnalysisRun.Kind.LABEL_ISSUES)
    newest = runs.order_by("-created_at", "-id").first()
    context = {
        "access": access,
        "project": project,
        "run": run,
        "status_run": newest if newest is not None and newest != run else None,
        "labels": list(project.labels.all()),
        "models": list(
            PredictionSet.objects.filter(project=project)
            .exclude(model=BUILTIN)
            .order_by("model")
            .values_list("model", flat=True)
        ),
        "no_model": NO_MODEL,
        "meta_keys": metadata_keys(project=project),
        "query": request.GET,
    }
    if run is not None:
        filters = _filters(request)
        try:
            rows = label_issue_rows(run=run, filters=filters)
        except ValueError:
            messages.error(request, "The score limit must be a number.")
            rows = label_issue_rows(run=run, filters={**filters, "max_quality": ""})
        page = Paginator(rows, ISSUES_PER_PAGE).get_page(request.GET.get("page"))
        scores = (
            AnnotatorScore.objects.filter(run=run)
            .select_related("annotator")
            .order_by("quality", "annotator__username")
        )
        votes: dict[int, list] = {}
        annotations = (
            Annotation.objects.filter(item_id__in=[row.item_id for row in page.object_list])
            .order_by("item_id", "annotator__username", "-guideline__version")
            .values_list("item_id", "annotator__username", "label__name")
        )
        for item_id, username, label in annotations:
            votes.setdefault(item_id, []).append((username, label))
        page.object_list = [(row, votes.get(row.item_id, [])) for row in page.object_list]
        params = request.GET.copy()
        params.pop("page", None)
        result = run.result or {}
        context.update(
            result=result,
            evidence=_evidence(result),
            page=page,
            annotator_scores=scores[:200],
            n_shown=page.paginator.count,
            page_query=params.urlencode(),
        )
    return render(request, "analysis/issues.html", context)


def _evidence(result: dict) -> dict:
    """How much the run's flags can be trusted: the items behind them and, with a model, its
    out-of-sample accuracy with a 95% Wilson interval."""
    n = result.get("n_items") or 0
    learned_here = result.get("model") == BUILTIN or result.get("method") in LEARNED_HERE
    accuracy = result.get("model_accuracy")
    return {
        "n": n,
        "min_items": MIN_MODEL_ITEMS,
        "too_few": learned_here and n < MIN_MODEL_ITEMS,
        "accuracy_ci": wilson_interval(accuracy * n, n) if accuracy is not None else None,
    }


@login_required
@require_POST
def issue_example(request, pk, issue_id):
    """Add an issue's item to the guideline draft as a worked example with the label the
    reviewer chose (the `e` form of the queue). Answers JSON to the queue's script, else
    redirects back to the page with a message."""
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    issue = get_object_or_404(LabelIssue, pk=issue_id, run__project=project)
    wants_json = "application/json" in request.headers.get("Accept", "")
    try:
        issue = issue_example_add(
            issue=issue,
            user=request.user,
            label=request.POST.get("label", ""),
            why=request.POST.get("why", ""),
            relabel=bool(request.POST.get("relabel")),
        )
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        if wants_json:
            return JsonResponse(errors, status=400)
        messages.error(request, " ".join(m for msgs in errors.values() for m in msgs))
        return redirect("analysis:issues", project.pk)
    if wants_json:
        return JsonResponse({"id": issue.pk, "resolution": issue.resolution})
    messages.success(request, f"{issue.item.external_id} added as a worked example.")
    return redirect("analysis:issues", project.pk)
