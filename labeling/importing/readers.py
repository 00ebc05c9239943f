"""Reading an upload: bytes -> strictly decoded text -> lines or JSON values, within limits.

Every reader raises FileRejected for a problem that stops the whole file (size, encoding,
binary content, broken JSON structure); the row it names counts lines (or Label Studio tasks).
"""

import codecs
import io
import json
from collections.abc import Iterator
from itertools import chain

from django.conf import settings

READ_BYTES = 1 << 20


def max_field_chars() -> int:
    return settings.CONCORD_IMPORT_MAX_FIELD_CHARS


class FileRejected(Exception):
    """The whole file cannot be read (encoding, size, syntax); no row after it is checked."""

    def __init__(self, row: int | None, reason: str):
        super().__init__(reason)
        self.row = row
        self.reason = reason


class ByteCounter:
    """Wraps a binary file: counts bytes read and enforces the upload limit."""

    def __init__(self, fileobj, limit: int):
        self.fileobj = fileobj
        self.limit = limit
        self.read_bytes = 0

    def rewind(self) -> None:
        self.fileobj.seek(0)
        self.read_bytes = 0

    def chunks(self) -> Iterator[bytes]:
        while chunk := self.fileobj.read(READ_BYTES):
            if isinstance(chunk, str):
                chunk = chunk.encode()
            self.read_bytes += len(chunk)
            if self.read_bytes > self.limit:
                raise FileRejected(
                    None, f"The file is larger than the limit of {self.limit:,} bytes."
                )
            yield chunk


def decoded_chunks(source: ByteCounter) -> Iterator[str]:
    """UTF-8 text (a leading BOM dropped); bad bytes or NUL raise FileRejected with the line."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
    lines_before = 0
    for chunk in source.chunks():
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line = lines_before + chunk[: max(exc.start, 0)].count(b"\n") + 1
            raise FileRejected(
                line,
                f"Line {line} is not UTF-8 text (byte 0x{chunk[exc.start]:02x}); is it binary?",
            )
        nul = text.find("\x00")
        if nul >= 0:
            line = lines_before + text.count("\n", 0, nul) + 1
            raise FileRejected(line, f"Line {line} holds binary content (a NUL byte).")
        lines_before += text.count("\n")
        yield text
    try:
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise FileRejected(lines_before + 1, "The file ends in the middle of a UTF-8 character.")
    if tail:
        yield tail


def _line_blocks(chunks: Iterator[str]) -> Iterator[io.StringIO]:
    """The text cut at the last line end of each chunk, as StringIO blocks of whole lines."""
    pending = ""
    for text in chunks:
        text = pending + text
        # A \r at the very end may be the first half of \r\n: cut at the line end before it.
        end = len(text) - 1 if text.endswith("\r") else len(text)
        cut = max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1
        if not cut:
            pending = text
            if len(pending) > 4 * max_field_chars() + 1_000_000:
                raise FileRejected(None, "A line is far longer than the field size limit.")
            continue
        pending = text[cut:]
        yield io.StringIO(text[:cut], newline="")
    if pending:
        yield io.StringIO(pending, newline="")


def text_lines(chunks: Iterator[str]) -> Iterator[str]:
    """Lines with their endings, split only at \\n, \\r\\n or \\r (as csv expects).

    Whole chunks are cut at their last line end and iterated by StringIO inside
    `chain.from_iterable`, so no Python code runs per line.
    """
    return chain.from_iterable(_line_blocks(chunks))


def json_array_values(chunks: Iterator[str]) -> Iterator[object]:
    """The values of one top-level JSON array, decoded one at a time (bounded memory)."""
    decoder = json.JSONDecoder()
    buf, pos, state, index = "", 0, "start", 0
    limit = 8 * max_field_chars() + 16_000_000
    chunks = iter(chunks)
    exhausted = False
    while True:
        while pos < len(buf) and buf[pos] in " \t\r\n":
            pos += 1
        if pos >= len(buf) or (state == "value" and not exhausted):
            # need more text: at the end of the buffer, or to try decoding a value whole
            more = next(chunks, None)
            if more is not None:
                buf, pos = buf[pos:] + more, 0
                if state != "value" or len(buf) < 65536:
                    continue
            else:
                exhausted = True
                if pos >= len(buf):
                    if state == "done":
                        return
                    raise FileRejected(None, "The JSON ends before its closing ].")
        char = buf[pos]
        if state == "start":
            if char != "[":
                raise FileRejected(None, "A Label Studio export is a JSON list of tasks: [...].")
            pos, state = pos + 1, "first"
        elif state in ("first", "after"):
            if char == "]":
                pos, state = pos + 1, "done"
            elif state == "after":
                if char != ",":
                    raise FileRejected(index + 1, f"Expected , or ] after task {index}.")
                pos, state = pos + 1, "value"
            else:
                state = "value"
        elif state == "value":
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if not exhausted and len(buf) - pos < limit:
                    more = next(chunks, None)
                    if more is None:
                        exhausted = True
                    else:
                        buf, pos = buf[pos:] + more, 0
                    continue
                raise FileRejected(index + 1, f"Task {index + 1} is not valid JSON: {exc.msg}.")
            index += 1
            pos, state = end, "after"
            yield value
        elif state == "done":
            raise FileRejected(None, "Unexpected text after the closing ].")
