"""Test data builders: projects through the service, real crowd datasets in bulk."""

import csv
from pathlib import Path

from django.contrib.auth import get_user_model

from labeling.models import Annotation, Item, Membership, Project
from labeling.services.projects import member_set, project_create

User = get_user_model()

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
        user.set_password("pw-for-tests-123")
        user.save(update_fields=["password"])
    member_set(project=project, user=user, role=role)
    return user


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
