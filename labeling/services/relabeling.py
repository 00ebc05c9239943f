"""Sending items back to be labeled again under the newest guideline version.

A relabel request starts a new round for the item: `relabel_requested_at` is set and
`done_count` goes back to 0, so the item needs `overlap` annotations made from now on; it
comes first in every queue until it has them. Earlier annotations stay (with their versions)
for history and per-version agreement. Annotators who labeled the item before may label it
again (a re-submission under the same version changes their annotation and keeps a revision).
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from analysis import loaders
from analysis.metrics.disagreement import label_entropy
from labeling import selectors
from labeling.models import Item, Project
from labeling.permissions import REVIEWER, has_role

CHUNK = 5_000
MAX_ITEMS_PER_REQUEST = 1_000_000


def _require_reviewer(project: Project, user) -> None:
    if not has_role(user, project, REVIEWER):
        raise PermissionDenied("Relabel requests need the reviewer or manager role.")


def _item_ids(item_ids) -> list[int]:
    try:
        ids = sorted({int(i) for i in item_ids})
    except (TypeError, ValueError):
        raise ValidationError({"items": "Give a list of item ids."}) from None
    if not ids:
        raise ValidationError({"items": "Choose at least one item."})
    if len(ids) > MAX_ITEMS_PER_REQUEST:
        raise ValidationError({"items": f"At most {MAX_ITEMS_PER_REQUEST} items at once."})
    return ids


@transaction.atomic
def relabel_request(*, project: Project, item_ids, user) -> int:
    """Send the chosen items back to the queues; returns how many were requested."""
    _require_reviewer(project, user)
    ids = _item_ids(item_ids)
    now = timezone.now()
    updated = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        found = Item.objects.filter(project=project, pk__in=chunk).update(
            relabel_requested_at=now, done_count=0
        )
        if found != len(chunk):
            known = set(
                Item.objects.filter(project=project, pk__in=chunk).values_list("pk", flat=True)
            )
            missing = [i for i in chunk if i not in known][:20]
            raise ValidationError({"items": f"Not items of this project: {missing}."})
        updated += found
    return updated


def disagreeing_item_ids(*, project: Project, threshold: float) -> list[int]:
    """Items whose label entropy under the current version is above `threshold` (0..1).

    Entropy is normalized by log(number of classes); only items with two or more labels.
    """
    guideline = selectors.current_guideline(project=project)
    if guideline is None:
        return []
    rows = loaders.annotation_rows(project=project, version=guideline.version)
    if rows.n_items == 0:
        return []
    entropy, _ = label_entropy(rows.item_index, rows.label_index, rows.n_items, rows.n_classes)
    return [int(i) for i in rows.item_ids[entropy > threshold]]


def relabel_by_disagreement(*, project: Project, threshold, user) -> int:
    """Send back every item whose annotators disagree more than `threshold` (0..1)."""
    _require_reviewer(project, user)
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ValidationError({"threshold": "A number between 0 and 1."}) from None
    if not 0.0 <= threshold < 1.0:
        raise ValidationError({"threshold": "A number from 0 up to (not including) 1."})
    if project.is_multi_label:
        raise ValidationError(
            {
                "threshold": "Disagreement thresholds work on single-label projects; "
                "choose the items instead."
            }
        )
    ids = disagreeing_item_ids(project=project, threshold=threshold)
    if not ids:
        return 0
    return relabel_request(project=project, item_ids=ids, user=user)
