"""Reading an upload: UTF-8 text only, binary content named by its line, the size limit."""

import io

import pytest

from labeling.importing.readers import ByteCounter, decoded_chunks, text_lines
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


def test_a_file_over_the_size_limit_is_refused_naming_both_sizes(project, manager, settings):
    settings.CONCORD_MAX_UPLOAD_BYTES = 100
    content = ("external_id,text\n" + good_rows(20)).encode()
    batch = run_import(project, manager, content)
    assert batch.status == "failed"
    assert batch.errors == [
        {"row": None, "reason": f"The file is {len(content):,} bytes; the limit is 100."}
    ]


def test_lines_end_at_each_kind_of_line_break_even_across_chunks():
    chunks = iter(["a,1\r", "\nb,2\rc,", "3\nd,4"])
    assert list(text_lines(chunks)) == ["a,1\r\n", "b,2\r", "c,3\n", "d,4"]


def test_a_byte_order_mark_is_dropped_and_a_split_character_is_rejoined():
    content = "\ufeffexternal_id,text\nx,café\n".encode()
    cut = content.index("é".encode()) + 1  # inside the two bytes of é
    source = ByteCounter(SplitReads(content, cut), limit=1000)
    assert "".join(decoded_chunks(source)) == "external_id,text\nx,café\n"


class SplitReads(io.BytesIO):
    """A file whose first read stops at byte `cut`."""

    def __init__(self, content: bytes, cut: int):
        super().__init__(content)
        self.cut = cut

    def read(self, size=-1):
        if self.tell() == 0:
            return super().read(self.cut)
        return super().read(size)
