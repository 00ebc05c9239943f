"""Reading an upload: UTF-8 text only, binary content named by its line, the size limit."""

import pytest

from tests.labeling.importing.uploads import assert_rejected, good_rows, run_import

pytestmark = pytest.mark.django_db


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


def test_oversize_file(project, manager, settings):
    settings.CONCORD_MAX_UPLOAD_BYTES = 100
    content = ("external_id,text\n" + good_rows(20)).encode()
    batch = run_import(project, manager, content)
    assert batch.status == "failed"
    assert batch.errors == [
        {"row": None, "reason": f"The file is {len(content):,} bytes; the limit is 100."}
    ]
