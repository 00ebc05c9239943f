"""Dataset versions: recording an export, its label snapshot, downloading it again, diffs.

Every export through the API or the export page is recorded as a `DatasetVersion` with its
parameters, the guideline version and analysis runs it used, and a compressed snapshot of the
exported labels, so any exported dataset can be downloaded again (byte-identical while the
data is unchanged) and diffed against another.

A span project's snapshot holds the exported spans themselves (about 10 bytes per span before
compression), so a diff can show what changed: an item whose span set differs in any start,
end or type (or that has a decision in one version only) is "changed".
"""

from __future__ import annotations

import io
import zlib
from typing import NamedTuple

import numpy as np

from analysis.exports.decisions import LabelDecisions
from analysis.exports.params import ExportParams
from analysis.exports.plan import DatasetExport
from analysis.exports.span_decisions import SpanDecisions
from analysis.models import DatasetVersion
from labeling.models import Item, Project


def label_snapshot(decisions: LabelDecisions | SpanDecisions) -> bytes:
    """Compressed arrays of the exported items' ids and label indices, for diffs.

    An .npz of (item id gaps, label indices, class names), deflated at level 1: ids are
    stored as gaps, which compress to almost nothing, and level 1 keeps a million rows
    well under a second. A span project's has, instead of labels, per item `decided` and
    `span_counts`, and the spans' `span_start`, `span_end` (characters) and `span_label`.
    """
    ids = decisions.kept_ids
    buffer = io.BytesIO()
    arrays = {
        "item_id_gaps": np.diff(ids, prepend=0),
        "class_names": np.array(decisions.class_names, dtype=str),
    }
    if isinstance(decisions, SpanDecisions):
        spans = decisions.spans_at(np.flatnonzero(decisions.keep))
        offset_type = np.int32 if spans.end.max(initial=0) < 2**31 else np.int64
        arrays.update(
            decided=spans.decided,
            span_counts=np.diff(spans.offsets).astype(np.int32),
            span_start=spans.start.astype(offset_type),
            span_end=spans.end.astype(offset_type),
            span_label=spans.label.astype(np.int16),
        )
    else:
        arrays["labels"] = decisions.label[decisions.keep]
    np.savez(buffer, **arrays)
    return zlib.compress(buffer.getvalue(), 1)


def snapshot_load(blob: bytes | memoryview | None) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids (n,) int64, label names (n,) object, None where no label) of a snapshot
    (a span project's: `span_snapshot_load`)."""
    if not blob:
        return np.zeros(0, np.int64), np.zeros(0, object)
    with np.load(io.BytesIO(zlib.decompress(bytes(blob)))) as arrays:
        names = np.append(arrays["class_names"].astype(object), None)
        ids = np.cumsum(arrays["item_id_gaps"])
        if "labels" not in arrays:
            return ids, np.full(len(ids), None, dtype=object)
        return ids, names[arrays["labels"]]  # label -1 picks the trailing None


class SpanSnapshot(NamedTuple):
    """A span project's snapshot: item_ids (n,) int64; decided (n,) bool; offsets (n + 1,)
    into start, end (characters) and label names (n_spans,)."""

    item_ids: np.ndarray
    decided: np.ndarray
    offsets: np.ndarray
    start: np.ndarray
    end: np.ndarray
    label: np.ndarray

    def spans(self, i: int) -> list[dict] | None:
        """Item i's spans `[{start, end, label}]`, None without a decision."""
        if not self.decided[i]:
            return None
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return [
            {"start": s, "end": e, "label": label}
            for s, e, label in zip(
                self.start[a:b].tolist(), self.end[a:b].tolist(), self.label[a:b], strict=True
            )
        ]


def span_snapshot_load(blob: bytes | memoryview | None) -> SpanSnapshot:
    """A span project's snapshot (one of a classification snapshot reads as undecided)."""
    empty = np.zeros(0, np.int64)
    if not blob:
        return SpanSnapshot(empty, np.zeros(0, bool), np.zeros(1, np.int64), empty, empty,
                            np.zeros(0, object))  # fmt: skip
    with np.load(io.BytesIO(zlib.decompress(bytes(blob)))) as arrays:
        ids = np.cumsum(arrays["item_id_gaps"])
        if "span_counts" not in arrays:
            return SpanSnapshot(ids, np.zeros(len(ids), bool), np.zeros(len(ids) + 1, np.int64),
                                empty, empty, np.zeros(0, object))  # fmt: skip
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(arrays["span_counts"], out=offsets[1:])
        names = arrays["class_names"].astype(object)
        return SpanSnapshot(
            item_ids=ids,
            decided=arrays["decided"],
            offsets=offsets,
            start=arrays["span_start"].astype(np.int64),
            end=arrays["span_end"].astype(np.int64),
            label=names[arrays["span_label"]],
        )


class SpanColumn(NamedTuple):
    """The spans of some items of a snapshot, indexable like an array: `column[i]`."""

    snapshot: SpanSnapshot
    at: np.ndarray  # positions in the snapshot

    def __getitem__(self, i: int) -> list[dict] | None:
        return self.snapshot.spans(int(self.at[i]))

    def __len__(self) -> int:
        return len(self.at)


def _spans_differ(a: SpanSnapshot, in_a: np.ndarray, b: SpanSnapshot, in_b: np.ndarray):
    """(len(in_a),) bool: whether item in_a[k] of a and in_b[k] of b have different span sets
    (spans are stored sorted, so equal sets are equal sequences)."""
    counts_a = np.diff(a.offsets)[in_a]
    counts_b = np.diff(b.offsets)[in_b]
    differ = (a.decided[in_a] != b.decided[in_b]) | (counts_a != counts_b)
    same_count = np.flatnonzero(~differ & (counts_a > 0))
    counts = counts_a[same_count]
    if not counts.sum():
        return differ
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    at_a = np.repeat(a.offsets[in_a[same_count]], counts) + within
    at_b = np.repeat(b.offsets[in_b[same_count]], counts) + within
    span_differs = (
        (a.start[at_a] != b.start[at_b])
        | (a.end[at_a] != b.end[at_b])
        | (a.label[at_a] != b.label[at_b])
    )
    owner = np.repeat(np.arange(len(same_count)), counts)
    differ[same_count] = np.bincount(owner, weights=span_differs, minlength=len(same_count)) > 0
    return differ


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
    labels_b: (n_changed,) object label names (None: no label), or in a span project
    SpanColumns of the items' spans; added, removed: items only in b, only in a.
    """

    item_ids: np.ndarray
    labels_a: np.ndarray | SpanColumn
    labels_b: np.ndarray | SpanColumn
    added: int
    removed: int

    @property
    def spans(self) -> bool:
        return isinstance(self.labels_a, SpanColumn)


def dataset_diff(*, a: DatasetVersion, b: DatasetVersion) -> DatasetDiff:
    """Items whose exported label (span set) differs between two versions, plus items added
    or removed."""
    if a.project.is_spans:
        first, second = span_snapshot_load(a.label_snapshot), span_snapshot_load(b.label_snapshot)
        common, in_a, in_b = np.intersect1d(
            first.item_ids, second.item_ids, assume_unique=True, return_indices=True
        )
        changed = _spans_differ(first, in_a, second, in_b)
        return DatasetDiff(
            item_ids=common[changed],
            labels_a=SpanColumn(first, in_a[changed]),
            labels_b=SpanColumn(second, in_b[changed]),
            added=int(len(second.item_ids) - len(common)),
            removed=int(len(first.item_ids) - len(common)),
        )
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
    """The changed items at `positions` of the diff: item_id, external_id, label_a, label_b
    (span projects: spans_a, spans_b, `[{start, end, label}]` or None)."""
    page_ids = [int(diff.item_ids[i]) for i in positions]
    external = dict(Item.objects.filter(id__in=page_ids).values_list("id", "external_id"))
    if diff.spans:
        return [
            {
                "item_id": item_id,
                "external_id": external.get(item_id),
                "spans_a": diff.labels_a[i],
                "spans_b": diff.labels_b[i],
            }
            for item_id, i in zip(page_ids, positions, strict=True)
        ]
    return [
        {
            "item_id": item_id,
            "external_id": external.get(item_id),
            "label_a": diff.labels_a[i],
            "label_b": diff.labels_b[i],
        }
        for item_id, i in zip(page_ids, positions, strict=True)
    ]
