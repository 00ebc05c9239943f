"""The one place that turns database rows into arrays for the metrics.

Rows are streamed with `values_list(...)` straight into numpy (integer columns through
`labeling.rawsql.int_rows`); no ORM object is built per annotation, so five million
annotations fit in a few hundred megabytes.
"""

import itertools
import json
import warnings
from dataclasses import dataclass
from operator import itemgetter

import numpy as np
import pandas as pd
from django.db import connections
from django.db.models import Exists, OuterRef, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Length

from analysis.models import AnalysisRun, LabelIssue, Prediction, PredictionSet
from labeling.models import Annotation, GoldLabel, Guideline, Item, LabelClass, Project, Review
from labeling.rawsql import driver_rows, int_rows, positions
from labeling.spans import TOKEN_PATTERN, token_bounds_many

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

    def without_items(self, item_ids: np.ndarray) -> "AnnotationRows":
        """The same rows less the annotations of `item_ids` (e.g. gold items); annotators and
        items left without an annotation are dropped."""
        keep = ~np.isin(self.item_ids[self.item_index], np.asarray(item_ids, dtype=np.int64))
        if keep.all():
            return self
        item_ids, item_index = np.unique(self.item_ids[self.item_index[keep]], return_inverse=True)
        annotator_ids, annotator_index = np.unique(
            self.annotator_ids[self.annotator_index[keep]], return_inverse=True
        )
        return AnnotationRows(
            item_ids=item_ids,
            annotator_ids=annotator_ids,
            class_ids=self.class_ids,
            class_names=self.class_names,
            item_index=item_index.astype(np.int64),
            annotator_index=annotator_index.astype(np.int64),
            label_index=self.label_index[keep],
        )

    def matrix(self) -> np.ndarray:
        """(n_items, n_annotators) int16 matrix of class indices, -1 where not labeled."""
        out = np.full((self.n_items, self.n_annotators), -1, dtype=np.int16)
        out[self.item_index, self.annotator_index] = self.label_index
        return out


def label_classes(project: Project) -> tuple[list[int], list[str]]:
    rows = list(
        LabelClass.objects.filter(project=project).order_by("order", "id").values_list("id", "name")
    )
    return [r[0] for r in rows], [r[1] for r in rows]


def class_positions(class_ids: list[int], ids) -> np.ndarray:
    """Each label class id's index in label order (`label_classes`), -1 for an id not among
    them. (n,) int64."""
    class_id_array = np.asarray(class_ids, dtype=np.int64)
    order = np.argsort(class_id_array)
    found = positions(ids, class_id_array[order])
    return np.where(found >= 0, order[np.maximum(found, 0)], -1) if len(order) else found


def gold_item_ids(*, project: Project) -> list[int]:
    """The project's gold items (read through the small GoldLabel table)."""
    return list(GoldLabel.objects.filter(item__project=project).values_list("item_id", flat=True))


def counted_annotations(*, project: Project):
    """The project's annotations that count in agreement, consensus and label issues: all but
    the answers to gold questions, which test the annotators (README, "Gold questions")."""
    queryset = Annotation.objects.filter(project=project)
    gold = gold_item_ids(project=project)
    return queryset.exclude(item_id__in=gold) if gold else queryset


def _annotation_queryset(*, project: Project, version: int | None, with_gold: bool = False):
    """Single-label annotations (ordered oldest version first when there are several); the
    answers to gold questions only `with_gold`."""
    annotations = (
        Annotation.objects.filter(project=project)
        if with_gold
        else counted_annotations(project=project)
    )
    queryset = annotations.filter(label__isnull=False)
    if version is not None:
        queryset = queryset.filter(guideline__version=version)
    # (item, annotator, guideline) is unique: with one version among the rows there is nothing
    # to de-duplicate, so skip the sort in PostgreSQL and the unique in numpy (half the memory).
    # Asked per guideline (a few) through the (project, guideline) index, not over all rows.
    several_versions = (
        version is None
        and Guideline.objects.filter(project=project)
        .filter(
            Exists(
                Annotation.objects.filter(
                    project=project, guideline=OuterRef("pk"), label__isnull=False
                )
            )
        )[:2]
        .count()
        > 1
    )
    if several_versions:
        return queryset.order_by("guideline__version"), True
    return queryset.order_by(), False


def annotation_votes(
    *, project: Project, item_ids: np.ndarray, version: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The counted annotations as (item position, class index) pairs, for vote counting.

    item_ids: (n_items,) sorted int64 ids of the project's items.
    Returns item_pos (n_annotations,) int64 index into item_ids and label_index
    (n_annotations,) int16 class index in label order. Same annotations as `annotation_rows`
    (newest version per item and annotator) but with less memory at millions of rows: with a
    single guideline version no (item, annotator) bookkeeping is needed.
    """
    class_ids, _ = label_classes(project)
    queryset, several_versions = _annotation_queryset(project=project, version=version)
    if several_versions:
        rows = annotation_rows(project=project, version=version)
        item_pos = np.searchsorted(item_ids, rows.item_ids)[rows.item_index]
        return item_pos.astype(np.int64), rows.label_index
    pairs = int_rows(queryset.values_list("item_id", "label_id"), width=2)
    item_pos = np.searchsorted(item_ids, pairs[:, 0])
    label_index = class_positions(class_ids, pairs[:, 1]).astype(np.int16)
    return item_pos, label_index


def annotation_rows(*, project: Project, version: int | None = None) -> AnnotationRows:
    """All single-label annotations of a project, optionally under one guideline version.

    Across versions an annotator may have labeled an item more than once; the annotation made
    under the newest version counts.
    """
    class_ids, class_names = label_classes(project)
    queryset, several_versions = _annotation_queryset(project=project, version=version)
    triples = int_rows(queryset.values_list("item_id", "annotator_id", "label_id"), width=3)
    if several_versions:
        triples = _newest_per_pair(triples)
    item_ids, item_index = np.unique(triples[:, 0], return_inverse=True)
    annotator_ids, annotator_index = np.unique(triples[:, 1], return_inverse=True)
    label_index = class_positions(class_ids, triples[:, 2]).astype(np.int16)
    return AnnotationRows(
        item_ids=item_ids,
        annotator_ids=annotator_ids,
        class_ids=class_ids,
        class_names=class_names,
        item_index=item_index.astype(np.int64),
        annotator_index=annotator_index.astype(np.int64),
        label_index=label_index,
    )


@dataclass(frozen=True)
class QueueItems:
    """The project's regular items (gold items apart), for the queue's scores.

    item_ids: (n,) int64 ascending; done_count: (n,) int64 annotators in each item's current
    round; gold_ids: (g,) int64 ids of the gold items.
    """

    item_ids: np.ndarray
    done_count: np.ndarray
    gold_ids: np.ndarray


def queue_items(*, project: Project) -> QueueItems:
    rows = int_rows(
        Item.objects.filter(project=project)
        .order_by("id")
        .values_list("id", "done_count", "is_gold"),
        width=3,
    )
    gold = rows[:, 2] == 1
    return QueueItems(item_ids=rows[~gold, 0], done_count=rows[~gold, 1], gold_ids=rows[gold, 0])


def _newest_per_pair(triples: np.ndarray) -> np.ndarray:
    """Rows (item, annotator, ...) ordered oldest version first -> the newest row per pair."""
    if not len(triples):
        return triples
    newest_first = triples[::-1]
    # One int64 key per pair: a 1-D unique is ~10x faster than np.unique(axis=0).
    key = newest_first[:, 0] * (int(newest_first[:, 1].max()) + 1) + newest_first[:, 1]
    _, first = np.unique(key, return_index=True)
    del key
    return newest_first[np.sort(first)]


def annotation_rows_with_gold(
    *, project: Project, version: int | None = None
) -> tuple[AnnotationRows, np.ndarray]:
    """The counted single-label annotations plus the answers to gold questions, and the gold
    answers as known truths: what Dawid-Skene learns the annotators' confusion from.

    Returns (rows over regular and gold items, truths (n_items,) int16 class index of each
    item's gold answer, -1 for regular items). Without gold items: `annotation_rows` and -1s.
    """
    regular = annotation_rows(project=project, version=version)
    gold = int_rows(
        GoldLabel.objects.filter(item__project=project, label__isnull=False).values_list(
            "item_id", "label_id"
        ),
        width=2,
    )
    if not len(gold):
        return regular, np.full(regular.n_items, -1, dtype=np.int16)
    answers = Annotation.objects.filter(
        project=project, item_id__in=gold[:, 0].tolist(), label__isnull=False
    )
    if version is not None:
        answers = answers.filter(guideline__version=version)
    answers = answers.order_by("guideline__version", "id").values_list(
        "item_id", "annotator_id", "label_id"
    )
    gold_triples = _newest_per_pair(int_rows(answers, width=3))
    class_ids = regular.class_ids
    item_of = np.concatenate([regular.item_ids[regular.item_index], gold_triples[:, 0]])
    annotator_of = np.concatenate(
        [regular.annotator_ids[regular.annotator_index], gold_triples[:, 1]]
    )
    label_index = np.concatenate(
        [regular.label_index, class_positions(class_ids, gold_triples[:, 2]).astype(np.int16)]
    )
    item_ids, item_index = np.unique(item_of, return_inverse=True)
    annotator_ids, annotator_index = np.unique(annotator_of, return_inverse=True)
    truths = np.full(len(item_ids), -1, dtype=np.int16)
    at = positions(gold[:, 0], item_ids)
    truths[at[at >= 0]] = class_positions(class_ids, gold[at >= 0, 1])
    rows = AnnotationRows(
        item_ids=item_ids,
        annotator_ids=annotator_ids,
        class_ids=class_ids,
        class_names=regular.class_names,
        item_index=item_index.astype(np.int64),
        annotator_index=annotator_index.astype(np.int64),
        label_index=label_index.astype(np.int16),
    )
    return rows, truths


# --- model predictions and item features (label issues, baselines, slices) ---


def predictions(*, project: Project, model: str) -> tuple[np.ndarray, np.ndarray]:
    """A stored model's class probabilities, in the project's label order.

    Returns (item_ids (n,) int64 ascending, probs (n, n_classes) float64). Raises LookupError
    when the project has no predictions under that model name, ValueError when a project label
    is missing from the stored classes.
    """
    _, class_names = label_classes(project)
    prediction_set, stored = _prediction_set(project, model, wanted=class_names)
    rows = _prediction_rows(prediction_set)
    # Filled block by block: a list of every row's bytes, then their join, took 600 MB more
    # than the array at two million items.
    n = rows.count()
    item_ids = np.empty(n, dtype=np.int64)
    probs = np.empty((n, len(stored)), dtype="<f8")
    filled = 0
    iterator = rows.iterator(chunk_size=CHUNK)
    while block := list(itertools.islice(iterator, CHUNK)):
        block = block[: n - filled]  # rows stored since the count are left out
        end = filled + len(block)
        item_ids[filled:end] = [item_id for item_id, _ in block]
        probs[filled:end] = np.frombuffer(
            b"".join(bytes(blob) for _, blob in block), dtype="<f8"
        ).reshape(len(block), len(stored))
        filled = end
    columns = [stored.index(name) for name in class_names]
    if filled == n and columns == list(range(len(stored))):
        return item_ids, probs
    return item_ids[:filled], np.ascontiguousarray(probs[:filled, columns])


def _prediction_set(
    project: Project, model: str, *, wanted: list[str]
) -> tuple[PredictionSet, list[str]]:
    """The project's PredictionSet named `model` and its stored classes; LookupError without
    one of that name, ValueError when a `wanted` class is not stored."""
    prediction_set = PredictionSet.objects.filter(project=project, model=model).first()
    if prediction_set is None:
        raise LookupError(f"The project has no predictions named {model!r}.")
    stored = list(prediction_set.classes)
    missing = [name for name in wanted if name not in stored]
    if missing:
        raise ValueError(f"Predictions {model!r} lack the classes {', '.join(missing)}.")
    return prediction_set, stored


def _prediction_rows(prediction_set: PredictionSet):
    return (
        Prediction.objects.filter(prediction_set=prediction_set)
        .order_by("item_id")
        .values_list("item_id", "probabilities")
    )


def _stored_predictions(
    project: Project, model: str, *, wanted: list[str]
) -> tuple[list[str], list[int], list[bytes]]:
    """(stored classes, item ids ascending, each item's float64 bytes) of a PredictionSet
    (see `_prediction_set`)."""
    prediction_set, stored = _prediction_set(project, model, wanted=wanted)
    rows = _prediction_rows(prediction_set)
    item_ids: list[int] = []
    blobs: list[bytes] = []
    for item_id, blob in rows.iterator(chunk_size=CHUNK):
        item_ids.append(item_id)
        blobs.append(bytes(blob))
    return stored, item_ids, blobs


OUTSIDE = "O"  # the token class of a span project's tokens outside any entity


@dataclass(frozen=True)
class TokenPredictions:
    """A span project model's token probabilities, items in ascending id order.

    item_ids: (n,) int64; offsets: (n + 1,) int64, item i's tokens are rows
    `offsets[i]:offsets[i + 1]` of probs (T, 1 + n_types) float64, columns `O` then the
    entity types in the project's label order.
    """

    item_ids: np.ndarray
    offsets: np.ndarray
    probs: np.ndarray

    def of(self, index: int) -> np.ndarray:
        """Item position `index`'s (n_tokens, 1 + n_types) matrix (a view)."""
        return self.probs[self.offsets[index] : self.offsets[index + 1]]


def token_predictions(*, project: Project, model: str) -> TokenPredictions:
    """A span project's stored token probabilities (`PredictionSet`), columns `O` + types.

    Raises LookupError when the project has no predictions under that model name, ValueError
    when a class is missing from the stored classes.
    """
    _, class_names = label_classes(project)
    wanted = [OUTSIDE, *class_names]
    stored, item_ids, blobs = _stored_predictions(project, model, wanted=wanted)
    row_bytes = 8 * len(stored)
    lengths = np.fromiter((len(b) // row_bytes for b in blobs), np.int64, len(blobs))
    probs = np.frombuffer(b"".join(blobs), dtype="<f8").reshape(-1, len(stored))
    columns = [stored.index(name) for name in wanted]
    if columns != list(range(len(stored))):
        probs = probs[:, columns]
    return TokenPredictions(
        item_ids=np.asarray(item_ids, dtype=np.int64),
        offsets=sequence_offsets_of(lengths),
        probs=np.ascontiguousarray(probs),
    )


@dataclass(frozen=True)
class ItemFeatures:
    """What a built-in model can learn from, for `item_ids` in that order.

    kind: "text" (features: list of str), "tabular" (a pandas DataFrame, one column per data
    field), "embedding" (an (n, d) float array) or None when the items offer nothing usable;
    then `note` says why in plain words.
    """

    kind: str | None
    features: object
    note: str = ""


def numeric_fields(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns of `frame` that hold only numbers, as float64 (NaN where a field is absent).

    A value counts as a number when it is a JSON number (or true/false) or text that reads as
    one (a CSV import keeps an image project's extra columns as text); a column with any other
    value (the image URL, a caption, a category) is left out.
    """
    kept = {}
    for column in frame.columns:
        values = frame[column]
        present = values.notna()
        if not present.any():
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers[present].notna().all():
            kept[column] = numbers.astype(np.float64)
    return pd.DataFrame(kept, index=frame.index)


def item_features(*, project: Project, item_ids: np.ndarray) -> ItemFeatures:
    """Texts, table rows or embedding vectors of the given items (streamed, in id order).

    Image items learn from an `embedding` list when they carry one, else from their numeric
    data fields (e.g. pixel values imported beside the image); the annotator still sees the
    image.
    """
    order = np.argsort(item_ids)
    wanted = np.asarray(item_ids, dtype=np.int64)[order]
    data_by_position: list = [None] * len(wanted)
    # One streamed pass over the project's items; an IN list of a million ids would not do.
    rows = Item.objects.filter(project=project).order_by("id").values_list("id", "data")
    for item_id, data in rows.iterator(chunk_size=CHUNK):
        position = int(np.searchsorted(wanted, item_id))
        if position < len(wanted) and wanted[position] == item_id:
            data_by_position[int(order[position])] = data or {}
    sample = next((d for d in data_by_position if d), {})
    if isinstance(sample.get("embedding"), list):
        width = len(sample["embedding"])
        vectors = np.full((len(wanted), width), np.nan)
        for i, data in enumerate(data_by_position):
            vector = (data or {}).get("embedding")
            if isinstance(vector, list) and len(vector) == width:
                vectors[i] = vector
        if np.isnan(vectors).any():
            raise ValueError("Some items have no embedding or one of another length.")
        return ItemFeatures("embedding", vectors)
    if project.data_type == Project.DataType.TEXT:
        return ItemFeatures("text", [str((d or {}).get("text", "")) for d in data_by_position])
    frame = pd.DataFrame.from_records([d or {} for d in data_by_position])
    if project.data_type == Project.DataType.TABULAR:
        return ItemFeatures("tabular", frame)
    numbers = numeric_fields(frame)
    if numbers.shape[1]:
        return ItemFeatures("tabular", numbers)
    return ItemFeatures(
        None,
        None,
        note=f"{project.get_data_type_display()} items carry no embedding and no numeric "
        "fields, so the built-in model has nothing to learn from",
    )


# --- item attributes, reviews, label-issue flags, speed (baselines, slices, drift) ---


@dataclass(frozen=True)
class ItemAttributes:
    """Slice attributes of a set of items, index-aligned.

    item_ids: (n,) int64 ascending. metadata: (n, n_fields) DataFrame of raw metadata values
    (NaN/None where an item lacks a field). text_length: (n,) float64 characters of
    `data["text"]`, NaN where an item has no text. batch_ids: (n,) int64, -1 without a batch.
    """

    item_ids: np.ndarray
    metadata: object  # pandas.DataFrame
    text_length: np.ndarray
    batch_ids: np.ndarray


def item_attributes(
    *,
    project: Project,
    batch_id: int | None = None,
    created_from=None,
    created_before=None,
) -> ItemAttributes:
    """Metadata, text length and batch of a project's items (optionally one batch or a
    creation-time window [created_from, created_before)), streamed in id order."""
    queryset = Item.objects.filter(project=project)
    if batch_id is not None:
        queryset = queryset.filter(batch_id=batch_id)
    if created_from is not None:
        queryset = queryset.filter(created_at__gte=created_from)
    if created_before is not None:
        queryset = queryset.filter(created_at__lt=created_before)
    rows = (
        queryset.annotate(text_chars=Length(KT("data__text")))
        .order_by("id")
        .values_list("id", "batch_id", "text_chars", "metadata")
    )
    ids: list[int] = []
    batches: list[int] = []
    lengths: list[float] = []
    metadata: list[dict] = []
    for item_id, batch, chars, meta in rows.iterator(chunk_size=CHUNK):
        ids.append(item_id)
        batches.append(-1 if batch is None else batch)
        lengths.append(np.nan if chars is None else chars)
        metadata.append(meta if isinstance(meta, dict) else {})
    frame = pd.DataFrame.from_records(metadata, index=range(len(ids))) if ids else pd.DataFrame()
    return ItemAttributes(
        item_ids=np.asarray(ids, dtype=np.int64),
        metadata=frame.astype(object),
        text_length=np.asarray(lengths, dtype=np.float64),
        batch_ids=np.asarray(batches, dtype=np.int64),
    )


def reviews(
    *, project: Project, item_ids: np.ndarray, class_ids: list[int], annotator_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Reviewers' final labels for `item_ids` (ascending).

    Returns review (n,) int64 class index (-1 not reviewed) and reviewer_annotator (n,)
    int64: the reviewer's position in `annotator_ids` (ascending), -1 when not among them.
    """
    review = np.full(len(item_ids), -1, dtype=np.int64)
    reviewer = np.full(len(item_ids), -1, dtype=np.int64)
    rows = Review.objects.filter(item__project=project, label__isnull=False).values_list(
        "item_id", "label_id", "reviewer_id"
    )
    flat = np.fromiter(
        itertools.chain.from_iterable(
            (i, label, -1 if r is None else r) for i, label, r in rows.iterator(chunk_size=CHUNK)
        ),
        dtype=np.int64,
    ).reshape(-1, 3)
    if not len(flat):
        return review, reviewer
    at = positions(flat[:, 0], np.asarray(item_ids, dtype=np.int64))
    keep = at >= 0
    class_index = {class_id: i for i, class_id in enumerate(class_ids)}
    review[at[keep]] = [class_index.get(c, -1) for c in flat[keep, 1]]
    reviewer[at[keep]] = positions(flat[keep, 2], np.asarray(annotator_ids, dtype=np.int64))
    return review, reviewer


def span_reviews(
    *, project: Project, item_ids: np.ndarray, class_ids: list[int], annotator_ids=None
) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
    """A span project's Reviews of `item_ids` (ascending).

    Returns (reviewed (n,) bool: a Review with `[]` is a decision too, the item has no
    entities; the Reviews' spans as (item position, char start, char end, class index)
    (n_spans,) int64 arrays; reviewer (n,) int64: the reviewer's position in
    `annotator_ids` (ascending), -1 when not among them or not given).
    """
    item_ids = np.asarray(item_ids, dtype=np.int64)
    reviewed = np.zeros(len(item_ids), dtype=bool)
    reviewer = np.full(len(item_ids), -1, dtype=np.int64)
    rows = driver_rows(
        Review.objects.filter(item__project=project)
        .order_by("item_id")
        .annotate(spans_text=Cast("spans", TextField()))
        .values_list("item_id", "spans_text", "reviewer_id")
    )
    if not rows:
        return reviewed, tuple(np.zeros(0, dtype=np.int64) for _ in range(4)), reviewer
    pos = positions([r[0] for r in rows], item_ids)
    counts, spans = stored_span_arrays([r[1] or "[]" for r in rows])
    reviewed[pos[pos >= 0]] = True
    if annotator_ids is not None:
        by = np.array([-1 if r[2] is None else r[2] for r in rows], dtype=np.int64)
        reviewer[pos[pos >= 0]] = positions(by[pos >= 0], np.asarray(annotator_ids, dtype=np.int64))
    span_pos = np.repeat(pos, counts)
    label = class_positions(class_ids, spans[:, 2])
    known = (span_pos >= 0) & (label >= 0)
    return reviewed, (span_pos[known], spans[known, 0], spans[known, 1], label[known]), reviewer


def issue_flags(*, project: Project, item_ids: np.ndarray) -> tuple[np.ndarray | None, int | None]:
    """Flags of the newest succeeded label-issue run for `item_ids` (ascending).

    Returns ((n,) float64: 1.0 flagged, 0.0 checked and fine, NaN not checked; the run id),
    or (None, None) when the project has no such run.
    """
    run = AnalysisRun.objects.latest_succeeded(project, AnalysisRun.Kind.LABEL_ISSUES)
    if run is None:
        return None, None
    run_id = run.pk
    flags = np.full(len(item_ids), np.nan)
    flat = int_rows(
        LabelIssue.objects.filter(run_id=run_id).values_list("item_id", "is_issue"), width=2
    )
    at = positions(flat[:, 0], np.asarray(item_ids, dtype=np.int64))
    keep = at >= 0
    flags[at[keep]] = flat[keep, 1].astype(np.float64)
    return flags, run_id


def annotator_seconds(*, project: Project, version: int | None = None) -> dict[int, float]:
    """Median seconds per annotation of each annotator who recorded a time. {user id: s}."""
    queryset = Annotation.objects.filter(project=project, lead_time_ms__isnull=False)
    if version is not None:
        queryset = queryset.filter(guideline__version=version)
    flat = np.fromiter(
        itertools.chain.from_iterable(
            queryset.values_list("annotator_id", "lead_time_ms").iterator(chunk_size=CHUNK)
        ),
        dtype=np.int64,
    ).reshape(-1, 2)
    if not len(flat):
        return {}
    order = np.argsort(flat[:, 0], kind="stable")
    annotators, starts = np.unique(flat[order, 0], return_index=True)
    groups = np.split(flat[order, 1], starts[1:])
    return {int(a): float(np.median(g)) / 1000.0 for a, g in zip(annotators, groups, strict=True)}


def annotation_versions(*, project: Project) -> list[int]:
    """The guideline versions the project's annotations were made under, oldest first."""
    # One index probe per version instead of a DISTINCT over every annotation.
    used = Annotation.objects.filter(project=project, guideline=OuterRef("pk"))
    return sorted(
        Guideline.objects.filter(project=project, version__isnull=False)
        .filter(Exists(used))
        .values_list("version", flat=True)
    )


@dataclass(frozen=True)
class ChoiceRows:
    """Multi-label annotations in long form: which label classes each annotation chose.

    item_index, annotator_index: (n_annotations,) int arrays indexing `item_ids` and
    `annotator_ids`; chosen: (n_annotations, n_classes) bool, columns in `class_names` order.
    """

    item_ids: np.ndarray
    annotator_ids: np.ndarray
    class_ids: list[int]
    class_names: list[str]
    item_index: np.ndarray
    annotator_index: np.ndarray
    chosen: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_annotators(self) -> int:
        return len(self.annotator_ids)

    def array(self) -> np.ndarray:
        """(n_items, n_annotators, n_classes) int8: 1 chosen, 0 not, -1 not labeled."""
        out = np.full((self.n_items, self.n_annotators, len(self.class_ids)), -1, dtype=np.int8)
        out[self.item_index, self.annotator_index] = self.chosen
        return out


def annotation_choices(*, project: Project, version: int | None = None) -> ChoiceRows:
    """All multi-label annotations (`Annotation.labels`: label class ids) of a project.

    As in `annotation_rows`, the annotation under the newest guideline version wins.
    """
    class_ids, class_names = label_classes(project)
    column = {class_id: i for i, class_id in enumerate(class_ids)}
    queryset = counted_annotations(project=project)
    if version is not None:
        queryset = queryset.filter(guideline__version=version)
    queryset = queryset.order_by("-guideline__version").values_list(
        "item_id", "annotator_id", "labels"
    )
    pairs, chosen_rows, seen = [], [], set()
    for item_id, annotator_id, labels in queryset.iterator(chunk_size=CHUNK):
        if (item_id, annotator_id) in seen:
            continue  # an older version's annotation of the same item by the same person
        seen.add((item_id, annotator_id))
        pairs.append((item_id, annotator_id))
        chosen_rows.append([column[c] for c in (labels or []) if c in column])
    pair_array = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    item_ids, item_index = np.unique(pair_array[:, 0], return_inverse=True)
    annotator_ids, annotator_index = np.unique(pair_array[:, 1], return_inverse=True)
    chosen = np.zeros((len(pairs), len(class_ids)), dtype=bool)
    rows = np.repeat(np.arange(len(pairs)), [len(r) for r in chosen_rows])
    chosen[rows, np.fromiter(itertools.chain.from_iterable(chosen_rows), dtype=np.int64)] = True
    return ChoiceRows(
        item_ids=item_ids,
        annotator_ids=annotator_ids,
        class_ids=class_ids,
        class_names=class_names,
        item_index=item_index.astype(np.int64),
        annotator_index=annotator_index.astype(np.int64),
        chosen=chosen,
    )


@dataclass(frozen=True)
class SpanRows:
    """A span project's annotations in long form, spans as token ranges (`metrics.span_tags`).

    Items: `item_ids` (n_items,) sorted ids of the items that have annotations, their texts
    and `item_lengths` (token counts); their tokens' character offsets `token_starts`,
    `token_ends` (sum(item_lengths),), item after item (`span_tags.sequence_offsets`).
    Annotations: `annotation_item`, `annotation_annotator` (indexing `item_ids`,
    `annotator_ids`) and `annotation_version`, (n_annotations,).
    Spans: `span_annotation`, `span_start`, `span_end` (token indices within the item, end
    exclusive), `span_label` (class index in `class_names` order), (n_spans,), sorted by
    annotation and start.
    """

    item_ids: np.ndarray
    item_texts: list[str]
    item_lengths: np.ndarray
    annotator_ids: np.ndarray
    class_ids: list[int]
    class_names: list[str]
    annotation_item: np.ndarray
    annotation_annotator: np.ndarray
    annotation_version: np.ndarray
    span_annotation: np.ndarray
    span_start: np.ndarray
    span_end: np.ndarray
    span_label: np.ndarray
    token_starts: np.ndarray
    token_ends: np.ndarray

    @property
    def annotation_lengths(self) -> np.ndarray:
        return self.item_lengths[self.annotation_item]

    def token_bounds(self, item: int) -> list[tuple[int, int]]:
        """The (start, end) character offsets of item position `item`'s tokens."""
        return [m.span() for m in TOKEN_PATTERN.finditer(self.item_texts[item])]


# Stored spans as text (`[[start, end, label_id], ...]`) -> whitespace-separated integers.
_SPAN_PUNCTUATION = str.maketrans("[],", "   ")


def stored_span_arrays(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Stored span lists read as text -> (counts (n_texts,) spans per list, (n_spans, 3) int64
    `[start, end, label_id]` rows).

    numpy parses the numbers in one call; a list in any other shape than `[[int, int, int],
    ...]` is left to `json.loads`.
    """
    counts = np.fromiter(map(str.count, texts, itertools.repeat("[")), np.int64, len(texts)) - 1
    if not counts.sum():
        return np.zeros(len(texts), dtype=np.int64), np.zeros((0, 3), dtype=np.int64)
    joined = " ".join(texts).translate(_SPAN_PUNCTUATION)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns when text is left over: not our shape
        try:
            numbers = np.fromstring(joined, dtype=np.int64, sep=" ")
        except (DeprecationWarning, ValueError):
            numbers = np.zeros(0, dtype=np.int64)
    if len(numbers) == 3 * counts.sum():
        return counts, numbers.reshape(-1, 3)
    parsed = json.loads("[" + ",".join(texts) + "]")
    counts = np.fromiter(map(len, parsed), dtype=np.int64, count=len(parsed))
    spans = np.array(list(itertools.chain.from_iterable(parsed)), dtype=np.int64)
    return counts, spans.reshape(-1, 3)


def sequence_offsets_of(lengths: np.ndarray) -> np.ndarray:
    """(n + 1,) int64 running totals of `lengths`, from 0."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _span_annotations(queryset) -> tuple[np.ndarray, ...]:
    """(item_id, annotator_id, guideline_id, span counts) (n_annotations,) int64 and the
    spans (n_spans, 3) `[start, end, label_id]` of the queryset's annotations, in one order."""
    rows = driver_rows(
        queryset.order_by()
        .annotate(spans_text=Cast("spans", TextField()))
        .values_list("item_id", "annotator_id", "guideline_id", "spans_text")
    )
    n_rows = len(rows)
    item_id, annotator_id, guideline_id = (
        np.fromiter(map(itemgetter(k), rows), dtype=np.int64, count=n_rows) for k in range(3)
    )
    counts, spans = stored_span_arrays([row[3] or "[]" for row in rows])
    return item_id, annotator_id, guideline_id, counts, spans


def _span_annotations_aggregated(queryset) -> tuple[np.ndarray, ...] | None:
    """`_span_annotations` on PostgreSQL: the server joins every annotation's numbers into two
    texts (one row, no Python object per annotation), which numpy parses in one call each:
    0.35 s less CPU than the rows for 300,000 annotations (1.2 million spans), measured.

    None where it does not apply (SQLite), or if a stored span list is not `[[int, int, int],
    ...]` (`_span_annotations` deals with those).
    """
    if connections[queryset.db].vendor != "postgresql":
        return None
    sql, params = (
        queryset.order_by().values_list("item_id", "annotator_id", "guideline_id", "spans")
    ).query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(concat_ws(' ', a.item_id, a.annotator_id, a.guideline_id, "
            "CASE jsonb_typeof(a.spans) WHEN 'array' THEN jsonb_array_length(a.spans) "
            "ELSE -1 END), ' '), string_agg(a.spans::text, ' ') "
            f"FROM ({sql}) AS a(item_id, annotator_id, guideline_id, spans)",
            params,
        )
        head, body = cursor.fetchone()
    if head is None:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty, np.zeros((0, 3), dtype=np.int64)
    head = _numbers(head)
    spans = _numbers(body.translate(_SPAN_PUNCTUATION))
    if head is None or spans is None or len(head) % 4:
        return None
    head = head.reshape(-1, 4)
    counts = head[:, 3].copy()
    if (counts < 0).any() or 3 * int(counts.sum()) != len(spans):
        return None
    return head[:, 0].copy(), head[:, 1].copy(), head[:, 2].copy(), counts, spans.reshape(-1, 3)


def _numbers(text: str) -> np.ndarray | None:
    """The whitespace-separated integers of `text` as int64; None if it holds anything else."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns when text is left over: not our shape
        try:
            return np.fromstring(text, dtype=np.int64, sep=" ")
        except (DeprecationWarning, ValueError):
            return None


def _char_tokens(
    texts: list[str],
    lengths: np.ndarray,
    token_starts: np.ndarray,
    token_ends: np.ndarray,
    span_item: np.ndarray,
    char_start: np.ndarray,
    char_end: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Spans' character offsets -> (first token, last token + 1) within their item.

    What `searchsorted` over the item's token starts (and ends) gives, found from a running
    count of the token starts before each character of all the texts laid end to end (as in
    `token_bounds_many`): one pass over the characters rather than a binary search per span.
    The count is kept modulo 256 (or 65536) when no item has more tokens, so the array is one
    byte per character; an item's own count is then exact modulo that. The tokens ending
    before `e` are those starting before it, less the one `e` falls inside.
    """
    n = len(texts)
    char_base = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=n) + 1, out=char_base[1:])
    size = int(char_base[-1])
    most = int(lengths.max(initial=0))
    dtype = np.uint8 if most < 2**8 else np.uint16 if most < 2**16 else np.int64
    modulus = 2**8 if dtype == np.uint8 else 2**16 if dtype == np.uint16 else 2**63
    before = np.zeros(size + 1, dtype=dtype)
    before[token_starts + np.repeat(char_base[:-1] + 1, lengths)] = 1
    np.cumsum(before, dtype=dtype, out=before)
    token_base = sequence_offsets_of(lengths)[span_item]
    item_base = char_base[span_item]
    item_size = char_base[span_item + 1] - 1 - item_base

    def starting_before(before, offsets):
        # Clipped to the item, as searchsorted clips to the tokens (counts are item-local).
        at = before[np.clip(offsets, 0, item_size) + item_base].astype(np.int64)
        at -= token_base
        at %= modulus
        return at

    first_token = starting_before(before, char_start)
    last_token = starting_before(before, char_end)
    del before
    # The token that starts before e and ends at or after it has e inside (or at its end).
    last = np.maximum(last_token - 1, 0) + token_base
    inside = (last_token > 0) & (np.asarray(token_ends)[np.minimum(last, len(token_ends) - 1)]
                                 >= char_end)  # fmt: skip
    last_token -= inside
    last_token += 1
    return first_token, last_token


def _item_texts(
    project: Project, item_ids: np.ndarray, *, known: tuple[np.ndarray, list] | None
) -> list[str]:
    """The `data.text` of the items (sorted ids), '' where missing; from `known` (sorted ids,
    texts) where it has them."""
    if known is None:
        found = dict(
            driver_rows(
                Item.objects.filter(project=project).order_by().values_list("id", KT("data__text"))
            )
        )
        return [found.get(i) or "" for i in item_ids.tolist()]
    known_ids, known_texts = known
    at = positions(item_ids, known_ids)
    texts = [known_texts[i] or "" for i in at.tolist()]
    missing = np.flatnonzero(at < 0)
    if len(missing):  # items added since the caller read them
        found = dict(
            driver_rows(
                Item.objects.filter(id__in=item_ids[missing].tolist())
                .order_by()
                .values_list("id", KT("data__text"))
            )
        )
        for i in missing.tolist():
            texts[i] = found.get(int(item_ids[i])) or ""
    return texts


def span_rows(
    *,
    project: Project,
    version: int | None = None,
    texts: tuple[np.ndarray, list[str | None]] | None = None,
) -> SpanRows:
    """Every span annotation of a project (or of one guideline version) as arrays.

    As in `annotation_rows`, the annotation under the newest guideline version wins for an
    item an annotator labeled under several. Spans are JSON per annotation (one column, no
    row per span): read as text and parsed in one call; the items' tokens come from
    `labeling.spans.token_bounds_many`, and character offsets become token indices by one
    `searchsorted` over every item's token starts. No Python object is made per span or token.

    texts: (sorted item ids, their `data.text`) if the caller has read them already (the
    export reads every item's id); items missing there are read.
    """
    class_ids, class_names = label_classes(project)
    queryset = counted_annotations(project=project)
    if version is not None:
        queryset = queryset.filter(guideline__version=version)
    read = _span_annotations_aggregated(queryset) or _span_annotations(queryset)
    item_id, annotator_id, guideline_id, counts, spans = read
    n_rows = len(item_id)
    # Versions by guideline id (a few rows) rather than a join per annotation.
    guidelines = int_rows(
        Guideline.objects.filter(project=project).order_by("id").values_list("id", "version"),
        width=2,
    )
    version_of = guidelines[positions(guideline_id, guidelines[:, 0]), 1]
    del guideline_id
    # Per (item, annotator): the newest version's annotation (one per version: a constraint).
    order = np.lexsort((-version_of, annotator_id, item_id))
    first = np.ones(n_rows, dtype=bool)
    first[1:] = (np.diff(item_id[order]) != 0) | (np.diff(annotator_id[order]) != 0)
    kept = order[first]
    del order, first
    # kept is in item order: the distinct items are where the id changes (no second sort).
    kept_items = item_id[kept]
    new_item = np.ones(len(kept), dtype=bool)
    new_item[1:] = kept_items[1:] != kept_items[:-1]
    item_ids = kept_items[new_item]
    annotation_item = np.cumsum(new_item) - 1
    del kept_items, new_item
    annotator_ids, annotation_annotator = np.unique(annotator_id[kept], return_inverse=True)
    if len(kept) != n_rows or (n_rows and not (np.diff(kept) > 0).all()):
        # Annotations left out or reordered: take the kept rows' spans, in kept order.
        kept_counts = counts[kept]
        shift = sequence_offsets_of(counts)[kept] - sequence_offsets_of(kept_counts)[:-1]
        take = np.repeat(shift, kept_counts) + np.arange(int(kept_counts.sum()), dtype=np.int64)
        spans, counts = spans[take], kept_counts
        del take, shift
    annotation_version = version_of[kept]
    del item_id, annotator_id, version_of
    item_texts = _item_texts(project, item_ids, known=texts)

    item_lengths, token_starts, token_ends = token_bounds_many(item_texts)
    span_annotation = np.repeat(np.arange(len(kept), dtype=np.int64), counts)
    span_item = annotation_item[span_annotation]
    first_token, last_token = _char_tokens(
        item_texts, item_lengths, token_starts, token_ends, span_item, spans[:, 0], spans[:, 1]
    )
    del span_item
    span_label = class_positions(class_ids, spans[:, 2])
    return SpanRows(
        item_ids=item_ids,
        item_texts=item_texts,
        item_lengths=item_lengths,
        annotator_ids=annotator_ids,
        class_ids=class_ids,
        class_names=class_names,
        annotation_item=annotation_item.astype(np.int64),
        annotation_annotator=annotation_annotator.astype(np.int64),
        annotation_version=annotation_version,
        span_annotation=span_annotation,
        span_start=first_token,
        span_end=last_token,
        span_label=span_label.astype(np.int64),
        token_starts=token_starts,
        token_ends=token_ends,
    )


def item_token_bounds(
    *, project: Project, item_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The contract's tokens of the items' texts (`item_ids` ascending), as arrays.

    Returns (lengths (n,) token counts; starts, ends (sum(lengths),) character offsets).
    """
    return token_bounds_many(_item_texts(project, np.asarray(item_ids), known=None))


@dataclass(frozen=True)
class ShownRows:
    """Single-label annotations with the suggestion each annotator was shown (anchoring).

    item_index, label_index, shown_index: (n_annotations,) int64; `shown_index` is the class
    index of the suggestion shown, -1 where none. reference: (n_items,) int64 class index of
    the item's known answer, -1 where none: its gold label, else its reviewed label.
    n_gold, n_reviewed: how many items the reference took from each.
    """

    item_ids: np.ndarray
    class_names: list[str]
    item_index: np.ndarray
    label_index: np.ndarray
    shown_index: np.ndarray
    reference: np.ndarray
    n_gold: int
    n_reviewed: int


def suggestions_shown(*, project: Project, version: int | None = None) -> bool:
    """Whether any annotation `shown_rows` reads was shown a suggestion: asked of the
    database (the suggestion's foreign-key index) before reading every annotation, which most
    projects, never showing suggestions, do not need (10 s at ten million annotations)."""
    queryset, _ = _annotation_queryset(project=project, version=version, with_gold=True)
    return queryset.filter(suggestion_label__isnull=False).exists()


def shown_rows(*, project: Project, version: int | None = None) -> ShownRows:
    """The single-label annotations (as `annotation_rows`: the newest version per item and
    annotator) with the suggestion each was shown, and the items' gold or reviewed labels.
    Answers to gold questions are included: anchoring is about what annotators do when shown
    a suggestion, and on a gold item the right answer is known for sure."""
    class_ids, class_names = label_classes(project)
    queryset, several_versions = _annotation_queryset(
        project=project, version=version, with_gold=True
    )
    # Class ids are positive: 0 stands for "no suggestion shown" in the integer read.
    rows = int_rows(
        queryset.annotate(shown=Coalesce("suggestion_label_id", 0)).values_list(
            "item_id", "annotator_id", "label_id", "shown"
        ),
        width=4,
    )
    if several_versions:
        rows = _newest_per_pair(rows)
    item_ids, item_index = np.unique(rows[:, 0], return_inverse=True)
    shown_index = np.where(rows[:, 3] > 0, class_positions(class_ids, rows[:, 3]), -1)
    reference = np.full(len(item_ids), -1, dtype=np.int64)
    reviewed = int_rows(
        Review.objects.filter(item__project=project, label__isnull=False).values_list(
            "item_id", "label_id"
        ),
        width=2,
    )
    gold = int_rows(
        GoldLabel.objects.filter(item__project=project, label__isnull=False).values_list(
            "item_id", "label_id"
        ),
        width=2,
    )
    counted = {}
    for name, pairs in (("reviewed", reviewed), ("gold", gold)):  # gold last: it wins
        at = positions(pairs[:, 0], item_ids) if len(pairs) else np.zeros(0, dtype=np.int64)
        keep = at >= 0
        reference[at[keep]] = class_positions(class_ids, pairs[keep, 1])
        counted[name] = int(keep.sum())
    n_gold = counted["gold"]
    return ShownRows(
        item_ids=item_ids,
        class_names=class_names,
        item_index=item_index.astype(np.int64),
        label_index=class_positions(class_ids, rows[:, 2]).astype(np.int64),
        shown_index=shown_index.astype(np.int64),
        reference=reference,
        n_gold=n_gold,
        n_reviewed=int((reference >= 0).sum()) - n_gold,
    )
