"""The Issues page: start a label-issue run; the review queue of likely label errors.

The keyboard actions post to the REST resolve endpoint from analysis/static/concord/issues.js;
`e` (a worked example with the label the reviewer chose) posts to `issue_example` here.

On a span project a row shows the item's text with the spans the run judged and its flagged
tokens marked (given type -> suggested type), and the spans accepting it stores
(templates/analysis/_span_issues.html).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from analysis import kinds
from analysis.metrics.intervals import wilson_interval
from analysis.metrics.label_issues import MIN_MODEL_ITEMS
from analysis.models import AnalysisRun, AnnotatorScore, LabelIssue, PredictionSet
from analysis.selectors import label_issue_rows, metadata_keys
from analysis.services.label_issues import (
    BUILTIN,
    NO_MODEL,
    issue_example_type,
    issue_resolve,
    issue_spans_accepted,
)
from analysis.views.run_status import posted_params, runs_shown, start_from_page
from labeling.models import Annotation
from labeling.permissions import REVIEWER, project_for
from labeling.spans import item_text, span_colours

ISSUES_PER_PAGE = 50
# Methods whose ranking is learned from this project's own labels (an uploaded model's
# training set is unknown to Concord, so it gets no sample-size verdict).
LEARNED_HERE = ("dawid_skene",)
KIND = AnalysisRun.Kind.LABEL_ISSUES


def _posted_params(request) -> dict:
    """The run form's inputs: the built-in model is the default, and folds matter only to it."""
    params = posted_params(request, KIND)
    if params.get("model") == BUILTIN:
        del params["model"]
    if "model" in params:
        params.pop("folds", None)
    return params


def _filters(request) -> dict:
    """The page's filters; by default open issues only."""
    query = request.GET
    filters = {
        "label": query.get("label", ""),
        "suggested": query.get("suggested", ""),
        "entity_type": query.get("entity_type", ""),
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
        return start_from_page(request, access, KIND, _posted_params(request))
    run, status_run = runs_shown(project, KIND)
    labels = list(project.labels.all())
    context = {
        "access": access,
        "project": project,
        "run": run,
        "status_run": status_run,
        "labels": labels,
        "covers": project.task_type in kinds.BY_NAME[KIND].task_types,
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
        if project.is_spans:
            page.object_list = [(row, _span_view(row, labels)) for row in page.object_list]
        else:
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


def _span_view(row: LabelIssue, labels) -> dict:
    """What a span issue's row shows. parts: the item's text cut at the given spans, each
    `{"label", "colour", "pieces"}` (label None outside a span), a piece `{"text", "flag"}`
    with flag `{"given", "suggested"}` on a flagged token (a type name, or None for O);
    flags: the flagged tokens in text order `{"text", "given", "suggested"}`;
    accepted: the spans accepting stores (None when nothing can be accepted); example_label:
    the entity type a worked example teaches by default. Texts are escaped by the template."""
    text = item_text(row.item.data)
    colours = span_colours(labels)
    names = {pk: name for pk, (_, name) in colours.items()}
    flags = sorted(
        (start, end, given, suggested)
        for start, end, given, suggested in row.flagged_tokens
        if 0 <= start < end <= len(text)
    )

    def name(label_id):
        return None if label_id is None else names.get(label_id, "?")

    def pieces(a: int, b: int) -> list[dict]:
        out, at = [], a
        for start, end, given, suggested in flags:
            if a <= start and end <= b and start >= at:
                if at < start:
                    out.append({"text": text[at:start], "flag": None})
                out.append(
                    {
                        "text": text[start:end],
                        "flag": {"given": name(given), "suggested": name(suggested)},
                    }
                )
                at = end
        if at < b:
            out.append({"text": text[at:b], "flag": None})
        return out

    parts, at = [], 0
    for start, end, label_id in sorted(tuple(span) for span in row.given_spans):
        if not at <= start < end <= len(text):
            continue  # out of range or overlapping: never stored, never shown
        if at < start:
            parts.append({"label": None, "colour": None, "pieces": pieces(at, start)})
        colour, label_name = colours.get(label_id, ("unknown", "?"))
        parts.append({"label": label_name, "colour": colour, "pieces": pieces(start, end)})
        at = end
    if at < len(text):
        parts.append({"label": None, "colour": None, "pieces": pieces(at, len(text))})
    try:
        accepted = issue_spans_accepted(row) if row.flagged_tokens else None
    except ValidationError:
        accepted = None
    return {
        "text": text,
        "parts": parts,
        "flags": [
            {"text": text[start:end], "given": name(given), "suggested": name(suggested)}
            for start, end, given, suggested in flags
        ],
        "accepted": accepted,
        "example_label": name(issue_example_type(row)),
    }


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
    project = project_for(request.user, pk, min_role=REVIEWER).project
    issue = get_object_or_404(LabelIssue, pk=issue_id, run__project=project)
    wants_json = "application/json" in request.headers.get("Accept", "")
    try:
        issue = issue_resolve(
            issue=issue,
            action="ambiguous",
            user=request.user,
            add_example=True,
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
