"""Load the demo: accounts and a digit-labeling project built from scikit-learn's digits.

The images come from `sklearn.datasets.load_digits` (shipped inside scikit-learn) and are
drawn as SVG data URIs; three simulated crowd annotators with known error rates have already
labeled the first batch, so the analysis pages have something to show. Idempotent.
"""

import base64
import csv
import io

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from sklearn.datasets import load_digits

from labeling.importing.jobs import import_file
from labeling.models import Project
from labeling.services.guidelines import guideline_draft_update, guideline_publish
from labeling.services.projects import member_set, project_create

User = get_user_model()
DEMO_NAME = "Handwritten digits (demo)"
ACCOUNTS = [
    ("admin", "concord-admin", "manager"),
    ("annotator1", "concord-demo", "annotator"),
    ("annotator2", "concord-demo", "annotator"),
]
# Simulated crowd workers and how often each picks a wrong digit.
CROWD_ERROR_RATES = {"crowd-ann": 0.05, "crowd-bob": 0.15, "crowd-cyd": 0.35}
GUIDELINE = """## What to label

Pick the digit the writer **meant**, not the one the strokes look most like.

- A `1` with a flag at the top is still a `1`, not a `7`.
- A `7` may have a crossbar.
- When the strokes are cut off, use what is visible; press **u** to mark it *unsure*.
"""


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


def csv_file(header: list[str], rows) -> io.BytesIO:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return io.BytesIO(text.getvalue().encode())


class Command(BaseCommand):
    help = "Create demo accounts and the digits demo project (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=300)

    @transaction.atomic
    def handle(self, *args, items: int, **options):
        users = {}
        for username, password, _ in ACCOUNTS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.is_staff = user.is_superuser = username == "admin"
                user.save()
            users[username] = user
        project = Project.objects.filter(name=DEMO_NAME).first()
        if project is None:
            project = self.create_project(users, items)
        self.stdout.write(self.style.SUCCESS(f"Demo project: {project.name} (id {project.pk})"))
        for username, password, role in ACCOUNTS:
            self.stdout.write(f"  {role:<10} {username} / {password}")

    def create_project(self, users, n_items: int) -> Project:
        digits = load_digits()
        rng = np.random.default_rng(7)
        picked = rng.choice(
            len(digits.images), size=min(n_items, len(digits.images)), replace=False
        )
        project = project_create(
            name=DEMO_NAME,
            description="Label 8x8 handwritten digits (scikit-learn's bundled digits).",
            data_type=Project.DataType.IMAGE,
            labels=[{"name": str(d), "key": str(d)} for d in range(10)],
            overlap=3,
            created_by=users["admin"],
        )
        for username, _, role in ACCOUNTS[1:]:
            member_set(project=project, user=users[username], role=role)
        guideline_draft_update(
            project=project,
            body=GUIDELINE,
            changelog="What counts as a 1 and a 7.",
            user=users["admin"],
        )
        guideline_publish(project=project, user=users["admin"])

        rows = []
        for index in picked:
            image = digits.images[index]
            rows.append(
                [
                    f"digit-{index:04d}",
                    digit_svg(image),
                    round(float(image.mean()), 3),
                    "dense" if image.mean() > 5 else "light",
                ]
            )
        half = len(rows) * 2 // 3
        for batch_rows in (rows[:half], rows[half:]):
            import_file(
                project=project,
                fileobj=csv_file(["external_id", "image", "ink", "stroke"], batch_rows),
                filename="digits.csv",
                format="csv",
                kind="items",
                options={"image_column": "image", "metadata_columns": "ink,stroke"},
                user=users["admin"],
            )
        # The crowd labeled the first batch; the two demo annotators find the rest in their queue.
        truth = {f"digit-{i:04d}": int(digits.target[i]) for i in picked[:half]}
        answers = []
        for worker, error_rate in CROWD_ERROR_RATES.items():
            for external_id, digit in truth.items():
                wrong = rng.random() < error_rate
                label = (digit + int(rng.integers(1, 10))) % 10 if wrong else digit
                answers.append([external_id, worker, str(label)])
        import_file(
            project=project,
            fileobj=csv_file(["external_id", "annotator", "label"], answers),
            filename="crowd.csv",
            format="csv",
            kind="annotations",
            options={},
            user=users["admin"],
        )
        return project
