"""Span annotations against their items' texts: `labeling.spans.spans_clean`, the one rule.

A span annotation is checked against the text of the item it labels: the file's own text for
a file of items (JSON Lines items with spans, CoNLL with an annotator, Label Studio), the
item's stored text for a file of annotations (read in batches of LOOKUP_BATCH ids; a text the
file gives for that item must be the stored one). The check pass reports each bad span as a
row error naming the item and the span; the write pass cleans the same spans against the
stored text into `[[start, end, label_id], ...]`.
"""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db.models.fields.json import KeyTextTransform

from labeling.importing.records import AnnotationRow
from labeling.models import Item, Project
from labeling.spans import spans_clean


def stored_items(project: Project, external_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
    """external id -> (item id, text) of the project's items among `external_ids`."""
    # The text alone, as text: `data` whole would be decoded from JSON item by item.
    rows = (
        Item.objects.filter(project=project, external_id__in=list(external_ids))
        .annotate(text=KeyTextTransform("text", "data"))
        .values_list("external_id", "id", "text")
    )
    return {external_id: (pk, text or "") for external_id, pk, text in rows}


def _label_name_problem(spans) -> str | None:
    """Labels in a file are names: an int that happens to be a label's id is not taken."""
    for n, span in enumerate(spans, start=1):
        label = span.get("label") if isinstance(span, dict) else None
        if isinstance(span, list | tuple) and len(span) == 3:
            label = span[2]
        if label is not None and not isinstance(label, str):
            return f"Span {n}: give the label by name, not {label!r}."
    return None


def span_problem(record: AnnotationRow, text: str, labels: dict[str, int]) -> str | None:
    """Why the record's spans do not fit the text (the item and the span named), or None."""
    problem = _label_name_problem(record.spans)
    if problem is None:
        try:
            spans_clean(text, record.spans, labels=labels)
        except ValidationError as exc:
            problem = " ".join(exc.message_dict["spans"])
    return f"item {record.external_id[:60]!r}: {problem}" if problem else None


def text_problem(record: AnnotationRow, stored: str) -> str | None:
    """Why the file's text for an existing item is not that item's text, or None."""
    if record.text is None or record.text == stored:
        return None
    return (
        f"item {record.external_id[:60]!r} exists with another text: {stored[:60]!r} in the "
        f"project, {record.text[:60]!r} in the file; its spans would not fit"
    )


class SpanCheck:
    """The check pass's span rule, fed one AnnotationRow at a time (`add`, then `finish`)."""

    def __init__(self, project: Project, own_items: bool, errors, batch_size: int):
        self.project, self.own_items, self.errors = project, own_items, errors
        self.labels = dict(project.labels.values_list("name", "id"))
        self.batch_size = batch_size
        self.pending: list[AnnotationRow] = []

    def add(self, record: AnnotationRow) -> None:
        if self.own_items:  # the file gives the text of the items it labels
            if problem := span_problem(record, record.text or "", self.labels):
                self.errors.add(record.row, problem)
            return
        self.pending.append(record)
        if len(self.pending) >= self.batch_size:
            self.finish()

    def finish(self) -> None:
        """Check the annotations waiting for their items' stored texts."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        stored = stored_items(self.project, {r.external_id for r in pending})
        for record in pending:
            if record.external_id not in stored:
                continue  # an unknown item: reported once for the item, later
            text = stored[record.external_id][1]
            if problem := text_problem(record, text) or span_problem(record, text, self.labels):
                self.errors.add(record.row, problem)

    def against_existing(self, records: Iterable[AnnotationRow], existing: set[str]) -> None:
        """A file of items whose existing items are kept (on_duplicate=skip): the spans for
        those items must fit the text they keep."""
        batch: list[AnnotationRow] = []
        for record in records:
            if record.external_id in existing:
                batch.append(record)
            if len(batch) >= self.batch_size:
                self._against_stored(batch)
                batch = []
        self._against_stored(batch)

    def _against_stored(self, batch: list[AnnotationRow]) -> None:
        if not batch:
            return
        stored = stored_items(self.project, {r.external_id for r in batch})
        for record in batch:
            if problem := text_problem(record, stored[record.external_id][1]):
                self.errors.add(record.row, problem)
