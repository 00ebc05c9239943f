"""JSON Lines: one object per line, fields and metadata kept, a bad line named."""

import json

import pytest

from labeling.models import Item
from tests.factories import make_project
from tests.labeling.importing.uploads import run_import

pytestmark = pytest.mark.django_db


def test_jsonl_items_keep_fields_and_metadata(make_user):
    manager = make_user()
    project = make_project(manager)
    lines = [
        {"external_id": "r1", "text": "good", "lang": "en", "metadata": {"region": "eu"}},
        {"external_id": 2, "text": "bad", "lang": "de", "score": 0.5},
    ]
    content = "\n".join(json.dumps(line) for line in lines).encode()
    batch = run_import(project, manager, content, format="jsonl", metadata_columns="lang")
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 2
    r1, r2 = Item.objects.filter(project=project).order_by("external_id")
    assert (r1.external_id, r1.data, r1.metadata) == (
        "2",
        {"text": "bad", "score": 0.5},
        {"lang": "de"},
    )
    assert r2.data == {"text": "good"}
    assert r2.metadata == {"region": "eu", "lang": "en"}


def test_a_line_that_is_not_json_fails_the_import_naming_its_row(project, manager):
    content = b'{"external_id": "a", "text": "ok"}\n{"external_id": "b", "text": \n'
    batch = run_import(project, manager, content, format="jsonl")
    assert batch.status == "failed"
    assert batch.errors[0]["row"] == 2
    assert batch.errors[0]["reason"].startswith("not valid JSON")


def test_an_empty_id_column_numbers_the_items_by_their_line(make_user):
    manager = make_user()
    project = make_project(manager)
    content = b'{"text": "first"}\n\n{"text": "third", "external_id": "kept as a field"}\n'
    batch = run_import(project, manager, content, format="jsonl", id_column="")
    assert batch.status == "succeeded", batch.errors
    stored = Item.objects.filter(project=project).order_by("id")
    assert list(stored.values_list("external_id", "data")) == [
        ("1", {"text": "first"}),
        ("3", {"text": "third", "external_id": "kept as a field"}),
    ]
