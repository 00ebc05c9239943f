"""`manage.py import_items`: the import service from the command line, with the API's options."""

import io

import pytest
from django.core.management import CommandError, call_command

from labeling.models import Item
from tests.factories import make_project
from tests.labeling.importing.uploads import sentiment_csv

pytestmark = pytest.mark.django_db


def test_import_items_command_imports_and_prints_errors(make_user, sentiment_data, tmp_path):
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


def test_import_items_command_takes_a_headerless_tsv(make_user, sentiment_data):
    manager = make_user()
    project = make_project(manager, labels=("0", "1"))
    out = io.StringIO()
    call_command(
        "import_items",
        project.pk,
        str(sentiment_data / "yelp.tsv"),
        "--first-row-is-data",
        "--text-column",
        "column1",
        "--metadata-columns",
        "column2",
        stdout=out,
    )
    assert "imported 1,000 rows" in out.getvalue()
    last = Item.objects.get(project=project, external_id="1000")
    sentence, label = (sentiment_data / "yelp.tsv").read_text().splitlines()[-1].rsplit("\t", 1)
    assert (last.data, last.metadata) == ({"text": sentence}, {"column2": label})


def test_import_items_command_refuses_a_bad_option_naming_it(make_user, tmp_path):
    project = make_project(make_user())
    path = tmp_path / "items.csv"
    path.write_bytes(b"external_id,text\na,hello\n")
    with pytest.raises(CommandError, match="^id_column: Annotations name the items"):
        call_command(
            "import_items", project.pk, str(path), "--kind", "annotations", "--id-column", ""
        )
    assert not Item.objects.filter(project=project).exists()
