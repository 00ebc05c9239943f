"""Sending items back to be labeled again under the newest guideline version.

A relabel request starts a new round for the item: `relabel_requested_at` is set and
`done_count` goes back to 0, so the item needs `overlap` annotations made from now on; it
comes first in every queue until it has them. Earlier annotations stay (with their versions)
for history and per-version agreement. Annotators who labeled the item before may label it
again (a re-submission under the same version changes their annotation and keeps a revision).

Sending back every item above a disagreement threshold needs analysis's entropy, so it lives
in analysis/services/relabeling.py and calls `relabel_request`.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.models import Item, Project

CHUNK = 5_000
MAX_ITEMS_PER_REQUEST = 1_000_000


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
def relabel_request(*, project: Project, item_ids) -> int:
    """Send the chosen items back to the queues; returns how many were requested.

    Relabel requests are for reviewers and managers: the caller checked the role.
    """
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
