"""The Drift page: start a drift run between two import batches or two date ranges; label,
metadata, text-length and confidence checks, each with its histogram."""

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from analysis import figures
from analysis.models import AnalysisRun
from analysis.views.run_status import model_names, posted_params, runs_shown, start_from_page
from labeling.models import ImportBatch
from labeling.permissions import REVIEWER, project_for

KIND = AnalysisRun.Kind.DRIFT


@login_required
@require_http_methods(["GET", "POST"])
def drift(request, pk):
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    if request.method == "POST":
        return start_from_page(request, access, KIND, posted_params(request, KIND))
    latest, status_run = runs_shown(project, KIND)
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
        "models": model_names(project),
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
