"""The one place that turns database rows into arrays for the metrics.

Rows are streamed with `values_list(...).iterator()` straight into numpy; no ORM object is
built per annotation, so five million annotations fit in a few hundred megabytes.
"""

import itertools
from dataclasses import dataclass

import numpy as np

from labeling.models import Annotation, LabelClass, Project

CHUNK = 50_000


@dataclass(frozen=True)
class AnnotationRows:
    """Single-label annotations in long form, one entry per annotation.

    item_index, annotator_index, label_index: (n_annotations,) int arrays indexing
    `item_ids`, `annotator_ids` and `class_names`.
    """

    item_ids: np.ndarray
    annotator_ids: np.ndarray
    class_ids: list[int]
    class_names: list[str]
    item_index: np.ndarray
    annotator_index: np.ndarray
    label_index: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_annotators(self) -> int:
        return len(self.annotator_ids)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def matrix(self) -> np.ndarray:
        """(n_items, n_annotators) int16 matrix of class indices, -1 where not labeled."""
        out = np.full((self.n_items, self.n_annotators), -1, dtype=np.int16)
        out[self.item_index, self.annotator_index] = self.label_index
        return out


def label_classes(project: Project) -> tuple[list[int], list[str]]:
    rows = list(
        LabelClass.objects.filter(project=project)
        .order_by("order", "id")
        .values_list("id", "name")
    )
    return [r[0] for r in rows], [r[1] for r in rows]


def annotation_rows(*, project: Project, version: int | None = None) -> AnnotationRows:
    """All single-label annotations of a project, optionally under one guideline version.

    Across versions an annotator may have labeled an item more than once; the annotation made
    under the newest version counts.
    """
    class_ids, class_names = label_classes(project)
    queryset = Annotation.objects.filter(project=project, label__isnull=False)
    if version is not None:
        queryset = queryset.filter(guideline__version=version)
    queryset = queryset.order_by("guideline__version").values_list(
        "item_id", "annotator_id", "label_id"
    )
    flat = np.fromiter(
        itertools.chain.from_iterable(queryset.iterator(chunk_size=CHUNK)), dtype=np.int64
    )
    triples = flat.reshape(-1, 3)
    if len(triples):
        # Rows come oldest version first; keep the newest annotation per (item, annotator).
        newest_first = triples[::-1]
        _, first = np.unique(newest_first[:, :2], axis=0, return_index=True)
        triples = newest_first[np.sort(first)]
    item_ids, item_index = np.unique(triples[:, 0], return_inverse=True)
    annotator_ids, annotator_index = np.unique(triples[:, 1], return_inverse=True)
    class_id_array = np.asarray(class_ids, dtype=np.int64)
    order = np.argsort(class_id_array)
    label_index = order[np.searchsorted(class_id_array[order], triples[:, 2])].astype(np.int16)
    return AnnotationRows(
        item_ids=item_ids,
        annotator_ids=annotator_ids,
        class_ids=class_ids,
        class_names=class_names,
        item_index=item_index.astype(np.int64),
        annotator_index=annotator_index.astype(np.int64),
        label_index=label_index,
    )
