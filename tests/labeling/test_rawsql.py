"""The code below the ORM gives what the ORM would, on SQLite and PostgreSQL.

`labeling.rawsql` builds instances from cursor rows through each field's converters; every
model it reads on the annotator's hot path is compared here, field by field, with what the
ORM returns for the same rows (JSON, datetimes, nulls, booleans). Rows written by COPY (or its
bulk_create fallback) read back through the ORM as written, awkward values included; a NUL
character is refused on both databases. Integer arrays, driver rows and positions match
what the ORM and plain Python give.
"""

import json
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone
from rest_framework.authtoken.models import Token

from labeling import rawsql
from labeling.models import Annotation, Guideline, Item, LabelClass, Project
from labeling.services.guidelines import guideline_draft_update, guideline_publish
from tests.factories import make_project

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def rows(make_user):
    """Rows with the awkward values: nested and unicode JSON, nulls, empty strings, times."""
    manager = make_user("rawsql-manager", first_name="Zoë", is_staff=True)
    project = make_project(manager, labels=("négatif", "positive"), overlap=3, ordered=True)
    Token.objects.create(user=manager)
    Item.objects.bulk_create(
        [
            Item(
                project=project,
                external_id="i1",
                data={"text": "naïve ☃\nline two", "nested": {"a": [1, 2.5, None, True]}},
                metadata={"source": "yelp", "score": 3},
                done_count=2,
                relabel_requested_at=timezone.now() - timedelta(days=1),
            ),
            Item(project=project, external_id="i2", data={"image": "data:image/png;base64,AA=="}),
            Item(project=project, external_id="i3", data=[1, "two"], metadata={}),
        ]
    )
    guideline_draft_update(project=project, body="# Rules\r\nnaïve", user=manager)
    guideline_publish(project=project, user=manager, changelog="first")
    return project


def orm_and_raw(model, attnames, queryset):
    ids = sorted(queryset.values_list("pk", flat=True))
    assert ids, f"no {model.__name__} rows to compare"
    fields = attnames or tuple(f.attname for f in model._meta.concrete_fields)
    orm = list(model.objects.filter(pk__in=ids).order_by("pk").only(*fields))
    placeholders = ", ".join(["%s"] * len(ids))
    raw = rawsql.fetch(
        model,
        f"SELECT {rawsql.columns(model, attnames)} FROM {model._meta.db_table}"
        f" WHERE {model._meta.pk.column} IN ({placeholders}) ORDER BY {model._meta.pk.column}",
        ids,
        attnames,
    )
    return fields, orm, raw


@pytest.mark.parametrize(
    "model, attnames",
    [
        (Project, None),  # labeling.permissions.project_for
        (Item, None),  # labeling.services.queue
        (Guideline, ("id", "project_id", "version", "published_at")),  # selectors
        (LabelClass, ("id", "project_id", "name")),  # labeling.services.annotating
        (User, None),  # labeling.api.authentication
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else str(value),
)
def test_fetch_builds_the_instances_the_orm_builds(rows, model, attnames):
    queryset = model.objects.all()
    fields, orm, raw = orm_and_raw(model, attnames, queryset)
    assert len(raw) == len(orm)
    for from_orm, from_raw in zip(orm, raw, strict=True):
        assert type(from_raw) is model
        assert not from_raw._state.adding
        for name in fields:
            assert getattr(from_raw, name) == getattr(from_orm, name), (model.__name__, name)
            assert type(getattr(from_raw, name)) is type(getattr(from_orm, name)), name


def test_extra_columns_come_back_beside_the_instance(rows):
    project = rows
    ((found, extra),) = rawsql.fetch_with_extra(
        Project,
        f"SELECT {rawsql.columns(Project, alias='p')}, 41 + 1 AS answer"
        f" FROM {Project._meta.db_table} p WHERE p.id = %s",
        [project.pk],
    )
    assert (found.pk, found.name, extra) == (project.pk, project.name, (42,))
    assert rawsql.fetch_one(Project, "SELECT 1 WHERE 1 = 0", []) is None


def test_insert_stores_what_save_stores(rows):
    project = rows
    user = User.objects.get(username="rawsql-manager")
    item = Item.objects.get(project=project, external_id="i1")
    label = project.labels.get(name="négatif")
    guideline = project.current_guideline()
    fields = dict(
        project=project,
        item=item,
        guideline=guideline,
        label=label,
        labels=[label.pk],
        unsure=True,
        comment="ünïcode",
        lead_time_ms=1234,
    )
    by_raw = Annotation(annotator=user, request_id="raw", **fields)
    rawsql.insert(by_raw)
    other = User.objects.create_user("rawsql-other")
    by_orm = Annotation.objects.create(annotator=other, request_id="orm", **fields)

    stored_raw = Annotation.objects.get(pk=by_raw.pk)
    stored_orm = Annotation.objects.get(pk=by_orm.pk)
    assert by_raw.pk is not None and not by_raw._state.adding
    skip = {"id", "annotator_id", "request_id", "created_at", "updated_at"}
    for field in Annotation._meta.concrete_fields:
        if field.attname not in skip:
            assert getattr(stored_raw, field.attname) == getattr(stored_orm, field.attname), (
                field.attname
            )
    # auto_now(_add) are filled in as save() would
    assert stored_raw.created_at is not None and stored_raw.updated_at is not None
    assert abs(stored_raw.created_at - stored_orm.created_at) < timedelta(minutes=1)


# --- COPY in: what goes in comes back out through the ORM, on either database -----------------

AWKWARD_IDS = [
    "naïve ☃ 東京 🙂",
    "tab\there",
    "line\nbreak",
    "carriage\r\nreturn",
    "back\\slash \\N \\t",
    "\\.",  # COPY's end-of-data marker in text format, when a line holds only it
    "'quotes' \"double\" ,commas;",
]
AWKWARD_DATA = {
    "text": 'tab\there\nnew line \\ backslash "quote" ☃',
    "nested": [1, 2.5, None, True, {"é": "\\u0000 is six characters here, not a NUL"}],
    "empty": "",
}


def item_rows(project, ids):
    now = timezone.now()
    return [
        (project.pk, external_id, {**AWKWARD_DATA, "n": n}, {"id": external_id}, now, n)
        for n, external_id in enumerate(ids)
    ]


COPY_COLUMNS = ["project_id", "external_id", "data", "metadata", "created_at", "done_count"]


def stored(project, ids):
    found = {
        item.external_id: item for item in Item.objects.filter(project=project, external_id__in=ids)
    }
    return [found.get(external_id) for external_id in ids]


def test_copy_in_rows_round_trips_unicode_tabs_line_breaks_backslashes_and_json(rows):
    project = rows
    rawsql.copy_in_rows(Item, COPY_COLUMNS, item_rows(project, AWKWARD_IDS))
    items = stored(project, AWKWARD_IDS)
    assert [item.external_id for item in items] == AWKWARD_IDS
    for n, item in enumerate(items):
        assert item.data == {**AWKWARD_DATA, "n": n}
        assert item.metadata == {"id": AWKWARD_IDS[n]}
        assert item.done_count == n


def test_copy_in_rows_fills_columns_left_out_with_their_defaults(rows):
    # A column added after the caller was written (NOT NULL, Django default) must not break it.
    project = rows
    bare = (project.pk, "bare", {"text": "only the required columns"}, timezone.now())
    rawsql.copy_in_rows(Item, ["project_id", "external_id", "data", "created_at"], [bare])
    item = Item.objects.get(project=project, external_id="bare")
    assert (item.metadata, item.done_count) == ({}, 0)


def test_copy_in_rows_refuses_a_nul_character_and_writes_nothing(rows):
    project = rows
    before = Item.objects.count()
    for external_id, data in (("nul\x00id", {}), ("nul-in-json", {"text": "a\x00b"})):
        good = item_rows(project, ["fine-1", "fine-2"])
        bad = (project.pk, external_id, data, {}, timezone.now(), 0)
        with pytest.raises(rawsql.NulRefused, match="NUL"), transaction.atomic():
            rawsql.copy_in_rows(Item, COPY_COLUMNS, [*good, bad])
    assert Item.objects.count() == before


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="copy_in_text is PostgreSQL's COPY; its callers keep a bulk_create branch elsewhere",
)
def test_copy_in_text_round_trips_escaped_lines_and_fills_defaults(rows):
    project = rows
    given = ("project_id", "external_id", "data", "metadata", "created_at")
    extra_names, extra_values = rawsql.copy_defaults(Item, given)
    # NOT NULL with a Python default: COPY must fill it
    assert extra_names == ", done_count, is_gold, lease_count"
    now = timezone.now().isoformat()
    lines = [
        f"{project.pk}\t{rawsql.copy_escape(external_id)}"
        f"\t{rawsql.copy_escape(json.dumps(AWKWARD_DATA))}\t{{}}\t{now}{extra_values}\n"
        for external_id in AWKWARD_IDS
    ]
    rawsql.copy_in_text(
        f"COPY {Item._meta.db_table} ({', '.join(given)}{extra_names}) FROM STDIN", lines
    )
    items = stored(project, AWKWARD_IDS)
    assert [item.external_id for item in items] == AWKWARD_IDS
    assert all(item.data == AWKWARD_DATA and item.done_count == 0 for item in items)

    before = Item.objects.count()
    with pytest.raises(rawsql.NulRefused), transaction.atomic():
        rawsql.copy_in_text(
            f"COPY {Item._meta.db_table} ({', '.join(given)}{extra_names}) FROM STDIN",
            [f"{project.pk}\tnul\x00\t{{}}\t{{}}\t{now}{extra_values}\n"],
        )
    assert Item.objects.count() == before


# --- integer arrays and positions ---------------------------------------------------------------


def test_int_rows_reads_what_values_list_reads(rows):
    project = rows
    queryset = Item.objects.filter(project=project).order_by("id").values_list("id", "done_count")
    array = rawsql.int_rows(queryset, width=2)
    assert array.dtype == np.int64
    assert array.tolist() == [list(row) for row in queryset]
    empty = rawsql.int_rows(queryset.filter(external_id="none"), width=2)
    assert empty.shape == (0, 2)
    with pytest.raises(ValueError, match="3 columns, not 2"):
        rawsql.int_rows(queryset.values_list("id", "done_count", "project_id"), width=2)


def test_driver_rows_read_text_columns_as_values_list_does(rows):
    project = rows
    queryset = (
        Item.objects.filter(project=project)
        .order_by("id")
        .values_list("id", "external_id", KeyTextTransform("text", "data"))
    )
    assert rawsql.driver_rows(queryset) == list(queryset)
    assert ("i1", "naïve ☃\nline two") in [row[1:] for row in rawsql.driver_rows(queryset)]


def test_positions_finds_each_id_in_a_sorted_array_or_answers_minus_one(rows):
    project = rows
    among = rawsql.int_rows(
        Item.objects.filter(project=project).order_by("id").values_list("id"), width=1
    )[:, 0]
    ids = [int(among[-1]), 0, int(among[0]), int(among[-1]) + 1, int(among[1])]
    expected = [among.tolist().index(i) if i in among.tolist() else -1 for i in ids]
    found = rawsql.positions(ids, among)
    assert found.dtype == np.int64
    assert found.tolist() == expected == [len(among) - 1, -1, 0, -1, 1]
    assert rawsql.positions(ids, np.zeros(0, np.int64)).tolist() == [-1] * len(ids)
    assert rawsql.positions([], among).tolist() == []
