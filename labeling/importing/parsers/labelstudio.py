"""Label Studio JSON exports: a list of tasks, each an item with its annotations.

`data` becomes the item (its `id_column` key, else the task `id`, is the external id), `meta`
and the metadata columns its metadata; each annotation that was not cancelled and holds
`choices` becomes an annotation by its `completed_by`. Rows count tasks from 1.

Span projects: each annotation that was not cancelled becomes its author's spans, one per
`labels` result (`value.start`, `value.end`, `value.labels` with one label); an annotation
without one is an answer of "no entities". Predictions are never read. Offsets are used as
given when `text[start:end]` equals the result's `value.text` (Label Studio 1.23 counts code
points, as Python does), else read as UTF-16 code units (what other JavaScript tools count,
different after an emoji) and converted; a result that matches neither way is a row error.
"""

from collections.abc import Iterator

from labeling.importing.parsers.rules import encode_json, json_item, split_labels
from labeling.importing.readers import ByteCounter, decoded_chunks, json_array_values
from labeling.importing.records import AnnotationRow, ParseContext, Parser, Record, RowError
from labeling.models import ImportBatch


def annotator_name(completed_by) -> str | None:
    """An account name for Label Studio's `completed_by`: an int id or a user object."""
    if isinstance(completed_by, bool):
        return None
    if isinstance(completed_by, int):
        return f"labelstudio-{completed_by}"
    if isinstance(completed_by, str) and completed_by.strip():
        return completed_by.strip()
    if isinstance(completed_by, dict):
        for key in ("username", "email"):
            value = completed_by.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        if isinstance(completed_by.get("id"), int):
            return f"labelstudio-{completed_by['id']}"
    return None


def parse(source: ByteCounter, ctx: ParseContext) -> Iterator[Record]:
    """Tasks -> their item (kind=items) and the choices of each non-cancelled annotation."""
    options = ctx.options
    for row, task in enumerate(json_array_values(decoded_chunks(source)), start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            yield RowError(row, "a task must be an object with a `data` object")
            continue
        data = dict(task["data"])
        external_id = data.pop(options.id_column, None)
        if external_id in (None, ""):
            external_id = task.get("id")
        metadata = task.get("meta") if isinstance(task.get("meta"), dict) else {}
        item = json_item(row, external_id, data, metadata, ctx)
        if isinstance(item, RowError):
            yield item
            continue
        if options.kind == ImportBatch.Kind.ITEMS:
            yield item
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            yield RowError(row, "`annotations` must be a list")
            continue
        text = data.get(options.text_column) if ctx.spans else None
        for annotation in annotations:
            if ctx.spans:
                record = span_annotation_record(annotation, row, item.external_id, text, ctx)
            else:
                record = annotation_record(annotation, row, item.external_id, ctx)
            if record:
                yield record


def annotation_record(annotation, row: int, external_id: str, ctx: ParseContext) -> Record | None:
    """One annotation of a task; None when it is cancelled or holds no classification."""
    if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
        return None
    choices = []
    for result in annotation.get("result") or []:
        value = result.get("value") if isinstance(result, dict) else None
        if isinstance(value, dict) and isinstance(value.get("choices"), list):
            choices.extend(str(c) for c in value["choices"])
    if not choices:
        return None  # no classification in this annotation (e.g. other controls only)
    annotator = annotator_name(annotation.get("completed_by"))
    if annotator is None:
        return RowError(row, "an annotation has no usable completed_by")
    if not ctx.multi and len(choices) > 1:
        return RowError(row, f"{len(choices)} choices in one annotation of a single-label project")
    labels, problem = split_labels(encode_json(choices) if ctx.multi else choices[0], ctx)
    if problem:
        return RowError(row, problem)
    return AnnotationRow(row, external_id, annotator, labels)


def _utf16_index(text: str, unit: int) -> int | None:
    """The string index at UTF-16 code unit `unit` of `text` (None inside a surrogate pair or
    past the end)."""
    units = 0
    for index, char in enumerate(text):
        if units == unit:
            return index
        if units > unit:
            return None
        units += 2 if ord(char) > 0xFFFF else 1
    return len(text) if units == unit else None


def code_point_offsets(text: str, start, end, quoted) -> tuple[int, int] | None:
    """A result's `(start, end)` as string indices: as given when they select `quoted` (or
    nothing is quoted), else converted from UTF-16 code units when those select it."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        return None
    if not isinstance(quoted, str) or text[start:end] == quoted:
        return start, end
    if text.isascii():
        return None
    first, after = _utf16_index(text, start), _utf16_index(text, end)
    if first is not None and after is not None and text[first:after] == quoted:
        return first, after
    return None


def span_annotation_record(
    annotation, row: int, external_id: str, text, ctx: ParseContext
) -> Record | None:
    """One annotation of a span project's task: its spans; None when it is cancelled."""
    if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
        return None
    annotator = annotator_name(annotation.get("completed_by"))
    if annotator is None:
        return RowError(row, "an annotation has no usable completed_by")
    where = f"item {external_id[:60]!r}, annotation by {annotator[:60]!r}"
    spans = []
    for result in annotation.get("result") or []:
        value = result.get("value") if isinstance(result, dict) else None
        if not isinstance(value, dict) or not isinstance(value.get("labels"), list):
            continue  # not a span (e.g. a choice or a text area beside the labels)
        labels, quoted = value["labels"], value.get("text")
        if len(labels) != 1 or not isinstance(labels[0], str):
            return RowError(row, f"{where}: a labels result must hold one label, not {labels!r}")
        offsets = code_point_offsets(text, value.get("start"), value.get("end"), quoted)
        if offsets is None:
            return RowError(
                row,
                f"{where}: the span [{value.get('start')!r}, {value.get('end')!r}) "
                f"{labels[0][:60]!r} does not select {str(quoted)[:60]!r} in the text, as code "
                "points or as UTF-16 code units",
            )
        spans.append([*offsets, labels[0]])
    return AnnotationRow(row, external_id, annotator, [], spans, text)


PARSER = Parser(label="Label Studio JSON", parse=parse, bundles_annotations=True)
