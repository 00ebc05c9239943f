"""Reads about gold questions: each annotator's answers to them, their accuracy, their mistakes.

An answer is right when it equals the gold answer exactly: the same class (single-label), the
same set of classes (multi-label), the same set of spans (span projects). The annotator's
newest answer per gold item counts.

Accuracy comes with a 95% Wilson score interval (scipy's `binomtest(...).proportion_ci(
method="wilson")`, the same formula as `analysis.metrics.intervals.wilson_interval`, which
labeling may not import; a test holds the two equal). Below MIN_GOLD_ANSWERS answers the
figure is shown as "too few gold answers to judge": with 9 answers the interval of 9/9 still
reaches down to 70%.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from scipy.stats import binomtest

from labeling.models import Annotation, GoldLabel, Project

MIN_GOLD_ANSWERS = 10


@dataclass(frozen=True)
class GoldAnswer:
    """One annotator's newest answer to one gold item, and whether it is right."""

    item_id: int
    annotator_id: int
    correct: bool
    answer: Annotation


def _same_answer(annotation: Annotation, gold: GoldLabel, project: Project) -> bool:
    if project.is_spans:
        return sorted(map(tuple, annotation.spans)) == sorted(map(tuple, gold.spans))
    if project.is_multi_label:
        return sorted(annotation.labels) == sorted(gold.labels)
    return annotation.label_id == gold.label_id


def gold_labels(*, project: Project) -> dict[int, GoldLabel]:
    """The project's gold answers by item id (read through the small GoldLabel table)."""
    return {g.item_id: g for g in GoldLabel.objects.filter(item__project=project)}


def gold_answers(*, project: Project, annotator_ids=None) -> list[GoldAnswer]:
    """The newest answer of each annotator to each gold item (all annotators, or those given).

    Reads the annotations of gold items only (gold items x annotators rows at most).
    """
    golds = gold_labels(project=project)
    if not golds:
        return []
    annotations = Annotation.objects.filter(project=project, item_id__in=list(golds)).only(
        "id", "item_id", "annotator_id", "label_id", "labels", "spans", "updated_at"
    )
    if annotator_ids is not None:
        annotations = annotations.filter(annotator_id__in=list(annotator_ids))
    newest: dict[tuple[int, int], Annotation] = {}
    for annotation in annotations.order_by("updated_at", "id").iterator(chunk_size=5_000):
        newest[(annotation.item_id, annotation.annotator_id)] = annotation
    return [
        GoldAnswer(
            item_id=item_id,
            annotator_id=annotator_id,
            correct=_same_answer(annotation, golds[item_id], project),
            answer=annotation,
        )
        for (item_id, annotator_id), annotation in newest.items()
    ]


def accuracy_interval(correct: int, n: int) -> tuple[float, float] | None:
    """95% Wilson score interval of correct / n; None when n == 0."""
    if n <= 0:
        return None
    interval = binomtest(int(correct), int(n)).proportion_ci(method="wilson")
    return (float(interval.low), float(interval.high))


def gold_accuracy(*, project: Project) -> dict:
    """Per-annotator accuracy on the gold questions.

    Returns {n_gold_items, min_answers, annotators: [{annotator, annotator_id, n, correct,
    accuracy, interval [low, high], judged}]}, annotators by name; `judged` is False (and
    accuracy and interval are None) below MIN_GOLD_ANSWERS answers.
    """
    answers = gold_answers(project=project)
    counts: dict[int, list[int]] = {}
    for answer in answers:
        n_correct = counts.setdefault(answer.annotator_id, [0, 0])
        n_correct[0] += 1
        n_correct[1] += answer.correct
    names = dict(get_user_model().objects.filter(pk__in=list(counts)).values_list("pk", "username"))
    rows = []
    for annotator_id, (n, correct) in counts.items():
        judged = n >= MIN_GOLD_ANSWERS
        interval = accuracy_interval(correct, n) if judged else None
        rows.append(
            {
                "annotator": names.get(annotator_id, str(annotator_id)),
                "annotator_id": annotator_id,
                "n": n,
                "correct": correct,
                "accuracy": round(correct / n, 4) if judged else None,
                "interval": [round(interval[0], 4), round(interval[1], 4)] if judged else None,
                "judged": judged,
            }
        )
    rows.sort(key=lambda row: row["annotator"])
    return {
        "n_gold_items": GoldLabel.objects.filter(item__project=project).count(),
        "min_answers": MIN_GOLD_ANSWERS,
        "annotators": rows,
    }


def _answer_names(project: Project, names: dict, *, label_id, labels, spans, text: str) -> str:
    """A label, labels or spans as the annotator reads them."""
    if project.is_spans:
        if not spans:
            return "(no entities)"
        return "; ".join(f"{text[s:e]!r} {names.get(label, label)}" for s, e, label in spans)
    if project.is_multi_label:
        return ", ".join(names.get(pk, str(pk)) for pk in sorted(labels)) or "(none)"
    return names.get(label_id, str(label_id))


def gold_mistakes(*, project: Project, annotator) -> list[dict]:
    """The annotator's wrong gold answers: [{item, answer, gold}], answer and gold as text."""
    golds = gold_labels(project=project)
    wrong = [
        a for a in gold_answers(project=project, annotator_ids=[annotator.pk]) if not a.correct
    ]
    if not wrong:
        return []
    names = dict(project.labels.values_list("pk", "name"))
    items = project.items.in_bulk([a.item_id for a in wrong])
    rows = []
    for answer in sorted(wrong, key=lambda a: a.item_id):
        item, gold = items[answer.item_id], golds[answer.item_id]
        text = item.data.get("text", "") if isinstance(item.data, dict) else ""
        given = answer.answer
        rows.append(
            {
                "item": item,
                "answer": _answer_names(
                    project,
                    names,
                    label_id=given.label_id,
                    labels=given.labels,
                    spans=given.spans,
                    text=text,
                ),  # fmt: skip
                "gold": _answer_names(
                    project,
                    names,
                    label_id=gold.label_id,
                    labels=gold.labels,
                    spans=gold.spans,
                    text=text,
                ),  # fmt: skip
            }
        )
    return rows
