"""Reads of analysis results that are more than a one-line filter."""

from django.db.models import QuerySet

from analysis.models import AnalysisRun, LabelIssue
from labeling.filters import filter_by_metadata, metadata_filters
from labeling.models import Project


def label_issue_rows(*, run: AnalysisRun, filters) -> QuerySet[LabelIssue]:
    """The run's rows, ranked, narrowed by query parameters.

    filters (a QueryDict or dict): `label` (given label name), `suggested` (name),
    `is_issue` (true/false), `max_quality` (float), `resolution`, `meta_<key>` (item metadata).
    Raises ValueError for an unreadable number.
    """
    rows = LabelIssue.objects.filter(run=run).select_related(
        "item", "given_label", "suggested_label"
    )
    if filters.get("label"):
        rows = rows.filter(given_label__name=filters["label"])
    if filters.get("suggested"):
        rows = rows.filter(suggested_label__name=filters["suggested"])
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


def metadata_keys(*, project: Project, sample: int = 500) -> list[str]:
    """Slice attribute names seen on the first items (for filter menus)."""
    keys: set[str] = set()
    for metadata in project.items.order_by("id").values_list("metadata", flat=True)[:sample]:
        if isinstance(metadata, dict):
            keys.update(str(k) for k in metadata)
    return sorted(keys)
