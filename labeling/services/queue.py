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
- Scored orders (`uncertainty`, `activelab`): after the relabel requests, items by
  `Item.priority` ascending (the model-refresh job writes it: lowest = the label that helps
  most), started or not: overlap stays the cap on labels per item, and the score decides
  which items with room get their next label, so an item labeled by others may come before a
  fresh one. Items not scored yet (priority NULL: imported since the last refresh, or no
  refresh so far) come after every scored item, in import order (started first).
- A claim is a `Lease` that expires after `CONCORD_LEASE_SECONDS`; submitting or skipping
  releases it. Asking again while a lease is active returns the same item (reload = same item).

Concurrency: on PostgreSQL a claim locks the candidate item row with `FOR UPDATE SKIP LOCKED`
(claimers never wait for each other) and re-counts done + leases under that lock before the
lease is written; submitting locks the same row, so the overlap can never be over-filled. A
claim that finds nothing while a candidate's row is held by a transaction in flight tries
again a moment later (`IN_FLIGHT_RETRIES`), so "nothing left" is never said of an item that
still needs the annotator. On SQLite transactions are IMMEDIATE, so claims are serialized and
the same checks hold. Two tabs of one annotator asking at the same instant may each claim an
item (or share one); both can be submitted, and a lease left over simply expires.
"""

import time
from datetime import timedelta
from functools import partial
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from labeling import rawsql, selectors
from labeling.models import Annotation, Guideline, Item, Lease, Project, Skip
from labeling.services.gold import gold_claim
from labeling.services.leases import LOOKS_OPEN, lease_summary, leases_summarize

# Candidates can turn out full under the lock: other annotators hold leases on them (up to two
# per annotator: the current item and the prefetched one) or their counter was stale. Giving up
# means "nothing left" to the annotator, so the cap sits far above what leases alone can fill
# (200 full items need 300 annotators racing at overlap 3); each attempt is one indexed query.
MAX_CLAIM_ATTEMPTS = 200
# How far into the relabel requests and the started items a claim looks (see `_candidate`).
CANDIDATE_WINDOW = 200
# SKIP LOCKED passes over an item whose row another transaction holds (a submit or a claim in
# flight). A claim that finds nothing else would tell the annotator "nothing left" while that
# item may still need them once the other transaction commits; so when a claim without locks
# still sees a candidate, the claim is tried again a moment later, in a new transaction.
IN_FLIGHT_RETRIES = 10
IN_FLIGHT_PAUSE_SECONDS = 0.02

# The queue runs on every "next" of every annotator, so its statements are written out once
# here (one round trip each, no ORM compilation per call). Table names come from the models.
ITEM, ANNOTATION, LEASE = Item._meta.db_table, Annotation._meta.db_table, Lease._meta.db_table
SKIP = Skip._meta.db_table
ITEM_SELECT = rawsql.columns(Item, alias="i")

SCORED_ORDERS = (Project.QueueOrder.UNCERTAINTY, Project.QueueOrder.ACTIVELAB)
RELABEL_REQUESTED = "i.relabel_requested_at IS NOT NULL"
FIRST_ROUND = "i.relabel_requested_at IS NULL"

# A fixed bijective scramble of item ids; the project's seed shifts it (seeded random order).
# (id + shift) * multiplier stays within 64 bits for ids below 10**9.
SCRAMBLE_MULTIPLIER = 2654435761
SCRAMBLE_MODULUS = 4294967291


class Tier(NamedTuple):
    """One statement of the claim: which items (SQL over `i`), in which order (columns of the
    window, or of the scan when not windowed; None: the order's key), whether it looks at the
    first `CANDIDATE_WINDOW` of them only, and a condition the window's rows must then meet."""

    which: str
    order: str | None
    windowed: bool
    then: str = ""


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
    the current one). Returns None when nothing is left for this annotator. Gold questions
    come first when `labeling.services.gold` says so (it raises AnnotatorPaused for a paused
    annotator).
    """
    guideline = guideline or selectors.current_guideline(project=project, with_text=False)
    if guideline is None:
        return None
    excluded = {int(pk) for pk in exclude_item_ids}
    for _ in range(IN_FLIGHT_RETRIES):
        in_flight: list[int] = []
        item = _next_item_once(project, annotator, excluded, guideline, in_flight)
        if item is not None or not in_flight:
            return item
        time.sleep(IN_FLIGHT_PAUSE_SECONDS)
    return _next_item_once(project, annotator, excluded, guideline, [])


def _next_item_once(project, annotator, excluded: set, guideline, in_flight: list) -> Item | None:
    """`next_item` in one transaction; adds to `in_flight` the id of a candidate that only
    other transactions' row locks kept from this claim."""
    with transaction.atomic(), connection.cursor() as cursor:
        # The annotator's active leases, oldest first, and (a row without a lease) whether any
        # relabel request is open, to skip that tier's statement when none is.
        now = timezone.now()
        cursor.execute(
            f"""
            SELECT l.item_id, l.expires_at, l.id FROM {LEASE} l JOIN {ITEM} i ON i.id = l.item_id
            WHERE l.annotator_id = %s AND i.project_id = %s AND l.expires_at > %s
            UNION ALL
            SELECT NULL, NULL, NULL WHERE EXISTS (
                SELECT 1 FROM {ITEM} WHERE project_id = %s
                AND relabel_requested_at IS NOT NULL AND done_count < %s
            )
            ORDER BY 2, 3
            """,
            [annotator.pk, project.pk, _adapt(now), project.pk, project.overlap],
        )
        rows = cursor.fetchall()
        leased = [item_id for item_id, *_ in rows if item_id is not None]
        open_relabels = any(item_id is None for item_id, *_ in rows)
        current = next((pk for pk in leased if pk not in excluded), None)
        if current is not None:
            sql = f"SELECT {ITEM_SELECT} FROM {ITEM} i WHERE i.id = %s"
            return rawsql.fetch_one(Item, sql, [current])
        regular = partial(
            _claim,
            cursor,
            project=project,
            annotator=annotator,
            guideline=guideline,
            now=now,
            rejected=excluded,
            open_relabels=open_relabels,
            in_flight=in_flight,
        )
        return gold_claim(
            project=project,
            annotator=annotator,
            guideline=guideline,
            excluded=excluded,
            lease_seconds=lease_seconds(),
            regular=regular,
        )


def _adapt(value):
    return connection.ops.adapt_datetimefield_value(value)  # SQLite stores its own text format


def _candidate(
    *, project, annotator, guideline, now, rejected: set, open_relabels: bool, locking=True
) -> Item | None:
    """The first item the queue rules allow for this annotator, locked (unless `locking` is
    False), or None.

    Index-driven statements that stop at their first passing row: open relabel requests
    (`item_relabel_idx`), then started items before fresh ones (`item_queue_idx` = project,
    done_count descending, id). On PostgreSQL the row is locked `FOR UPDATE SKIP LOCKED`, so
    concurrent claimers pass over it instead of waiting.

    The first two look among the first `CANDIDATE_WINDOW` items of their order only. Without
    the window, an annotator who already labeled every started item (one annotator working
    alone on an overlap-2 project, say) would have each call walk the whole, ever-growing
    frontier; with it, the cost stays bounded: past the window, a third statement takes fresh
    items, while the started ones wait for the others.

    Scored orders read the partial index `item_priority_idx` (project, priority, id) the
    same way: a window of the first scored items by priority (started or not), then, past
    it, fresh scored items by priority, then the unscored items as in import order (picked
    from the import order's window, then fresh ones). The priority is a stored column (no
    score is computed here), and the literal `priority IS NOT NULL` matches the index's
    predicate, so PostgreSQL's generic plan (prepared statements, `plan_cache_mode =
    force_generic_plan`) reads the index in order and stops at the first passing row, as the
    custom plan does (0.3-0.4 ms at 100,000 items, both plans). The job writes NULL for full
    items, so the scan does not walk items nobody may label; past the window, the scans pass
    over the started items that still have room (the frontier the score keeps open), never
    the whole project.
    """
    if project.queue_order in SCORED_ORDERS:
        return _first_passing(
            _scored_tiers(open_relabels),
            project=project,
            annotator=annotator,
            guideline=guideline,
            now=now,
            rejected=rejected,
            order_key="i.id",
            rank="",
            locking=locking,
        )
    if project.queue_order == Project.QueueOrder.RANDOM:
        shift = (int(project.queue_seed) % 100_003) * 7919
        order_key = f"((i.id + {shift}) * {SCRAMBLE_MULTIPLIER}) %% {SCRAMBLE_MODULUS}"
        rank = "rank, "
    else:
        # Import order: no rank column, so PostgreSQL's generic (prepared) plan still sees
        # the window ordered as the index is and stops at the first passing row.
        order_key, rank = "i.id", ""
    tiers = [
        Tier(RELABEL_REQUESTED, f"requested, {rank}id", windowed=True),
        # Started items first, then fresh ones: one scan while the window reaches them.
        Tier(FIRST_ROUND, f"done_count DESC, {rank}id", windowed=True),
        # Past a window full of started items: fresh items only. In import order they are
        # read in the queue index's order: `done_count <= 0` (never below 0, so = 0) keeps
        # PostgreSQL from reading "ORDER BY id" off the primary key instead, which walks past
        # every completed item when its statistics still say that none is (measured with
        # bench/labeling_load.py --open-loop: 1.9-4 ms a claim after 3,000 completed items).
        Tier(f"{FIRST_ROUND} AND i.done_count <= 0", "done_count DESC, id", windowed=False)
        if not rank
        else Tier(f"{FIRST_ROUND} AND i.done_count = 0", None, windowed=False),
    ]
    if not open_relabels:
        del tiers[0]
    return _first_passing(
        tiers,
        project=project,
        annotator=annotator,
        guideline=guideline,
        now=now,
        rejected=rejected,
        order_key=order_key,
        rank=rank,
        locking=locking,
    )


def _scored_tiers(open_relabels: bool) -> list[Tier]:
    """The tiers of the `uncertainty` and `activelab` orders (see `_candidate`)."""
    scored, unscored = "i.priority IS NOT NULL", "i.priority IS NULL"
    tiers = [
        Tier(RELABEL_REQUESTED, "requested, id", windowed=True),
        # The most useful labels first, whether others labeled the item already or not.
        Tier(f"{FIRST_ROUND} AND {scored}", "priority, id", windowed=True),
        # Past a window of scored items this annotator cannot take: fresh scored items.
        Tier(f"{FIRST_ROUND} AND {scored} AND i.done_count = 0", "priority, id", windowed=False),
        # Not scored yet (imported since the last refresh): as in import order. The unscored
        # are picked from the import order's own window, so the scan never walks the scored.
        Tier(FIRST_ROUND, "done_count DESC, id", windowed=True, then=unscored),
        Tier(f"{FIRST_ROUND} AND {unscored} AND i.done_count = 0", "id", windowed=False),
    ]
    return tiers if open_relabels else tiers[1:]


def _first_passing(
    tiers: list[Tier],
    *,
    project,
    annotator,
    guideline,
    now,
    rejected: set,
    order_key: str,
    rank: str,
    locking: bool,
) -> Item | None:
    """The first item of the first tier that has one this annotator may claim, locked (when
    `locking`)."""
    overlap = project.overlap
    mine_in_round = f"""
        SELECT 1 FROM {ANNOTATION} a WHERE a.item_id = i.id AND a.annotator_id = %s
        AND (i.relabel_requested_at IS NULL OR a.updated_at >= i.relabel_requested_at)
    """
    not_rejected = f"AND i.id NOT IN ({', '.join(['%s'] * len(rejected))})" if rejected else ""
    skip_locked = connection.features.has_select_for_update_skip_locked
    lock = "FOR UPDATE OF i SKIP LOCKED" if skip_locked and locking else ""
    allowed = f"""
        i.done_count + (
            SELECT COUNT(*) FROM {LEASE} l
            WHERE l.item_id = i.id AND l.expires_at > %s AND l.annotator_id <> %s
        ) < %s
        AND NOT EXISTS (
            SELECT 1 FROM {SKIP} s
            WHERE s.item_id = i.id AND s.annotator_id = %s AND s.guideline_id = %s
        )
        AND NOT EXISTS ({mine_in_round})
    """
    allowed_params = [_adapt(now), annotator.pk, overlap, annotator.pk, guideline.pk, annotator.pk]
    for which, order, windowed, then in tiers:
        # Gold questions come by the gold path only (`labeling/services/gold.py`). Items the
        # lease summary shows full pass without a probe of the lease table (services/leases.py).
        candidates = (
            f"i.project_id = %s AND i.done_count < %s AND NOT i.is_gold AND {which} "
            f"AND {LOOKS_OPEN} {not_rejected}"
        )
        params = [project.pk, overlap, _adapt(now), overlap, *rejected]
        if windowed:
            # The tier's first items in queue order, read lazily: the outer LIMIT 1 stops at
            # the first row that passes, or at the end of the window.
            sql = f"""
                SELECT {ITEM_SELECT} FROM (
                    SELECT i.id, i.done_count, i.relabel_requested_at AS requested,
                        i.priority, {order_key} AS rank
                    FROM {ITEM} i WHERE {candidates}
                    ORDER BY {order} LIMIT {CANDIDATE_WINDOW}
                ) c JOIN {ITEM} i ON i.id = c.id
                WHERE i.done_count < %s {"AND " + then if then else ""} AND {allowed}
                ORDER BY {", ".join("c." + key for key in order.split(", "))} LIMIT 1 {lock}
            """
            params.append(overlap)  # re-checked on the row itself
        else:
            by = f"{order_key}, i.id"
            if order:
                by = ", ".join("i." + key for key in order.split(", "))
            sql = f"""
                SELECT {ITEM_SELECT} FROM {ITEM} i WHERE {candidates} AND {allowed}
                ORDER BY {by} LIMIT 1 {lock}
            """
        params += allowed_params
        item = rawsql.fetch_one(Item, sql, params)
        if item is not None:
            return item
    return None


def _claim(
    cursor,
    *,
    project,
    annotator,
    guideline,
    now,
    rejected: set,
    open_relabels: bool,
    in_flight: list,
) -> Item | None:
    rejected = set(rejected)
    find = partial(
        _candidate,
        project=project,
        annotator=annotator,
        guideline=guideline,
        now=now,
        rejected=rejected,
        open_relabels=open_relabels,
    )
    for _ in range(MAX_CLAIM_ATTEMPTS):
        item = find()
        if item is None:
            if connection.features.has_select_for_update_skip_locked:
                held = find(locking=False)  # what the committed rows allow, locked or not
                if held is not None:
                    in_flight.append(held.pk)
            return None
        room = _lease_if_room(
            cursor,
            item=item,
            annotator=annotator,
            guideline=guideline,
            now=now,
            overlap=project.overlap,
        )
        if room:
            return item
        _count_refresh(cursor, item=item)
        rejected.add(item.pk)
    return None


def _round_annotators(item: Item) -> tuple[str, list]:
    """SQL (and parameters) for the annotators in the item's current round."""
    round_start = item.relabel_requested_at
    sql = f"SELECT annotator_id FROM {ANNOTATION} WHERE item_id = %s"
    if round_start is None:
        return sql, [item.pk]
    return sql + " AND updated_at >= %s", [item.pk, _adapt(round_start)]


def _lease_if_room(cursor, *, item: Item, annotator, guideline, now, overlap: int) -> bool:
    """Lease the locked item to the annotator if its round still has room; True if leased.

    A statement of its own, so it counts every claim committed since the candidate query (a
    fresh snapshot): the annotators in the round plus the other annotators' active leases.
    An expired lease of this annotator on the item may still exist: it is overwritten.
    """
    in_round, round_params = _round_annotators(item)
    expires = now + timedelta(seconds=lease_seconds())
    lease = f"""
        INSERT INTO {LEASE} (item_id, annotator_id, guideline_id, expires_at)
        SELECT %s, %s, %s, %s
        WHERE %s NOT IN ({in_round})
        AND (
            SELECT COUNT(*) FROM (
                {in_round}
                UNION
                SELECT annotator_id FROM {LEASE}
                WHERE item_id = %s AND expires_at > %s AND annotator_id <> %s
            ) AS taken
        ) < %s
        ON CONFLICT (item_id, annotator_id)
        DO UPDATE SET guideline_id = excluded.guideline_id, expires_at = excluded.expires_at
        RETURNING expires_at
    """
    params = [item.pk, annotator.pk, guideline.pk, _adapt(expires), annotator.pk, *round_params]
    params += [*round_params, item.pk, _adapt(now), annotator.pk, overlap]
    if connection.vendor != "postgresql":
        cursor.execute(lease, params)
        leased = cursor.fetchone() is not None
        if leased:
            leases_summarize(cursor, [item.pk])
        return leased
    # The item's lease summary in the same round trip: the other annotators' rows and this
    # lease (no row when there was no room, so nothing is updated).
    summary, summary_params = lease_summary(
        but_annotator_id=annotator.pk, plus_expiry="leased.expires_at"
    )
    cursor.execute(
        f"WITH leased AS ({lease}) UPDATE {ITEM} SET {summary} FROM leased"
        f" WHERE {ITEM}.id = %s RETURNING {ITEM}.id",
        [*params, *summary_params, item.pk],
    )
    return cursor.fetchone() is not None


def _count_refresh(cursor, *, item: Item) -> None:
    """Set the item's `done_count` from its annotations (a bulk write may have left it behind)."""
    in_round, round_params = _round_annotators(item)
    cursor.execute(
        f"UPDATE {ITEM} SET done_count = (SELECT COUNT(DISTINCT x.annotator_id) "
        f"FROM ({in_round}) x) WHERE id = %s",
        [*round_params, item.pk],
    )


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
