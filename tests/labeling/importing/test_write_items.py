"""Writing items: every value stored exactly (COPY on PostgreSQL), existing items skipped or
updated, foreign-key checks handled."""

import csv
import io

import pytest

from labeling.models import ImportBatch, Item
from tests.factories import make_project
from tests.labeling.importing.uploads import run_import, sentiment_csv

pytestmark = pytest.mark.django_db


def test_sentiment_files_import_as_3000_items_with_source_metadata(make_user, sentiment_data):
    manager = make_user()
    project = make_project(manager, labels=("0", "1"))
    batch = run_import(project, manager, sentiment_csv(sentiment_data), metadata_columns="source")
    assert batch.status == ImportBatch.Status.SUCCEEDED, batch.errors
    assert batch.rows == 3000
    assert batch.errors == []
    items = Item.objects.filter(project=project)
    assert items.count() == 3000
    assert items.filter(batch=batch).count() == 3000
    sources = {}
    for metadata in items.values_list("metadata", flat=True):
        sources[metadata["source"]] = sources.get(metadata["source"], 0) + 1
    assert sources == {"amazon": 1000, "imdb": 1000, "yelp": 1000}
    first = items.get(external_id="amazon-1")
    expected = (sentiment_data / "amazon.tsv").read_text().splitlines()[0]
    assert first.data == {"text": expected.rsplit("\t", 1)[0], "label": expected[-1]}
    # Sentences with quotes and backslash-free punctuation survive COPY/JSON exactly.
    quoted = [i for i in items.values_list("data", flat=True) if '"' in i["text"]]
    assert len(quoted) >= 10


def test_text_with_tabs_newlines_backslashes_and_unicode_is_stored_exactly(make_user):
    manager = make_user()
    project = make_project(manager)
    text = 'Line one\n\tline "two" \\ back\\slash \\N ünïcödé 😀\r\nend'
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["external_id", "text"])
    writer.writerow(["a\\b", text])
    batch = run_import(project, manager, out.getvalue().encode("utf-8-sig"))
    assert batch.status == "succeeded", batch.errors
    item = Item.objects.get(project=project)
    assert item.external_id == "a\\b"
    assert item.data["text"] == text


def test_thousands_of_rows_with_special_characters_are_stored_exactly_and_in_order(make_user):
    """Large files are checked and encoded many rows at a time; every value must survive."""
    manager = make_user()
    project = make_project(manager)
    texts = ['quote " back\\slash \\N 100% ünï 😀', "tab\there", "line\nbreak", "plain"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["external_id", "text", "50% source"])
    rows = [(f"id\\{i}", f"{texts[i % 4]} {i}", f"s{i % 3}") for i in range(4500)]
    writer.writerows(rows)
    batch = run_import(project, manager, out.getvalue().encode(), metadata_columns="50% source")
    assert batch.status == "succeeded", batch.errors
    stored = list(
        Item.objects.filter(project=project).values_list("external_id", "data", "metadata")
    )
    assert stored == [
        (external_id, {"text": text}, {"50% source": source}) for external_id, text, source in rows
    ]


def test_database_user_without_replication_role_privilege_still_imports(make_user):
    """The per-row foreign-key checks are skipped only where allowed; elsewhere they run."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("roles and session_replication_role are PostgreSQL features")

    manager = make_user()
    project = make_project(manager)
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE concord_import_plain NOLOGIN")
        cursor.execute("GRANT USAGE ON SCHEMA public TO concord_import_plain")
        cursor.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO concord_import_plain")
        cursor.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO concord_import_plain")
        cursor.execute("SET ROLE concord_import_plain")
    try:
        batch = run_import(project, manager, b"external_id,text\na,one\nb,two\n")
        with connection.cursor() as cursor:
            cursor.execute("SHOW session_replication_role")
            assert cursor.fetchone()[0] == "origin"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    assert batch.status == "succeeded", batch.errors
    assert Item.objects.filter(project=project, batch=batch).count() == 2


def test_foreign_key_checks_are_back_on_after_the_copy(make_user):
    from django.db import connection

    manager = make_user()
    project = make_project(manager)
    assert run_import(project, manager, b"external_id,text\na,one\n").status == "succeeded"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW session_replication_role")
            assert cursor.fetchone()[0] == "origin"


def _numbered_items(n: int, *, empty_at: int | None = None) -> bytes:
    lines = ["external_id,text"]
    lines += [f"item-{i},{'' if i == empty_at else f'text {i}'}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def test_new_items_into_an_empty_project_are_checked_as_they_are_written(make_user, monkeypatch):
    """One pass on PostgreSQL: the separate check never runs (README, Performance: import)."""
    from django.db import connection

    from labeling.importing import jobs

    if connection.vendor != "postgresql":
        pytest.skip("the one-pass import writes by COPY, on PostgreSQL")
    full_checks = []
    check = jobs.validate
    monkeypatch.setattr(jobs, "validate", lambda **kw: full_checks.append(1) or check(**kw))
    manager = make_user()
    project = make_project(manager)
    batch = run_import(project, manager, _numbered_items(20_000))
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 20_000 and full_checks == []
    stored = Item.objects.filter(project=project, batch=batch).order_by("id")
    assert list(stored.values_list("external_id", flat=True)) == [
        f"item-{i}" for i in range(20_000)
    ]
    # A second file into the now non-empty project takes the two passes (ids may exist).
    again = run_import(
        project, manager, b"external_id,text\nitem-0,x\nnew,y\n", on_duplicate="skip"
    )
    assert again.status == "succeeded" and again.rows == 1 and full_checks == [1]


def test_a_bad_row_after_thousands_were_written_imports_nothing_and_is_named(make_user):
    """On PostgreSQL the rows before it were already in the COPY: it is rolled back, and the
    full check lists every problem as for any rejected file."""
    from django.db import connection

    manager = make_user()
    project = make_project(manager)
    content = _numbered_items(20_000, empty_at=19_990) + b"item-5,again\n"
    batch = run_import(project, manager, content)
    assert batch.status == "failed"
    assert batch.errors == [
        {"row": 19_992, "reason": "empty text"},
        {"row": 20_002, "reason": "duplicate external_id 'item-5' within the file"},
    ]
    assert not Item.objects.filter(project=project).exists()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW session_replication_role")
            assert cursor.fetchone()[0] == "origin"
    fixed = run_import(project, manager, _numbered_items(20_000))
    assert fixed.status == "succeeded" and fixed.rows == 20_000


def test_skip_keeps_existing_items_and_adds_new_ones(project, manager, existing):
    batch = run_import(
        project, manager, b"external_id,text\nc,new c\nb,new b\n", on_duplicate="skip"
    )
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 1
    assert "1 existing items skipped" in batch.message
    texts = dict(Item.objects.filter(project=project).values_list("external_id", "data__text"))
    assert texts == {"a": "old a", "b": "old b", "c": "new c"}


def test_update_replaces_data_and_moves_the_item_to_the_new_batch(project, manager, existing):
    batch = run_import(
        project,
        manager,
        b"external_id,text,source\nc,new c,web\nb,new b,web\n",
        on_duplicate="update",
        metadata_columns="source",
    )
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 2
    b = Item.objects.get(project=project, external_id="b")
    assert (b.data, b.metadata, b.batch_id) == ({"text": "new b"}, {"source": "web"}, batch.pk)
    assert Item.objects.filter(project=project).count() == 3
