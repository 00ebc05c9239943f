"""The Baselines page: start a baselines run; human-level performance against the model and
the majority-class baseline, per class and per annotator, and the Model vs HLP verdict."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from analysis import figures
from analysis.models import AnalysisRun
from analysis.views.run_status import model_names, posted_params, runs_shown, start_from_page
from labeling.permissions import REVIEWER, project_for

KIND = AnalysisRun.Kind.BASELINES


@login_required
@require_http_methods(["GET", "POST"])
def baselines(request, pk):
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
    if project.is_spans:
        return render(request, "analysis/span_baselines.html", _span_context(context, latest))
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


def _span_context(context: dict, latest) -> dict:
    """A span project's page: span F1 of the model and HLP, per type, per annotator."""
    if latest is None:
        return context
    result = latest.result or {}
    for number, row in enumerate(result.get("per_annotator", []), start=1):
        row["number"] = number
    return {
        **context,
        "result": result,
        "f1_figure": figures.span_f1_bars(result),
        "type_figure": figures.span_type_bars(result.get("per_type", []), result.get("model_name")),
        "verdict": _baseline_verdict(result),
    }


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
