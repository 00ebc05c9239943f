"""Importing items: the three sentiment files (3 x 1000 real sentences) as one CSV."""

import csv
import io
import json

import pytest

from labeling.models import ImportBatch, Item
from labeling.services.importing import import_file
from tests.factories import make_project

pytestmark = pytest.mark.django_db


def sentiment_csv(sentiment_data, *, delimiter=",") -> bytes:
    """external_id,text,source,label from `sentence<TAB>label` files (no header)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["external_id", "text", "source", "label"])
    for path in sorted((sentiment_data).glob("*.tsv")):
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            sentence, label = line.rsplit("\t", 1)
            writer.writerow([f"{path.stem}-{n}", sentence, path.stem, label])
    return out.getvalue().encode()


def run_import(project, user, content: bytes, *, format="csv", kind="items", **options):
    return import_file(
        project=project,
        fileobj=io.BytesIO(content),
        filename=f"upload.{format}",
        format=format,
        kind=kind,
        options=options,
        user=user,
    )


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


def test_tab_separated_file_imports_with_the_delimiter_option(make_user, sentiment_data):
    manager = make_user()
    project = make_project(manager, labels=("0", "1"))
    batch = run_import(
        project,
        manager,
        sentiment_csv(sentiment_data, delimiter="\t"),
        metadata_columns=["source", "label"],
        delimiter="tab",
    )
    assert batch.status == "succeeded", batch.errors
    item = Item.objects.get(project=project, external_id="yelp-1000")
    assert set(item.data) == {"text"}
    assert item.metadata["source"] == "yelp"
    assert item.metadata["label"] in {"0", "1"}


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


def test_tabular_project_keeps_every_other_column_numbers_as_numbers(make_user):
    manager = make_user()
    project = make_project(manager, data_type="tabular")
    content = b"id,age,income,zip,city,segment\nc1,42,1.5e3,02134,Boston,a\nc2,-7,0.25,10001,,b\n"
    batch = run_import(project, manager, content, id_column="id", metadata_columns="segment")
    assert batch.status == "succeeded", batch.errors
    c1 = Item.objects.get(project=project, external_id="c1")
    assert c1.data == {"age": 42, "income": 1500.0, "zip": "02134", "city": "Boston"}
    assert c1.metadata == {"segment": "a"}


def test_image_project_takes_urls_from_the_image_column(make_user):
    manager = make_user()
    project = make_project(manager, data_type="image")
    content = b"external_id,url\nimg1,https://example.org/1.png\nimg2,/media/2.png\n"
    batch = run_import(project, manager, content, image_column="url")
    assert batch.status == "succeeded", batch.errors
    assert Item.objects.get(external_id="img2").data == {"url": "/media/2.png"}


def test_import_items_command_imports_and_prints_errors(make_user, sentiment_data, tmp_path):
    from django.core.management import CommandError, call_command

    manager = make_user()
    project = make_project(manager, labels=("0", "1"))
    good = tmp_path / "sentiment.csv"
    good.write_bytes(sentiment_csv(sentiment_data))
    out = io.StringIO()
    call_command("import_items", project.pk, str(good), "--metadata-columns", "source", stdout=out)
    assert "imported 3,000 rows" in out.getvalue()
    assert Item.objects.filter(project=project).count() == 3000

    err = io.StringIO()
    with pytest.raises(CommandError, match="rejected"):
        call_command("import_items", project.pk, str(good), stderr=err)
    assert err.getvalue().splitlines()[0] == (
        "row 2: external_id 'amazon-1' already exists in the project (on_duplicate=error)"
    )
    out = io.StringIO()
    call_command("import_items", project.pk, str(good), "--on-duplicate", "skip", stdout=out)
    assert "0 rows, 3,000 existing items skipped" in out.getvalue()


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
