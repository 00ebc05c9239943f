"""Filtering a project's items by metadata, label and status (API and items page alike).

Metadata filters take any query parameter `meta_<key>=value`, `metadata.<key>=value` or
`metadata__<key>=value`; repeated values of one key mean "any of them", different keys must
all match. They compile to JSON containment (`metadata @> {"key": value}`), so any key is safe.
"""

import django_filters
from django.db.models import Count, Exists, IntegerField, JSONField, OuterRef, Q, Subquery, Value
from django.db.models.fields.json import KeyTransform, KeyTransformExact
from django.db.models.functions import Coalesce
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from labeling.models import Annotation, Item, LabelClass, Project, Review
from labeling.selectors import items_with_span_label, labels_contain

METADATA_PREFIXES = ("meta_", "metadata.", "metadata__")
MAX_METADATA_FILTERS = 20


class ItemStatus:
    UNLABELED = "unlabeled"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    REVIEWED = "reviewed"
    RELABEL = "relabel"
    CHOICES = [
        (UNLABELED, "No annotation yet"),
        (IN_PROGRESS, "Fewer annotations than the overlap"),
        (COMPLETE, "Annotated by overlap annotators"),
        (REVIEWED, "Has a reviewer's final label"),
        (RELABEL, "Relabel requested"),
    ]


def annotation_count():
    """Per-item annotation count as a correlated subquery (cheap on one page of items)."""
    counts = (
        Annotation.objects.filter(item=OuterRef("pk"))
        .order_by()
        .values("item")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def with_counts(items):
    """Items with `n_annotations` and `is_reviewed` for display."""
    return items.annotate(
        n_annotations=annotation_count(),
        is_reviewed=Exists(Review.objects.filter(item=OuterRef("pk"))),
    )


def item_status(item: Item, *, overlap: int) -> str:
    """The item's one status, as `?status=` filters it; `item` comes from `with_counts`.

    A reviewer's final label wins; then a relabel request (the status stays until a review);
    then the count of all the item's annotations against the project's overlap.
    """
    if item.is_reviewed:
        return ItemStatus.REVIEWED
    if item.relabel_requested_at is not None:
        return ItemStatus.RELABEL
    if item.n_annotations >= overlap:
        return ItemStatus.COMPLETE
    return ItemStatus.IN_PROGRESS if item.n_annotations else ItemStatus.UNLABELED


def metadata_values(raw: str) -> list:
    """A query-string value and the JSON values it may stand for ("3" also matches 3)."""
    values: list = [raw]
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        values.append(lowered == "true")
    elif lowered == "null":
        values.append(None)
    else:
        try:
            values.append(int(raw))
        except ValueError:
            try:
                number = float(raw)
            except ValueError:
                pass
            else:
                if number == number and abs(number) != float("inf"):
                    values.append(number)
    return values


def metadata_filters(params) -> dict[str, list[str]]:
    """{metadata key: [values]} from query parameters with a metadata prefix.

    params: a QueryDict (repeated keys give several values) or a plain dict.
    """
    found: dict[str, list[str]] = {}
    for name in params:
        for prefix in METADATA_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                values = params.getlist(name) if hasattr(params, "getlist") else [params[name]]
                found.setdefault(name[len(prefix) :], []).extend(v for v in values if v != "")
    return {key: values for key, values in found.items() if values}


def metadata_equals(key: str, value, *, field: str = "metadata") -> Q:
    """Rows whose `field`[key] is the JSON value `value`, on PostgreSQL and SQLite alike."""
    if "__" not in key:
        return Q(**{f"{field}__{key}": value})
    # A key that looks like a lookup path is addressed as one key, not split on "__".
    return Q(KeyTransformExact(KeyTransform(key, field), Value(value, output_field=JSONField())))


def filter_by_metadata(rows, filters: dict[str, list[str]], *, field: str = "metadata"):
    """Keep rows matching every key (any of its values; "3" also matches the number 3)."""
    for key, raws in filters.items():
        condition = Q()
        for raw in raws:
            for value in metadata_values(raw):
                condition |= metadata_equals(key, value, field=field)
        rows = rows.filter(condition)
    return rows


@extend_schema_field(OpenApiTypes.STR)
class LabelNameFilter(django_filters.ModelChoiceFilter):
    """A label class of the project, given by its name."""


class ItemFilter(django_filters.FilterSet):
    label = LabelNameFilter(
        queryset=LabelClass.objects.none(),
        to_field_name="name",
        method="filter_label",
        help_text="Items with an annotation or a review of this label (its name).",
    )
    status = django_filters.ChoiceFilter(
        choices=ItemStatus.CHOICES, method="filter_status", help_text="Labeling status."
    )
    external_id = django_filters.CharFilter(help_text="Exact external id.")

    class Meta:
        model = Item
        fields = ["label", "status", "external_id"]

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None, project=None):
        super().__init__(data, queryset, request=request, prefix=prefix)
        self.project: Project | None = project
        if project is not None:
            self.filters["label"].queryset = project.labels.all()
        self.metadata = metadata_filters(data) if data is not None else {}

    def is_valid(self) -> bool:
        valid = super().is_valid()
        if len(self.metadata) > MAX_METADATA_FILTERS:
            self.form.add_error(None, f"Use at most {MAX_METADATA_FILTERS} metadata filters.")
            return False
        return valid

    def filter_label(self, items, name, label: LabelClass):
        by_label = Exists(Annotation.objects.filter(item=OuterRef("pk"), label=label)) | Exists(
            Review.objects.filter(item=OuterRef("pk"), label=label)
        )
        if self.project is not None and self.project.is_spans:
            return items.filter(
                pk__in=items_with_span_label(project=self.project, label_id=label.pk)
            )
        if self.project is not None and self.project.is_multi_label:
            by_label |= Exists(
                labels_contain(Annotation.objects.filter(item=OuterRef("pk")), label.pk)
            ) | Exists(labels_contain(Review.objects.filter(item=OuterRef("pk")), label.pk))
        return items.filter(by_label)

    def filter_status(self, items, name, status: str):
        """The items whose `item_status` is `status` (same order of rules)."""
        overlap = self.project.overlap if self.project is not None else 1
        reviewed = Exists(Review.objects.filter(item=OuterRef("pk")))
        if status == ItemStatus.REVIEWED:
            return items.filter(reviewed)
        items = items.filter(~reviewed)
        if status == ItemStatus.RELABEL:
            return items.filter(relabel_requested_at__isnull=False)
        items = items.filter(relabel_requested_at__isnull=True)
        if status == ItemStatus.UNLABELED:
            return items.filter(~Exists(Annotation.objects.filter(item=OuterRef("pk"))))
        items = items.alias(n_for_status=annotation_count())
        if status == ItemStatus.COMPLETE:
            return items.filter(n_for_status__gte=overlap)
        return items.filter(n_for_status__gt=0, n_for_status__lt=overlap)

    def filter_queryset(self, queryset):
        return filter_by_metadata(super().filter_queryset(queryset), self.metadata)
