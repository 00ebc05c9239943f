"""The Agreement page: start an agreement run; alpha per guideline version, Cohen's kappa per
annotator pair, and one annotator's labels against the others'. On a span project: span F1
(exact and partial) per label, annotator and pair, and alpha over tokens."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from analysis import figures
from analysis.metrics.agreement import reading
from analysis.models import AnalysisRun
from analysis.views.run_status import posted_params, runs_shown, start_from_page
from labeling.permissions import REVIEWER, project_for

HEATMAP_ANNOTATORS = 25
# Partial span F1 this far above exact F1 says boundaries, not types, are the disagreement.
BOUNDARY_GAP = 0.05
KIND = AnalysisRun.Kind.AGREEMENT


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


def _interval_floor(result: dict, key: str) -> dict:
    """The reading of the alpha interval's low end, when it is below the point's reading (a
    verdict says how sure it is): {"reading_low", "ci_low"}, or {} when the interval agrees."""
    interval = result.get(f"{key}_ci")
    if result.get(key) is None or not interval:
        return {}
    low = reading(interval[0])
    if low == reading(result[key]):
        return {}
    return {"reading_low": low, "ci_low": interval[0]}


def _span_context(result: dict) -> dict:
    """What the page shows of a span project's report (`metrics.span_agreement.report`)."""
    result["per_annotator"] = sorted(
        result.get("per_annotator", []),
        key=lambda r: (-r.get("n_annotations", 0), r.get("annotator", "")),
    )
    versions = result.get("by_guideline_version", [])
    per_label = result.get("per_label", [])
    exact, partial = result.get("span_f1"), result.get("span_f1_partial")
    gap = partial - exact if exact is not None and partial is not None else 0.0
    return {
        "result": result,
        **_interval_floor(result, "token_alpha"),
        "boundary_gap": gap if gap >= BOUNDARY_GAP else None,
        "versions": versions,
        "version_figure": (
            figures.alpha_by_version(
                versions,
                key="token_alpha",
                ci_key="token_alpha_ci",
                title="Alpha over tokens per guideline version (95% interval)",
            )
            if any(v.get("token_alpha") is not None for v in versions)
            else None
        ),
        "label_figure": (
            figures.span_f1_per_label(per_label)
            if any(row.get("span_f1") is not None for row in per_label)
            else None
        ),
    }


@login_required
@require_http_methods(["GET", "POST"])
def agreement(request, pk):
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    if request.method == "POST":
        return start_from_page(request, access, KIND, posted_params(request, KIND))
    # The newest run's progress (or its failure) shows unless it is the report shown below.
    latest, status_run = runs_shown(project, KIND)
    context = {"access": access, "project": project, "run": latest, "status_run": status_run}
    if project.is_spans:
        if latest is not None:
            context.update(_span_context(latest.result or {}))
        return render(request, "analysis/agreement.html", context)
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
            **_interval_floor(result, "alpha"),
            versions=result.get("by_guideline_version", []),
            version_figure=figures.alpha_by_version(result.get("by_guideline_version", [])),
            kappa_names=names,
            kappa_rows=list(zip(names, matrix, strict=True)),
            kappa_pairs=pairs,
            kappa_figure=figures.kappa_heatmap(names, matrix) if pairs else None,
            confusion_annotators=annotators,
            confusion_annotator=chosen,
            confusion_labels=labels,
            confusion_rows=list(zip(labels, matrix_of, strict=True)) if matrix_of else [],
            confusion_figure=(
                figures.annotator_confusion(labels, matrix_of, chosen) if matrix_of else None
            ),
            anchoring=result.get("anchoring"),
            anchoring_figure=(
                figures.anchoring_accuracy_bars(result["anchoring"])
                if result.get("anchoring")
                else None
            ),
        )
    return render(request, "analysis/agreement.html", context)
