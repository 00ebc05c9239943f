"""Load the demo: accounts, a digit-labeling project built from scikit-learn's digits, and a
span (named-entity) project on sentences Concord's own code writes.

The images come from `sklearn.datasets.load_digits` (shipped inside scikit-learn), drawn as
SVG data URIs; each item also carries its 64 pixel values as numeric fields, which the
built-in model learns from (the annotator sees the image). Everything is generated here from
a fixed seed and goes in through Concord's own import service:

- batch 1 (600 items) was labeled by three simulated crowd workers under guideline v1, which
  says nothing about telling 1 from 7 or 4 from 9: the workers confuse them;
- guideline v2 adds that rule with two worked examples, and the workers labeled 360 of the
  400 items of batch 2 (more of them written with light strokes) under it, confusing far less;
- the last 40 items of batch 2 wait in the queue of the demo annotators.

Both batches are big enough for every drift check (`analysis.metrics.drift.MIN_BATCH_ITEMS`
values each). `--items N` builds the same demo cut to N digits: 60% in batch 1, the rest in
batch 2, whose last 40 (or all, when it is smaller) wait for the annotators; a small demo
shows what the pages say about tiny samples.

Faint (light-stroke) digits are harder for the crowd, so the `stroke` slices differ.

The span project, "News entities (demo)", holds 600 invented news sentences with entities
PER, ORG, LOC and DATE (`labeling.demo_spans`, seeded; the same at any `--items`, which sizes
the digits only). Four simulated annotators, three per sentence, each with one habit: careful,
boundary shifter, type confuser (ORG for LOC and back), misser. The first 300 sentences were
labeled under guideline v1; v2 says to mark whole names and whole dates, after which the
boundary shifter shifts far less; 260 of the next 300 were labeled under v2 and the last 40
wait in the demo annotators' queue. Items and spans go in as JSON Lines through the import
service, as a team's own files would.

The command is idempotent: a second run finds each project and changes nothing. It takes a
few seconds (most of it the imports).
"""

import base64
import csv
import io
import json
import random

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from sklearn.datasets import load_digits

from labeling import demo_spans
from labeling.importing.jobs import import_file
from labeling.models import ImportBatch, Item, Project
from labeling.services.guidelines import (
    guideline_draft_update,
    guideline_publish,
    worked_example_add,
)
from labeling.services.projects import member_set, project_create

User = get_user_model()
DEMO_NAME = "Handwritten digits (demo)"
ACCOUNTS = [
    ("admin", "concord-admin", "manager"),
    ("annotator1", "concord-demo", "annotator"),
    ("annotator2", "concord-demo", "annotator"),
]
SEED = 7
DEMO_ITEMS = 1000
DIGITS_IN_LOAD_DIGITS = 1797
FIRST_BATCH_SHARE = 0.6
LEFT_FOR_ANNOTATORS = 40  # the end of the second batch, in the demo annotators' queue
# The second batch came from a scanner that writes fainter: light strokes are drawn into it
# twice as often as medium ones (the drift between the batches).
SECOND_BATCH_WEIGHT = {"light": 2.0, "medium": 1.0, "dense": 0.7}
# Simulated crowd workers: how often each picks a random wrong digit...
CROWD_ERROR_RATES = {"crowd-ann": 0.02, "crowd-bob": 0.06, "crowd-cyd": 0.15}
# ...how much more (or less) often by stroke...
STROKE_ERROR_FACTOR = {"light": 2.5, "medium": 1.0, "dense": 0.25}
# ...and how often they read a 1 as 7, a 7 as 1, a 4 as 9 or a 9 as 4 under each guideline
# version (v2 tells them apart).
CONFUSED = {1: 7, 7: 1, 4: 9, 9: 4}
CONFUSION_RATES = {
    1: {"crowd-ann": 0.2, "crowd-bob": 0.35, "crowd-cyd": 0.5},
    2: {"crowd-ann": 0.02, "crowd-bob": 0.04, "crowd-cyd": 0.08},
}

GUIDELINE_V1 = """## What to label

Pick the digit the writer **meant**, not the one the strokes look most like.

- Each image is a scan of one handwritten digit, 8x8 pixels, darker = more ink.
- When the strokes are cut off or too faint, use what is visible and press **u** to mark it
  *unsure*.
"""
GUIDELINE_V2 = (
    GUIDELINE_V1
    + """
## Digits people mix up

- **1 or 7?** A 7 has a long horizontal bar at the top. A 1 is one main stroke, even with a
  short flag at the top or a base at the bottom: it is a 1.
- **4 or 9?** A 9 closes its loop at the top. A 4 is open at the top, where two strokes meet
  at an angle: it is a 4, even when it is written with a slant.
"""
)
CHANGELOG_V2 = "How to tell 1 from 7 and 4 from 9, with two worked examples."
WORKED_EXAMPLES = {
    1: "A short flag and a base, but no horizontal bar at the top: a 1, not a 7.",
    4: "The top is open where the two strokes meet: a 4, not a 9.",
}


SPANS_DEMO_NAME = "News entities (demo)"
SPANS_SEED = 15
SPANS_BATCH = 300  # sentences per batch: the first labeled under v1, the second under v2
# The simulated annotators, three per sentence (each sits out every fourth sentence in turn).
SPAN_ANNOTATORS = {
    "ner-careful": "careful",
    "ner-shifter": "boundary_shifter",
    "ner-confuser": "type_confuser",
    "ner-misser": "misser",
}
# How often each habit's error happens per entity, under each guideline version: v2's rule on
# whole names and dates is what the boundary shifter was getting wrong.
SPAN_ERROR_RATES = {
    1: {"careful": 0.35, "boundary_shifter": 0.4, "type_confuser": 0.35, "misser": 0.35},
    2: {"careful": 0.35, "boundary_shifter": 0.08, "type_confuser": 0.35, "misser": 0.35},
}
SPAN_LABELS = [
    {"name": "PER", "key": "p"},
    {"name": "ORG", "key": "o"},
    {"name": "LOC", "key": "l"},
    {"name": "DATE", "key": "d"},
]
SPANS_GUIDELINE_V1 = """## What to mark

Mark every mention of a **person** (PER), **organisation** (ORG), **place** (LOC) or
**date** (DATE) in the sentence. Select it with the mouse or the arrow keys, then press the
label's key: **p**, **o**, **l** or **d**. A sentence without any is answered with no spans.

- An organisation is a company, bank, foundation or institution; a place is a city or a
  country.
- Spans cover whole words and never overlap.
"""
SPANS_GUIDELINE_V2 = (
    SPANS_GUIDELINE_V1
    + """
## Where a span starts and ends

- Mark a person's **whole name**, first and last ("Ada Lovelace", not "Lovelace"), and an
  organisation's whole name ("Blue Harbor Bank", not "Blue Harbor").
- Mark the **whole date**: day, month and year ("3 May 2021", not "May 2021"), and nothing
  around it: not "on" or "in" before it, not the full stop after it.
"""
)
SPANS_CHANGELOG_V2 = "Where a span starts and ends: whole names, whole dates, nothing around."


def digit_svg(pixels: np.ndarray) -> str:
    """An 8x8 grey-level image (0..16) as a scalable SVG data URI."""
    rects = "".join(
        f'<rect x="{x}" y="{y}" width="1" height="1" fill="rgb({v},{v},{v})"/>'
        for y in range(8)
        for x in range(8)
        for v in [255 - int(pixels[y, x] * 255 / 16)]
    )
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8" shape-rendering="crispEdges">'
        f"{rects}</svg>"
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def pixel_fields(pixels: np.ndarray) -> dict[str, int]:
    """The 64 grey levels as numeric fields p<row>_<column>: the built-in model's features."""
    return {f"p{y}_{x}": int(pixels[y, x]) for y in range(8) for x in range(8)}


def stroke(ink: float, thresholds: tuple[float, float]) -> str:
    """The slice of a digit by its mean grey level, cut at the dataset's terciles."""
    return "light" if ink < thresholds[0] else "dense" if ink >= thresholds[1] else "medium"


def jsonl_file(rows: list[dict]) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(row) + "\n" for row in rows).encode())


def csv_file(header: list[str], rows) -> io.BytesIO:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return io.BytesIO(text.getvalue().encode())


def crowd_answers(
    rng: np.random.Generator, truth: dict[str, int], strokes: dict[str, str], version: int
) -> list[list[str]]:
    """Rows `external_id, annotator, label` of the simulated crowd under a guideline version."""
    answers = []
    for worker, error_rate in CROWD_ERROR_RATES.items():
        confusion_rate = CONFUSION_RATES[version][worker]
        for external_id, digit in truth.items():
            if digit in CONFUSED and rng.random() < confusion_rate:
                label = CONFUSED[digit]
            elif rng.random() < error_rate * STROKE_ERROR_FACTOR[strokes[external_id]]:
                label = (digit + int(rng.integers(1, 10))) % 10
            else:
                label = digit
            answers.append([external_id, worker, str(label)])
    return answers


class Command(BaseCommand):
    help = (
        "Create the demo accounts, the digits demo project and the span demo project (idempotent)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--items",
            type=int,
            default=DEMO_ITEMS,
            help=f"how many digits the demo project holds (default {DEMO_ITEMS}, at most "
            f"{DIGITS_IN_LOAD_DIGITS}): 60%% in the first batch",
        )

    @transaction.atomic
    def handle(self, *args, items: int, **options):
        if not 10 <= items <= DIGITS_IN_LOAD_DIGITS:
            raise CommandError(
                f"--items must be between 10 and {DIGITS_IN_LOAD_DIGITS} (the digits of "
                "scikit-learn's load_digits)."
            )
        users = {}
        for username, password, _ in ACCOUNTS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.is_staff = user.is_superuser = username == "admin"
                user.save()
            users[username] = user
        for name, create in (
            (DEMO_NAME, lambda: self.create_project(users, items)),
            (SPANS_DEMO_NAME, lambda: self.create_span_project(users)),
        ):
            project = Project.objects.filter(name=name).first()
            if project is None:
                project = create()
                self.stdout.write(
                    self.style.SUCCESS(f"Demo project loaded: {project.name} (id {project.pk})")
                )
            else:
                self.stdout.write(
                    f"Demo project already loaded, left as it is: {project.name} (id {project.pk})"
                )
        for username, password, role in ACCOUNTS:
            self.stdout.write(f"  {role:<10} {username} / {password}")

    def import_or_fail(self, **kwargs) -> ImportBatch:
        batch = import_file(**kwargs)
        if batch.status != ImportBatch.Status.SUCCEEDED:
            raise CommandError(f"Demo import {batch.filename} failed: {batch.errors[:3]}")
        return batch

    def create_project(self, users, n_items: int) -> Project:
        admin = users["admin"]
        digits = load_digits()
        ink = digits.images.mean(axis=(1, 2))
        thresholds = tuple(np.quantile(ink, [1 / 3, 2 / 3]))
        rng = np.random.default_rng(SEED)
        n_first = round(n_items * FIRST_BATCH_SHARE)
        order = rng.permutation(len(digits.images))
        first = order[:n_first]
        rest = order[n_first:]
        weight = np.array([SECOND_BATCH_WEIGHT[stroke(ink[i], thresholds)] for i in rest])
        second = rng.choice(rest, size=n_items - n_first, replace=False, p=weight / weight.sum())

        project = project_create(
            name=DEMO_NAME,
            description="Label 8x8 handwritten digits (scikit-learn's bundled digits).",
            data_type=Project.DataType.IMAGE,
            labels=[{"name": str(d), "key": str(d)} for d in range(10)],
            overlap=3,
            created_by=admin,
            guideline=GUIDELINE_V1,
        )
        for username, _, role in ACCOUNTS[1:]:
            member_set(project=project, user=users[username], role=role)

        def external_id(index: int) -> str:
            return f"digit-{index:04d}"

        def items_file(indices) -> io.BytesIO:
            return jsonl_file(
                [
                    {
                        "external_id": external_id(i),
                        "image": digit_svg(digits.images[i]),
                        **pixel_fields(digits.images[i]),
                        "ink": round(float(ink[i]), 2),
                        "stroke": stroke(ink[i], thresholds),
                    }
                    for i in indices
                ]
            )

        def import_items(indices, filename: str) -> None:
            self.import_or_fail(
                project=project,
                fileobj=items_file(indices),
                filename=filename,
                format="jsonl",
                kind="items",
                options={"image_column": "image", "metadata_columns": "ink,stroke"},
                user=admin,
            )

        def import_crowd(indices, version: int, filename: str) -> list[list[str]]:
            truth = {external_id(i): int(digits.target[i]) for i in indices}
            strokes = {external_id(i): stroke(ink[i], thresholds) for i in indices}
            answers = crowd_answers(rng, truth, strokes, version)
            self.import_or_fail(
                project=project,
                fileobj=csv_file(["external_id", "annotator", "label"], answers),
                filename=filename,
                format="csv",
                kind="annotations",
                options={},
                user=admin,
            )
            return answers

        import_items(first, "digits-batch-1.jsonl")
        answers = import_crowd(first, 1, "crowd-v1.csv")

        # v2's worked examples: the 1 and the 4 that most of the crowd got wrong under v1 (the
        # first such in import order; a cut-down demo may have no 1 or no 4 to show).
        votes: dict[str, list[int]] = {}
        for item_id, _, label in answers:
            votes.setdefault(item_id, []).append(int(label))
        guideline_draft_update(
            project=project, body=GUIDELINE_V2, changelog=CHANGELOG_V2, user=admin
        )
        for digit, why in WORKED_EXAMPLES.items():
            candidates = [external_id(i) for i in first if digits.target[i] == digit]
            if not candidates:
                continue
            fooled = max(candidates, key=lambda e: votes[e].count(CONFUSED[digit]))
            worked_example_add(
                project=project,
                item=Item.objects.get(project=project, external_id=fooled),
                label=str(digit),
                why=why,
                user=admin,
            )
        guideline_publish(project=project, user=admin)
        import_items(second, "digits-batch-2.jsonl")
        labeled_second = second[: max(0, len(second) - LEFT_FOR_ANNOTATORS)]
        if len(labeled_second):
            import_crowd(labeled_second, 2, "crowd-v2.csv")
        return project

    def create_span_project(self, users) -> Project:
        """The span demo: two batches of sentences, crowd spans under guideline v1 and v2."""
        admin = users["admin"]
        project = project_create(
            name=SPANS_DEMO_NAME,
            description="Mark people, organisations, places and dates in news sentences "
            "(invented by Concord's demo).",
            data_type=Project.DataType.TEXT,
            task_type=Project.TaskType.SPANS,
            labels=SPAN_LABELS,
            overlap=3,
            created_by=admin,
            guideline=SPANS_GUIDELINE_V1,
        )
        for username, _, role in ACCOUNTS[1:]:
            member_set(project=project, user=users[username], role=role)
        sentences = demo_spans.sentences(2 * SPANS_BATCH, seed=SPANS_SEED)
        rng = random.Random(SPANS_SEED)
        names = list(SPAN_ANNOTATORS)

        def external_id(index: int) -> str:
            return f"news-{index + 1:04d}"

        def import_sentences(indices, filename: str) -> None:
            rows = [{"external_id": external_id(i), "text": sentences[i].text} for i in indices]
            self.import_or_fail(
                project=project,
                fileobj=jsonl_file(rows),
                filename=filename,
                format="jsonl",
                kind="items",
                options={},
                user=admin,
            )

        def import_spans(indices, version: int, filename: str) -> None:
            rows = []
            for i in indices:
                for name in names[: i % 4] + names[i % 4 + 1 :]:  # three of the four
                    habit = SPAN_ANNOTATORS[name]
                    rate = SPAN_ERROR_RATES[version][habit]
                    spans = demo_spans.annotate(sentences[i], habit, rng, rate=rate)
                    rows.append(
                        {
                            "external_id": external_id(i),
                            "annotator": name,
                            "spans": [{"start": a, "end": b, "label": t} for a, b, t in spans],
                        }
                    )
            self.import_or_fail(
                project=project,
                fileobj=jsonl_file(rows),
                filename=filename,
                format="jsonl",
                kind="annotations",
                options={},
                user=admin,
            )

        first = range(SPANS_BATCH)
        second = range(SPANS_BATCH, 2 * SPANS_BATCH)
        import_sentences(first, "news-batch-1.jsonl")
        import_spans(first, 1, "news-spans-v1.jsonl")
        guideline_draft_update(
            project=project, body=SPANS_GUIDELINE_V2, changelog=SPANS_CHANGELOG_V2, user=admin
        )
        guideline_publish(project=project, user=admin)
        import_sentences(second, "news-batch-2.jsonl")
        import_spans(second[: len(second) - LEFT_FOR_ANNOTATORS], 2, "news-spans-v2.jsonl")
        return project
