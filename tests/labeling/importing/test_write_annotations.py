"""Importing annotations made elsewhere: a crowd's answers (4000 by 30 workers), updates,
existing accounts and multi-label answers."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model

from labeling.importing.jobs import import_file
from labeling.models import Annotation, ImportBatch, Profile
from tests.factories import make_items, make_project, simulate_crowd

pytestmark = pytest.mark.django_db
User = get_user_model()

# Dog breeds (four classes): 400 photos, ten of 30 crowd workers on each.
CROWD = simulate_crowd(
    classes=("0", "1", "2", "3"),
    n_items=400,
    workers={str(n): 0.9 - 0.015 * n for n in range(1, 31)},
    per_item=10,
    seed=71,
)
ANSWERS = CROWD.answers_csv(("question", "worker", "answer"))


def as_csv(header, rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def run_import(project, user, content, *, kind, format="csv", **options):
    return import_file(
        project=project,
        fileobj=io.BytesIO(content),
        filename="upload.csv",
        format=format,
        kind=kind,
        options=options,
        user=user,
    )


@pytest.fixture
def crowd_project(manager):
    project = make_project(manager, labels=("0", "1", "2", "3"), overlap=10)
    questions = [(question, f"dog photo {question}") for question in CROWD.truth]
    batch = run_import(
        project,
        manager,
        as_csv(["question", "text"], questions),
        kind="items",
        id_column="question",
    )
    assert batch.status == "succeeded", batch.errors
    return project, manager


def test_crowd_answers_import_as_annotations_by_external_workers(crowd_project):
    project, manager = crowd_project
    batch = run_import(
        project,
        manager,
        ANSWERS,
        kind="annotations",
        id_column="question",
        annotator_column="worker",
        label_column="answer",
    )
    assert batch.status == ImportBatch.Status.SUCCEEDED, batch.errors
    assert batch.rows == len(CROWD.answers) == 4000
    annotations = Annotation.objects.filter(project=project)
    assert annotations.count() == 4000
    assert annotations.values("annotator").distinct().count() == 30
    assert annotations.values("item").distinct().count() == 400
    guideline = project.current_guideline()
    assert set(annotations.values_list("guideline_id", flat=True)) == {guideline.pk}

    workers = User.objects.filter(annotations__project=project).distinct()
    assert workers.count() == 30
    assert not workers.filter(is_active=True).exists()
    assert not any(w.has_usable_password() for w in workers)
    assert Profile.objects.filter(user__in=workers, is_external=True).count() == 30

    # Every row of the file, and nothing else, is stored.
    stored = {
        (q, w): label
        for q, w, label in annotations.values_list(
            "item__external_id", "annotator__username", "label__name"
        )
    }
    assert stored == {(q, w): label for q, w, label in CROWD.answers}


def test_importing_the_same_answers_twice_is_refused_then_skipped(crowd_project):
    project, manager = crowd_project
    content = ANSWERS
    options = dict(id_column="question", annotator_column="worker", label_column="answer")
    assert run_import(project, manager, content, kind="annotations", **options).rows == 4000
    again = run_import(project, manager, content, kind="annotations", **options)
    assert again.status == "failed"
    assert again.errors[0]["row"] == 2
    assert "already labeled" in again.errors[0]["reason"]
    skipped = run_import(
        project, manager, content, kind="annotations", on_duplicate="skip", **options
    )
    assert skipped.status == "succeeded"
    assert skipped.rows == 0
    assert Annotation.objects.filter(project=project).count() == 4000


def test_update_replaces_an_existing_annotations_label(crowd_project):
    project, manager = crowd_project
    first = as_csv(["question", "annotator", "label"], [["q0", "w-1", "2"]])
    assert run_import(project, manager, first, kind="annotations", id_column="question").rows == 1
    second = as_csv(["question", "annotator", "label"], [["q0", "w-1", "0"]])
    batch = run_import(
        project, manager, second, kind="annotations", id_column="question", on_duplicate="update"
    )
    assert batch.status == "succeeded", batch.errors
    annotation = Annotation.objects.get(project=project, annotator__username="w-1")
    assert annotation.label.name == "0"


def test_existing_accounts_are_used_not_recreated(crowd_project, make_user):
    project, manager = crowd_project
    ada = make_user("ada")
    content = as_csv(["question", "annotator", "label"], [["q0", "ada", "1"], ["q1", "ada", "2"]])
    batch = run_import(project, manager, content, kind="annotations", id_column="question")
    assert batch.status == "succeeded", batch.errors
    assert Annotation.objects.filter(annotator=ada).count() == 2
    ada.refresh_from_db()
    assert ada.is_active
    assert not Profile.objects.filter(user=ada, is_external=True).exists()


def test_multi_label_project_takes_pipes_or_json_lists(manager):
    project = make_project(manager, labels=("cat", "dog", "bird"), task_type="multi_label")
    make_items(project, {"p1": "a photo", "p2": "another"})
    content = as_csv(
        ["external_id", "annotator", "label"],
        [["p1", "x", "dog|cat"], ["p2", "x", '["bird"]'], ["p1", "y", "bird"]],
    )
    batch = run_import(project, manager, content, kind="annotations")
    assert batch.status == "succeeded", batch.errors
    ids = dict(project.labels.values_list("name", "id"))
    stored = dict(
        Annotation.objects.filter(project=project)
        .values_list("annotator__username", "labels")
        .filter(item__external_id="p1")
    )
    assert stored == {"x": [ids["cat"], ids["dog"]], "y": [ids["bird"]]}
    assert not Annotation.objects.filter(project=project, label__isnull=False).exists()
