"""Importing a Label Studio JSON export: tasks become items, annotations keep their authors."""

import io
import json

import pytest
from django.contrib.auth import get_user_model

from labeling.importing.jobs import import_file
from labeling.models import Annotation, Item, Profile
from tests.factories import make_project

pytestmark = pytest.mark.django_db
User = get_user_model()


def choice(*labels):
    return [
        {
            "id": "r1",
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": list(labels)},
        }
    ]


def export() -> list[dict]:
    """The shape Label Studio 1.x writes with "Export -> JSON"."""
    return [
        {
            "id": 101,
            "data": {"text": "Great phone, battery lasts.", "source": "amazon"},
            "meta": {"device": "mobile"},
            "annotations": [
                {"id": 1, "completed_by": 7, "result": choice("positive"), "was_cancelled": False},
                {
                    "id": 2,
                    "completed_by": {"id": 8, "email": "lee@example.org", "first_name": "Lee"},
                    "result": choice("positive"),
                },
                {"id": 3, "completed_by": 9, "result": choice("negative"), "was_cancelled": True},
            ],
            "predictions": [{"result": choice("negative")}],
        },
        {
            "id": 102,
            "data": {"text": "Worst film I've seen.", "source": "imdb"},
            "annotations": [
                {
                    "id": 4,
                    "completed_by": {"id": 10, "username": "kim"},
                    "result": choice("negative"),
                },
                {"id": 5, "completed_by": 7, "result": choice("negative")},
                {"id": 6, "completed_by": 7, "result": []},
            ],
        },
        {
            "id": 103,
            "data": {"text": "Nobody labeled me yet.", "source": "yelp"},
            "annotations": [],
        },
    ]


def run_import(project, user, tasks, **options):
    return import_file(
        project=project,
        fileobj=io.BytesIO(json.dumps(tasks, indent=1).encode()),
        filename="project-1-export.json",
        format="labelstudio",
        kind=options.pop("kind", "items"),
        options=options,
        user=user,
    )


def test_label_studio_export_imports_items_and_annotations_by_their_authors(make_user):
    manager = make_user()
    project = make_project(manager, labels=("negative", "positive"))
    batch = run_import(project, manager, export(), metadata_columns="source")
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 3
    items = {i.external_id: i for i in Item.objects.filter(project=project)}
    assert set(items) == {"101", "102", "103"}
    assert items["101"].data == {"text": "Great phone, battery lasts."}
    assert items["101"].metadata == {"device": "mobile", "source": "amazon"}
    assert items["103"].metadata == {"source": "yelp"}

    stored = sorted(
        Annotation.objects.filter(project=project).values_list(
            "item__external_id", "annotator__username", "label__name"
        )
    )
    assert stored == [
        ("101", "labelstudio-7", "positive"),
        ("101", "lee@example.org", "positive"),
        ("102", "kim", "negative"),
        ("102", "labelstudio-7", "negative"),
    ]
    authors = User.objects.filter(username__in=["labelstudio-7", "lee@example.org", "kim"])
    assert authors.count() == 3
    assert not authors.filter(is_active=True).exists()
    assert Profile.objects.filter(user__in=authors, is_external=True).count() == 3


def test_export_with_an_unknown_choice_imports_nothing(make_user):
    manager = make_user()
    project = make_project(manager, labels=("negative", "positive"))
    tasks = export()
    tasks[1]["annotations"][0]["result"] = choice("neutral")
    batch = run_import(project, manager, tasks)
    assert batch.status == "failed"
    assert batch.errors == [{"row": 2, "reason": "unknown label 'neutral'"}]
    assert not Item.objects.filter(project=project).exists()
    assert not User.objects.filter(username="kim").exists()


def test_annotations_only_import_attaches_to_existing_items(make_user):
    manager = make_user()
    project = make_project(manager, labels=("negative", "positive"))
    assert run_import(project, manager, export()[2:]).rows == 1  # task 103 only
    tasks = [
        {
            "id": 103,
            "data": {"text": "Nobody labeled me yet."},
            "annotations": [
                {"completed_by": {"email": "sam@example.org"}, "result": choice("positive")}
            ],
        }
    ]
    batch = run_import(project, manager, tasks, kind="annotations")
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 1
    annotation = Annotation.objects.get(project=project)
    assert (annotation.item.external_id, annotation.label.name) == ("103", "positive")


def test_truncated_export_is_rejected(make_user):
    manager = make_user()
    project = make_project(manager)
    content = json.dumps(export())[:-40].encode()
    batch = import_file(
        project=project,
        fileobj=io.BytesIO(content),
        filename="cut.json",
        format="labelstudio",
        kind="items",
        options={},
        user=manager,
    )
    assert batch.status == "failed"
    assert "JSON" in batch.errors[0]["reason"]
    assert not Item.objects.filter(project=project).exists()
