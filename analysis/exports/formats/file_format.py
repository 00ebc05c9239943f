"""What a file format module provides to the registry in `analysis.exports.formats`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the plan imports the registry, so only the type checker imports the plan
    from analysis.exports.plan import DatasetExport


@dataclass(frozen=True)
class FileFormat:
    """A file format: its `?format=` name, HTTP content type, file extension and writer.

    write(export) yields the file's bytes page by page from `export.pages(...)`.
    typed_columns: whether the JSON value types of the data/metadata columns are looked up
    (False for formats that write every value as text).
    """

    name: str
    content_type: str
    extension: str
    write: Callable[[DatasetExport], Iterator[bytes]]
    typed_columns: bool = True
