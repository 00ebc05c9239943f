"""Dataset versions: recording an export, its label snapshot, downloading it again, diffs.

Every export through the API or the export page is recorded as a `DatasetVersion` with its
parameters, the guideline version and analysis runs it used, and a compressed snapshot of the
exported labels, so any exported dataset can be downloaded again (byte-identical while the
data is unchanged) and diffed against another.
"""

from __future__ import annotations

import io
import zlib
from typing import NamedTuple

import numpy as np

from analysis.exports.decisions import LabelDecisions
from analysis.exports.params import ExportParams
from analysis.exports.plan import DatasetExport
from analysis.models import DatasetVersion
from labeling.models import Item, Project


def label_snapshot(decisions: LabelDecisions) -> bytes:
    """Compressed arrays of the exported items' ids and label indices, for diffs.

    An .npz of (item id gaps, label indices, class names), deflated at level 1: ids are
    stored as gaps, which compress to almost nothing, and level 1 keeps a million rows
    well under a second.
    """
    ids = decisions.kept_ids
    buffer = io.BytesIO()
    np.savez(
        buffer,
        item_id_gaps=np.diff(ids, prepend=0),
        labels=decisions.label[decisions.keep],
        class_names=np.array(decisions.class_names, dtype=str),
    )
    return zlib.compress(buffer.getvalue(), 1)


def snapshot_load(blob: bytes | memoryview | None) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids (n,) int64, label names (n,) object, None where no label) of a snapshot."""
    if not blob:
        return np.zeros(0, np.int64), np.zeros(0, object)
    with np.load(io.BytesIO(zlib.decompress(bytes(blob)))) as arrays:
        names = np.append(arrays["class_names"].astype(object), None)
        ids = np.cumsum(arrays["item_id_gaps"])
        return ids, names[arrays["labels"]]  # label -1 picks the trailing None


def dataset_export(*, project: Project, params: ExportParams, user) -> DatasetExport:
    """Plan an export and record it as a new DatasetVersion (completed when the stream ends)."""
    plan = DatasetExport(project=project, params=params)
    guideline = params.guideline_version
    if guideline is None:
        current = project.current_guideline()
        guideline = current.version if current else None
    plan.version = DatasetVersion.objects.create(
        project=project,
        params=params.as_dict(),
        format=params.format,
        row_count=0,
        guideline_version=guideline,
        runs=plan.decisions.runs,
        label_snapshot=label_snapshot(plan.decisions),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    return plan


def dataset_version_export(*, version: DatasetVersion) -> DatasetExport:
    """Export a recorded version again with its stored parameters (no new version recorded)."""
    params = ExportParams.from_stored(version.params)
    return DatasetExport(project=version.project, params=params, version=version)


class DatasetDiff(NamedTuple):
    """Version a against version b.

    item_ids: (n_changed,) int64 items exported by both whose label differs; labels_a,
    labels_b: (n_changed,) object label names (None: no label); added, removed: items only
    in b, only in a.
    """

    item_ids: np.ndarray
    labels_a: np.ndarray
    labels_b: np.ndarray
    added: int
    removed: int


def dataset_diff(*, a: DatasetVersion, b: DatasetVersion) -> DatasetDiff:
    """Items whose exported label differs between two versions, plus items added or removed."""
    ids_a, labels_a = snapshot_load(a.label_snapshot)
    ids_b, labels_b = snapshot_load(b.label_snapshot)
    common, in_a, in_b = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    changed = labels_a[in_a] != labels_b[in_b]
    return DatasetDiff(
        item_ids=common[changed],
        labels_a=labels_a[in_a][changed],
        labels_b=labels_b[in_b][changed],
        added=int(len(ids_b) - len(common)),
        removed=int(len(ids_a) - len(common)),
    )


def changed_rows(diff: DatasetDiff, positions) -> list[dict]:
    """The changed items at `positions` of the diff: item_id, external_id, label_a, label_b."""
    page_ids = [int(diff.item_ids[i]) for i in positions]
    external = dict(Item.objects.filter(id__in=page_ids).values_list("id", "external_id"))
    return [
        {
            "item_id": item_id,
            "external_id": external.get(item_id),
            "label_a": diff.labels_a[i],
            "label_b": diff.labels_b[i],
        }
        for item_id, i in zip(page_ids, positions, strict=True)
    ]
