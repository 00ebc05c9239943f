"""Labeling an item: submit (or change) an annotation, skip an item, undo the last action.

Every member of the project may label: annotators are who the queue is for, and a manager
"does everything" (README, "Labeling"), so small teams can label without a second account. The
pages and the API check membership (`labeling.permissions.project_for`) before they call these
services. Labels of reviewers and managers are not blind (they can see other people's labels),
which a team that measures agreement should keep in mind; the dashboard lists each labeler by
name.
"""

from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from labeling import rawsql, selectors
from labeling import spans as span_rules
from labeling.models import (
    Annotation,
    AnnotationRevision,
    Guideline,
    Item,
    LabelClass,
    Lease,
    Project,
    Skip,
)
from labeling.services import queue_scores, webhooks
from labeling.services.gold import gold_answer_recorded
from labeling.services.leases import lease_summary, leases_release

MAX_COMMENT_CHARS = 5_000
MAX_LEAD_TIME_MS = 24 * 3600 * 1000
MAX_REQUEST_ID_CHARS = 64
LABEL_FIELDS = ("id", "project_id", "name")


class ItemFull(ValidationError):
    """The item already has every annotation its overlap asks for (HTTP 409 in the API)."""


def _class_for(project: Project, value, classes: dict) -> LabelClass:
    """A label given as a name or a class id -> the project's LabelClass."""
    if isinstance(value, LabelClass):
        value = value.pk
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int) and value in classes["by_id"]:
        return classes["by_id"][value]
    if isinstance(value, str) and value in classes["by_name"]:
        return classes["by_name"][value]
    names = ", ".join(classes["by_name"])
    raise ValidationError({"label": f"Unknown label {value!r}; the labels are: {names}."})


def _label_classes(project: Project) -> dict:
    classes_list = rawsql.fetch(  # every submission asks (see labeling/rawsql.py)
        LabelClass,
        f"SELECT {rawsql.columns(LabelClass, LABEL_FIELDS)} FROM {LabelClass._meta.db_table}"
        ' WHERE project_id = %s ORDER BY "order", id',
        [project.pk],
        LABEL_FIELDS,
    )
    return {
        "by_id": {c.pk: c for c in classes_list},
        "by_name": {c.name: c for c in classes_list},
    }


def _resolve_spans(project: Project, item: Item, spans, classes: dict) -> list[list[int]]:
    if spans is None:
        raise ValidationError({"spans": "Give `spans`: a list of {start, end, label} ([] = none)."})
    data = Item.objects.filter(pk=item.pk, project=project).values_list("data", flat=True).first()
    if data is None:
        raise ValidationError({"item": "No such item in this project."})
    names = {name: c.pk for name, c in classes["by_name"].items()}
    return span_rules.spans_clean(span_rules.item_text(data), spans, labels=names)


def _resolve_labels(project: Project, label, labels, classes: dict):
    """(single class or None, multi-label class ids) from what the annotator gave."""
    if project.is_multi_label:
        if labels is None and label is not None:
            labels = [label]
        if labels is None:
            raise ValidationError({"labels": "Give `labels`, a list of label names."})
        if not isinstance(labels, list | tuple):
            raise ValidationError({"labels": "`labels` must be a list of label names."})
        chosen = [_class_for(project, value, classes) for value in labels]
        ids = sorted({c.pk for c in chosen})
        if len(ids) != len(chosen):
            raise ValidationError({"labels": "A label is listed twice."})
        return None, ids
    if labels is not None:
        if label is None and isinstance(labels, list | tuple) and len(labels) == 1:
            label = labels[0]
        else:
            raise ValidationError(
                {"labels": "This project is single-label: give exactly one `label`."}
            )
    if label is None or label == "":
        raise ValidationError({"label": "Choose a label."})
    return _class_for(project, label, classes), []


def _clean_extras(comment, lead_time_ms, request_id):
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise ValidationError({"comment": f"At most {MAX_COMMENT_CHARS} characters."})
    if lead_time_ms is not None:
        try:
            lead_time_ms = int(lead_time_ms)
        except (TypeError, ValueError):
            raise ValidationError({"lead_time_ms": "A whole number of milliseconds."}) from None
        if lead_time_ms < 0:
            raise ValidationError({"lead_time_ms": "Cannot be negative."})
        lead_time_ms = min(lead_time_ms, MAX_LEAD_TIME_MS)  # a tab left open overnight
    if request_id is not None:
        request_id = str(request_id).strip() or None
        if request_id and len(request_id) > MAX_REQUEST_ID_CHARS:
            raise ValidationError({"request_id": f"At most {MAX_REQUEST_ID_CHARS} characters."})
    return comment, lead_time_ms, request_id


@transaction.atomic
def annotation_submit(
    *,
    item: Item,
    annotator,
    label=None,
    labels=None,
    spans=None,
    request_id: str | None = None,
    unsure: bool = False,
    comment: str = "",
    lead_time_ms: int | None = None,
    guideline: Guideline | None = None,
) -> Annotation:
    """Record the annotator's label(s) for the item under the current guideline version.

    - `label` (single-label) or `labels` (multi-label): names or class ids of the project;
      `spans` (span projects): `[{start, end, label}]` on the item's text, `[]` for none.
    - `request_id`: a client id per submission; a retry with the same id returns the stored
      annotation instead of writing again.
    - Submitting again for an item already labeled under this version changes the label; the
      previous value is kept as an `AnnotationRevision`.
    - Releases the annotator's lease. Refuses (ItemFull) a new annotation for an item whose
      round is already full and that the annotator holds no lease on; a gold question is
      never full and does not count towards `done_count` (`labeling.services.gold`).
    - `guideline`: the current version when the caller has it (`selectors.current_guideline`
      with the request's access costs no query); read here otherwise.
    """
    project = item.project
    comment, lead_time_ms, request_id = _clean_extras(comment, lead_time_ms, request_id)
    classes = _label_classes(project)
    if project.is_spans:
        label_class, label_ids = None, []
        span_list = _resolve_spans(project, item, spans, classes)
    else:
        label_class, label_ids = _resolve_labels(project, label, labels, classes)
        span_list = []
    guideline = guideline or selectors.current_guideline(project=project, with_text=False)
    if guideline is None:
        raise ValidationError({"detail": "The project has no published guideline yet."})
    shown = _suggestion_record(project=project, item=item, annotator=annotator)
    with connection.cursor() as cursor:
        state = _lock_and_read(cursor, item=item, project=project, annotator=annotator,
                               request_id=request_id)  # fmt: skip
        earlier = next((a for a in state.mine if request_id and a.request_id == request_id), None)
        if earlier is not None:
            if earlier.item_id != item.pk:
                raise ValidationError(
                    {"request_id": "This request id was already used for another item."}
                )
            return Annotation.objects.select_related("item").get(pk=earlier.id)
        existing = next(
            (a for a in state.mine if a.item_id == item.pk and a.guideline_id == guideline.pk),
            None,
        )
        in_round = any(a.item_id == item.pk and a.in_round for a in state.mine)
        # Gold questions: no overlap (everyone answers each once), no regular progress.
        if not in_round and not state.is_gold and annotator.pk not in state.leased:
            if state.done_count + len(state.leased) >= project.overlap:
                raise ItemFull(
                    {"item": "This item already has all the annotations it needs; take the next."}
                )
        if existing is None:
            annotation = Annotation(
                project=project,
                item=item,
                annotator=annotator,
                guideline=guideline,
                label=label_class,
                labels=label_ids,
                spans=span_list,
                unsure=bool(unsure),
                comment=comment,
                lead_time_ms=lead_time_ms,
                request_id=request_id,
                **shown,
            )
            rawsql.insert(annotation)
            queue_scores.annotation_counted(project=project)  # may ask for a model refresh
            webhooks.emit(
                project_id=project.pk,
                event="annotation.created",
                data=lambda: _annotation_event(annotation, classes),
            )
        else:
            annotation = _change(
                Annotation.objects.get(pk=existing.id),
                label_class=label_class,
                label_ids=label_ids,
                span_list=span_list,
                unsure=unsure,
                comment=comment,
                lead_time_ms=lead_time_ms,
                request_id=request_id,
                shown=shown,
            )
        new_in_round = not in_round and not state.is_gold
        _release_and_count(cursor, item=item, annotator=annotator, new_in_round=new_in_round)
        if new_in_round and state.done_count + 1 == project.overlap:
            webhooks.emit(
                project_id=project.pk,
                event="item.completed",
                data={"item": item.pk, "external_id": item.external_id, "overlap": project.overlap},
            )
        if state.is_gold:
            gold_answer_recorded(project=project, annotator=annotator)
    annotation.item = item
    return annotation


def _annotation_event(annotation: Annotation, classes: dict) -> dict:
    """The `data` of an `annotation.created` webhook event (README, "Webhooks")."""
    names = {pk: c.name for pk, c in classes["by_id"].items()}
    return {
        "annotation": annotation.pk,
        "item": annotation.item.pk,
        "external_id": annotation.item.external_id,
        "annotator": annotation.annotator.username,
        "guideline_version": annotation.guideline.version,
        "label": names.get(annotation.label_id),
        "labels": [names.get(pk) for pk in annotation.labels],
        "spans": span_rules.spans_as_dicts(annotation.spans, names),
        "unsure": annotation.unsure,
    }


def _suggestion_record(*, project: Project, item: Item, annotator) -> dict:
    """The Annotation fields recording the suggestion the annotator was shown.

    The server decides, by the rule the page and the `next` API display it by
    (`selectors.suggestion_shown`: mode, the pair's stable share, the item's Suggestion), so
    a client cannot claim a suggestion it was not given, and costs nothing when suggestions
    are off. A suggestion refreshed between showing and submitting records the new one.
    """
    shown = selectors.suggestion_shown(project=project, item_id=item.pk, annotator_id=annotator.pk)
    if shown is None:
        return {"suggestion_model": "", "suggestion_label_id": None, "suggestion_spans": None}
    return {
        "suggestion_model": shown.model,
        "suggestion_label_id": shown.label_id,
        "suggestion_spans": shown.spans if project.is_spans else None,
    }


def _release_and_count(cursor, *, item: Item, annotator, new_in_round: bool) -> None:
    """Release the annotator's lease and update the item's lease summary (the item is locked);
    a new annotator in the round adds one to `done_count`."""
    release = f"DELETE FROM {Lease._meta.db_table} WHERE item_id = %s AND annotator_id = %s"
    summary, summary_params = lease_summary(but_annotator_id=annotator.pk)
    item_table = Item._meta.db_table
    count = f"UPDATE {item_table} SET done_count = done_count + %s, {summary} WHERE id = %s"
    count_params = [int(new_in_round), *summary_params, item.pk]
    if connection.vendor == "postgresql":  # one round trip instead of two
        released = f"WITH released AS ({release}) {count}"
        cursor.execute(released, [item.pk, annotator.pk, *count_params])
    else:
        cursor.execute(release, [item.pk, annotator.pk])
        cursor.execute(count, count_params)


class Mine(NamedTuple):
    """One of the annotator's annotations of the item, or the one with the request id."""

    id: int
    item_id: int
    request_id: str | None
    guideline_id: int
    in_round: bool  # made in the item's current round


class ItemState(NamedTuple):
    done_count: int
    is_gold: bool
    mine: list[Mine]
    leased: set[int]  # annotators holding an active lease on the item


def _lock_and_read(cursor, *, item: Item, project: Project, annotator, request_id) -> ItemState:
    """Lock the item row, then read the annotator's annotations and the item's leases.

    The row lock serializes every write to this item's round (and claims of it); the second
    statement runs after the lock is granted, so it sees every claim committed before.
    Also fills in `item.external_id`, and refuses an item of another project.
    """
    lock = "FOR UPDATE" if connection.features.has_select_for_update else ""
    cursor.execute(
        f"SELECT external_id, done_count, is_gold FROM {Item._meta.db_table}"
        f" WHERE id = %s AND project_id = %s {lock}",
        [item.pk, project.pk],
    )
    row = cursor.fetchone()
    if row is None:
        raise ValidationError({"item": "No such item in this project."})
    item.external_id, done_count, is_gold = row
    annotation_table, lease_table = Annotation._meta.db_table, Lease._meta.db_table
    by_request = "OR a.request_id = %s" if request_id else ""
    cursor.execute(
        f"""
        SELECT a.id, a.item_id, a.request_id, a.guideline_id,
            (i.relabel_requested_at IS NULL OR a.updated_at >= i.relabel_requested_at)
        FROM {annotation_table} a JOIN {Item._meta.db_table} i ON i.id = a.item_id
        WHERE a.annotator_id = %s AND (a.item_id = %s {by_request})
        UNION ALL
        SELECT NULL, NULL, NULL, annotator_id, NULL FROM {lease_table}
        WHERE item_id = %s AND expires_at > %s
        """,
        [annotator.pk, item.pk, *([request_id] if request_id else []), item.pk]
        + [connection.ops.adapt_datetimefield_value(timezone.now())],
    )
    rows = cursor.fetchall()
    return ItemState(
        done_count=done_count,
        is_gold=bool(is_gold),
        mine=[Mine(*row) for row in rows if row[0] is not None],
        leased={r[3] for r in rows if r[0] is None},
    )


def _change(existing: Annotation, *, label_class, label_ids, span_list, unsure, comment,
            lead_time_ms, request_id, shown: dict) -> Annotation:  # fmt: skip
    """Change the annotator's label within the same version, keeping the old value."""
    AnnotationRevision.objects.create(
        annotation=existing,
        label_id=existing.label_id,
        labels=existing.labels,
        spans=existing.spans,
        unsure=existing.unsure,
        comment=existing.comment,
    )
    existing.label = label_class
    existing.labels = label_ids
    existing.spans = span_list
    existing.unsure = bool(unsure)
    existing.comment = comment
    if lead_time_ms is not None:
        existing.lead_time_ms = (existing.lead_time_ms or 0) + lead_time_ms
    if request_id:
        existing.request_id = request_id
    for field, value in shown.items():  # what was shown when the label was last chosen
        setattr(existing, field, value)
    existing.save()
    return existing


@transaction.atomic
def annotation_skip(*, item: Item, annotator, reason: str) -> Skip:
    """Pass on an item under the current version (with a reason); releases the lease."""
    project = item.project
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why you skip this item."})
    if len(reason) > 255:
        raise ValidationError({"reason": "At most 255 characters."})
    guideline = selectors.current_guideline(project=project)
    if guideline is None:
        raise ValidationError({"detail": "The project has no published guideline yet."})
    skip, created = Skip.objects.get_or_create(
        item=item, annotator=annotator, guideline=guideline, defaults={"reason": reason}
    )
    if not created and skip.reason != reason:
        skip.reason = reason
        skip.save(update_fields=["reason"])
    leases_release(item=item, annotator=annotator)
    return skip


@transaction.atomic
def annotation_undo_last(*, project: Project, annotator) -> Item | None:
    """Reopen the annotator's last labeled (or skipped) item under the current version.

    Undo does not delete anything: the item comes back to the annotator with their label
    preselected, and submitting again changes it (the old value is kept as a revision). An
    undone skip is removed, so the item may come back in the queue. None: nothing to undo.
    """
    guideline = selectors.current_guideline(project=project)
    if guideline is None:
        return None
    last_annotation = (
        Annotation.objects.filter(project=project, annotator=annotator, guideline=guideline)
        .order_by("-updated_at", "-id")
        .select_related("item")
        .first()
    )
    last_skip = (
        Skip.objects.filter(item__project=project, annotator=annotator, guideline=guideline)
        .order_by("-created_at", "-id")
        .select_related("item")
        .first()
    )
    if last_skip is not None and (
        last_annotation is None or last_skip.created_at > last_annotation.updated_at
    ):
        item = last_skip.item
        last_skip.delete()
        return item
    return last_annotation.item if last_annotation is not None else None
