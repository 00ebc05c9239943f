"""Sending back every item whose annotators disagree more than a threshold.

The entropy comes from analysis (`analysis.metrics.disagreement`); the sending back itself is
labeling's `relabel_request`, which starts a new round for each item.
"""

from django.core.exceptions import ValidationError

from analysis import loaders
from analysis.metrics.disagreement import label_entropy
from labeling import selectors
from labeling.models import Project
from labeling.services.relabeling import relabel_request


def disagreeing_item_ids(*, project: Project, threshold: float) -> list[int]:
    """Items whose label entropy under the current version is above `threshold` (0..1).

    Entropy is normalized by log(number of classes); only items with two or more labels.
    """
    guideline = selectors.current_guideline(project=project)
    if guideline is None:
        return []
    rows = loaders.annotation_rows(project=project, version=guideline.version)
    if rows.n_items == 0:
        return []
    entropy, _ = label_entropy(rows.item_index, rows.label_index, rows.n_items, rows.n_classes)
    return [int(i) for i in rows.item_ids[entropy > threshold]]


def relabel_by_disagreement(*, project: Project, threshold) -> int:
    """Send back every item whose annotators disagree more than `threshold` (0..1)."""
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ValidationError({"threshold": "A number between 0 and 1."}) from None
    if not 0.0 <= threshold < 1.0:
        raise ValidationError({"threshold": "A number from 0 up to (not including) 1."})
    if project.is_multi_label:
        raise ValidationError(
            {
                "threshold": "Disagreement thresholds work on single-label projects; "
                "choose the items instead."
            }
        )
    ids = disagreeing_item_ids(project=project, threshold=threshold)
    if not ids:
        return 0
    return relabel_request(project=project, item_ids=ids)
