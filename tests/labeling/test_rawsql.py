"""Hand-written statements give the same model instances as the ORM they stand in for.

`labeling.rawsql` builds instances from cursor rows through each field's converters; every
model it reads on the annotator's hot path is compared here, field by field, with what the
ORM returns for the same rows (JSON, datetimes, nulls, booleans), on SQLite and PostgreSQL.
"""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
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
