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
