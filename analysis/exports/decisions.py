"""The final label of every item of a project, and which items the export's filters keep.

Computed once per export as numpy arrays over every item id (about 40 bytes per item): the
annotations come from `analysis.loaders`, reviews and label-issue rows from `values_list`.
No ORM object is built per row.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from django.core.exceptions import ValidationError

from analysis.exports.params import ExportParams
from analysis.loaders import annotation_rows_with_gold, annotation_votes, label_classes
from analysis.metrics.consensus import (
    dawid_skene_long,
    majority_from_counts,
    posterior_winner,
    vote_counts,
)
from analysis.models import AnalysisRun, LabelIssue
from labeling.models import GoldLabel, Item, Project, Review
from labeling.rawsql import int_rows, positions

BLOCK = 50_000


class LabelSource(IntEnum):
    """Where an item's exported label came from: the int8 codes of `LabelDecisions.source`."""

    NONE = 0
    REVIEW = 1
    MAJORITY = 2
    DAWID_SKENE = 3
    CROWDLAB = 4
    GOLD = 5

    @property
    def column_value(self) -> str | None:
        """The export's `label_source` value: review, majority, dawid_skene, crowdlab, gold or
        None."""
        return None if self is LabelSource.NONE else self.name.lower()


@dataclass
class LabelDecisions:
    """One decision per item of the project, in item id order.

    item_ids: (n_items,) int64 sorted; label: (n_items,) int16 class index, -1 for none;
    source: (n_items,) int8 LabelSource codes; agreement: (n_items,) float64 share of the
    item's annotations that agree with the exported label (NaN without annotations or label);
    n_annotations: (n_items,) int32; quality: (n_items,) float64 (NaN without a label-issue
    run row); issue: (n_items,) bool; keep: (n_items,) bool after the filters.
    excluded: items each filter excludes (counted per filter); runs: analysis runs used.
    """

    item_ids: np.ndarray
    label: np.ndarray
    source: np.ndarray
    agreement: np.ndarray
    n_annotations: np.ndarray
    quality: np.ndarray
    issue: np.ndarray
    keep: np.ndarray
    class_names: list[str]
    excluded: dict[str, int] = field(default_factory=dict)
    runs: list[int] = field(default_factory=list)

    @property
    def kept_ids(self) -> np.ndarray:
        return self.item_ids[self.keep]


def label_decisions(*, project: Project, params: ExportParams) -> LabelDecisions:
    """Compute the exported label of every item and which items the filters keep."""

    item_ids = int_rows(
        Item.objects.filter(project=project).order_by("id").values_list("id"), width=1
    )[:, 0]
    n = len(item_ids)
    class_id_list, class_names = label_classes(project)
    class_ids = np.asarray(class_id_list, dtype=np.int64)
    n_classes = len(class_ids)
    rows = None
    if params.labels == "dawid_skene":
        # Dawid-Skene needs who labeled what (the other strategies only need the votes), and
        # learns the annotators' confusion from their answers to gold questions too.
        rows, truths = annotation_rows_with_gold(project=project, version=params.guideline_version)
        pos = positions(rows.item_ids, item_ids)
        item_pos = pos[rows.item_index]
        # An item added since item_ids was read (pos -1) is not exported: nor are its votes;
        # answers to gold questions are not votes either.
        counted = (item_pos >= 0) & (truths[rows.item_index] < 0)
        label_index = np.where(counted, rows.label_index, -1)
    else:
        item_pos, label_index = annotation_votes(
            project=project, item_ids=item_ids, version=params.guideline_version
        )
    counts = vote_counts(item_pos, label_index, n_items=n, n_classes=n_classes)
    del item_pos, label_index
    n_annotations = counts.sum(axis=1).astype(np.int32)

    label = np.full(n, -1, dtype=np.int16)
    source = np.zeros(n, dtype=np.int8)
    quality = np.full(n, np.nan)
    issue = np.zeros(n, dtype=bool)
    open_issue = np.zeros(n, dtype=bool)
    runs: list[int] = []

    def class_index(label_ids: np.ndarray) -> np.ndarray:
        order = np.argsort(class_ids)
        idx = np.searchsorted(class_ids[order], label_ids)
        return order[np.minimum(idx, len(order) - 1)]

    run = AnalysisRun.objects.latest_succeeded(project, AnalysisRun.Kind.LABEL_ISSUES)
    if run is not None:
        runs.append(run.pk)
        issue_table = label_issue_arrays(run)
        if len(issue_table["item_id"]):
            p = positions(issue_table["item_id"], item_ids)
            found = p >= 0
            p = p[found]
            quality[p] = issue_table["quality"][found]
            flagged = issue_table["is_issue"][found]
            issue[p] = flagged
            open_issue[p] = flagged & issue_table["open"][found]
            if params.labels == "crowdlab":
                # CROWDLAB's consensus: the run's suggested label where it made one, else the
                # label the run considered given.
                chosen = issue_table["label_id"][found]
                has = chosen >= 0
                label[p[has]] = class_index(chosen[has])
                source[p[has]] = LabelSource.CROWDLAB
    elif params.labels == "crowdlab":
        raise ValidationError(
            {"labels": "labels=crowdlab needs a succeeded label-issue run; start one first."}
        )

    majority, majority_share, _ = majority_from_counts(counts, project.tie_rule)
    if params.labels == "majority":
        label[:] = majority
        source[majority >= 0] = LabelSource.MAJORITY
    elif rows is not None and len(rows.item_index):
        posteriors, _ = dawid_skene_long(
            rows.item_index,
            rows.annotator_index,
            rows.label_index,
            n_items=rows.n_items,
            n_annotators=rows.n_annotators,
            n_classes=n_classes,
            true_labels=truths,
        )
        winner, _ = posterior_winner(posteriors)
        has = (winner >= 0) & (pos >= 0) & (truths < 0)  # gold items: their gold label below
        label[pos[has]] = winner[has]
        source[pos[has]] = LabelSource.DAWID_SKENE

    # A gold question is exported with its gold answer (label_source "gold"); a review still
    # wins. Its annotators' answers are not among the counted annotations.
    golds = int_rows(
        GoldLabel.objects.filter(item__project=project, label__isnull=False).values_list(
            "item_id", "label_id"
        ),
        width=2,
    )
    if len(golds):
        p = positions(golds[:, 0], item_ids)
        found = p >= 0
        label[p[found]] = class_index(golds[found, 1])
        source[p[found]] = LabelSource.GOLD

    reviews = int_rows(
        Review.objects.filter(item__project=project, label__isnull=False).values_list(
            "item_id", "label_id"
        ),
        width=2,
    )
    reviewed = np.zeros(n, dtype=bool)
    if len(reviews):
        p = positions(reviews[:, 0], item_ids)
        found = p >= 0
        label[p[found]] = class_index(reviews[found, 1])
        source[p[found]] = LabelSource.REVIEW
        reviewed[p[found]] = True

    with np.errstate(invalid="ignore", divide="ignore"):
        safe = np.maximum(label, 0).astype(np.int64)
        agreement = counts[np.arange(n), safe] / n_annotations if n else np.zeros(0)
    agreement = np.where((label >= 0) & (n_annotations > 0), agreement, np.nan)
    if params.labels == "majority":
        # For majority ties left unresolved the share of the tied top classes is still shown.
        agreement = np.where(label < 0, majority_share, agreement)

    keep, excluded = filters_applied(
        project=project,
        params=params,
        item_ids=item_ids,
        n_annotations=n_annotations,
        agreement=agreement,
        reviewed=reviewed,
        unresolved=label < 0,
        open_issue=open_issue,
    )
    return LabelDecisions(
        item_ids=item_ids,
        label=label,
        source=source,
        agreement=np.round(agreement, 6),
        n_annotations=n_annotations,
        quality=quality,
        issue=issue,
        keep=keep,
        class_names=class_names,
        excluded=excluded,
        runs=runs,
    )


def filters_applied(
    *,
    project: Project,
    params: ExportParams,
    item_ids: np.ndarray,
    n_annotations: np.ndarray,
    agreement: np.ndarray,
    reviewed: np.ndarray,
    unresolved: np.ndarray,
    open_issue: np.ndarray,
) -> tuple[np.ndarray, dict[str, int]]:
    """Which items the export's filters keep, and how many each filter excludes.

    All arrays (n_items,) in item id order. unresolved: the strategy left the item (partly)
    undecided; items below the project's overlap count as unresolved too, and reviewed items
    never do. Returns (keep (n_items,) bool, excluded {filter: count}).
    """
    n = len(item_ids)
    excluded: dict[str, int] = {}
    keep = np.ones(n, dtype=bool)
    if params.guideline_version is not None:
        drop = n_annotations == 0
        excluded["guideline_version"] = int(drop.sum())
        keep &= ~drop
    masks = {
        "open_issues": lambda: open_issue,
        "ambiguous": lambda: ambiguous_items(project=project, item_ids=item_ids),
        "unresolved": lambda: ~reviewed & (unresolved | (n_annotations < project.overlap)),
    }
    for name in params.exclude:
        mask = masks[name]()
        excluded[name] = int(mask.sum())
        keep &= ~mask
    if params.min_agreement is not None:
        # Reviewed items pass: a reviewer's decision stands whatever the annotators said.
        drop = ~reviewed & ~(agreement >= params.min_agreement)
        excluded["min_agreement"] = int(drop.sum())
        keep &= ~drop
    return keep, excluded


def label_issue_arrays(run: AnalysisRun) -> dict[str, np.ndarray]:
    """A label-issue run's rows as arrays (filled block by block: constant extra memory).

    item_id, label_id (suggested, else given; -1 for none): (m,) int64; quality: (m,)
    float64; is_issue, open (resolution still open): (m,) bool.
    """
    queryset = LabelIssue.objects.filter(run=run).values_list(
        "item_id", "suggested_label_id", "given_label_id", "quality", "is_issue", "resolution"
    )
    m = queryset.count()
    out = {
        "item_id": np.empty(m, dtype=np.int64),
        "label_id": np.full(m, -1, dtype=np.int64),
        "quality": np.full(m, np.nan),
        "is_issue": np.zeros(m, dtype=bool),
        "open": np.zeros(m, dtype=bool),
    }
    rows = queryset.iterator(chunk_size=BLOCK)
    filled = 0
    while block := list(itertools.islice(rows, BLOCK)):
        block = block[: m - filled]  # rows added since the count are left out
        end = filled + len(block)
        out["item_id"][filled:end] = [r[0] for r in block]
        out["label_id"][filled:end] = [
            r[1] if r[1] is not None else (r[2] if r[2] is not None else -1) for r in block
        ]
        out["quality"][filled:end] = [np.nan if r[3] is None else r[3] for r in block]
        out["is_issue"][filled:end] = [bool(r[4]) for r in block]
        out["open"][filled:end] = [r[5] == LabelIssue.Resolution.OPEN for r in block]
        filled = end
    return {key: value[:filled] for key, value in out.items()}


def ambiguous_items(*, project: Project, item_ids: np.ndarray) -> np.ndarray:
    """Items a reviewer marked ambiguous in any label-issue run of the project."""
    ids = int_rows(
        LabelIssue.objects.filter(run__project=project, resolution=LabelIssue.Resolution.AMBIGUOUS)
        .order_by()  # the model's ordering would add its column to SELECT DISTINCT
        .values_list("item_id")
        .distinct(),
        width=1,
    )[:, 0]
    mask = np.zeros(len(item_ids), dtype=bool)
    if len(ids):
        p = positions(ids, item_ids)
        mask[p[p >= 0]] = True
    return mask
