"""The import options: one declaration (ImportOptionsSerializer) for the API, the page, the
command and the OpenAPI schema; checked before any file is read."""

import pytest

from tests.labeling.importing.uploads import run_import

pytestmark = pytest.mark.django_db


def test_bad_option_value_is_a_validation_error(project, manager):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        run_import(project, manager, b"external_id,text\na,b\n", on_duplicate="merge")
    assert "on_duplicate" in exc.value.message_dict
