"""Test data builders: projects through the service, items and annotations in bulk, a seeded
simulated crowd with known worker confusion matrices, and the real crowd datasets."""

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.utils import timezone

from analysis.models import AnalysisRun, LabelIssue
from labeling.models import (
    Annotation,
    Guideline,
    ImportBatch,
    Item,
    Lease,
    Membership,
    Profile,
    Project,
)
from labeling.services.leases import leases_summarize
from labeling.services.projects import member_set, project_create
from labeling.services.queue import progress_refresh
from labeling.spans import item_text, token_bounds, token_spans

User = get_user_model()

# Every account the tests make has this password (conftest's make_user, add_member).
PASSWORD = "pw-for-tests-123"

# UCI "Sentiment Labelled Sentences" (CC BY 4.0), vendored: see tests/data/README.md.
SENTIMENT_DATA = Path(__file__).resolve().parent / "data" / "sentiment"


def make_project(manager, *, labels=("negative", "positive"), **options) -> Project:
    return project_create(
        name=options.pop("name", "Test project"),
        labels=[{"name": name} for name in labels],
        created_by=manager,
        **options,
    )


def add_member(project: Project, username: str, role: str = Membership.Role.ANNOTATOR):
    user, created = User.objects.get_or_create(username=username)
    if created:
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    member_set(project=project, user=user, role=role)
    return user


def leases_expire(annotator) -> None:
    """Let the annotator's leases expire now, as the clock would: their rows and the items'
    lease summary (`labeling.services.leases`)."""
    leases = Lease.objects.filter(annotator=annotator)
    item_ids = list(leases.values_list("item_id", flat=True))
    leases.update(expires_at=timezone.now() - timedelta(seconds=1))
    with connection.cursor() as cursor:
        leases_summarize(cursor, item_ids)


def make_items(
    project: Project,
    texts: int | Iterable[str | dict] | Mapping[str, str | dict],
    *,
    prefix: str = "e",
    metadata: dict | Callable[[int], dict] | None = None,
    batch: ImportBatch | None = None,
) -> list[Item]:
    """Items in one bulk insert, returned in id order.

    texts: a count (items `{prefix}0`, `{prefix}1`, ... reading "text 0", "text 1", ...); or
    per item its text or its whole `data` dict (image and tabular items), as a list (ids
    `{prefix}n`) or as a dict by external_id. metadata: the same dict for every item, or a
    function of the item's number.
    """
    if isinstance(texts, int):
        texts = [f"text {n}" for n in range(texts)]
    if not isinstance(texts, Mapping):
        texts = {f"{prefix}{n}": text for n, text in enumerate(texts)}
    meta = metadata if callable(metadata) else (lambda n: metadata or {})
    return Item.objects.bulk_create(
        Item(
            project=project,
            external_id=external_id,
            data={"text": data} if isinstance(data, str) else data,
            metadata=meta(n),
            batch=batch,
        )
        for n, (external_id, data) in enumerate(texts.items())
    )


def make_annotations(
    project: Project,
    votes: Iterable[tuple[Item | int, object, str | Sequence[str]]],
    *,
    guideline: Guideline | None = None,
    **fields,
) -> list[Annotation]:
    """Bulk-create annotations from (item, annotator, label name) rows (objects or ids).

    A list of names is a multi-label answer; in a span project the label is a list of
    `(start, end, label name)` spans (taken as given: on token boundaries, not overlapping).
    Every row gets `guideline` (default: the current version) and `fields` (e.g.
    lead_time_ms). The items' queue counts are refreshed, as an import of annotations does.
    """
    guideline = guideline or project.current_guideline()
    label_ids = dict(project.labels.values_list("name", "id"))
    rows = []
    for item, annotator, label in votes:
        if project.is_spans:
            chosen = {"spans": sorted([s, e, label_ids[name]] for s, e, name in label)}
        elif isinstance(label, str):
            chosen = {"label_id": label_ids[label]}
        else:
            chosen = {"labels": sorted(label_ids[name] for name in label)}
        rows.append(
            Annotation(
                project=project,
                item_id=getattr(item, "pk", item),
                annotator_id=getattr(annotator, "pk", annotator),
                guideline=guideline,
                **chosen,
                **fields,
            )
        )
    created = Annotation.objects.bulk_create(rows)
    progress_refresh(project=project, item_ids={row.item_id for row in rows})
    return created


def crowd_accounts(names: Iterable[str]) -> dict[str, int]:
    """User ids by name. Missing accounts are made as an annotation import makes them
    (inactive, no usable password, marked external); existing ones are used as they are."""
    names = list(dict.fromkeys(names))
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    new = [name for name in names if name not in existing]
    User.objects.bulk_create(
        User(username=name, is_active=False, password=make_password(None)) for name in new
    )
    ids = dict(User.objects.filter(username__in=names).values_list("username", "id"))
    Profile.objects.bulk_create(Profile(user_id=ids[name], is_external=True) for name in new)
    return ids


# --- a simulated crowd


@dataclass(frozen=True)
class SimulatedCrowd:
    """Answers of simulated workers whose confusion matrices are known, and the truth.

    confusion[worker][t, a] is the chance that the worker answers class a on an item of true
    class t (rows sum to 1). Items are `q0`, `q1`, ... in order; classes are label names.
    """

    classes: tuple[str, ...]
    workers: tuple[str, ...]
    confusion: dict[str, np.ndarray]
    truth: dict[str, str]  # external_id -> true label
    answers: list[tuple[str, str, str]]  # (external_id, worker, label), item by item

    def matrix(self) -> np.ndarray:
        """(n_items, n_workers) class indices in item and worker order, -1 where unanswered."""
        items = {external_id: n for n, external_id in enumerate(self.truth)}
        workers = {name: n for n, name in enumerate(self.workers)}
        classes = {name: n for n, name in enumerate(self.classes)}
        matrix = np.full((len(items), len(workers)), -1, dtype=np.int64)
        for external_id, worker, label in self.answers:
            matrix[items[external_id], workers[worker]] = classes[label]
        return matrix

    def true_classes(self) -> np.ndarray:
        """(n_items,) the true class index of each item, in item order."""
        classes = {name: n for n, name in enumerate(self.classes)}
        return np.array([classes[label] for label in self.truth.values()])

    def answers_csv(self, header: Sequence[str] = ("external_id", "annotator", "label")) -> bytes:
        """The answers as an annotations file (one row per answer), as a crowd platform gives."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(self.answers)
        return out.getvalue().encode()


def confusion_matrix(accuracy_or_matrix, n_classes: int) -> np.ndarray:
    """A worker's (n_classes, n_classes) confusion matrix: an accuracy spreads the errors
    evenly over the other classes; a matrix is checked (square, rows summing to 1)."""
    if np.isscalar(accuracy_or_matrix):
        accuracy = float(accuracy_or_matrix)
        if not 0 <= accuracy <= 1:
            raise ValueError(f"an accuracy is between 0 and 1, not {accuracy}")
        matrix = np.full((n_classes, n_classes), (1 - accuracy) / max(n_classes - 1, 1))
        np.fill_diagonal(matrix, accuracy)
        return matrix
    matrix = np.asarray(accuracy_or_matrix, dtype=float)
    if matrix.shape != (n_classes, n_classes):
        raise ValueError(f"a confusion matrix is {n_classes}x{n_classes}, not {matrix.shape}")
    if (matrix < 0).any() or not np.allclose(matrix.sum(axis=1), 1):
        raise ValueError("each row of a confusion matrix holds probabilities summing to 1")
    return matrix


def simulate_crowd(
    *,
    classes: Sequence[str],
    n_items: int,
    workers: Mapping[str, float | Sequence[Sequence[float]]],
    per_item: int | None = None,
    seed: int,
    prior: Sequence[float] | None = None,
) -> SimulatedCrowd:
    """Draw a crowd's answers: each item's true class from `prior` (default uniform), then
    `per_item` distinct workers (default: all) chosen at random, each answering from the row
    of their confusion matrix for that true class. The same seed gives the same crowd."""
    rng = np.random.default_rng(seed)
    k, names = len(classes), list(workers)
    per_item = len(names) if per_item is None else per_item
    if not 0 < per_item <= len(names):
        raise ValueError(f"per_item must be between 1 and the {len(names)} workers")
    confusion = {name: confusion_matrix(workers[name], k) for name in names}
    truth = rng.choice(k, size=n_items, p=prior)
    chosen = np.sort(np.argsort(rng.random((n_items, len(names))), axis=1)[:, :per_item], axis=1)
    stacked = np.stack([confusion[name] for name in names])  # (workers, true, answer)
    chances = stacked[chosen, truth[:, None]]  # (items, per_item, answer)
    draws = rng.random((n_items, per_item, 1))
    answered = np.minimum((draws > chances.cumsum(axis=2)).sum(axis=2), k - 1)
    external_ids = [f"q{n}" for n in range(n_items)]
    return SimulatedCrowd(
        classes=tuple(classes),
        workers=tuple(names),
        confusion=confusion,
        truth={external_ids[n]: classes[t] for n, t in enumerate(truth)},
        answers=[
            (external_ids[n], names[w], classes[a])
            for n in range(n_items)
            for w, a in zip(chosen[n], answered[n], strict=True)
        ],
    )


def simulated_crowd(
    project: Project,
    *,
    n_items: int,
    workers: Mapping[str, float | Sequence[Sequence[float]]],
    per_item: int | None = None,
    seed: int,
    guideline: Guideline | None = None,
    prior: Sequence[float] | None = None,
) -> SimulatedCrowd:
    """A simulated crowd's items and answers stored in `project` in bulk (see simulate_crowd).

    Items `q0`, `q1`, ... read "question 0", ...; workers are accounts of their names (made as
    an import of annotations makes them when missing); answers are stamped with `guideline`
    (default: the current version). Returns the crowd, whose `truth` is known.
    """
    crowd = simulate_crowd(
        classes=list(project.labels.values_list("name", flat=True)),
        n_items=n_items,
        workers=workers,
        per_item=per_item,
        seed=seed,
        prior=prior,
    )
    items = make_items(project, [f"question {n}" for n in range(n_items)], prefix="q")
    item_ids = {item.external_id: item.pk for item in items}
    users = crowd_accounts(crowd.workers)
    make_annotations(
        project,
        ((item_ids[q], users[w], label) for q, w, label in crowd.answers),
        guideline=guideline,
    )
    return crowd


# --- the real crowd answer sets (CONCORD_REFERENCE_DATA)


def load_crowd_answers(project: Project, folder: Path) -> dict[str, str]:
    """Bulk-load a crowd dataset (`answers.csv`: question,worker,answer) as items + annotations.

    Labels are the answer strings ("0", "1", ...), which must be the project's label names.
    Returns the ground truth {question: truth} from `truth.csv`.
    """
    with open(folder / "answers.csv", newline="") as f:
        answers = list(csv.DictReader(f))
    questions = sorted({row["question"] for row in answers})
    workers = sorted({row["worker"] for row in answers})
    Item.objects.bulk_create(
        Item(project=project, external_id=q, data={"text": f"question {q}"}) for q in questions
    )
    items = dict(Item.objects.filter(project=project).values_list("external_id", "id"))
    User.objects.bulk_create(
        [User(username=f"crowd-{w}", is_active=False) for w in workers], ignore_conflicts=True
    )
    users = dict(
        User.objects.filter(username__in=[f"crowd-{w}" for w in workers]).values_list(
            "username", "id"
        )
    )
    labels = dict(project.labels.values_list("name", "id"))
    guideline = project.current_guideline()
    Annotation.objects.bulk_create(
        Annotation(
            project=project,
            item_id=items[row["question"]],
            annotator_id=users[f"crowd-{row['worker']}"],
            guideline=guideline,
            label_id=labels[row["answer"]],
        )
        for row in answers
    )
    with open(folder / "truth.csv", newline="") as f:
        return {row["question"]: row["truth"] for row in csv.DictReader(f)}


# --- a finished label-issue run on a span project


def make_span_issue_run(
    project: Project,
    issues: Iterable[Mapping] | None = None,
    *,
    method: str = "token_confident_learning",
    model: str = "builtin",
) -> AnalysisRun:
    """A succeeded label-issue run of a span project with its LabelIssue rows, as the job
    writes them (given and suggested labels null; `flagged_tokens`, `given_spans`).

    issues: one dict per item, `{"item": Item, "score": float, "given": [(start, end, type)],
    "flagged": [(start, end, given type, suggested type)]}`, types by name, None for O. Rows
    are ranked by score, lowest first; a row is an issue when it flags a token. None: made
    from the project's annotations: every item with two or more is judged on its first
    annotation (by annotator name), the tokens where the second annotation differs are flagged
    with its type as the suggestion, and the score is the share of the item's tokens not
    flagged.
    """
    ids = dict(project.labels.values_list("name", "id"))

    def label_id(name):
        return None if name is None else ids[name]

    rows = []  # (item_id, score, given_spans, flagged_tokens)
    if issues is None:
        by_item: dict[int, list] = {}
        annotations = (
            Annotation.objects.filter(project=project)
            .order_by("item_id", "annotator__username")
            .values_list("item_id", "spans")
        )
        for item_id, spans in annotations:
            by_item.setdefault(item_id, []).append(spans)
        texts = dict(Item.objects.filter(project=project).values_list("id", "data"))
        for item_id, given in by_item.items():
            if len(given) < 2:
                continue
            bounds = token_bounds(item_text(texts[item_id]))
            tags = []
            for spans in given[:2]:
                tag = [None] * len(bounds)
                for a, b, kind in token_spans(bounds, spans):
                    tag[a:b] = [kind] * (b - a)
                tags.append(tag)
            flagged = [
                [*bounds[t], tags[0][t], tags[1][t]]
                for t in range(len(bounds))
                if tags[0][t] != tags[1][t]
            ]
            score = 1 - len(flagged) / max(len(bounds), 1)
            rows.append((item_id, score, [list(s) for s in given[0]], flagged))
    else:
        for issue in issues:
            rows.append(
                (
                    getattr(issue["item"], "pk", issue["item"]),
                    issue["score"],
                    sorted([s, e, ids[kind]] for s, e, kind in issue.get("given", ())),
                    [[s, e, label_id(g), label_id(x)] for s, e, g, x in issue.get("flagged", ())],
                )
            )
    rows.sort(key=lambda row: (row[1], row[0]))
    flags = [bool(flagged) for *_, flagged in rows]
    run = AnalysisRun.objects.create(
        project=project,
        kind=AnalysisRun.Kind.LABEL_ISSUES,
        status=AnalysisRun.Status.SUCCEEDED,
        progress=1.0,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        params={"model": model},
        result={
            "n_items": len(rows),
            "n_issues": sum(flags),
            "n_flagged_tokens": sum(len(row[3]) for row in rows),
            "method": method,
            "model": model,
        },
    )
    LabelIssue.objects.bulk_create(
        LabelIssue(
            run=run,
            item_id=item_id,
            quality=score,
            rank=rank,
            is_issue=flag,
            flagged_tokens=flagged,
            given_spans=given,
        )
        for rank, ((item_id, score, given, flagged), flag) in enumerate(
            zip(rows, flags, strict=True), start=1
        )
    )
    return run


def make_model_refresh_runs(
    project: Project,
    points: Sequence[tuple[int, float | None, tuple[float, float] | None]],
    *,
    model: str = "builtin",
    order: str = "activelab",
) -> list[AnalysisRun]:
    """Succeeded `model_refresh` runs, one per (n_annotations, accuracy, interval), finished a
    minute apart in the given order, with the result the queue-scores refresh job stores."""
    start = timezone.now() - timedelta(minutes=len(points))
    return AnalysisRun.objects.bulk_create(
        AnalysisRun(
            project=project,
            kind=AnalysisRun.Kind.MODEL_REFRESH,
            status=AnalysisRun.Status.SUCCEEDED,
            progress=1.0,
            started_at=start + timedelta(minutes=i),
            finished_at=start + timedelta(minutes=i),
            result={
                "model": model,
                "order": order,
                "n_annotations": n_annotations,
                "n_labeled_items": n_annotations // 2,
                "n_scored": n_annotations,
                "accuracy": accuracy,
                "accuracy_interval": list(interval) if interval else None,
                "n_judged": 120 if accuracy is not None else 0,
            },
        )
        for i, (n_annotations, accuracy, interval) in enumerate(points)
    )
