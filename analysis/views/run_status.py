"""A run's progress bar, polled by htmx; and what every analysis page shares to start a run
(one path with the API: `kinds.run_start`) and to show the newest run."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import escape
from rest_framework.exceptions import ValidationError

from analysis import kinds
from analysis.kinds import INVALID_PARAMS, run_start
from analysis.models import AnalysisRun, PredictionSet
from config.celery import JobQueueUnavailable
from labeling.models import Project
from labeling.permissions import REVIEWER, ProjectAccess, project_for


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


def runs_shown(project: Project, kind: str) -> tuple[AnalysisRun | None, AnalysisRun | None]:
    """(the newest succeeded run, shown as the report; the newest run when it is another one,
    shown as its progress or failure)."""
    runs = AnalysisRun.objects.filter(project=project, kind=kind)
    newest = runs.order_by("-created_at", "-id").first()
    latest = AnalysisRun.objects.latest_succeeded(project, kind)
    return latest, (newest if newest is not None and newest != latest else None)


def model_names(project: Project) -> list[str]:
    """The models a run form offers: the built-in one first, then the uploaded ones."""
    names = list(
        PredictionSet.objects.filter(project=project)
        .order_by("model")
        .values_list("model", flat=True)
    )
    return ["builtin", *[n for n in names if n != "builtin"]]


def posted_params(request, kind: str) -> dict:
    """The run form's inputs that are parameters of `kind`, stripped; empty ones left out."""
    posted = {
        name: request.POST.get(name, "").strip() for name in kinds.BY_NAME[kind].params().fields
    }
    return {name: value for name, value in posted.items() if value}


def _refusal_text(exc: ValidationError) -> str:
    detail = exc.detail
    texts = [] if detail.get("detail") == INVALID_PARAMS else [detail["detail"]]
    for name, errors in detail.items():
        if name != "detail":
            texts.extend(errors if isinstance(errors, list) else [errors])
    return " ".join(str(text) for text in texts)


def _message(request, access: ProjectAccess, page: str, text: str, status: int) -> HttpResponse:
    """A refusal: htmx swaps the message in where the progress would show, a plain form
    redirects back to the page with it."""
    if request.htmx:
        return HttpResponse(f'<p class="message error">{escape(text)}</p>', status=status)
    messages.error(request, text)
    return redirect(page, access.project.pk)


def start_from_page(request, access: ProjectAccess, kind: str, params: dict) -> HttpResponse:
    """Start a run from its page; htmx gets the progress partial, plain forms a redirect."""
    page = kinds.BY_NAME[kind].page
    try:
        run = run_start(project=access.project, kind=kind, params=params, user=request.user)
    except ValidationError as exc:
        # 200 so htmx swaps the message in (it ignores 4xx bodies by default).
        return _message(request, access, page, _refusal_text(exc), status=200)
    except JobQueueUnavailable as exc:
        return _message(request, access, page, str(exc), status=503)
    if request.htmx:
        return render(request, "analysis/_run_status.html", {"run": run})
    return redirect(page, access.project.pk)
