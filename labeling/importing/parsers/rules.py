"""The rules a row must pass whatever its format: labels, an item's content, a JSON item."""

import hashlib
import json

from labeling.importing.readers import max_field_chars
from labeling.importing.records import ItemRow, ParseContext, RowError
from labeling.models import Project

encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def text_id(text: str) -> str:
    """The external id of an item given without one (span projects): a stable hash of its text,
    16 hex digits of its SHA-256, so the same text gets the same id in every file."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def split_labels(value: str, ctx: ParseContext) -> tuple[list[str] | None, str | None]:
    """Label names of one cell: `a`, or for multi-label `a|b` or a JSON list."""
    value = value.strip()
    if not value:
        return None, "empty label"
    if ctx.multi:
        if value.startswith("["):
            try:
                names = json.loads(value)
            except json.JSONDecodeError:
                return None, f"label {value[:60]!r} is not a valid JSON list"
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                return None, "a JSON label list must hold label names"
        else:
            names = value.split("|")
        names = [n.strip() for n in names]
    else:
        names = [value]
    unknown = [n for n in names if n not in ctx.label_names]
    if unknown:
        return None, f"unknown label {unknown[0][:60]!r}"
    if len(set(names)) != len(names):
        return None, "a label is repeated"
    return names, None


def image_url_problem(url: str) -> str | None:
    lowered = url.strip().lower()
    if lowered.startswith(("http://", "https://", "/", "data:image/")):
        return None
    return f"image URL {url[:60]!r} must start with http://, https:// or /"


def content_problem(project: Project, values: dict, options) -> str | None:
    """The rule for an item's content by data type (text needs text, image needs a URL)."""
    if project.data_type == Project.DataType.TEXT:
        text = values.get(options.text_column)
        if text is None or (isinstance(text, str) and not text.strip()):
            return "empty text"
        if not isinstance(text, str):
            return f"{options.text_column} must be a string"
    elif project.data_type == Project.DataType.IMAGE:
        url = values.get(options.image_column)
        if not isinstance(url, str) or not url.strip():
            return "empty image URL"
        return image_url_problem(url)
    elif not values:
        return "no data fields"
    return None


def content_key(project: Project, options) -> tuple[str, str] | None:
    """(the file's text column, the key the item stores it under) for text projects, else None.

    Text is always stored as `text`, whatever the file called it, because every reader of
    items (the pages, the built-in model, the exports) looks there. Images keep their column's
    name: the pages find an image under any key, and no model reads it.
    """
    if project.data_type == Project.DataType.TEXT:
        return options.text_column, "text"
    return None


def content_clash(columns, project: Project, options) -> str | None:
    """Why the content column cannot be renamed: another column already has its stored name."""
    renamed = content_key(project, options)
    if renamed and renamed[0] != renamed[1] and renamed[1] in columns:
        column, key = renamed
        return (
            f"The {key} comes from column {column!r}, but the file also has a column {key!r}: "
            f"rename or drop that column, or choose it as the {key} column."
        )
    return None


def json_item(
    row: int, external_id, data: dict, metadata: dict, ctx: ParseContext
) -> ItemRow | RowError:
    """An item from JSON values: its id, its data fields (the metadata columns among them move
    to the metadata) and its metadata."""
    options = ctx.options
    if external_id is None or (isinstance(external_id, str) and not external_id.strip()):
        return RowError(row, f"empty {options.id_column}")
    if not isinstance(external_id, str | int) or isinstance(external_id, bool):
        return RowError(row, f"{options.id_column} must be a string or a number")
    external_id = str(external_id).strip()
    if len(external_id) > 255:
        return RowError(row, f"{options.id_column} is longer than 255 characters")
    metadata = dict(metadata)
    for name in options.metadata_columns:
        if name in data:
            metadata[name] = data.pop(name)
    problem = content_problem(ctx.project, data, options) or content_clash(
        data, ctx.project, options
    )
    if problem:
        return RowError(row, problem)
    renamed = content_key(ctx.project, options)
    if renamed and renamed[0] != renamed[1]:
        data = {(renamed[1] if k == renamed[0] else k): v for k, v in data.items()}
    limit = max_field_chars()
    data_json, meta_json = encode_json(data), encode_json(metadata)
    for name, value in (*data.items(), *metadata.items()):
        if len(encode_json(value)) > limit if not isinstance(value, str) else len(value) > limit:
            return RowError(row, f"field {name!r} is longer than {limit:,} characters")
    if "\\u0000" in data_json or "\\u0000" in meta_json:
        return RowError(row, "a value holds a NUL character")
    try:
        data_json.encode()
        meta_json.encode()
    except UnicodeEncodeError:
        return RowError(row, "a value holds invalid Unicode (a lone surrogate)")
    if ctx.encode:
        return ItemRow(row, external_id, data_json, meta_json)
    return ItemRow(row, external_id, None, None)
