"""CSV and TSV files: columns by header or by position, delimiters, ids, row-level checks."""

import pytest

from labeling.models import Item
from tests.factories import make_project
from tests.labeling.importing.uploads import assert_rejected, good_rows, run_import, sentiment_csv

pytestmark = pytest.mark.django_db


def test_row_numbers_stay_exact_past_blank_lines_and_thousands_of_rows(project, manager):
    content = (
        "external_id,text\n"
        + good_rows(3000)
        + "\n"  # row 3002: blank, skipped, keeps its number
        + good_rows(1500, 3000)
        + "id-10,again\n"  # row 4503
        + good_rows(2000, 4500)
    )
    batch = run_import(project, manager, content.encode())
    assert_rejected(
        batch, project, [{"row": 4503, "reason": "duplicate external_id 'id-10' within the file"}]
    )


def test_missing_column_names_the_column(project, manager):
    batch = run_import(project, manager, b"id,text\n1,hello\n")
    assert batch.status == "failed"
    assert batch.errors[0]["row"] == 1
    assert batch.errors[0]["reason"].startswith("Missing column 'external_id'")


def test_missing_metadata_column_names_the_column(project, manager):
    batch = run_import(project, manager, b"external_id,text\n1,hello\n", metadata_columns="source")
    assert batch.errors[0]["reason"].startswith("Missing column 'source'")


def test_row_with_wrong_number_of_columns(project, manager):
    batch = run_import(project, manager, b"external_id,text\n1,hello\n2,hi,extra\n")
    assert_rejected(batch, project, [{"row": 3, "reason": "expected 2 columns, found 3"}])


def test_empty_text_and_empty_id_are_both_listed(project, manager):
    batch = run_import(project, manager, b"external_id,text\n1,  \n,orphan\n3,ok\n")
    assert_rejected(
        batch,
        project,
        [{"row": 2, "reason": "empty text"}, {"row": 3, "reason": "empty external_id"}],
    )


def test_oversize_field(project, manager, settings):
    settings.CONCORD_IMPORT_MAX_FIELD_CHARS = 1000
    content = b"external_id,text\na,short\nb," + b"x" * 1001 + b"\n"
    batch = run_import(project, manager, content)
    assert_rejected(
        batch, project, [{"row": 3, "reason": "field 'text' is longer than 1,000 characters"}]
    )


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
