"""Label Studio JSON exports: a list of tasks, each an item with its annotations.

`data` becomes the item (its `id_column` key, else the task `id`, is the external id), `meta`
and the metadata columns its metadata; each annotation that was not cancelled and holds
`choices` becomes an annotation by its `completed_by`. Rows count tasks from 1.
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
        for annotation in annotations:
            if record := annotation_record(annotation, row, item.external_id, ctx):
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


PARSER = Parser(label="Label Studio JSON", parse=parse, bundles_annotations=True)
