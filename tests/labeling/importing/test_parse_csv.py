"""CSV and TSV files: columns by header or by position, delimiters, ids, row-level checks."""

import csv
import io

import pytest

from labeling.importing.readers import READ_BYTES
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


def test_a_row_with_the_wrong_number_of_columns_imports_nothing(project, manager):
    batch = run_import(project, manager, b"external_id,text\n1,hello\n2,hi,extra\n")
    assert_rejected(batch, project, [{"row": 3, "reason": "expected 2 columns, found 3"}])


def test_empty_text_and_empty_id_are_both_listed(project, manager):
    batch = run_import(project, manager, b"external_id,text\n1,  \n,orphan\n3,ok\n")
    assert_rejected(
        batch,
        project,
        [{"row": 2, "reason": "empty text"}, {"row": 3, "reason": "empty external_id"}],
    )


def test_a_field_over_the_length_limit_imports_nothing(project, manager, settings):
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


def amazon_lines(sentiment_data) -> list[tuple[str, str]]:
    """(sentence, label) of the headerless `text<TAB>label` file amazon.tsv."""
    lines = (sentiment_data / "amazon.tsv").read_text().splitlines()
    return [tuple(line.rsplit("\t", 1)) for line in lines]


def test_headerless_tsv_names_its_columns_by_position_and_numbers_its_items(
    project, manager, sentiment_data
):
    content = (sentiment_data / "amazon.tsv").read_bytes()
    batch = run_import(
        project,
        manager,
        content,
        filename="amazon.tsv",
        first_row_is_data=True,
        text_column="column1",
        metadata_columns="column2",
    )
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 1000
    expected = [
        (str(row), {"text": sentence}, {"column2": label})
        for row, (sentence, label) in enumerate(amazon_lines(sentiment_data), start=1)
    ]
    stored = Item.objects.filter(project=project).order_by("id")
    assert list(stored.values_list("external_id", "data", "metadata")) == expected
    assert (batch.options["delimiter"], batch.options["id_column"]) == ("tab", "")


@pytest.mark.parametrize("delimiter", [",", "\t", ";"], ids=["comma", "tab", "semicolon"])
def test_the_delimiter_is_found_from_the_first_lines(project, manager, delimiter):
    texts = ["one, two; three", 'a "quoted" word, and more', "semi; colon", "tab\there", "it's"]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["external_id", "text", "source"])
    rows = [(f"id-{i}", f"{texts[i % 5]} {i}", "web") for i in range(40)]
    writer.writerows(rows)
    batch = run_import(project, manager, out.getvalue().encode(), metadata_columns="source")
    assert batch.status == "succeeded", batch.errors
    stored = Item.objects.filter(project=project).values_list("external_id", "data", "metadata")
    assert list(stored.order_by("id")) == [
        (external_id, {"text": text}, {"source": source}) for external_id, text, source in rows
    ]


def test_an_empty_id_column_numbers_the_items_by_their_row(project, manager):
    content = b"text,source\nfirst,web\nsecond,mail\n\nfourth,web\n"
    batch = run_import(project, manager, content, id_column="", metadata_columns="source")
    assert batch.status == "succeeded", batch.errors
    stored = Item.objects.filter(project=project).order_by("id")
    assert list(stored.values_list("external_id", "data__text")) == [
        ("2", "first"),
        ("3", "second"),
        ("5", "fourth"),  # the blank row 4 keeps its number, as errors count rows
    ]


def test_thousands_of_numbered_rows_keep_their_numbers_and_order(project, manager):
    """Many rows are checked and encoded at a time; their numbers must still be exact."""
    content = "".join(f"sentence {i}\t{i % 2}\n" for i in range(1, 4501)).encode()
    batch = run_import(
        project, manager, content, first_row_is_data=True, text_column="column1", delimiter="tab"
    )
    assert batch.status == "succeeded", batch.errors
    stored = Item.objects.filter(project=project).order_by("id")
    assert list(stored.values_list("external_id", "data")) == [
        (str(i), {"text": f"sentence {i}", "column2": str(i % 2)}) for i in range(1, 4501)
    ]


def test_a_missing_id_column_says_which_option_to_set_and_lists_the_columns(project, manager):
    batch = run_import(project, manager, b"text,label\nhello,positive\n")
    assert_rejected(
        batch,
        project,
        [
            {
                "row": 1,
                "reason": "Missing column 'external_id' (the header has: text, label). Set "
                "id_column to one of these columns, or leave id_column empty to number the "
                "items by row; if the file has no header row, set first_row_is_data.",
            }
        ],
    )


def test_a_headerless_file_names_its_columns_by_position_in_errors(project, manager):
    batch = run_import(project, manager, b"hello\tpositive\n", first_row_is_data=True)
    assert_rejected(
        batch,
        project,
        [
            {
                "row": 1,
                "reason": "Missing column 'text' (the first row is data, so the columns are "
                "named by position: column1, column2). Set text_column to one of these "
                "columns.",
            }
        ],
    )


def test_a_headerless_file_checks_every_row_against_the_first(project, manager):
    content = b"hello,positive\nshort\n\nbye,negative,extra\n"
    batch = run_import(project, manager, content, first_row_is_data=True, text_column="column1")
    assert_rejected(
        batch,
        project,
        [
            {"row": 2, "reason": "expected 2 columns, found 1"},
            {"row": 4, "reason": "expected 2 columns, found 3"},
        ],
    )


def test_row_numbers_stay_exact_when_a_read_ends_between_cr_and_lf(project, manager):
    """Files are read 1 MB at a time; a \\r\\n split by that boundary is still one line end."""
    header = b"external_id,text\r\n"
    rows = []
    size = len(header)
    while size < READ_BYTES - 200:
        rows.append(f"id-{len(rows)},sentence {len(rows)}\r\n".encode())
        size += len(rows[-1])
    # One row whose \r is the last byte of the first read.
    filler = READ_BYTES - size - len(f"id-{len(rows)},\r".encode())
    rows.append(f"id-{len(rows)},{'x' * filler}\r\n".encode())
    content = header + b"".join(rows) + b"id-last,\r\n"
    assert content[READ_BYTES - 1 : READ_BYTES + 1] == b"\r\n"
    batch = run_import(project, manager, content)
    assert_rejected(batch, project, [{"row": len(rows) + 2, "reason": "empty text"}])


def test_the_text_column_is_stored_as_the_items_text_whatever_its_name(make_user):
    manager = make_user()
    project = make_project(manager)
    content = b"id,review,stars\nr1,Loved it,5\n"
    batch = run_import(project, manager, content, id_column="id", text_column="review")
    assert batch.status == "succeeded", batch.errors
    assert Item.objects.get(project=project).data == {"text": "Loved it", "stars": "5"}


def test_a_text_column_beside_another_column_named_text_is_refused(make_user):
    manager = make_user()
    project = make_project(manager)
    content = b"id,review,text\nr1,Loved it,other\n"
    batch = run_import(project, manager, content, id_column="id", text_column="review")
    assert batch.status == "failed"
    assert "also has a column 'text'" in batch.errors[0]["reason"]
    assert not Item.objects.filter(project=project).exists()
