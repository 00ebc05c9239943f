"""A full export of a project restores into an empty instance with nothing lost."""

import io
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from labeling.importing.jobs import import_file
from labeling.models import Annotation, ImportBatch, Item, Project
from tests.factories import make_project

pytestmark = pytest.mark.django_db
User = get_user_model()


def snapshot(project: Project) -> tuple[Counter, dict]:
    annotations = Counter(
        Annotation.objects.filter(project=project).values_list(
            "item__external_id", "annotator__username", "label__name"
        )
    )
    items = {
        external_id: (data, metadata)
        for external_id, data, metadata in Item.objects.filter(project=project).values_list(
            "external_id", "data", "metadata"
        )
    }
    return annotations, items


def test_dog_project_exported_as_labelstudio_restores_into_an_empty_instance(make_user, crowd_data):
    manager = make_user("restorer")
    labels = ("0", "1", "2", "3")
    source = make_project(manager, labels=labels, name="dog")
    truth = (crowd_data / "dog" / "truth.csv").read_text().splitlines()[1:]
    items_csv = "external_id,text,breed_group\n" + "".join(
        f"{line.split(',')[0]},dog photo {line.split(',')[0]},g{int(line.split(',')[0]) % 3}\n"
        for line in truth
    )
    import_file(
        project=source,
        fileobj=io.BytesIO(items_csv.encode()),
        filename="items.csv",
        format="csv",
        kind="items",
        options={"metadata_columns": "breed_group"},
        user=manager,
    )
    answers = (crowd_data / "dog" / "answers.csv").read_text()
    answers = answers.replace("question,worker,answer", "external_id,annotator,label", 1)
    batch = import_file(
        project=source,
        fileobj=io.BytesIO(answers.encode()),
        filename="answers.csv",
        format="csv",
        kind="annotations",
        options={},
        user=manager,
    )
    assert batch.status == ImportBatch.Status.SUCCEEDED, batch.errors
    before_annotations, before_items = snapshot(source)
    assert sum(before_annotations.values()) == 8070 and len(before_items) == 807

    client = APIClient()
    client.force_authenticate(manager)
    response = client.get(f"/api/v1/projects/{source.pk}/export/", {"format": "labelstudio"})
    assert response.status_code == 200
    backup = b"".join(response.streaming_content)

    # An empty instance: the project and every crowd account are gone.
    source.delete()
    User.objects.exclude(pk=manager.pk).delete()
    assert not Annotation.objects.exists()

    restored = make_project(manager, labels=labels, name="dog restored")
    batch = import_file(
        project=restored,
        fileobj=io.BytesIO(backup),
        filename="backup.json",
        format="labelstudio",
        kind="items",
        options={},
        user=manager,
    )
    assert batch.status == ImportBatch.Status.SUCCEEDED, batch.errors
    after_annotations, after_items = snapshot(restored)
    assert after_annotations == before_annotations
    assert {k: v[0]["text"] for k, v in after_items.items()} == {
        k: v[0]["text"] for k, v in before_items.items()
    }
    assert {k: v[1]["breed_group"] for k, v in after_items.items()} == {
        k: v[1]["breed_group"] for k, v in before_items.items()
    }
