"""A reviewer's final label for an item: it always wins over any aggregate."""

from django.core.exceptions import ValidationError
from django.db import transaction

from labeling.models import Item, LabelClass, Review
from labeling.spans import item_text, spans_clean

MAX_NOTE = 5000


def _label_class(item: Item, label) -> LabelClass:
    if isinstance(label, LabelClass):
        if label.project_id != item.project_id:
            raise ValidationError({"label": "The label belongs to another project."})
        return label
    found = LabelClass.objects.filter(project_id=item.project_id, name=str(label)).first()
    if found is None and isinstance(label, int | str) and str(label).isdigit():
        found = LabelClass.objects.filter(project_id=item.project_id, pk=int(label)).first()
    if found is None:
        raise ValidationError({"label": f"Unknown label {label!r}."})
    return found


@transaction.atomic
def review_set(*, item: Item, reviewer, label=None, spans=None, note: str = "") -> Review:
    """Set (or replace) the item's reviewed label.

    label: a LabelClass, a label name or id; for multi-label projects a list of those (the
    chosen classes, possibly empty). spans (span projects): `[{start, end, label}]` on the
    item's text, `[]` for none. The caller checked that `reviewer` is a reviewer or
    manager of the item's project.
    """
    project = item.project
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationError({"note": f"Keep the note under {MAX_NOTE} characters."})
    final_spans = []
    if project.is_spans:
        if spans is None:
            raise ValidationError({"spans": "Give the final spans ([] = no entities)."})
        names = dict(LabelClass.objects.filter(project=project).values_list("name", "id"))
        final_spans = spans_clean(item_text(item.data), spans, labels=names)
        single, chosen = None, []
    elif project.is_multi_label:
        values = label if isinstance(label, list | tuple) else [label]
        chosen = sorted({_label_class(item, value).pk for value in values if value != ""})
        single = None
    else:
        if label is None or label == "" or isinstance(label, list | tuple):
            raise ValidationError({"label": "Choose one label."})
        single, chosen = _label_class(item, label), []
    review, _ = Review.objects.update_or_create(
        item=item,
        defaults={
            "reviewer": reviewer,
            "label": single,
            "labels": chosen,
            "spans": final_spans,
            "note": note,
        },
    )
    return review
