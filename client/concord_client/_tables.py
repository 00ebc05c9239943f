"""Rows in memory -> a temporary file the upload streams, written in chunks.

A pandas DataFrame is written 50,000 rows at a time (CSV when every column holds scalars,
else JSON Lines), a list or iterator of dicts one JSON line at a time, a Hugging Face
`Dataset` by its own batched `to_json`. Memory stays at one chunk whatever the size.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHUNK_ROWS = 50_000
SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "labelstudio",
    ".conll": "conll",
}


def is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "iloc")


def is_hf_dataset(data: Any) -> bool:
    return type(data).__name__ == "Dataset" and hasattr(data, "to_json")


def format_of(path: Path) -> str:
    try:
        return SUFFIX_FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(
            f"Cannot tell the format of {path.name} from its suffix: give format= "
            "(csv, jsonl, labelstudio or conll)."
        ) from None


def _scalar_columns(frame) -> bool:
    """True when a CSV can hold the frame: no list or dict in the first rows."""
    head = frame.head(100)
    for column in head.columns:
        if head[column].dtype == object and any(
            isinstance(value, list | dict | tuple) for value in head[column]
        ):
            return False
    return True


def _write_dataframe(frame, out, fmt: str, renames: Mapping[str, str]) -> None:
    for start in range(0, max(len(frame), 1), CHUNK_ROWS):
        chunk = frame.iloc[start : start + CHUNK_ROWS]
        if renames:
            chunk = chunk.rename(columns=renames)
        if fmt == "csv":
            chunk.to_csv(out, header=start == 0, index=False)
        else:
            # One JSON object per line; NaN becomes null.
            text = chunk.to_json(orient="records", lines=True, force_ascii=False)
            out.write(text if text.endswith("\n") or not text else text + "\n")


def _write_records(records: Iterable[Mapping], out, renames: Mapping[str, str]) -> None:
    for record in records:
        if not isinstance(record, Mapping):
            raise TypeError(f"Records must be dicts; got {type(record).__name__}.")
        if renames:
            record = {renames.get(key, key): value for key, value in record.items()}
        out.write(json.dumps(record, ensure_ascii=False, default=str))
        out.write("\n")


@contextmanager
def temporary_file(data: Any, *, format: str | None, renames: Mapping[str, str] | None = None):
    """Write `data` to a temporary file; yields (path, format). The file is removed after.

    `renames` renames columns on the way (used where the server has no column option).
    """
    renames = dict(renames or {})
    if is_dataframe(data):
        fmt = format or ("csv" if _scalar_columns(data) else "jsonl")
    else:
        fmt = format or "jsonl"
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"Rows in memory are sent as csv or jsonl, not {fmt}.")
    handle, name = tempfile.mkstemp(prefix="concord-", suffix=f".{fmt}")
    path = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            if is_dataframe(data):
                _write_dataframe(data, out, fmt, renames)
            elif is_hf_dataset(data):
                out.close()
                if renames:
                    data = data.rename_columns(renames)
                if fmt == "csv":
                    data.to_csv(name, index=False, batch_size=CHUNK_ROWS)
                else:
                    data.to_json(name, lines=True, batch_size=CHUNK_ROWS, force_ascii=False)
            elif fmt == "csv":
                raise ValueError("Records are sent as JSON Lines: leave format out.")
            else:
                _write_records(data, out, renames)
        yield path, fmt
    finally:
        path.unlink(missing_ok=True)
