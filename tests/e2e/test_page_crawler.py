"""Every page, as every role, in every state a project goes through, walked in Chromium.

Each state is a project of its own, built in bulk: an empty project; runs waiting for a worker
(queued, one running) and an import in progress; finished runs; failed runs; a vote split into
ties; image items; a tiny sample; a multi-label project; a tabular one; gold questions with
a paused annotator. Finished and failed
runs come from the real Celery worker. The roles: an annotator, a reviewer and a manager of
every project, staff (a superuser who is no member) and an outsider (no member, no staff).

Each role starts at the project list and opens every page its navigation links to, the item
page, the guideline version pages and the dataset diff found on them. Every page must answer
200 and fit 1366 px without a console error, a failed request or a `data:` URL printed as text;
every page the role may not open must answer exactly 403 (404 for the outsider), and the
project navigation must link to the pages the role may open and no other. A screenshot of
each page goes to artifacts/crawl/<state>/<role>-<page>.png. The export page's Download button
is checked control by control against the file it downloads.
"""

from __future__ import annotations

import csv
import json
import random
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect
from rest_framework.test import APIClient
from sklearn.datasets import load_digits, load_iris

from analysis.kinds import BY_NAME, run_start, task_name
from analysis.models import AnalysisRun, LabelIssue
from analysis.services.label_issues import issue_resolve
from analysis.services.predictions import predictions_upload
from config.celery import enqueue
from labeling import demo_spans
from labeling.management.commands.load_demo import digit_svg
from labeling.models import (
    Annotation,
    GoldLabel,
    ImportBatch,
    Item,
    Membership,
    Project,
    Webhook,
    WebhookDelivery,
)
from labeling.services.guidelines import (
    guideline_draft_update,
    guideline_publish,
    worked_example_add,
)
from labeling.services.projects import member_set, project_create
from labeling.services.queue import progress_refresh
from labeling.services.reviewing import review_set
from tests.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

User = get_user_model()
PASSWORD = "pw-for-tests-123"
WIDTH, HEIGHT = 1366, 900
KINDS = ("agreement", "label_issues", "baselines", "slices", "drift")
ROLES = ("annotator", "reviewer", "manager", "staff")

# The project pages, by the least role that opens them ("" is the overview).
ANNOTATOR_PAGES = ("", "annotate/", "guidelines/")
REVIEWER_PAGES = (
    "items/",
    "dashboard/",
    "agreement/",
    "disagreements/",
    "issues/",
    "baselines/",
    "slices/",
    "drift/",
    "export/",
)
MANAGER_PAGES = ("imports/", "members/", "webhooks/", "edit/")
ROLE_PAGES = {
    "annotator": ANNOTATOR_PAGES,
    "reviewer": ANNOTATOR_PAGES + REVIEWER_PAGES,
    "manager": ANNOTATOR_PAGES + REVIEWER_PAGES + MANAGER_PAGES,
    "staff": ANNOTATOR_PAGES + REVIEWER_PAGES + MANAGER_PAGES,
}


# --- the states ---------------------------------------------------------------------------


@dataclass
class State:
    """One project in one state, with the runs the worker must end before it is walked."""

    name: str
    project: Project
    params: dict[str, dict] = field(default_factory=dict)  # run parameters by kind
    fails: tuple[str, ...] = ()  # the kinds whose runs must fail; the others succeed
    unchecked_start: tuple[str, ...] = ()  # kinds whose runs skip the start's checks
    waiting: bool = False  # its runs were never handed to a worker
    datasets: bool = False  # export two dataset versions once its runs ended
    webhooks: bool = False  # a webhook with a delivery log (and a paused one without)
    runs: dict[str, int] = field(default_factory=dict)  # kind -> run id

    @property
    def base(self) -> str:
        return f"/projects/{self.project.pk}/"


def people() -> dict[str, User]:
    users = {
        role: User.objects.create_user(username=f"crawl-{role}", password=PASSWORD)
        for role in ("annotator", "reviewer", "manager", "outsider")
    }
    users["staff"] = User.objects.create_user(
        username="crawl-staff", password=PASSWORD, is_staff=True, is_superuser=True
    )
    return users


def new_project(users, name: str, labels, **options) -> Project:
    project = project_create(
        name=name,
        labels=[{"name": label} for label in labels],
        created_by=users["manager"],
        description=f"The crawler's {name.lower()} state.",
        **options,
    )
    member_set(project=project, user=users["annotator"], role=Membership.Role.ANNOTATOR)
    member_set(project=project, user=users["reviewer"], role=Membership.Role.REVIEWER)
    return project


def crowd(project: Project, n: int) -> list[User]:
    """n annotators of the project's crowd (accounts of their own, members as annotators)."""
    workers = []
    for k in range(n):
        user, _ = User.objects.get_or_create(username=f"crowd-{k + 1}")
        member_set(project=project, user=user, role=Membership.Role.ANNOTATOR)
        workers.append(user)
    return workers


def add_items(project: Project, rows: list[dict], filename: str) -> list[int]:
    """Items (dicts of external_id, data, metadata) as one succeeded import batch; their ids."""
    batch = ImportBatch.objects.create(
        project=project,
        filename=filename,
        format=ImportBatch.Format.JSONL,
        status=ImportBatch.Status.SUCCEEDED,
        rows=len(rows),
        progress=1.0,
        finished_at=timezone.now(),
    )
    Item.objects.bulk_create(Item(project=project, batch=batch, **row) for row in rows)
    return list(batch.items.order_by("id").values_list("id", flat=True))


def add_votes(
    project: Project,
    item_ids: list[int],
    truth: np.ndarray,
    workers: list[User],
    error_rates: list[float],
    rng: np.random.Generator,
    *,
    version: int | None = None,
    multi: bool = False,
) -> None:
    """Every worker labels every item: the truth, or with their error rate a random other
    class (multi-label: each class flipped with that rate)."""
    classes = list(project.labels.order_by("order").values_list("id", flat=True))
    guideline = project.guidelines.get(
        version=version or project.current_guideline().version, published_at__isnull=False
    )
    annotations = []
    for worker, rate in zip(workers, error_rates, strict=True):
        for item_id, true in zip(item_ids, truth, strict=True):
            common = dict(
                project=project,
                item_id=item_id,
                annotator=worker,
                guideline=guideline,
                lead_time_ms=int(rng.integers(1500, 9000)),
            )
            if multi:
                chosen = true ^ (rng.random(len(classes)) < rate)
                labels = [c for c, on in zip(classes, chosen, strict=True) if on]
                annotations.append(Annotation(labels=labels, **common))
            else:
                given = int(true)
                if rng.random() < rate:
                    given = (given + int(rng.integers(1, len(classes)))) % len(classes)
                annotations.append(Annotation(label_id=classes[given], **common))
    Annotation.objects.bulk_create(annotations)
    progress_refresh(project=project, item_ids=item_ids)


def publish(project: Project, users, body: str, changelog: str, example: int | None = None):
    manager = users["manager"]
    guideline_draft_update(project=project, body=body, changelog=changelog, user=manager)
    if example is not None:
        item = Item.objects.get(pk=example)
        label = project.labels.order_by("order").first()
        worked_example_add(
            project=project, item=item, label=label.name, why="As the guideline says.", user=manager
        )
    guideline_publish(project=project, user=manager)


def sentences(sentiment_data: Path, source: str) -> pd.DataFrame:
    return pd.read_csv(
        sentiment_data / f"{source}.tsv",
        sep="\t",
        header=None,
        names=["text", "label"],
        quoting=csv.QUOTE_NONE,
    )


def text_rows(frame: pd.DataFrame, prefix: str, source: str, rng) -> list[dict]:
    return [
        {
            "external_id": f"{prefix}-{i}",
            "data": {"text": text},
            "metadata": {"source": source, "stars": int(rng.integers(1, 40))},
        }
        for i, text in enumerate(frame["text"])
    ]


def state_empty(users, sentiment_data, rng) -> State:
    return State("empty", new_project(users, "Empty project", ("negative", "positive")))


def state_queued(users, sentiment_data, rng) -> State:
    """Labeled items; a run of every kind waiting for a worker (drift running) and an import
    in progress: none of them was handed to the worker."""
    project = new_project(users, "Runs waiting", ("negative", "positive"), overlap=3)
    frame = sentences(sentiment_data, "yelp").iloc[:60]
    ids = add_items(project, text_rows(frame, "y", "yelp", rng), "yelp.jsonl")
    add_votes(project, ids, frame["label"].to_numpy(), crowd(project, 3), [0.05, 0.1, 0.2], rng)
    for kind in KINDS:
        running = kind == "drift"
        AnalysisRun.objects.create(
            project=project,
            kind=kind,
            status=AnalysisRun.Status.RUNNING if running else AnalysisRun.Status.QUEUED,
            progress=0.4 if running else 0.0,
            message="comparing the batches" if running else "",
            started_at=timezone.now() if running else None,
        )
    ImportBatch.objects.create(
        project=project,
        filename="more-reviews.csv",
        status=ImportBatch.Status.RUNNING,
        progress=0.3,
        message="checking rows",
    )
    return State("queued", project, waiting=True)


def state_finished(users, sentiment_data, rng) -> State:
    """400 real sentences in two batches (the second from another site, under guideline v2),
    three annotators; the last 10 items have two labels, the last 5 none."""
    project = new_project(users, "Reviews", ("negative", "positive"), overlap=3)
    workers = crowd(project, 3)
    first = pd.concat([sentences(sentiment_data, s).iloc[:100] for s in ("amazon", "yelp")])
    rows = text_rows(first.iloc[:100], "a", "amazon", rng) + text_rows(
        first.iloc[100:], "y", "yelp", rng
    )
    first_ids = add_items(project, rows, "amazon-yelp.jsonl")
    add_votes(project, first_ids, first["label"].to_numpy(), workers, [0.04, 0.1, 0.25], rng)
    publish(
        project, users, "## Sarcasm\n\nLabel what the writer **meant**.", "Sarcasm.", first_ids[0]
    )
    imdb = sentences(sentiment_data, "imdb")
    second = pd.concat([imdb[imdb.label == 1].iloc[:140], imdb[imdb.label == 0].iloc[:60]])
    second_ids = add_items(project, text_rows(second, "i", "imdb", rng), "imdb.jsonl")
    truth = second["label"].to_numpy()
    add_votes(project, second_ids[:-15], truth[:-15], workers, [0.05, 0.15, 0.3], rng)
    add_votes(project, second_ids[-15:-5], truth[-15:-5], workers[:2], [0.05, 0.15], rng)
    for item_id in first_ids[:3]:
        review_set(item=Item.objects.get(pk=item_id), reviewer=users["reviewer"], label="positive")
    model_refreshes(project, [(300, 0.71, (0.64, 0.78)), (600, 0.76, (0.70, 0.82)),
                              (900, 0.79, (0.74, 0.84)), (1170, 0.81, (0.76, 0.86))])  # fmt: skip
    return State("finished", project, datasets=True, webhooks=True)


def model_refreshes(project: Project, points) -> None:
    """Succeeded model_refresh runs (the Dashboard's model curve): (annotations, accuracy,
    interval) as the queue-scores refresh job stores them."""
    for n_annotations, accuracy, interval in points:
        AnalysisRun.objects.create(
            project=project,
            kind=AnalysisRun.Kind.MODEL_REFRESH,
            status=AnalysisRun.Status.SUCCEEDED,
            progress=1.0,
            finished_at=timezone.now(),
            result={"model": "builtin", "order": "activelab", "n_annotations": n_annotations,
                    "n_labeled_items": 395, "n_scored": 400, "accuracy": accuracy,
                    "accuracy_interval": list(interval), "n_judged": 150},
        )  # fmt: skip


def state_failed(users, sentiment_data, rng) -> State:
    """Runs the worker could not finish: guideline v2 has no annotations yet, and the drift
    run names an import that holds no items (its items went after the run was started: the
    start refuses an empty import, the job checks again)."""
    project = new_project(users, "Runs that failed", ("negative", "positive"), overlap=3)
    frame = sentences(sentiment_data, "amazon").iloc[:60]
    ids = add_items(project, text_rows(frame, "a", "amazon", rng), "amazon.jsonl")
    add_votes(project, ids, frame["label"].to_numpy(), crowd(project, 3), [0.05, 0.1, 0.2], rng)
    publish(project, users, "## New rules", "Nothing labeled under these yet.")
    empty = ImportBatch.objects.create(
        project=project, filename="empty.csv", status=ImportBatch.Status.FAILED
    )
    params = {kind: {"guideline_version": 2} for kind in KINDS}
    params["drift"] = {"batch_a": Item.objects.get(pk=ids[0]).batch_id, "batch_b": empty.pk}
    # Baselines and slices of a version nobody labeled under succeed with nothing to compare.
    return State(
        "failed",
        project,
        params=params,
        fails=("agreement", "label_issues", "drift"),
        unchecked_start=("drift",),
    )


def state_ties(users, sentiment_data, rng) -> State:
    """Two annotators per item who often split: ties everywhere."""
    project = new_project(users, "Split votes", ("negative", "neutral", "positive"), overlap=2)
    frame = sentences(sentiment_data, "amazon").iloc[100:180]
    truth = frame["label"].to_numpy() * 2  # negative or positive; neutral is the confusion
    ids = add_items(project, text_rows(frame, "t", "amazon", rng), "split.jsonl")
    add_votes(project, ids, truth, crowd(project, 2), [0.3, 0.45], rng)
    return State("ties", project, datasets=True)


def state_image(users, sentiment_data, rng) -> State:
    """150 handwritten digits as SVG data: URLs in two batches; v2 has an image worked example."""
    project = new_project(
        users, "Digits", [str(d) for d in range(10)], overlap=3, data_type=Project.DataType.IMAGE
    )
    digits = load_digits()
    ink = digits.images.mean(axis=(1, 2))
    rows = [
        {
            "external_id": f"digit-{i:04d}",
            "data": {"image": digit_svg(digits.images[i])},
            "metadata": {"stroke": "light" if ink[i] < 4.5 else "dense"},
        }
        for i in range(150)
    ]
    ids = add_items(project, rows[:75], "digits-1.jsonl") + add_items(
        project, rows[75:], "digits-2.jsonl"
    )
    publish(project, users, "Label the digit that was **meant**.", "Meant digits.", ids[0])
    add_votes(project, ids, digits.target[:150], crowd(project, 3), [0.05, 0.15, 0.3], rng)
    return State("image", project, datasets=True)


def state_tiny(users, sentiment_data, rng) -> State:
    """Six items, two annotators: too few to judge anything."""
    project = new_project(users, "Tiny sample", ("negative", "positive"), overlap=2)
    frame = sentences(sentiment_data, "yelp").iloc[200:206]
    ids = add_items(project, text_rows(frame.iloc[:3], "s", "yelp", rng), "tiny-1.jsonl")
    ids += add_items(project, text_rows(frame.iloc[3:], "t", "yelp", rng), "tiny-2.jsonl")
    add_votes(project, ids, frame["label"].to_numpy(), crowd(project, 2), [0.2, 0.3], rng)
    return State("tiny", project)


def state_multi(users, sentiment_data, rng) -> State:
    """Multi-label topics; baselines, slices and label issues cover single-label and span
    projects only, so those runs are refused at the start (tests/analysis/test_kinds.py) and their
    pages say why."""
    topics = ("food", "service", "price", "place")
    project = new_project(users, "Topics", topics, overlap=3, task_type=Project.TaskType.MULTI)
    frame = sentences(sentiment_data, "yelp").iloc[300:380]
    ids = add_items(project, text_rows(frame.iloc[:40], "m", "yelp", rng), "topics-1.jsonl")
    ids += add_items(project, text_rows(frame.iloc[40:], "n", "yelp", rng), "topics-2.jsonl")
    truth = rng.random((len(ids), len(topics))) < 0.35
    add_votes(project, ids, truth, crowd(project, 3), [0.05, 0.1, 0.2], rng, multi=True)
    return State("multi", project)


def state_tabular(users, sentiment_data, rng) -> State:
    """The 150 irises as numeric fields, with a site as metadata."""
    iris = load_iris()
    project = new_project(
        users, "Irises", list(iris.target_names), overlap=3, data_type=Project.DataType.TABULAR
    )
    columns = [name.removesuffix(" (cm)").replace(" ", "_") for name in iris.feature_names]
    order = rng.permutation(150)
    rows = [
        {
            "external_id": f"iris-{i}",
            "data": {c: float(v) for c, v in zip(columns, iris.data[i], strict=True)},
            "metadata": {"site": "north" if i % 3 else "south"},
        }
        for i in order
    ]
    ids = add_items(project, rows[:75], "irises-1.jsonl") + add_items(
        project, rows[75:], "irises-2.jsonl"
    )
    add_votes(project, ids, iris.target[order], crowd(project, 3), [0.05, 0.1, 0.25], rng)
    return State("tabular", project)


def state_spans(users, sentiment_data, rng) -> State:
    """Named entities in 150 generated sentences, two import batches, three simulated
    annotators with known habits; its label-issue run trains the built-in CRF (so span
    baselines and slices have a token model) and fills the span review queue, where two rows
    are then decided (accept stores the suggested spans as a Review)."""
    project = new_project(
        users, "News entities", demo_spans.TYPES, overlap=3, task_type=Project.TaskType.SPANS
    )
    made = demo_spans.sentences(150, seed=3)
    rows = [
        {"external_id": f"n-{i}", "data": {"text": s.text}, "metadata": {"desk": "world"}}
        for i, s in enumerate(made)
    ]
    ids = add_items(project, rows[:75], "news-1.jsonl") + add_items(
        project, rows[75:], "news-2.jsonl"
    )
    label_ids = dict(project.labels.values_list("name", "id"))
    guideline = project.current_guideline()
    habits = random.Random(5)
    Annotation.objects.bulk_create(
        Annotation(
            project=project,
            item_id=item_id,
            annotator=worker,
            guideline=guideline,
            spans=[
                [a, b, label_ids[t]] for a, b, t in demo_spans.annotate(sentence, habit, habits)
            ],
            lead_time_ms=int(rng.integers(2000, 12000)),
        )
        for worker, habit in zip(
            crowd(project, 3), ("careful", "boundary_shifter", "misser"), strict=True
        )
        for item_id, sentence in zip(ids, made, strict=True)
    )
    progress_refresh(project=project, item_ids=ids)
    return State("spans", project, datasets=True)


def state_suggested(users, sentiment_data, rng) -> State:
    """Suggestions pre-filled from an uploaded model that is wrong on a quarter of 150 real
    sentences; three annotators labeled 130 of them, each shown the suggestion on half their
    items (the rate was 0.5 then) and taking it 40% of the time whatever it said; every
    labeled item reviewed. The other 20 wait for the crawl's annotator, shown a suggestion."""
    project = new_project(
        users, "Suggested", ("negative", "positive"), overlap=3, suggestions="prefill",
        suggestion_model="sentiment-v1",
    )  # fmt: skip
    workers = crowd(project, 3)
    frame = sentences(sentiment_data, "yelp").iloc[200:350]
    item_ids = add_items(project, text_rows(frame, "s", "yelp", rng), "yelp.jsonl")
    truth = frame["label"].to_numpy()
    suggested = np.where(rng.random(len(truth)) < 0.25, 1 - truth, truth)
    confidence = rng.uniform(0.55, 0.99, len(truth))
    predictions_upload(
        project=project, model="sentiment-v1", classes=["negative", "positive"], user=None,
        rows=[
            {"external_id": f"s-{i}", "probabilities": [1 - p, p] if s else [p, 1 - p]}
            for i, (s, p) in enumerate(zip(suggested, confidence, strict=True))
        ],
    )  # fmt: skip
    classes = list(project.labels.order_by("order").values_list("id", flat=True))
    guideline = project.current_guideline()
    annotations = []
    for worker in workers:
        for item_id, true, suggestion in zip(item_ids[:130], truth, suggested, strict=False):
            shown = rng.random() < 0.5
            given = int(true) if rng.random() < 0.85 else 1 - int(true)
            if shown and rng.random() < 0.4:
                given = int(suggestion)
            annotations.append(
                Annotation(
                    project=project, item_id=item_id, annotator=worker, guideline=guideline,
                    label_id=classes[given], lead_time_ms=int(rng.integers(1500, 9000)),
                    suggestion_model="sentiment-v1" if shown else "",
                    suggestion_label_id=classes[int(suggestion)] if shown else None,
                )
            )  # fmt: skip
    Annotation.objects.bulk_create(annotations)
    progress_refresh(project=project, item_ids=item_ids)
    for item_id, true in zip(item_ids[:130], truth, strict=False):
        review_set(
            item=Item.objects.get(pk=item_id), reviewer=users["reviewer"],
            label=("negative", "positive")[int(true)],
        )  # fmt: skip
    return State("suggested", project)


def state_gold(users, sentiment_data, rng) -> State:
    """Gold questions: 60 sentences labeled by three annotators and 12 gold items; one of the
    crowd answered every gold item (judged), another four (too few to judge); the crawl's
    annotator answered three wrong and is paused (the paused page; the members page's button)."""
    project = new_project(
        users, "Gold questions", ("negative", "positive"), overlap=3, gold_onboarding=3
    )
    frame = sentences(sentiment_data, "yelp").iloc[:72]
    ids = add_items(project, text_rows(frame, "g", "yelp", rng), "yelp.jsonl")
    truth = frame["label"].to_numpy()
    regular, gold = ids[:60], ids[60:]
    workers = crowd(project, 3)
    add_votes(project, regular, truth[:60], workers, [0.05, 0.1, 0.2], rng)
    label_ids = list(project.labels.order_by("order").values_list("id", flat=True))
    GoldLabel.objects.bulk_create(
        GoldLabel(item_id=item_id, label_id=label_ids[int(t)])
        for item_id, t in zip(gold, truth[60:], strict=True)
    )
    Item.objects.filter(pk__in=gold).update(is_gold=True, done_count=0)
    add_votes(project, gold, truth[60:], workers[:1], [0.1], rng)
    add_votes(project, gold[:4], truth[60:64], workers[1:2], [0.3], rng)
    add_votes(project, gold[:3], 1 - truth[60:63], [users["annotator"]], [0.0], rng)
    Membership.objects.filter(project=project, user=users["annotator"]).update(
        paused_at=timezone.now(),
        pause_reason="Onboarding: 0 of 3 gold questions right (0%; pass: 80%).",
    )
    return State("gold", project)


STATES = (
    state_empty,
    state_queued,
    state_finished,
    state_failed,
    state_ties,
    state_image,
    state_tiny,
    state_multi,
    state_tabular,
    state_spans,
    state_suggested,
    state_gold,
)


def start_runs(state: State, manager, kinds: tuple[str, ...] = KINDS) -> None:
    """Hand the state's runs of these kinds to the worker (label issues first: baselines,
    slices and drift use the built-in model's predictions it stores)."""
    if state.waiting or not state.project.items.exists():
        return
    params = state.params
    batches = list(
        state.project.imports.filter(kind="items", items__isnull=False)
        .distinct()
        .order_by("id")
        .values_list("id", flat=True)
    )
    defaults = {"drift": {"batch_a": batches[0], "batch_b": batches[-1]}}
    for kind in sorted(kinds, key=lambda k: k != "label_issues"):
        if kind == "drift" and len(batches) < 2 and kind not in params:
            continue
        if state.project.task_type not in BY_NAME[kind].task_types:
            continue
        given = params.get(kind, defaults.get(kind, {}))
        if kind in state.unchecked_start:
            # Parameters that were valid when the run started and are not any more.
            run = AnalysisRun.objects.create(project=state.project, kind=kind, params=given)
            enqueue(task_name(kind), run.pk)
        else:
            run = run_start(project=state.project, kind=kind, params=given, user=manager)
        state.runs[kind] = run.pk


def runs_ended(states: list[State], worker) -> None:
    ids = [pk for state in states for pk in state.runs.values()]

    def ended():
        statuses = AnalysisRun.objects.filter(pk__in=ids).values_list("status", flat=True)
        return all(s in ("succeeded", "failed") for s in statuses)

    wait_for(ended, timeout=300, what="the crawler's runs", on_timeout=worker.log)


def after_runs(state: State, users) -> None:
    """What people do once the runs ended: decide label issues, export two dataset versions."""
    runs = AnalysisRun.objects.filter(pk__in=state.runs.values())
    ended = {run.kind: run.status for run in runs}
    assert ended == {k: "failed" if k in state.fails else "succeeded" for k in state.runs}, (
        state.name,
        [(run.kind, run.error) for run in runs],
    )
    issues = LabelIssue.objects.filter(run_id=state.runs.get("label_issues"), is_issue=True)
    for issue, action in zip(issues.order_by("rank")[:2], ("accept", "ambiguous"), strict=False):
        issue_resolve(issue=issue, action=action, user=users["reviewer"])
    if state.datasets:
        client = APIClient()
        client.force_authenticate(users["reviewer"])
        for labels in ("majority", "dawid_skene"):
            response = client.get(
                f"/api/v1/projects/{state.project.pk}/export/?format=csv&labels={labels}"
            )
            assert response.status_code == 200, response
            b"".join(response.streaming_content)
    if state.webhooks:
        add_webhooks(state.project, users["manager"])


def add_webhooks(project: Project, manager) -> None:
    """A webhook whose log has every outcome (delivered, retried, given up, refused) and a
    paused one that never sent anything. Rows, not deliveries: the URLs lead nowhere."""
    hook = Webhook.objects.create(
        project=project, url="https://ml.example.org/hooks/concord?team=vision", secret="x" * 40,
        events=["annotation.created", "run.finished", "dataset_version.created"],
        created_by=manager,
    )  # fmt: skip
    Webhook.objects.create(
        project=project, url="https://ci.example.org/retrain", secret="y" * 40,
        events=["dataset_version.created"], active=False, created_by=manager,
    )  # fmt: skip
    rows = [
        ("run.finished", 1, "delivered", 200, "", 84),
        ("dataset_version.created", 1, "retrying", 503, "HTTP 503 Service Unavailable: busy", 31),
        ("dataset_version.created", 2, "delivered", 204, "", 45),
        ("annotation.created", 1, "retrying", None,
         "ConnectError: [Errno 111] Connection refused", 2),
        ("annotation.created", 2, "failed", 410, "HTTP 410 Gone: this endpoint was retired", 12),
        ("ping", 1, "failed", None, "ml.example.org resolves to a private or loopback address "
         "(10.0.0.7); Concord refuses those unless CONCORD_WEBHOOKS_ALLOW_PRIVATE=1.", 1),
    ]  # fmt: skip
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(webhook=hook, event=event, event_id=uuid.uuid4(), attempt=attempt,
                        status=status, status_code=code, error=error, duration_ms=ms,
                        payload={"event": event})
        for event, attempt, status, code, error, ms in rows
    )  # fmt: skip


# --- walking the pages --------------------------------------------------------------------

# One evaluation per page: its width; a data: URL with its payload printed as text (as an
# item's image would be; a help text may name the scheme alone); a Python dict or list printed
# as it is (`{'batch_b': ['...']}`); an empty state that says (next to) nothing; and what the
# page must say in its state (SAYS).
PAGE_FACTS = r"""(says) => {
  const text = document.body.innerText;
  const printed = text.match(/data:[\w.+-]+\/[\w.+-]+(;[\w=.+-]+)*,\S{16}/);
  const repr = text.match(/[{\[]'[^'\n]{1,80}'(: |, |\])/);
  return {
    width: document.documentElement.scrollWidth,
    printed: printed && printed[0],
    repr: repr && repr[0],
    mute: [...document.querySelectorAll('.empty')].map(e => e.innerText.trim())
      .filter(t => t.length < 20),
    unsaid: says.filter(s => !text.includes(s)),
  };
}"""
# Plotly charts drawn, and fragments htmx loads with the page (the Dashboard's model curve) in.
CHARTS_DRAWN = """() => [...document.querySelectorAll('.chart[data-figure]')]
  .every(el => el.dataset.drawn) && !document.querySelector('[hx-trigger=load] .loading')"""


class Person:
    """One logged-in browser context; collects what goes wrong on each page it opens."""

    def __init__(self, browser, live_server, username: str):
        self.url = live_server.url
        self.context = browser.new_context(
            viewport={"width": WIDTH, "height": HEIGHT}, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.events: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.events.append(f"page error: {error}"))
        self.page.on("response", self._response)
        self.page.on("requestfailed", self._failed)
        self.page.goto(f"{self.url}/accounts/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(lambda url: "/accounts/login/" not in url)

    def _console(self, message) -> None:
        # A failed load is reported by _response with its URL; the console line names none.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.events.append(f"console: {message.text}")

    def _response(self, response) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            self.events.append(f"{response.status} {response.url}")

    def _failed(self, request) -> None:
        # Leaving a page cancels what it still polls or loads: not a failure of the page.
        if request.failure != "net::ERR_ABORTED":
            self.events.append(f"request failed: {request.url} {request.failure}")

    def status(self, path: str) -> int:
        return self.context.request.get(f"{self.url}{path}", max_redirects=0).status

    def open(
        self, path: str, shot: Path, says: tuple[str, ...] = (), ready: str | None = None
    ) -> list[str]:
        """Open a page, keep its screenshot and say what is wrong with it. ready: a text the
        page shows once its scripts have built it (the API docs)."""
        self.events.clear()
        response = self.page.goto(f"{self.url}{path}")
        problems = [] if response.status == 200 else [f"answered {response.status}"]
        self.page.wait_for_function(CHARTS_DRAWN, timeout=15_000)
        if ready:
            expect(self.page.get_by_text(ready).first).to_be_visible(timeout=15_000)
        facts = self.page.evaluate(PAGE_FACTS, list(says))
        if facts["width"] > WIDTH:
            problems.append(f"{facts['width']} px wide")
        if facts["printed"]:
            problems.append(f"prints a data: URL ({facts['printed'][:40]}...)")
        if facts["repr"]:
            problems.append(f"prints a Python value ({facts['repr']}...)")
        problems += [f"an empty state says only {t!r}" for t in facts["mute"]]
        problems += [f"does not say {t!r}" for t in facts["unsaid"]]
        shot.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(shot))
        return problems + self.events

    def links(self, selector: str) -> list[str]:
        return self.page.locator(selector).evaluate_all(
            "els => els.map(e => new URL(e.href).pathname + new URL(e.href).search)"
        )


def page_name(path: str, base: str) -> str:
    """A screenshot's name: the page's path in the project, ids left out."""
    if path == "/":
        return "projects"
    rest = path.removeprefix(base).strip("/").split("?")[0]
    rest = re.sub(r"^items/\d+$", "item", re.sub(r"^datasets/.*/diff/.*", "dataset-diff", rest))
    return re.sub(r"[^a-z0-9]+", "-", rest) or "overview"


# Who opens which project pages in the browser. The analysis, items, dashboard and export
# pages are the same for reviewers, managers and staff (their templates ask for no role), so
# the least role that sees them walks them; the others check they answer 200. Pages that
# change with the role (overview, Label, Guidelines, Members for staff) are walked by each.
WALKS = {
    "annotator": ANNOTATOR_PAGES,
    "reviewer": ANNOTATOR_PAGES + REVIEWER_PAGES,
    "manager": ANNOTATOR_PAGES + MANAGER_PAGES,
    "staff": ("", "members/"),
}


# What a page must say in a state: the sample size beside a verdict, the reason a run failed,
# why a page has nothing to show.
SAYS = {
    ("empty", "agreement"): ("No agreement report yet",),
    ("empty", "export"): ("Nothing to export yet",),
    ("empty", "dashboard"): ("No model refresh yet: when the queue is ordered by",),
    ("queued", "agreement"): ("queued", "waiting for a worker"),
    ("queued", "drift"): ("running", "comparing the batches"),
    ("queued", "imports"): ("checking rows",),
    ("finished", "agreement"): ("395 items", "1175 annotations"),
    ("finished", "issues"): ("likely error", "5-fold CV, text"),
    ("finished", "baselines"): ("n=394",),
    ("finished", "dashboard"): ("Model accuracy per refresh", "0.760–0.860"),
    ("failed", "agreement"): ("No annotations were made under guideline version 2.",),
    ("failed", "issues"): ("no single-label annotations",),
    ("failed", "drift"): ("holds no items (a failed or empty import)",),
    ("ties", "disagreements"): ("1.000",),  # an even split of two labels
    ("tiny", "issues"): ("Too few items to judge (n=6)",),
    ("tiny", "drift"): ("needs 200 in each",),
    ("tiny", "slices"): ("small",),
    ("multi", "baselines"): ("Baselines cover single-label and span projects",),
    ("multi", "slices"): ("Slices cover single-label and span projects",),
    ("multi", "issues"): ("Label issues cover single-label and span projects",),
    ("multi", "drift"): ("no single final label per item",),
    ("tabular", "issues"): ("5-fold CV, tabular",),
    ("spans", "agreement"): ("150 items", "450 annotations"),
    ("spans", "issues"): ("likely error", "Accept stores:"),
    ("spans", "baselines"): ("against the others' consensus (150 items)", "Per entity type"),
    ("spans", "slices"): ("150 items (150 annotated)", "Model span F1 vs HLP per"),
    ("suggested", "agreement"): ("Suggestions and anchoring", "followed a wrong suggestion"),
    ("suggested", "annotate"): ("Model suggests", "pre-selected"),
    ("suggested", "edit"): ("150 items have a suggestion from the model “sentiment-v1”",),
    ("gold", "agreement"): ("60 items", "180 annotations", "Their 19 answers are left out"),
    ("gold", "dashboard"): ("12 gold items", "too few gold answers to judge"),
    ("gold", "members"): ("paused", "Let continue"),
    ("empty", "webhooks"): ("No webhooks yet", "Add a webhook"),
    ("finished", "webhooks"): ("will retry", "HTTP 410 Gone", "No deliveries yet", "paused"),
}


@dataclass
class Found:
    """Pages found through links while walking a state: versions, an item, a dataset diff."""

    versions: list[str] = field(default_factory=list)
    item: str | None = None
    diff: str | None = None
    names: set[str] = field(default_factory=set)  # the pages opened, by page_name


def walk(person: Person, role: str, state: State, found: Found, shots: Path) -> list[str]:
    """This role's pages of the state's project: the navigation links exactly the pages the
    role may open; the walked ones are checked in the browser, the others must answer 200,
    and every other page 403. Returns what is wrong."""
    base = state.base
    report = []

    def opened(path: str) -> None:
        name = page_name(path, base)
        found.names.add(name)
        says = SAYS.get((state.name, name), ())
        shot = shots / state.name / f"{role}-{name}.png"
        report.extend(f"{state.name} / {role} / {path}: {p}" for p in person.open(path, shot, says))

    opened(base)
    linked = {p.removeprefix(base) for p in person.links(".project-nav a") if p.startswith(base)}
    if linked != set(ROLE_PAGES[role]):
        report.append(f"{state.name} / {role}: links {sorted(linked)}, not {ROLE_PAGES[role]}")
    for page in WALKS[role][1:]:
        opened(base + page)
        if page == "guidelines/":
            found.versions = [p for p in person.links("table.versions a") if p.startswith(base)]
            for version in found.versions:
                opened(version)
        if page == "items/":
            found.item = next(iter(person.links("table.items tbody a[href*='/items/']")), None)
            if found.item:
                opened(found.item)
        if page == "export/":
            found.diff = next(iter(person.links("#versions a[href*='/diff/']")), None)
            if found.diff:
                opened(found.diff)
    walked = {base + p for p in WALKS[role]} | set(found.versions)
    if role == "reviewer":
        walked |= {found.item, found.diff}
    may_open = {base + p for p in ROLE_PAGES[role]} | set(found.versions)
    if role != "annotator":
        may_open |= {found.item, found.diff}
    every = {base + p for p in ROLE_PAGES["manager"]} | {found.item, found.diff}
    for path in sorted((every | may_open) - walked - {None}):
        status = person.status(path)
        expected = 200 if path in may_open else 403
        if status != expected:
            report.append(f"{state.name} / {role} / {path}: answered {status}, not {expected}")
    return report


# The top navigation by role: staff also reach the admin site. The API docs are one page for
# everyone: the annotator walks them, the others check they answer.
TOP_LINKS = {"/", "/api/docs/"}
TOP_WALKS = {
    "annotator": ("/", "/projects/new/", "/api/docs/"),
    "staff": ("/", "/projects/new/", "/admin/"),
}


def walk_top(person: Person, role: str, shots: Path) -> list[str]:
    report = []
    for path in TOP_WALKS.get(role, ("/", "/projects/new/")):
        name = {"/": "projects", "/api/docs/": "api-docs"}.get(
            path, path.strip("/").replace("/", "-")
        )
        ready = "/api/v1/projects/" if path == "/api/docs/" else None
        shot = shots / f"{role}-{name}.png"
        report += [f"{role} / {path}: {p}" for p in person.open(path, shot, ready=ready)]
        if path == "/":
            linked = set(person.links("nav.nav a"))
            expected = TOP_LINKS | ({"/admin/"} if role == "staff" else set())
            if linked != expected:
                report.append(f"{role}: the top navigation links {sorted(linked)}")
    if (status := person.status("/api/docs/")) != 200:
        report.append(f"{role} / /api/docs/: answered {status}")
    return report


def test_every_page_in_every_state_opens_for_its_roles_fits_and_shows_no_errors(
    live_server, browser, sentiment_data, celery_worker, artifacts
):
    rng = np.random.default_rng(11)
    users = people()
    states = [build(users, sentiment_data, rng) for build in STATES]
    for state in states:
        start_runs(state, users["manager"])
    shots = artifacts / "crawl"
    persons = {role: Person(browser, live_server, f"crawl-{role}") for role in ROLES}
    outsider = Person(browser, live_server, "crawl-outsider")
    report = []
    for role, person in persons.items():
        report += walk_top(person, role, shots)

    walked = {}
    for state in states:  # the first two need no worker: it works on the others meanwhile
        runs_ended([state], celery_worker)
        after_runs(state, users)
        found = Found()
        for role in ("reviewer", "annotator", "manager", "staff"):
            report += walk(persons[role], role, state, found, shots)
        for path in [state.base + p for p in ROLE_PAGES["manager"]] + [found.item, found.diff]:
            if path is not None and (status := outsider.status(path)) != 404:
                report.append(f"{state.name} / outsider / {path}: answered {status}, not 404")
        walked[state.name] = found

    assert not report, "\n".join(report)
    assert set(SAYS) <= {(name, page) for name, found in walked.items() for page in found.names}
    # the walk found the pages that links lead to where the state has them
    assert all(walked[s.name].versions for s in states)
    with_items = {s.name for s in states if s.project.items.exists()}
    assert {name for name, found in walked.items() if found.item} == with_items
    assert {name for name, found in walked.items() if found.diff} == {
        s.name for s in states if s.datasets
    }


# --- the export form against the file it downloads ---------------------------------------


def read_export(path: Path, file_format: str) -> list[dict]:
    """The rows of a downloaded export (Label Studio: its tasks)."""
    if file_format == "csv":
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if file_format == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if file_format == "parquet":
        return pq.read_table(path).to_pylist()
    return json.loads(path.read_text(encoding="utf-8"))


def download(person: Person, name: str, value: str, shots: Path) -> tuple[dict, list[dict], int]:
    """Press Download once the page shows the form's change: (the request's query, the
    file's rows, the number of items the page says it exports)."""
    page = person.page
    expect(page).to_have_url(re.compile(rf"[?&]{name}={re.escape(value)}(&|$)"))
    expect(page.locator("#download")).to_be_enabled()
    kept = int(page.locator("#kept").inner_text())
    with page.expect_download() as started:
        page.locator("#download").click()
    file = started.value
    query = parse_qs(urlsplit(file.url).query)
    file_format = query.get("format", ["csv"])[0]
    assert file.suggested_filename.endswith(
        {"labelstudio": ".json"}.get(file_format, f".{file_format}")
    ), file.suggested_filename
    page.screenshot(path=str(shots / f"export-{name}-{value}.png"))
    return query, read_export(Path(file.path()), file_format), kept


def test_every_export_control_is_what_the_download_button_downloads(
    live_server, browser, sentiment_data, celery_worker, artifacts
):
    users = people()
    state = state_finished(users, sentiment_data, np.random.default_rng(11))
    start_runs(state, users["manager"], kinds=("label_issues",))  # open issues, CROWDLAB labels
    runs_ended([state], celery_worker)
    after_runs(state, users)
    project = state.project
    shots = artifacts / "crawl" / "export"
    shots.mkdir(parents=True, exist_ok=True)
    person = Person(browser, live_server, "crawl-reviewer")
    page = person.page
    page.goto(f"{person.url}{state.base}export/")
    total = project.items.count()
    expect(page.locator("#kept")).to_have_text(str(total))

    form = page.locator("#export-form")
    controls = form.locator("select, input[type=number], input[type=checkbox]")
    names = set(controls.evaluate_all("els => els.map(e => e.name)"))
    assert names == {"format", "labels", "exclude", "min_agreement", "guideline_version", "include"}
    checked = []

    for name in ("format", "labels", "guideline_version"):
        select = form.locator(f"select[name={name}]")
        default = select.input_value()
        for value in select.locator("option").evaluate_all("os => os.map(o => o.value)"):
            if value in ("", default):
                continue
            select.select_option(value)
            query, rows, kept = download(person, name, value, shots)
            assert query[name] == [value], (name, query)
            if name != "format":
                assert len(rows) == kept, (name, value, len(rows), kept)
            if name == "format":
                assert len(rows) == total, (value, len(rows))
                assert {
                    str(row.get("external_id") or row["data"]["external_id"]) for row in rows
                } == set(project.items.values_list("external_id", flat=True))
            elif name == "labels":
                sources = {row["label_source"] for row in rows}
                allowed = {value, "review", ""} if value != "reviewed" else {"review", ""}
                assert sources <= allowed and sources & (allowed - {""}), (value, sources)
            else:  # only the annotations made under that version count
                version_items = set(
                    project.annotations.filter(guideline__version=int(value)).values_list(
                        "item__external_id", flat=True
                    )
                )
                assert {row["external_id"] for row in rows} == version_items, value
            checked.append((name, value))
            select.select_option(default)

    number = form.locator("input[name=min_agreement]")
    number.fill("0.9")
    query, rows, kept = download(person, "min_agreement", "0.9", shots)
    assert query["min_agreement"] == ["0.9"] and len(rows) == kept < total
    assert all(float(row["agreement"]) >= 0.9 or row["label_source"] == "review" for row in rows), (
        rows[:3]
    )
    checked.append(("min_agreement", "0.9"))
    number.fill("")

    for box in form.locator("input[type=checkbox]").all():
        name, value = box.get_attribute("name"), box.get_attribute("value")
        box.check()
        query, rows, kept = download(person, name, value, shots)
        assert query[name] == [value], (name, query)
        if name == "include":
            assert set(rows[0]) >= {"external_id", "annotator", "label", "guideline_version"}
            assert len(rows) == project.annotations.count()
        else:
            excluded = int(
                page.locator("#excluded tr", has_text=value).locator("td.num").inner_text()
            )
            assert len(rows) == kept == total - excluded and excluded > 0, (value, excluded)
        checked.append((name, value))
        box.uncheck()

    assert {name for name, _ in checked} == names
    # every download was recorded as a dataset version with the parameters it was made with
    versions = list(project.datasets.order_by("id").values_list("params", flat=True))[2:]
    assert len(versions) == len(checked)
    for (name, value), params in zip(checked, versions, strict=True):
        recorded = params[name]
        assert str(recorded[0] if isinstance(recorded, list) else recorded) == value, params
