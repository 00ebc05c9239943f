"""Analysis pages: run status (shared by every analysis page), agreement, disagreements, the
item page, baselines, slices, drift.

Reviewers and managers only; annotators are blind to analysis.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods

from analysis import figures
from analysis.models import AnalysisRun, ItemDisagreement, PredictionSet
from analysis.selectors import item_history
from analysis.services.agreement import agreement_params
from analysis.services.baselines import baseline_params
from analysis.services.drift import drift_params
from analysis.services.runs import run_create
from analysis.services.slices import slice_params
from config.celery import JobQueueUnavailable
from labeling.models import Annotation, ImportBatch, Item, Review
from labeling.permissions import REVIEWER, project_for
from labeling.services.guidelines import worked_example_add
from labeling.services.relabeling import relabel_request
from labeling.services.reviewing import review_set

HEATMAP_ANNOTATORS = 25
DISAGREEMENTS_PER_PAGE = 25
ACTIVE = (AnalysisRun.Status.QUEUED, AnalysisRun.Status.RUNNING)


def _error_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(f"{m}" for msgs in exc.message_dict.values() for m in msgs)
    return " ".join(exc.messages)


@login_required
def run_status(request, pk):
    """The progress bar of one run; while it runs, htmx polls this every second.

    When a polled run succeeds the page reloads (HX-Refresh) to show the new results; pass
    ?refresh=0 to keep the page as it is.
    """
    run = get_object_or_404(AnalysisRun, pk=pk)
    project_for(request.user, run.project_id, min_role=REVIEWER)
    response = render(request, "analysis/_run_status.html", {"run": run})
    finished = run.status == AnalysisRun.Status.SUCCEEDED
    if finished and request.htmx and request.GET.get("refresh", "1") != "0":
        response["HX-Refresh"] = "true"
    return response


def _start_run(request, project, kind: str, params: dict, page: str):
    """Start a run from a page; htmx gets the progress partial, plain forms a redirect."""
    try:
        run = run_create(project=project, kind=kind, params=params, user=request.user)
    except JobQueueUnavailable as exc:
        if request.htmx:
            return HttpResponse(f'<p class="message error">{escape(exc)}</p>', status=503)
        messages.error(request, str(exc))
        return redirect(page, project.pk)
    if request.htmx:
        return render(request, "analysis/_run_status.html", {"run": run})
    return redirect(page, project.pk)


def _figure_versions(versions: list[dict]) -> dict:
    rows = [v for v in versions if v.get("alpha") is not None]
    x = [f"v{v['version']}" for v in rows]
    y = [v["alpha"] for v in rows]
    upper = [(v["alpha_ci"][1] - v["alpha"]) if v.get("alpha_ci") else 0 for v in rows]
    lower = [(v["alpha"] - v["alpha_ci"][0]) if v.get("alpha_ci") else 0 for v in rows]
    # The axis holds every interval whole, 0 (chance) and 1 (perfect agreement).
    ends = [*y, *(v["alpha_ci"][0] for v in rows if v.get("alpha_ci")),
            *(v["alpha_ci"][1] for v in rows if v.get("alpha_ci"))]  # fmt: skip
    y_range = [min([0.0, *ends]) - 0.05, max([1.0, *ends]) + 0.05]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers+lines",
                "x": x,
                "y": y,
                "name": "alpha",
                "error_y": {"type": "data", "array": upper, "arrayminus": lower, "visible": True},
            }
        ],
        "layout": {
            "title": {"text": "Krippendorff's alpha per guideline version (95% interval)"},
            "yaxis": {"title": {"text": "alpha"}, "range": y_range},
            "xaxis": {"title": {"text": "guideline version"}, "type": "category"},
            "shapes": [
                {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": level, "y1": level,
                 "line": {"dash": "dot", "color": color, "width": 1}}
                for level, color in ((0.8, "#2b8a3e"), (0.667, "#e67700"))
            ],
        },
    }  # fmt: skip


def _kappa_matrix(result: dict) -> tuple[list[str], list[list], list[dict]]:
    """The most active annotators and their pairwise kappas (None where not computed)."""
    ranked = sorted(result.get("per_annotator", []), key=lambda r: -r["n_annotations"])
    names = [r["annotator"] for r in ranked[:HEATMAP_ANNOTATORS]]
    index = {name: i for i, name in enumerate(names)}
    matrix = [[1.0 if i == j else None for j in range(len(names))] for i in range(len(names))]
    pairs = []
    for pair in result.get("per_pair", []):
        if pair["a"] in index and pair["b"] in index:
            i, j = index[pair["a"]], index[pair["b"]]
            matrix[i][j] = matrix[j][i] = pair["kappa"]
            pairs.append(pair)
    return names, matrix, pairs


def _figure_heatmap(names, matrix, title, x_title, y_title, zmin=None, zmax=None) -> dict:
    trace = {
        "type": "heatmap",
        "x": names,
        "y": names if isinstance(names, list) and len(matrix) == len(names) else None,
        "z": matrix,
        "colorscale": "RdBu",
        "reversescale": True,  # blue: agreement, red: disagreement
        "hoverongaps": False,
    }
    if zmin is not None:
        trace.update(zmin=zmin, zmax=zmax)
    return {
        "data": [trace],
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": x_title}, "type": "category"},
            "yaxis": {"title": {"text": y_title}, "type": "category", "autorange": "reversed"},
            "margin": {"t": 40, "r": 20, "b": 110, "l": 110},
        },
    }


def _most_compared(confusions: list[dict], per_annotator: list[dict]) -> str | None:
    """The annotator compared with the others on the most items (ties: by name)."""
    compared = {row["annotator"]: row.get("n") or 0 for row in per_annotator}
    ranked = sorted(
        confusions,
        key=lambda c: (
            -compared.get(c["annotator"], sum(map(sum, c["matrix"]))),
            c["annotator"],
        ),
    )
    return ranked[0]["annotator"] if ranked else None


@login_required
@require_http_methods(["GET", "POST"])
def agreement(request, pk):
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    if request.method == "POST":
        params = {}
        if request.POST.get("guideline_version"):
            params["guideline_version"] = request.POST["guideline_version"]
        try:
            params = {k: v for k, v in agreement_params(params).items() if k in params}
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
            return redirect("analysis:agreement", project.pk)
        return _start_run(
            request, project, AnalysisRun.Kind.AGREEMENT, params, "analysis:agreement"
        )
    runs = AnalysisRun.objects.filter(project=project, kind=AnalysisRun.Kind.AGREEMENT)
    latest = AnalysisRun.objects.latest_succeeded(project, AnalysisRun.Kind.AGREEMENT)
    newest = runs.order_by("-created_at", "-id").first()
    # Show the newest run's progress (or its failure) unless it is the report shown below.
    status_run = newest if newest is not None and newest != latest else None
    context = {"access": access, "project": project, "run": latest, "status_run": status_run}
    if latest is not None:
        result = latest.result or {}
        names, matrix, pairs = _kappa_matrix(result)
        confusion = result.get("confusion", {})
        annotators = [c["annotator"] for c in confusion.get("annotators", [])]
        chosen = request.GET.get("annotator")
        if chosen not in annotators:
            chosen = _most_compared(
                confusion.get("annotators", []), result.get("per_annotator", [])
            )
        matrix_of = next(
            (c["matrix"] for c in confusion.get("annotators", []) if c["annotator"] == chosen), None
        )
        labels = confusion.get("labels", [])
        result["per_annotator"] = sorted(
            result.get("per_annotator", []), key=lambda r: (-r["n_annotations"], r["annotator"])
        )
        context.update(
            result=result,
            versions=result.get("by_guideline_version", []),
            version_figure=_figure_versions(result.get("by_guideline_version", [])),
            kappa_names=names,
            kappa_rows=list(zip(names, matrix, strict=True)),
            kappa_pairs=pairs,
            kappa_figure=_figure_heatmap(
                names, matrix, "Cohen's kappa per annotator pair", "annotator", "annotator", -1, 1
            )
            if pairs
            else None,
            confusion_annotators=annotators,
            confusion_annotator=chosen,
            confusion_labels=labels,
            confusion_rows=list(zip(labels, matrix_of, strict=True)) if matrix_of else [],
            confusion_figure={
                # Counts start at 0: a cell of 5 is never drawn as empty.
                "data": [{"type": "heatmap", "x": labels, "y": labels, "z": matrix_of,
                          "zmin": 0, "zmax": max([1, *(max(r) for r in matrix_of)]),
                          "colorscale": [[0, "#f1f3f5"], [1, "#3b5bdb"]]}],
                "layout": {
                    "title": {"text": f"{chosen} (rows) vs the others (columns)"},
                    "xaxis": {"title": {"text": "label by the others"}, "type": "category"},
                    "yaxis": {"title": {"text": f"label by {chosen}"}, "type": "category",
                              "autorange": "reversed"},
                },
            } if matrix_of else None,
        )  # fmt: skip
    return render(request, "analysis/agreement.html", context)


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
        except (ValidationError, PermissionDenied) as exc:
            message = _error_text(exc) if isinstance(exc, ValidationError) else str(exc)
            ok = False
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
                    "access": access,
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
            ItemDisagreement.objects.filter(run=run, entropy__gt=0)
            .select_related("item")
            .order_by("-entropy", "item_id")
        )
        page = Paginator(rows, DISAGREEMENTS_PER_PAGE).get_page(request.GET.get("page"))
        context.update(
            page=page,
            rows=_disagreement_rows(list(page.object_list), labels),
            n_disagreements=page.paginator.count,
            return_query=request.GET.urlencode(),
        )
    return render(request, "analysis/disagreements.html", context)


# --- the item page ---


@login_required
def item(request, pk, item_id):
    """One item: its data full size, metadata, every annotation with its revisions, the
    review, and its rows in label-issue and agreement runs."""
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    history = item_history(project=project, item_id=item_id)
    if history is None:
        raise Http404("The project has no such item.")
    items_url = reverse("labeling:items", args=[project.pk])
    back = request.headers.get("Referer", "")
    if back == request.build_absolute_uri() or not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = items_url
    return render(
        request,
        "analysis/item.html",
        {
            "access": access,
            "project": project,
            "history": history,
            "back": back,
            "items_url": items_url,
        },
    )


# --- baselines, slices, drift pages ---


def _runs_of(project, kind: str) -> tuple[AnalysisRun | None, AnalysisRun | None]:
    """(newest succeeded run shown as the report, newest run when it is another one)."""
    runs = AnalysisRun.objects.filter(project=project, kind=kind)
    latest = AnalysisRun.objects.latest_succeeded(project, kind)
    newest = runs.order_by("-created_at", "-id").first()
    return latest, (newest if newest is not None and newest != latest else None)


def _model_names(project) -> list[str]:
    names = list(
        PredictionSet.objects.filter(project=project)
        .order_by("model")
        .values_list("model", flat=True)
    )
    return ["builtin", *[n for n in names if n != "builtin"]]


def _run_page(request, project, kind: str, page: str, clean) -> HttpResponse:
    """Validate the posted parameters with `clean(params)` and start the run."""
    params = {
        k: v.strip() for k, v in request.POST.items() if k != "csrfmiddlewaretoken" and v.strip()
    }
    try:
        clean(params)
    except ValidationError as exc:
        if request.htmx:
            # 200 so htmx swaps the message in (it ignores 4xx bodies by default).
            return HttpResponse(f'<p class="message error">{escape(_error_text(exc))}</p>')
        messages.error(request, _error_text(exc))
        return redirect(page, project.pk)
    return _start_run(request, project, kind, params, page)


@login_required
@require_http_methods(["GET", "POST"])
def baselines(request, pk):
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    if request.method == "POST":
        return _run_page(
            request, project, AnalysisRun.Kind.BASELINES, "analysis:baselines", baseline_params
        )
    latest, status_run = _runs_of(project, AnalysisRun.Kind.BASELINES)
    context = {
        "access": access,
        "project": project,
        "run": latest,
        "status_run": status_run,
        "models": _model_names(project),
        "versions": project.guidelines.filter(published_at__isnull=False).values_list(
            "version", flat=True
        ),
    }
    if latest is not None:
        result = latest.result or {}
        for number, row in enumerate(result.get("per_annotator", []), start=1):
            row["number"] = number
        classes = result.get("classes", [])
        hlp_classes = (result.get("hlp_consensus") or {}).get("per_class") or []
        model_classes = result.get("model_per_class") or [None] * len(hlp_classes)
        context.update(
            result=result,
            accuracy_figure=figures.accuracy_bars(result),
            class_figure=figures.per_class_bars(result),
            class_rows=[
                (h["label"], h["accuracy"], m["accuracy"] if m else None)
                for h, m in zip(hlp_classes, model_classes, strict=False)
            ],
            annotator_figure=figures.annotator_quality(result.get("per_annotator", [])),
            n_unplotted=sum(
                1
                for r in result.get("per_annotator", [])
                if r.get("hlp") is None or not r.get("seconds_per_item")
            ),
            verdict=_baseline_verdict(result),
            confusion_figure=(
                figures.confusion_heatmap(
                    classes,
                    result["model_confusion"],
                    title=f"Model {result.get('model_name')} vs final labels",
                    rows="final label",
                    columns="model prediction",
                )
                if result.get("model_confusion")
                else None
            ),
            confusion_rows=list(zip(classes, result.get("model_confusion") or [], strict=False)),
        )
    return render(request, "analysis/baselines.html", context)


def _points(value: float) -> str:
    """A share difference in points with its sign: -0.042 -> "−4.2 pts"."""
    return f"{value * 100:+.1f} pts".replace("-", "−")


def _baseline_verdict(result: dict) -> dict | None:
    """The Model vs HLP card in words, from the run's `verdict` (intervals and readings).

    Shown as model minus HLP: "−4.2 pts" reads "4.2 points below humans". None without a
    model; runs made before verdicts existed get the figure and a request to run again.
    """
    verdict = result.get("verdict")
    if result.get("gap") is None:
        return None
    gap_text = _points(-result["gap"])
    if not verdict:
        return {"reading": "unknown", "gap_text": gap_text}
    low, high = verdict["gap_ci"] or (None, None)
    majority = verdict.get("over_majority_ci")
    return {
        **verdict,
        "gap_text": gap_text,
        "ci_text": f"{_points(-high)} to {_points(-low)}" if low is not None else None,
        "over_majority_text": (
            _points(verdict["over_majority"]) if verdict.get("over_majority") is not None else None
        ),
        "over_majority_ci_text": (
            f"{_points(majority[0])} to {_points(majority[1])}" if majority else None
        ),
    }


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
        return _run_page(request, project, AnalysisRun.Kind.SLICES, "analysis:slices", slice_params)
    latest, status_run = _runs_of(project, AnalysisRun.Kind.SLICES)
    context = {
        "access": access,
        "project": project,
        "run": latest,
        "status_run": status_run,
        "models": _model_names(project),
        "versions": project.guidelines.filter(published_at__isnull=False).values_list(
            "version", flat=True
        ),
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
        try:
            chosen = rows[int(request.GET.get("slice", ""))]
        except (ValueError, IndexError):
            # Default: the field's slice with the largest potential gain (rows come sorted).
            chosen = next((r for r in rows if r["field"] == field), None)
        classes = result.get("classes", [])
        kind = chosen["confusion_kind"] if chosen else None
        context.update(
            result=result,
            rows=rows,
            fields=fields,
            field=field,
            field_rows=field_rows,
            slice_figure=figures.slice_bars(field_rows, field) if field_rows else None,
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
    return render(request, "analysis/slices.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def drift(request, pk):
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    if request.method == "POST":
        return _run_page(
            request,
            project,
            AnalysisRun.Kind.DRIFT,
            "analysis:drift",
            lambda params: drift_params(project=project, params=params),
        )
    latest, status_run = _runs_of(project, AnalysisRun.Kind.DRIFT)
    # Failed or empty imports hold no items: nothing to compare, so they are not offered.
    batches = list(
        ImportBatch.objects.filter(project=project, kind=ImportBatch.Kind.ITEMS)
        .annotate(n_items=Count("items"))
        .filter(n_items__gt=0)
        .order_by("created_at", "id")
    )
    context = {
        "access": access,
        "project": project,
        "run": latest,
        "status_run": status_run,
        "batches": batches,
        "models": _model_names(project),
    }
    if latest is not None:
        result = latest.result or {}
        checks = result.get("checks", [])
        context.update(
            result=result,
            checks=[
                {
                    **check,
                    "chart_id": f"drift-{n}",
                    "figure": figures.drift_histogram(check, result.get("a"), result.get("b")),
                    "bins": list(
                        zip(
                            check["histogram"]["bins"],
                            check["histogram"]["a"],
                            check["histogram"]["b"],
                            strict=False,
                        )
                    ),
                }
                for n, check in enumerate(checks)
            ],
        )
    return render(request, "analysis/drift.html", context)
