"""Reads of analysis results that are more than a one-line filter."""

from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from analysis.models import AnalysisRun, ItemDisagreement, LabelIssue
from labeling.filters import filter_by_metadata, metadata_filters
from labeling.models import Annotation, AnnotationRevision, Item, Project, Review


def label_issue_rows(*, run: AnalysisRun, filters) -> QuerySet[LabelIssue]:
    """The run's rows, ranked, narrowed by query parameters.

    filters (a QueryDict or dict): `label` (given label name), `suggested` (name),
    `entity_type` (span projects: a label name; rows with a flagged token given or suggested
    that type; an unknown name matches nothing), `is_issue` (true/false), `max_quality`
    (float), `resolution`, `meta_<key>` (item metadata). Raises ValueError for an unreadable
    number.
    """
    rows = LabelIssue.objects.filter(run=run).select_related(
        "item", "given_label", "suggested_label"
    )
    if filters.get("label"):
        rows = rows.filter(given_label__name=filters["label"])
    if filters.get("suggested"):
        rows = rows.filter(suggested_label__name=filters["suggested"])
    if filters.get("entity_type"):
        label_id = run.project.labels.filter(name=filters["entity_type"]).values_list(
            "pk", flat=True
        )
        rows = rows.filter(pk__in=_issues_flagging_type(run=run, label_id=label_id.first() or 0))
    is_issue = str(filters.get("is_issue", "")).lower()
    if is_issue in ("true", "1", "yes"):
        rows = rows.filter(is_issue=True)
    elif is_issue in ("false", "0", "no"):
        rows = rows.filter(is_issue=False)
    if filters.get("max_quality") not in (None, ""):
        rows = rows.filter(quality__lte=float(filters["max_quality"]))
    if filters.get("resolution"):
        rows = rows.filter(resolution=filters["resolution"])
    rows = filter_by_metadata(rows, metadata_filters(filters), field="item__metadata")
    return rows.order_by("rank")


def _issues_flagging_type(*, run: AnalysisRun, label_id: int) -> RawSQL:
    """The ids of the run's span issues with a flagged token given or suggested `label_id`
    (for `pk__in`): raw SQL, since no ORM lookup reaches into the `[start, end, given,
    suggested]` lists (as `labeling.selectors.items_with_span_label` for spans)."""
    table = LabelIssue._meta.db_table
    if connection.vendor == "postgresql":  # strict: lax mode would flatten the inner lists
        has = (
            "jsonb_path_exists(flagged_tokens,"
            " 'strict $[*] ? (@[2] == $label || @[3] == $label)',"
            " jsonb_build_object('label', %s::int))"
        )
        params = [run.pk, label_id]
    else:
        has = (
            "EXISTS (SELECT 1 FROM json_each(flagged_tokens)"
            " WHERE json_extract(json_each.value, '$[2]') = %s"
            " OR json_extract(json_each.value, '$[3]') = %s)"
        )
        params = [run.pk, label_id, label_id]
    return RawSQL(f"SELECT id FROM {table} WHERE run_id = %s AND {has}", params)


def metadata_keys(*, project: Project, sample: int = 500) -> list[str]:
    """Slice attribute names seen on the first items (for filter menus)."""
    keys: set[str] = set()
    for metadata in project.items.order_by("id").values_list("metadata", flat=True)[:sample]:
        if isinstance(metadata, dict):
            keys.update(str(k) for k in metadata)
    return sorted(keys)


@dataclass(frozen=True)
class ItemHistory:
    """Everything the item page shows about one item, read in a fixed handful of queries.

    annotations: Annotation objects, oldest first, each with `label_names` (its label or
    labels as names), `seconds` (time spent, or None) and `history` (its AnnotationRevision
    rows, oldest first, each with `label_names`).
    issues: the item's LabelIssue rows, newest run first.
    disagreements: its ItemDisagreement rows, newest agreement run first.
    """

    item: Item
    annotations: list
    review: Review | None
    review_label_names: list[str]
    issues: list
    disagreements: list


def item_history(*, project: Project, item_id: int) -> ItemHistory | None:
    """The item with its annotations (and their revisions), review, label-issue rows and
    disagreement rows; None when the project has no such item."""
    item = Item.objects.filter(project=project, pk=item_id).select_related("batch").first()
    if item is None:
        return None
    names = dict(project.labels.values_list("pk", "name"))

    def label_names(label_id, label_ids) -> list[str]:
        if label_id is not None:
            return [names.get(label_id, "?")]
        return [names.get(pk, "?") for pk in label_ids or []]

    annotations = list(
        Annotation.objects.filter(item=item)
        .select_related("annotator", "guideline")
        .order_by("created_at", "id")
    )
    revisions: dict[int, list] = {}
    for revision in AnnotationRevision.objects.filter(annotation__item=item).order_by(
        "replaced_at", "id"
    ):
        revision.label_names = label_names(revision.label_id, revision.labels)
        revisions.setdefault(revision.annotation_id, []).append(revision)
    for annotation in annotations:
        annotation.label_names = label_names(annotation.label_id, annotation.labels)
        annotation.history = revisions.get(annotation.pk, [])
        annotation.seconds = (
            annotation.lead_time_ms / 1000 if annotation.lead_time_ms is not None else None
        )
    review = Review.objects.filter(item=item).select_related("reviewer").first()
    issues = list(
        LabelIssue.objects.filter(item=item)
        .select_related("run", "given_label", "suggested_label", "resolved_by")
        .order_by("-run__finished_at", "-run_id")
    )
    disagreements = list(
        ItemDisagreement.objects.filter(item=item)
        .select_related("run")
        .order_by("-run__finished_at", "-run_id")
    )
    return ItemHistory(
        item=item,
        annotations=annotations,
        review=review,
        review_label_names=label_names(review.label_id, review.labels) if review else [],
        issues=issues,
        disagreements=disagreements,
    )


# The queue-scores refresh job stores its model's accuracy in run.result.
MODEL_REFRESH = AnalysisRun.Kind.MODEL_REFRESH
MODEL_REFRESHES_SHOWN = 300


def model_refreshes(*, project: Project, limit: int = MODEL_REFRESHES_SHOWN) -> list[dict]:
    """The results of the project's newest `limit` succeeded model refreshes, oldest first
    (by annotations counted at the refresh). Each is the run's stored result plus
    `finished_at`; results without `n_annotations` are left out."""
    rows = (
        AnalysisRun.objects.filter(
            project=project, kind=MODEL_REFRESH, status=AnalysisRun.Status.SUCCEEDED
        )
        .order_by("-finished_at", "-id")
        .values_list("result", "finished_at")[:limit]
    )
    refreshes = [
        {**result, "finished_at": finished}
        for result, finished in rows
        if isinstance(result, dict) and isinstance(result.get("n_annotations"), int)
    ]
    return sorted(refreshes, key=lambda r: (r["n_annotations"], r["finished_at"] or 0))
