"""The check pass: a file with any bad row imports nothing and names each bad row."""

import pytest

from labeling.models import Annotation, Item
from tests.labeling.importing.uploads import assert_rejected, good_rows, run_import

pytestmark = pytest.mark.django_db


def test_file_with_one_bad_row_among_5000_imports_nothing(project, manager):
    content = "external_id,text\n" + good_rows(2500) + "id-x,\n" + good_rows(2500, 2500)
    batch = run_import(project, manager, content.encode())
    assert_rejected(batch, project, [{"row": 2502, "reason": "empty text"}])
    assert not Item.objects.filter(project=project).exists()


def test_a_file_repeating_an_external_id_imports_nothing(project, manager):
    batch = run_import(project, manager, b"external_id,text\na,one\nb,two\na,three\n")
    assert_rejected(
        batch, project, [{"row": 4, "reason": "duplicate external_id 'a' within the file"}]
    )


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


def test_error_is_the_default_and_names_the_row(project, manager, existing):
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
