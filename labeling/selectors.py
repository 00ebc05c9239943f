"""Reads that are more than a one-line filter."""

import datetime as dt
import hashlib
from typing import NamedTuple

import numpy as np
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Count, F, Prefetch, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from labeling import rawsql
from labeling.models import (
    Annotation,
    Guideline,
    Item,
    LabelClass,
    Lease,
    Project,
    Review,
    Skip,
    Suggestion,
    Webhook,
    WebhookDelivery,
)
from labeling.permissions import ProjectAccess
from labeling.spans import spans_as_dicts


def item_json_keys(*, project: Project, field: str, types: bool = True) -> dict[str, set[str]]:
    """The keys of the items' `data` or `metadata` JSON objects and the JSON types seen per key.

    One aggregate query over all items (no row per item reaches Python). Types are
    "string", "int", "float", "bool", "object", "array" ("null" values are left out);
    with types=False only the keys are found (about 3x faster) and every type set is empty.
    """
    assert field in ("data", "metadata")
    table = Item._meta.db_table
    if not types:
        if connection.vendor == "postgresql":
            sql = f"""
                SELECT DISTINCT jsonb_object_keys(i.{field}) FROM {table} i
                WHERE i.project_id = %s AND jsonb_typeof(i.{field}) = 'object'
            """
        else:
            sql = f"""
                SELECT DISTINCT e.key FROM {table} i, json_each(i.{field}) e
                WHERE i.project_id = %s AND json_type(i.{field}) = 'object'
            """
        with connection.cursor() as cursor:
            cursor.execute(sql, [project.pk])
            return {key: set() for (key,) in cursor.fetchall()}
    if connection.vendor == "postgresql":
        sql = f"""
            SELECT e.key, jsonb_typeof(e.value),
                   bool_and(e.value::text ~ '^-?[0-9]+$')
                       FILTER (WHERE jsonb_typeof(e.value) = 'number')
            FROM {table} i,
                 jsonb_each(CASE jsonb_typeof(i.{field}) WHEN 'object' THEN i.{field}
                            ELSE '{{}}'::jsonb END) e
            WHERE i.project_id = %s
            GROUP BY 1, 2
        """
    else:
        sql = f"""
            SELECT e.key, e.type, 1
            FROM {table} i, json_each(i.{field}) e
            WHERE i.project_id = %s AND json_type(i.{field}) = 'object'
            GROUP BY 1, 2
        """
    names = {
        "string": "string",
        "text": "string",
        "boolean": "bool",
        "true": "bool",
        "false": "bool",
        "integer": "int",
        "real": "float",
        "object": "object",
        "array": "array",
    }
    keys: dict[str, set[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk])
        for key, json_type, integral in cursor.fetchall():
            kinds = keys.setdefault(key, set())
            if json_type == "null":
                continue
            if json_type == "number":
                kinds.add("int" if integral else "float")
            else:
                kinds.add(names.get(json_type, "string"))
    return keys


# --- The annotator queue and labeling progress (annotator workflow) ---------------------------


def current_guideline(
    *, project: Project | None = None, access: ProjectAccess | None = None, with_text: bool = True
) -> Guideline | None:
    """The newest published guideline version of a project (None before the first).

    Give the `project`, or the `access` that `permissions.project_for` returned: it read the
    version's id and number with the role, in the same statement, so with `with_text=False`
    no query runs. Otherwise `with_text=False` leaves out the body and changelog (hot paths
    need only id and version) and reads it without the ORM, and with the text this is
    `project.current_guideline()`.
    """
    if access is not None:
        if not with_text:
            if access.guideline_id is None:
                return None
            return Guideline.from_db(
                DEFAULT_DB_ALIAS,
                ("id", "project_id", "version"),
                (access.guideline_id, access.project.pk, access.guideline_version),
            )
        project = access.project
    if not with_text:
        # Raw SQL: the queue and the submit service ask on every call (see labeling/rawsql.py);
        # the rule of `GuidelineQuerySet.current`, written out.
        fields = ("id", "project_id", "version", "published_at")
        return rawsql.fetch_one(
            Guideline,
            f"SELECT {rawsql.columns(Guideline, fields)} FROM {Guideline._meta.db_table}"
            " WHERE project_id = %s AND published_at IS NOT NULL ORDER BY version DESC LIMIT 1",
            [project.pk],
            fields,
        )
    return project.current_guideline()


def annotation_rows_for_api(*, project: Project, filters: dict):
    """Annotations of a project for the API list, oldest first (filters already role-checked)."""
    return (
        Annotation.objects.filter(project=project, **filters)
        .select_related("item", "annotator", "guideline")
        .only(
            "id", "item__id", "item__external_id", "annotator__username", "guideline__version",
            "label_id", "labels", "spans", "unsure", "comment", "lead_time_ms", "request_id",
            "created_at", "updated_at", "suggestion_model", "suggestion_label_id",
        )
        .order_by("id")
    )  # fmt: skip


def annotation_dicts(*, project: Project, rows, names: dict | None = None) -> list[dict]:
    """Annotations as the API shows them (label names instead of class ids).

    `names`: {class id: name} when the caller has them already.
    """
    if names is None:
        names = dict(LabelClass.objects.filter(project=project).values_list("id", "name"))
    spans = project.is_spans
    return [
        {
            "id": a.pk,
            "item": a.item_id,
            "external_id": a.item.external_id,
            "annotator": a.annotator.username,
            "label": names.get(a.label_id),
            "labels": [names.get(i, str(i)) for i in (a.labels or [])],
            **({"spans": spans_as_dicts(a.spans, names)} if spans else {}),
            "unsure": a.unsure,
            "comment": a.comment,
            "lead_time_ms": a.lead_time_ms,
            "guideline_version": a.guideline.version,
            "request_id": a.request_id,
            "suggestion_model": a.suggestion_model,
            "suggestion_label": names.get(a.suggestion_label_id),
            "created_at": a.created_at,
            "updated_at": a.updated_at,
        }
        for a in rows
    ]


def labeling_progress(*, project: Project, annotator, guideline) -> dict:
    """The annotator's own queue: what they labeled under this version, what is left for them.

    `done`: their annotations under `guideline`. `available`: items the queue rules would
    still give them: open items (their round has fewer than `overlap` annotations) minus the
    open items they labeled in this round or skipped under this version (other annotators'
    leases are left out: they expire). `percent` = done / (done + available).

    Three counts, each read from an index: the open items (`item_queue_idx`), the annotator's
    annotations (`project, annotator`) and their skips (the annotator's foreign key), so the
    cost follows the number of open items and the annotator's own work, never a row loop.
    """
    overlap = project.overlap
    done = Annotation.objects.filter(
        project=project, annotator=annotator, guideline=guideline
    ).count()
    # Gold questions are not part of the queue's progress (`labeling.services.gold`).
    open_items = Item.objects.filter(project=project, done_count__lt=overlap, is_gold=False).count()
    labeled_in_round = (
        Annotation.objects.filter(
            project=project,
            annotator=annotator,
            item__done_count__lt=overlap,
            item__is_gold=False,
        )
        .filter(
            Q(item__relabel_requested_at__isnull=True)
            | Q(updated_at__gte=F("item__relabel_requested_at"))
        )
        .values("item_id")
    )
    skipped = Skip.objects.filter(
        annotator=annotator,
        guideline=guideline,
        item__project=project,
        item__done_count__lt=overlap,
        item__is_gold=False,
    ).values("item_id")
    # UNION (not ALL): an item both labeled and skipped is one item.
    not_for_them = labeled_in_round.union(skipped).count()
    available = max(open_items - not_for_them, 0)
    return {
        "done": done,
        "available": available,
        "percent": round(100 * done / (done + available), 1) if done + available else 0.0,
    }


def labeling_dashboard(*, project: Project, guideline=None) -> dict:
    """Items by state in their current round, per-annotator figures, throughput by period.

    The per-annotator figures and the throughput count the annotations made under `guideline`
    (None: under every version), streamed as arrays (no ORM object per row); the states
    describe the items now, whatever version their labels came from.
    Returns states {not_started, in_progress, complete}, annotators [{username, n, n_unsure,
    median_seconds}], throughput [{period, n}] with hourly periods for spans up to three days,
    daily beyond.
    """
    now = timezone.now()
    counts = Item.objects.filter(project=project, is_gold=False).aggregate(
        not_started=Count("id", filter=Q(done_count=0)),
        in_progress=Count("id", filter=Q(done_count__gt=0, done_count__lt=project.overlap)),
        complete=Count("id", filter=Q(done_count__gte=project.overlap)),
    )
    # Items claimed but not yet labeled count as in progress.
    claimed = (
        Lease.objects.filter(
            item__project=project, item__done_count=0, item__is_gold=False, expires_at__gt=now
        )
        .values("item")
        .distinct()
        .count()
    )
    states = {
        "not_started": counts["not_started"] - claimed,
        "in_progress": counts["in_progress"] + claimed,
        "complete": counts["complete"],
    }
    annotations = Annotation.objects.filter(project=project)
    if guideline is not None:
        annotations = annotations.filter(guideline=guideline)
    rows = annotations.values_list("annotator_id", "lead_time_ms", "unsure", "created_at")
    annotator_ids, lead_ms, unsure, stamps = [], [], [], []
    for annotator_id, lead, is_unsure, created in rows.iterator(chunk_size=20_000):
        annotator_ids.append(annotator_id)
        lead_ms.append(np.nan if lead is None else lead)
        unsure.append(is_unsure)
        stamps.append(created.timestamp())
    annotator_ids = np.asarray(annotator_ids, dtype=np.int64)
    lead_ms = np.asarray(lead_ms, dtype=np.float64)
    unsure = np.asarray(unsure, dtype=bool)
    stamps = np.asarray(stamps, dtype=np.float64)
    names = dict(
        get_user_model()
        .objects.filter(pk__in=np.unique(annotator_ids).tolist())
        .values_list("pk", "username")
    )
    annotators = []
    for annotator_id in np.unique(annotator_ids):
        mask = annotator_ids == annotator_id
        leads = lead_ms[mask]
        leads = leads[~np.isnan(leads)]
        annotators.append(
            {
                "username": names.get(int(annotator_id), str(annotator_id)),
                "n": int(mask.sum()),
                "n_unsure": int(unsure[mask].sum()),
                "median_seconds": round(float(np.median(leads)) / 1000, 1) if len(leads) else None,
            }
        )
    annotators.sort(key=lambda row: (-row["n"], row["username"]))
    throughput = []
    if len(stamps):
        span = stamps.max() - stamps.min()
        step = 3600 if span <= 3 * 86400 else 86400
        buckets = (stamps // step).astype(np.int64)
        periods, n = np.unique(buckets, return_counts=True)
        full = np.arange(periods.min(), periods.max() + 1)
        n_full = np.zeros(len(full), dtype=np.int64)
        n_full[np.searchsorted(full, periods)] = n
        fmt = "%Y-%m-%d %H:00" if step == 3600 else "%Y-%m-%d"
        throughput = [
            {
                "period": dt.datetime.fromtimestamp(int(p) * step, tz=dt.UTC).strftime(fmt),
                "n": int(k),
            }
            for p, k in zip(full, n_full, strict=True)
        ]
    return {
        "states": states,
        "total": sum(states.values()),
        "annotators": annotators,
        "throughput": throughput,
        "n_annotations": len(annotator_ids),
    }


def items_with_span_label(*, project: Project, label_id: int) -> RawSQL:
    """The ids of the project's items with a span of `label_id` in an annotation or review
    (for `pk__in`): raw SQL, since no ORM lookup reaches into the `[start, end, label_id]`
    lists, and a raw subquery is not re-aliased inside the outer query."""
    annotation, review, item = (
        Annotation._meta.db_table,
        Review._meta.db_table,
        Item._meta.db_table,
    )
    if connection.vendor == "postgresql":  # strict: lax mode would flatten the inner lists
        has = (
            "jsonb_path_exists({}.spans, 'strict $[*] ? (@[2] == $label)',"
            " jsonb_build_object('label', %s::int))"
        )
    else:
        has = (
            "EXISTS (SELECT 1 FROM json_each({}.spans)"
            " WHERE json_extract(json_each.value, '$[2]') = %s)"
        )
    sql = (
        f"SELECT a.item_id FROM {annotation} a WHERE a.project_id = %s AND {has.format('a')}"
        f" UNION SELECT r.item_id FROM {review} r JOIN {item} i ON i.id = r.item_id"
        f" WHERE i.project_id = %s AND {has.format('r')}"
    )
    return RawSQL(sql, [project.pk, label_id, project.pk, label_id])


def labels_contain(rows, label_id: int):
    """Rows (annotations or reviews) whose multi-label `labels` JSON list holds `label_id`.

    PostgreSQL answers with jsonb containment; SQLite has no JSON `contains`, so json_each.
    """
    if connection.vendor == "postgresql":
        return rows.filter(labels__contains=[label_id])
    table = rows.model._meta.db_table
    return rows.extra(
        where=[f"EXISTS (SELECT 1 FROM json_each({table}.labels) WHERE json_each.value = %s)"],
        params=[label_id],
    )


class ShownSuggestion(NamedTuple):
    """The model suggestion an annotator is shown for an item (`suggestion_shown`)."""

    model: str
    label_id: int | None
    label: str | None  # the label's name (None on span projects)
    probability: float | None
    spans: list  # span projects: `[[start, end, label_id], ...]`
    prefill: bool  # pre-selected (`prefill`) rather than shown beside the item (`show`)


def suggestion_share(*, project: Project, item_id: int, annotator_id: int) -> float:
    """A stable number in [0, 1) per (item, annotator): the pair is shown a suggestion when
    it is below `project.suggestion_rate`. A hash, not a random draw, so a reload (or the
    submission) finds the same answer, and raising the rate only adds pairs."""
    key = f"{project.pk}:{item_id}:{annotator_id}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64


def suggestion_shown(
    *, project: Project, item_id: int, annotator_id: int
) -> ShownSuggestion | None:
    """What the annotator is shown for the item: the item's Suggestion of the project's
    `suggestion_model`, when suggestions are on and the pair falls in `suggestion_rate`'s
    share; None otherwise. The annotate page, the `next` API and `annotation_submit` all
    ask this, so what is recorded is what was shown (README, "Suggestions and anchoring")."""
    if project.suggestions == Project.Suggestions.OFF:
        return None
    if project.suggestion_rate < 1 and not (
        suggestion_share(project=project, item_id=item_id, annotator_id=annotator_id)
        < project.suggestion_rate
    ):
        return None
    row = (
        Suggestion.objects.filter(item_id=item_id, model=project.suggestion_model)
        .values_list("label_id", "label__name", "probability", "spans")
        .first()
    )
    if row is None:
        return None
    label_id, name, probability, spans = row
    return ShownSuggestion(
        model=project.suggestion_model,
        label_id=label_id,
        label=name,
        probability=probability,
        spans=spans or [],
        prefill=project.suggestions == Project.Suggestions.PREFILL,
    )


def suggestion_dict(*, project: Project, shown: ShownSuggestion) -> dict:
    """A shown suggestion as the `next` API answers it (spans by label name)."""
    answer = {
        "model": shown.model,
        "label": shown.label,
        "probability": shown.probability,
        "mode": "prefill" if shown.prefill else "show",
    }
    if project.is_spans:
        names = dict(LabelClass.objects.filter(project=project).values_list("id", "name"))
        answer["spans"] = spans_as_dicts(shown.spans, names)
    return answer


def suggestion_count(*, project: Project) -> int:
    """How many items have a suggestion of the project's `suggestion_model`."""
    return Suggestion.objects.filter(item__project=project, model=project.suggestion_model).count()


WEBHOOK_LOG_SHOWN = 20


def webhooks_with_log(*, project: Project) -> list[Webhook]:
    """The project's webhooks, each with its newest WEBHOOK_LOG_SHOWN delivery attempts as
    `log` (two queries whatever the number of webhooks)."""
    newest = WebhookDelivery.objects.order_by("-created_at", "-id")[:WEBHOOK_LOG_SHOWN]
    return list(
        Webhook.objects.filter(project=project)
        .select_related("created_by")
        .prefetch_related(Prefetch("deliveries", queryset=newest, to_attr="log"))
    )
