"""The import options: one declaration (ImportOptionsSerializer) for the API, the page, the
command and the OpenAPI schema; checked before any file is read."""

import json

import pytest
from django.core.exceptions import ValidationError
from drf_spectacular.generators import SchemaGenerator

from labeling.api.imports import ImportCreateSerializer
from labeling.forms import ImportForm
from labeling.importing.options import ImportOptionsSerializer, import_options, options_stored
from labeling.management.commands.import_items import Command
from tests.labeling.importing.uploads import run_import

pytestmark = pytest.mark.django_db


def test_bad_option_value_is_a_validation_error(project, manager):
    with pytest.raises(ValidationError) as exc:
        run_import(project, manager, b"external_id,text\na,b\n", on_duplicate="merge")
    assert "on_duplicate" in exc.value.message_dict


def test_the_api_the_page_the_command_and_the_schema_take_the_same_options():
    names = list(ImportOptionsSerializer().fields)
    assert "first_row_is_data" in names and "delimiter" in names
    assert [name for name in ImportCreateSerializer().fields if name != "file"] == names
    assert [name for name in ImportForm().fields if name != "file"] == names
    usage = Command().create_parser("manage.py", "import_items").format_help()
    assert [name for name in names if f"--{name.replace('_', '-')}" not in usage] == []

    schema = SchemaGenerator().get_schema(request=None, public=True)
    post = schema["paths"]["/api/v1/projects/{project_id}/imports/"]["post"]
    ref = post["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    properties = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]
    assert list(properties) == [*names, "file"]
    assert "column1, column2" in properties["first_row_is_data"]["description"]
    assert "numbered by their row" in properties["id_column"]["description"]


def test_a_tsv_name_means_tab_unless_a_delimiter_is_given():
    def delimiter(filename, **options):
        return import_options(
            format="csv", kind="items", options=options, filename=filename
        ).delimiter

    assert delimiter("amazon.tsv") == "tab"
    assert delimiter("AMAZON.TAB") == "tab"
    assert delimiter("amazon.tsv", delimiter="semicolon") == "semicolon"
    assert delimiter("amazon.csv") == ""  # found from the content when read


def test_first_row_is_data_numbers_the_items_unless_a_column_by_position_is_named():
    def id_column(**options):
        return import_options(format="csv", kind="items", options=options).id_column

    assert id_column() == "external_id"
    assert id_column(first_row_is_data=True) == ""
    assert id_column(first_row_is_data=True, id_column="column3") == "column3"
    assert id_column(id_column="") == ""
    jsonl = import_options(format="jsonl", kind="items", options={"first_row_is_data": True})
    assert jsonl.id_column == "external_id"  # first_row_is_data is for CSV only


def test_annotations_need_an_id_column():
    with pytest.raises(ValidationError) as exc:
        import_options(format="csv", kind="annotations", options={"id_column": ""})
    assert exc.value.message_dict == {
        "id_column": ["Annotations name the items they label: give the id column."]
    }


def test_the_id_column_cannot_also_be_a_metadata_column():
    with pytest.raises(ValidationError) as exc:
        import_options(format="csv", kind="items", options={"metadata_columns": "external_id"})
    assert exc.value.message_dict == {
        "metadata_columns": ["The id column cannot also be a metadata column."]
    }


def test_options_kept_by_a_batch_read_back_the_same():
    options = import_options(
        format="jsonl",
        kind="items",
        options={"metadata_columns": ["source", " lang ", "source"], "first_row_is_data": True},
        filename="x.tsv",
    )
    stored = options_stored(options)
    assert stored["metadata_columns"] == ["source", "lang"]
    assert json.loads(json.dumps(stored)) == stored
    assert import_options(format="jsonl", kind="items", options=stored) == options
