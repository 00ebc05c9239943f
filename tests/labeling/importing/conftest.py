import pytest

# The shared checks (assert_rejected) report their values like a test's own asserts.
pytest.register_assert_rewrite("tests.labeling.importing.uploads")

from tests.labeling.importing.uploads import run_import  # noqa: E402


@pytest.fixture
def existing(project, manager):
    batch = run_import(project, manager, b"external_id,text\na,old a\nb,old b\n")
    assert batch.status == "succeeded"
    return batch
