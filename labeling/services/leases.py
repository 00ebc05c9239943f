"""Leases and the lease summary on the item: the one home of every lease release.

A `Lease` holds an item for an annotator until it expires (`labeling.services.queue` claims
it). The claim must know whether other annotators' active leases already fill an item's
round; probing the lease table for every item it passes over was most of the database's
CPU per submission with hundreds of annotators thinking (each holds a lease on the item on
their screen, so the front of the queue is full of leased items).

So each item carries a summary of its lease rows: `lease_count` and `leases_expire_at` (the
earliest expiry), set from the rows by every lease write, in the writer's transaction (the
claim and the submit hold the item row locked while they write it). The claim passes over an
item whose summary says leases that are all still active fill its round (`LOOKS_OPEN` is
false); every other item goes on to the exact check against the lease rows. A stale summary
therefore costs a probe, or keeps an item back until its earliest recorded expiry at worst,
and never lets an item's overlap be over-filled.
"""

from django.db import connection

from labeling.models import Item, Lease

ITEM, LEASE = Item._meta.db_table, Lease._meta.db_table

# Over the claim's item `i`; params: now, the project's overlap.
LOOKS_OPEN = "(i.lease_count = 0 OR i.leases_expire_at <= %s OR i.done_count + i.lease_count < %s)"


def lease_summary(
    *, but_annotator_id: int | None = None, plus_expiry: str | None = None
) -> tuple[str, list]:
    """The SET clause that recomputes the updated item's summary from its lease rows, and its
    params. A statement does not see its own writes, so `but_annotator_id` leaves out that
    annotator's lease (one the statement deletes or rewrites), and `plus_expiry` (SQL, e.g. a
    CTE's column; PostgreSQL) adds the lease the statement writes."""
    mine, params = "", []
    if but_annotator_id is not None:
        mine, params = " AND s.annotator_id <> %s", [but_annotator_id]
    rows = f"FROM {LEASE} s WHERE s.item_id = {ITEM}.id{mine}"
    count, earliest = f"(SELECT COUNT(*) {rows})", f"(SELECT MIN(s.expires_at) {rows})"
    if plus_expiry is not None:
        count, earliest = f"{count} + 1", f"LEAST({earliest}, {plus_expiry})"
    return f"lease_count = {count}, leases_expire_at = {earliest}", params * 2


def leases_summarize(cursor, item_ids) -> None:
    """Set the lease summary of these items from their lease rows, in one statement."""
    item_ids = list(item_ids)
    if not item_ids:
        return
    summary, params = lease_summary()
    cursor.execute(
        f"UPDATE {ITEM} SET {summary} WHERE id IN ({', '.join(['%s'] * len(item_ids))})",
        params + item_ids,
    )


def leases_release(*, annotator, item: Item | None = None, project=None) -> None:
    """Delete the annotator's lease on `item`, or on every item of `project`, and update the
    summary of the items released. A single item is locked first, as the claim locks it."""
    with connection.cursor() as cursor:
        if item is not None:
            if connection.features.has_select_for_update:
                cursor.execute(f"SELECT 1 FROM {ITEM} WHERE id = %s FOR UPDATE", [item.pk])
            which, params = "item_id = %s", [item.pk]
        else:
            which = f"item_id IN (SELECT id FROM {ITEM} WHERE project_id = %s)"
            params = [project.pk]
        cursor.execute(
            f"DELETE FROM {LEASE} WHERE annotator_id = %s AND {which} RETURNING item_id",
            [annotator.pk, *params],
        )
        leases_summarize(cursor, {item_id for (item_id,) in cursor.fetchall()})
