"""A file with any bad row imports nothing and names each bad row and its reason."""

import io

import pytest

from labeling.models import Annotation, ImportBatch, Item
from labeling.services.importing import import_file
from tests.factories import make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(make_user):
    return make_user("importer")


@pytest.fixture
def project(manager):
    return make_project(manager, labels=("negative", "positive"))


def run_import(project, user, content: bytes, *, kind="items", format="csv", **options):
    return import_file(
        project=project,
        fileobj=io.BytesIO(content),
        filename="bad.csv",
        format=format,
        kind=kind,
        options=options,
        user=user,
    )


def good_rows(n: int, start: int = 0) -> str:
    return "".join(f"id-{i},sentence number {i}\n" for i in range(start, start + n))


def assert_rejected(batch, project, errors):
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.rows == 0
    assert batch.errors == errors
    stored = ImportBatch.objects.get(pk=batch.pk)
    assert (stored.status, stored.errors) == ("failed", errors)
    assert not Item.objects.filter(project=project, batch=batch).exists()


def test_file_with_one_bad_row_among_5000_imports_nothing(project, manager):
    content = "external_id,text\n" + good_rows(2500) + "id-x,\n" + good_rows(2500, 2500)
    batch = run_import(project, manager, content.encode())
    assert_rejected(batch, project, [{"row": 2502, "reason": "empty text"}])
    assert not Item.objects.filter(project=project).exists()


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


def test_binary_file_is_refused_with_its_line(project, manager):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    batch = run_import(project, manager, png)
    assert batch.status == "failed"
    assert batch.errors[0]["row"] == 1
    assert "not UTF-8" in batch.errors[0]["reason"]


def test_nul_byte_in_an_otherwise_text_file_is_binary_content(project, manager):
    content = ("external_id,text\n" + good_rows(3)).encode() + b"id-9,a\x00b\n"
    batch = run_import(project, manager, content)
    assert_rejected(
        batch, project, [{"row": 5, "reason": "Line 5 holds binary content (a NUL byte)."}]
    )


def test_latin1_file_is_refused_naming_the_line(project, manager):
    content = "external_id,text\nid-1,fine\nid-2,café crème\n".encode("latin-1")
    batch = run_import(project, manager, content)
    assert batch.status == "failed"
    assert batch.errors[0]["row"] == 3
    assert "is not UTF-8 text (byte 0xe9)" in batch.errors[0]["reason"]


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


def test_duplicate_id_within_the_file(project, manager):
    batch = run_import(project, manager, b"external_id,text\na,one\nb,two\na,three\n")
    assert_rejected(
        batch, project, [{"row": 4, "reason": "duplicate external_id 'a' within the file"}]
    )


def test_oversize_field(project, manager, settings):
    settings.CONCORD_IMPORT_MAX_FIELD_CHARS = 1000
    content = b"external_id,text\na,short\nb," + b"x" * 1001 + b"\n"
    batch = run_import(project, manager, content)
    assert_rejected(
        batch, project, [{"row": 3, "reason": "field 'text' is longer than 1,000 characters"}]
    )


def test_oversize_file(project, manager, settings):
    settings.CONCORD_MAX_UPLOAD_BYTES = 100
    content = ("external_id,text\n" + good_rows(20)).encode()
    batch = run_import(project, manager, content)
    assert batch.status == "failed"
    assert batch.errors == [
        {"row": None, "reason": f"The file is {len(content):,} bytes; the limit is 100."}
    ]


def test_more_than_100_bad_rows_lists_the_first_100(project, manager):
    content = "external_id,text\n" + "".join(f"{i},\n" for i in range(250))
    batch = run_import(project, manager, content.encode())
    assert batch.status == "failed"
    assert len(batch.errors) == 100
    assert batch.errors[99] == {"row": 101, "reason": "empty text"}
    assert "250 problems" in batch.message


def test_unknown_label_and_unknown_item_in_annotations(project, manager):
    Item.objects.create(project=project, external_id="a", data={"text": "x"})
    content = b"external_id,annotator,label\na,ann1,positive\na,ann2,neutral\nzz,ann1,negative\n"
    batch = run_import(project, manager, content, kind="annotations")
    assert_rejected(
        batch,
        project,
        [
            {"row": 3, "reason": "unknown label 'neutral'"},
            {"row": 4, "reason": "unknown item 'zz'"},
        ],
    )
    assert not Annotation.objects.filter(project=project).exists()


def test_same_annotator_twice_on_an_item_in_one_file(project, manager):
    Item.objects.create(project=project, external_id="a", data={"text": "x"})
    content = b"external_id,annotator,label\na,ann1,positive\na,ann1,negative\n"
    batch = run_import(project, manager, content, kind="annotations")
    assert batch.errors == [
        {"row": 3, "reason": "the same annotator labels the same item twice in the file"}
    ]


def test_invalid_jsonl_line(project, manager):
    content = b'{"external_id": "a", "text": "ok"}\n{"external_id": "b", "text": \n'
    batch = run_import(project, manager, content, format="jsonl")
    assert batch.status == "failed"
    assert batch.errors[0]["row"] == 2
    assert batch.errors[0]["reason"].startswith("not valid JSON")


class TestOnDuplicate:
    @pytest.fixture
    def existing(self, project, manager):
        batch = run_import(project, manager, b"external_id,text\na,old a\nb,old b\n")
        assert batch.status == "succeeded"
        return batch

    def test_error_is_the_default_and_names_the_row(self, project, manager, existing):
        batch = run_import(project, manager, b"external_id,text\nc,new c\nb,new b\n")
        assert_rejected(
            batch,
            project,
            [
                {
                    "row": 3,
                    "reason": "external_id 'b' already exists in the project (on_duplicate=error)",
                }
            ],
        )
        assert Item.objects.get(project=project, external_id="b").data == {"text": "old b"}
        assert not Item.objects.filter(project=project, external_id="c").exists()

    def test_skip_keeps_existing_items_and_adds_new_ones(self, project, manager, existing):
        batch = run_import(
            project, manager, b"external_id,text\nc,new c\nb,new b\n", on_duplicate="skip"
        )
        assert batch.status == "succeeded", batch.errors
        assert batch.rows == 1
        assert "1 existing items skipped" in batch.message
        texts = dict(Item.objects.filter(project=project).values_list("external_id", "data__text"))
        assert texts == {"a": "old a", "b": "old b", "c": "new c"}

    def test_update_replaces_data_and_moves_the_item_to_the_new_batch(
        self, project, manager, existing
    ):
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

    def test_bad_option_value_is_a_validation_error(self, project, manager):
        from django.core.exceptions import ValidationError

        with pytest.raises(ValidationError) as exc:
            run_import(project, manager, b"external_id,text\na,b\n", on_duplicate="merge")
        assert "on_duplicate" in exc.value.message_dict
