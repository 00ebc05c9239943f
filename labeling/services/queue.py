"""The annotator's queue: which item comes next, claimed with a lease.

Rules (see README, "Labeling"):

- Each item is labeled in *rounds*. The first round counts every annotation of the item; a
  relabel request (`Item.relabel_requested_at`) starts a new round that counts only the
  annotations made or changed since the request, under the then newest guideline version.
  `Item.done_count` is the number of annotators in the item's current round.
- An annotator gets an item whose round still needs annotations (done + active leases of
  others < overlap), that they have not annotated in this round, and not skipped under the
  current guideline version.
- Order: relabel requests first (oldest request first), then items already started (the
  most advanced first, so items reach their overlap early), then the rest in import order or
  in the project's seeded random order.
- A claim is a `Lease` that expires after `CONCORD_LEASE_SECONDS`; submitting or skipping
  releases it. Asking again while a lease is active returns the same item (reload = same item).

Concurrency: on PostgreSQL a claim locks the candidate item row with `FOR UPDATE SKIP LOCKED`
(claimers never wait for each other) and re-counts done + leases under that lock before the
lease is written; submitting locks the same row, so the overlap can never be over-filled. On
SQLite transactions are IMMEDIATE, so claims are serialized and the same checks hold.
"""

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from labeling import selectors
from labeling.models import Annotation, Guideline, Item, Lease, Membership, Project

# Candidates can turn out full under the lock: other annotators hold leases on them (up to two
# per annotator: the current item and the prefetched one) or their counter was stale. Giving up
# means "nothing left" to the annotator, so the cap sits far above what leases alone can fill
# (200 full items need 300 annotators racing at overlap 3); each attempt is one indexed query.
MAX_CLAIM_ATTEMPTS = 200


def lease_seconds() -> int:
    return int(getattr(settings, "CONCORD_LEASE_SECONDS", 600))


def next_item(
    *,
    project: Project,
    annotator,
    exclude_item_ids=(),
    guideline: Guideline | None = None,
) -> Item | None:
    """The annotator's current item (their oldest active lease), or a newly claimed one.

    `exclude_item_ids`: items the caller already shows (the page prefetches the item after
    the current one). Returns None when nothing is left for this annotator.
    """
    guideline = guideline or selectors.current_guideline(project=project, with_text=False)
    if guideline is None:
        return None
    with transaction.atomic():
        # One claim at a time per annotator (two tabs must not both claim): lock their
        # membership row. The clock is read after the wait.
        Membership.objects.select_for_update().filter(project=project, user=annotator).values_list(
            "pk"
        ).first()
        now = timezone.now()
        lease = (
            Lease.objects.filter(annotator=annotator, item__project=project, expires_at__gt=now)
            .exclude(item_id__in=list(exclude_item_ids))
            .select_related("item")
            .order_by("expires_at", "id")
            .first()
        )
        if lease is not None:
            return lease.item
        return _claim(
            project=project,
            annotator=annotator,
            guideline=guideline,
            now=now,
            exclude_item_ids=set(exclude_item_ids),
        )


def _claim(*, project, annotator, guideline, now, exclude_item_ids: set) -> Item | None:
    rejected = set(exclude_item_ids)
    for _ in range(MAX_CLAIM_ATTEMPTS):
        item = selectors.queue_candidate(
            project=project,
            annotator=annotator,
            guideline=guideline,
            now=now,
            exclude_item_ids=rejected,
            lock=True,
        )
        if item is None:
            return None
        if _has_room(item=item, annotator=annotator, overlap=project.overlap, now=now):
            # An expired lease of this annotator on the item may still exist: overwrite it.
            Lease.objects.bulk_create(
                [
                    Lease(
                        item=item,
                        annotator=annotator,
                        guideline=guideline,
                        expires_at=now + timedelta(seconds=lease_seconds()),
                    )
                ],
                update_conflicts=True,
                unique_fields=["item", "annotator"],
                update_fields=["guideline", "expires_at"],
            )
            return item
        rejected.add(item.pk)
    return None


def _has_room(*, item: Item, annotator, overlap: int, now) -> bool:
    """Re-count the locked item's round (a fresh statement sees every committed claim).

    Also repairs `done_count` when a bulk write (an annotation import) left it behind.
    """
    done, leased = round_and_lease_annotator_ids(item=item, now=now, exclude=annotator.pk)
    if len(done) != item.done_count:
        Item.objects.filter(pk=item.pk).update(done_count=len(done))
        item.done_count = len(done)
    if annotator.pk in done:
        return False
    return len(done) + len(leased - done) < overlap


def round_and_lease_annotator_ids(*, item: Item, now, exclude: int) -> tuple[set, set]:
    """(annotators in the item's current round, other annotators holding an active lease).

    One statement for both (this runs on every claim).
    """
    annotation_table, lease_table = Annotation._meta.db_table, Lease._meta.db_table
    round_start = item.relabel_requested_at
    sql = f"""
        SELECT 1, annotator_id FROM {annotation_table}
        WHERE item_id = %s {"AND updated_at >= %s" if round_start else ""}
        UNION ALL
        SELECT 2, annotator_id FROM {lease_table}
        WHERE item_id = %s AND expires_at > %s AND annotator_id <> %s
    """
    adapt = connection.ops.adapt_datetimefield_value  # SQLite stores its own text format
    params = [item.pk, *([adapt(round_start)] if round_start else []), item.pk, adapt(now), exclude]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {a for kind, a in rows if kind == 1}, {a for kind, a in rows if kind == 2}


def lease_release(*, item: Item, annotator) -> None:
    Lease.objects.filter(item=item, annotator=annotator).delete()


def progress_refresh(*, project: Project, item_ids=None) -> int:
    """Recompute `Item.done_count` from the annotations, in one statement per chunk.

    Call after writing annotations in bulk (imports); returns the number of items updated.
    """
    items = Item.objects.filter(project=project)
    if item_ids is not None:
        items = items.filter(pk__in=list(item_ids))
    if connection.vendor == "postgresql":
        table, annotation_table = Item._meta.db_table, Annotation._meta.db_table
        sql = f"""
            UPDATE {table} AS i SET done_count = c.n
            FROM (
                SELECT i2.id, COUNT(DISTINCT a.annotator_id) AS n
                FROM {table} i2
                LEFT JOIN {annotation_table} a ON a.item_id = i2.id
                    AND (i2.relabel_requested_at IS NULL
                         OR a.updated_at >= i2.relabel_requested_at)
                WHERE i2.project_id = %s {"AND i2.id = ANY(%s)" if item_ids is not None else ""}
                GROUP BY i2.id
            ) c
            WHERE i.id = c.id AND i.done_count <> c.n
        """
        params = [project.pk] + ([list(item_ids)] if item_ids is not None else [])
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount
    # SQLite: a correlated subquery per item, still one statement.
    from django.db.models import OuterRef, Subquery
    from django.db.models.functions import Coalesce

    in_round = (
        Annotation.objects.filter(item=OuterRef("pk"))
        .filter(
            Q(item__relabel_requested_at__isnull=True)
            | Q(updated_at__gte=F("item__relabel_requested_at"))
        )
        .values("item")
        .annotate(n=Count("annotator", distinct=True))
        .values("n")
    )
    return items.update(done_count=Coalesce(Subquery(in_round), 0))
