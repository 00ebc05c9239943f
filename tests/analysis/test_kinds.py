"""The registry of analysis kinds: one entry per kind of run, and the tasks, the runs API's
schema and the pages all follow it."""

import pytest
import yaml
from django.urls import reverse
from rest_framework.test import APIClient

from analysis.kinds import BY_NAME, KINDS
from analysis.models import AnalysisRun
from analysis.tasks import RUN_TASKS
from config.celery import app as celery_app
from labeling.models import Project
from tests.factories import make_project


def test_every_kind_of_run_has_one_entry():
    assert [kind.name for kind in KINDS] == AnalysisRun.Kind.values
    assert len(BY_NAME) == len(KINDS)
    assert [kind.title for kind in KINDS] == AnalysisRun.Kind.labels


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_each_kind_has_its_task_and_its_page(kind):
    task = celery_app.tasks[f"analysis.run_{kind.name}"]  # registered by analysis.tasks
    assert RUN_TASKS[kind.name].name == task.name and task.__doc__ == kind.summary
    assert reverse(kind.page, args=[1]).startswith("/projects/1/")


@pytest.mark.django_db
def test_the_schema_documents_each_kinds_parameters(make_user):
    client = APIClient()
    client.force_authenticate(make_user())
    schema = yaml.safe_load(client.get("/api/schema/").content)
    operation = schema["paths"]["/api/v1/projects/{project_id}/runs/"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    components = schema["components"]["schemas"]
    start = components[request.rsplit("/", 1)[1]]
    assert start["discriminator"]["propertyName"] == "kind"
    mapping = start["discriminator"]["mapping"]
    assert sorted(mapping) == sorted(BY_NAME)
    for name, ref in mapping.items():
        params_ref = components[ref.rsplit("/", 1)[1]]["properties"]["params"]["$ref"]
        documented = components[params_ref.rsplit("/", 1)[1]]["properties"]
        assert sorted(documented) == sorted(BY_NAME[name].params().fields), name
        assert all(field.get("description") for field in documented.values()), name


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "task", "covered"),
    [
        ("label_issues", Project.TaskType.MULTI, "single label, spans (named entities)"),
        ("baselines", Project.TaskType.MULTI, "single label, spans (named entities)"),
        ("slices", Project.TaskType.MULTI, "single label, spans (named entities)"),
    ],
)
def test_a_kind_refuses_a_project_task_it_does_not_cover(
    kind, task, covered, make_user, api_client_for
):
    manager = make_user("manager")
    project = make_project(manager, labels=("PER", "LOC"), task_type=task)
    answer = api_client_for(manager).post(
        f"/api/v1/projects/{project.pk}/runs/", {"kind": kind}, format="json"
    )
    assert answer.status_code == 400
    assert f"runs on {covered} projects only" in answer.json()["detail"]
    assert f"this one is {task.label.lower()}" in answer.json()["detail"]
    assert not AnalysisRun.objects.exists()
