"""The Disagreements page: items of the newest agreement run ranked by how much their
annotators disagree; a reviewer resolves one, sends it back or makes it a worked example.

On a span project each row shows every annotator's spans one above the other on the item's
text, and the reviewer resolves it by editing the final span set in the span editor
(concord/spans.js), started from the token majority or from one annotator's spans.
"""

import json

import numpy as np
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from analysis.metrics.span_tags import decode_tags, majority_tags, tags_from_spans
from analysis.models import AnalysisRun, ItemDisagreement
from labeling.models import Annotation, Item, Project, Review
from labeling.permissions import REVIEWER, project_for
from labeling.services.guidelines import worked_example_add
from labeling.services.relabeling import relabel_request
from labeling.services.reviewing import review_set
from labeling.spans import item_text, spans_as_dicts, token_bounds, token_spans

DISAGREEMENTS_PER_PAGE = 25


def _error_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(f"{m}" for msgs in exc.message_dict.values() for m in msgs)
    return " ".join(exc.messages)


def _posted_spans(request):
    """The span editor's final spans (`[{start, end, label}]`), or None when none were sent."""
    raw = request.POST.get("spans", "")
    if raw == "":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ValidationError({"spans": "Could not read the spans sent."}) from None


def _spans_in_words(text: str, spans) -> str:
    """`“Ada Lovelace” PER, “London” LOC` for a worked example's why."""
    shown = []
    for span in spans if isinstance(spans, list) else []:
        if isinstance(span, dict) and isinstance(span.get("start"), int):
            shown.append(f"“{text[span['start'] : span.get('end', 0)]}” {span.get('label', '')}")
    return ", ".join(shown) if shown else "no entities"


def _disagreement_action(request, project):
    item = get_object_or_404(Item, pk=request.POST.get("item"), project=project)
    action = request.POST.get("action")
    labels = [v for v in request.POST.getlist("label") if v != ""]
    label = labels if project.is_multi_label else (labels[0] if labels else None)
    if action == "resolve" and project.is_spans:
        spans = _posted_spans(request)
        if spans is None:
            raise ValidationError({"spans": "Give the final spans ([] = no entities)."})
        review_set(item=item, reviewer=request.user, spans=spans, note=request.POST.get("note", ""))
        return f"Item {item.external_id} resolved: {len(spans)} final span(s)."
    if action == "resolve":
        review_set(item=item, reviewer=request.user, label=label, note=request.POST.get("note", ""))
        return f"Item {item.external_id} resolved."
    if action == "relabel":
        relabel_request(project=project, item_ids=[item.pk])
        return f"Item {item.external_id} sent back to be labeled again."
    if action == "example":
        why = request.POST.get("why", "").strip()
        if project.is_spans and why:
            # A span example is about one entity type (its label); the why keeps the whole
            # correct span set as the reviewer left it in the editor.
            spans = _posted_spans(request)
            if spans is not None:
                why = f"{why}\n\nCorrect spans: {_spans_in_words(item_text(item.data), spans)}."
        worked_example_add(
            project=project,
            item=item,
            label=labels[0] if labels else "",
            why=why,
            user=request.user,
        )
        return f"Item {item.external_id} added as a worked example to the guideline draft."
    raise ValidationError({"action": "Choose resolve, relabel or example."})


def _majority_spans(
    bounds: list[tuple[int, int]], given: list[list], label_ids: list[int], tie_rule: str
) -> list[list[int]]:
    """The token-level majority of several annotators' stored spans on one text, decoded back
    to spans (analysis.metrics.span_tags, the export's rule): `[[start, end, label_id], ...]`."""
    n = len(bounds)
    position = {label_id: k for k, label_id in enumerate(label_ids)}
    ranges = []
    for spans in given:
        try:
            ranges.append([(a, b, position[lab]) for a, b, lab in token_spans(bounds, spans)])
        except KeyError:  # spans of an older text or a removed label: not a vote
            continue
    if not ranges or not n:
        return []
    sequence = np.array([k for k, row in enumerate(ranges) for _ in row], dtype=np.int64)
    start, end, label = (
        np.array([span[i] for row in ranges for span in row], dtype=np.int64) for i in range(3)
    )
    tags = tags_from_spans(np.full(len(ranges), n), sequence, start, end, label)
    winner, _ = majority_tags(
        tags, np.tile(np.arange(n), len(ranges)), n_item_tokens=n, n_types=len(label_ids),
        tie_rule=tie_rule,
    )  # fmt: skip
    _, first, after, kind = decode_tags(winner, np.array([n]))
    return [
        [bounds[a][0], bounds[b - 1][1], label_ids[k]]
        for a, b, k in zip(first.tolist(), after.tolist(), kind.tolist(), strict=True)
    ]


def _span_rows(rows: list[ItemDisagreement], labels, project: Project, drafts=None) -> list:
    """(row, [(annotator, spans, version)], review, editor) per row of a span project, in two
    queries; editor: the item's text, the spans the final-span editor starts from (a draft
    the reviewer posted, else the review's, else the majority's) and the other starts."""
    item_ids = [row.item_id for row in rows]
    given: dict[int, list] = {}
    annotations = (
        Annotation.objects.filter(item_id__in=item_ids)
        .order_by("item_id", "annotator__username", "guideline__version")
        .values_list("item_id", "annotator__username", "spans", "guideline__version")
    )
    for item_id, username, spans, version in annotations:
        given.setdefault(item_id, []).append((username, spans, version))
    reviews = {r.item_id: r for r in Review.objects.filter(item_id__in=item_ids)}
    label_ids = [label.pk for label in labels]
    names = {label.pk: label.name for label in labels}
    out = []
    for row in rows:
        text = item_text(row.item.data)
        bounds = token_bounds(text)
        mine = given.get(row.item_id, [])
        majority = _majority_spans(bounds, [s for _, s, _ in mine], label_ids, project.tie_rule)
        review = reviews.get(row.item_id)
        starts = {"majority": majority, **{f"{u} v{v}": s for u, s, v in mine}, "empty": []}
        if review is not None:
            starts = {"reviewed": review.spans, **starts}
        draft = (drafts or {}).get(row.item_id)
        initial = draft if draft is not None else (review.spans if review else majority)
        editor = {
            "text": text,
            "initial": initial,
            "initial_json": json.dumps(spans_as_dicts(initial, names)),
            "starts": starts,
        }
        out.append((row, mine, review, editor))
    return out


def _disagreement_rows(rows: list[ItemDisagreement], labels, project=None, drafts=None) -> list:
    """(row, [(annotator, label, version)], review) per row, in two queries for any number;
    on a span project `_span_rows`."""
    if project is not None and project.is_spans:
        return _span_rows(rows, labels, project, drafts)
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


def _span_drafts(request, project) -> dict | None:
    """After a refused resolve on a span project: {item id: the posted spans as stored
    `[start, end, label_id]`}, so the editor shows them again (nothing is lost)."""
    if not project.is_spans or not str(request.POST.get("item", "")).isdigit():
        return None
    try:
        posted = _posted_spans(request)
    except ValidationError:
        return None
    ids = dict(project.labels.values_list("name", "id"))
    kept = [
        [s["start"], s["end"], ids[s["label"]]]
        for s in (posted if isinstance(posted, list) else [])
        if isinstance(s, dict) and s.get("label") in ids
        and isinstance(s.get("start"), int) and isinstance(s.get("end"), int)
    ]  # fmt: skip
    return {int(request.POST["item"]): kept}


@login_required
@require_http_methods(["GET", "POST"])
def disagreements(request, pk):
    """Items ranked by disagreement; resolving one swaps its row in place (htmx) so the
    reviewer keeps their place; without JavaScript the form redirects back to the row."""
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    labels = list(project.labels.all())
    if request.method == "POST":
        message, ok, drafts = None, True, None
        try:
            message = _disagreement_action(request, project)
        except ValidationError as exc:
            message, ok = _error_text(exc), False
            drafts = _span_drafts(request, project)
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
                    "entry": _disagreement_rows([row], labels, project, drafts)[0],
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
            rows=_disagreement_rows(list(page.object_list), labels, project),
            n_disagreements=page.paginator.count,
            return_query=request.GET.urlencode(),
        )
    return render(request, "analysis/disagreements.html", context)
