"""The Dashboard's "model accuracy per refresh" panel: an HTML fragment the labeling Dashboard
loads by URL (labeling never imports analysis), with the curve drawn as SVG on the server."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from analysis import figures, selectors
from labeling.permissions import REVIEWER, project_for

SERIES_COLORS = (figures.MODEL_COLOR, figures.B_COLOR, figures.HLP_COLOR, figures.A_COLOR)


@login_required
@require_GET
def model_curve(request, pk):
    """The accuracy the queue's model measured at each refresh (x: annotations so far), with
    its interval as a band; one line per model. Reviewers and up."""
    access = project_for(request.user, pk, min_role=REVIEWER)
    refreshes = selectors.model_refreshes(project=access.project)
    models = list(dict.fromkeys(r.get("model") or "model" for r in refreshes))
    series = []
    for index, model in enumerate(models):
        rows = [r for r in refreshes if (r.get("model") or "model") == model]
        intervals = [r.get("accuracy_interval") or [None, None] for r in rows]
        series.append(
            {
                "name": model,
                "x": [r["n_annotations"] for r in rows],
                "y": [r.get("accuracy") for r in rows],
                "low": [i[0] for i in intervals],
                "high": [i[1] for i in intervals],
                "color": SERIES_COLORS[index % len(SERIES_COLORS)],
            }
        )
    chart = None
    if any(y is not None for s in series for y in s["y"]):
        svg = figures.learning_curve_svg(
            series,
            title="Accuracy at each refresh; band: 95% interval",
            x_label="annotations",
            y_label="accuracy",
            width=600,
            height=320,
        )
        chart = mark_safe(svg.document())  # noqa: S308 - learning_curve_svg escapes every text
    return render(
        request,
        "analysis/_model_curve.html",
        {
            "project": access.project,
            "refreshes": refreshes,
            "chart": chart,
            "limit": selectors.MODEL_REFRESHES_SHOWN,
        },
    )
