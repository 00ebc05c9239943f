"""The generic runs API: who may start and read runs, and how bad requests are answered."""

import pytest
from rest_framework.test import APIClient

from analysis.models import AnalysisRun
from config.celery import app as celery_app
from tests.factories import add_member, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(manager):
    return make_project(manager, labels=("cat", "dog"))


def start(client, project, body):
    return client.post(f"/api/v1/projects/{project.pk}/runs/", body, format="json")


@pytest.mark.parametrize("role", ["reviewer", "manager"])
def test_reviewers_and_managers_start_a_run_and_get_202(project, role, api_client_for):
    user = project.created_by if role == "manager" else add_member(project, "rita", role)
    response = start(api_client_for(user), project, {"kind": "agreement", "params": {"seed": 3}})
    assert response.status_code == 202, response.content
    assert set(response.json()) == {"id", "status"}
    assert response.json()["status"] == "queued"
    run = AnalysisRun.objects.get(pk=response.json()["id"])
    assert (run.kind, run.params, run.created_by) == ("agreement", {"seed": 3}, user)
    assert run.task_id


def test_annotators_are_blind_to_runs(project, api_client_for):
    annotator = api_client_for(add_member(project, "ann", "annotator"))
    run = AnalysisRun.objects.create(project=project, kind="agreement", result={"alpha": 0.5})
    assert start(annotator, project, {"kind": "agreement"}).status_code == 403
    assert annotator.get(f"/api/v1/projects/{project.pk}/runs/").status_code == 403
    response = annotator.get(f"/api/v1/runs/{run.pk}/")
    assert response.status_code == 403
    assert "alpha" not in response.content.decode()


def test_strangers_get_404_for_the_project_and_its_runs(project, make_user, api_client_for):
    stranger = api_client_for(make_user("nobody"))
    run = AnalysisRun.objects.create(project=project, kind="agreement")
    assert start(stranger, project, {"kind": "agreement"}).status_code == 404
    assert stranger.get(f"/api/v1/projects/{project.pk}/runs/").status_code == 404
    assert stranger.get(f"/api/v1/runs/{run.pk}/").status_code == 404
    assert stranger.get("/api/v1/runs/999999/").status_code == 404


def test_anonymous_requests_are_refused(project):
    assert APIClient().post(f"/api/v1/projects/{project.pk}/runs/", {}).status_code in (401, 403)


def test_unknown_kind_is_a_400_listing_the_allowed_kinds(project, api_client_for):
    response = start(api_client_for(project.created_by), project, {"kind": "astrology"})
    assert response.status_code == 400
    body = response.json()
    assert "detail" in body
    message = str(body["kind"])
    for kind in ("agreement", "label_issues", "baselines", "slices", "drift"):
        assert kind in message
    assert not AnalysisRun.objects.exists()


def test_unknown_parameter_is_a_400_listing_the_allowed_ones(project, api_client_for):
    body = {"kind": "agreement", "params": {"bootstraps": 10}}
    response = start(api_client_for(project.created_by), project, body)
    assert response.status_code == 400
    data = response.json()
    assert "bootstraps" in data["detail"]
    assert "n_bootstrap" in data["params"] and "guideline_version" in data["params"]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"n_bootstrap": "lots"}, "n_bootstrap"),
        ({"n_bootstrap": 10**6}, "n_bootstrap"),
        ({"min_shared": 1}, "min_shared"),
        ({"guideline_version": 0}, "guideline_version"),
    ],
)
def test_bad_parameter_values_are_400_with_field_errors(project, params, field, api_client_for):
    response = start(
        api_client_for(project.created_by), project, {"kind": "agreement", "params": params}
    )
    assert response.status_code == 400
    assert field in response.json()
    assert not AnalysisRun.objects.exists()


def test_params_must_be_an_object(project, api_client_for):
    response = start(
        api_client_for(project.created_by), project, {"kind": "agreement", "params": [1]}
    )
    assert response.status_code == 400
    assert "params" in response.json()


def test_run_detail_has_the_contract_fields(project, api_client_for):
    run = AnalysisRun.objects.create(
        project=project,
        kind="agreement",
        status="succeeded",
        progress=1.0,
        message="done",
        result={"alpha": 0.7},
    )
    response = api_client_for(add_member(project, "rev", "reviewer")).get(f"/api/v1/runs/{run.pk}/")
    assert response.status_code == 200
    body = response.json()
    for key in ("id", "kind", "status", "progress", "message", "result", "error", "created_at",
                "finished_at"):  # fmt: skip
        assert key in body
    assert (body["kind"], body["status"], body["result"]) == (
        "agreement",
        "succeeded",
        {"alpha": 0.7},
    )


def test_run_list_is_newest_first_filterable_and_leaves_results_out(project, api_client_for):
    first = AnalysisRun.objects.create(project=project, kind="agreement", result={"alpha": 1})
    second = AnalysisRun.objects.create(project=project, kind="slices")
    client = api_client_for(project.created_by)
    body = client.get(f"/api/v1/projects/{project.pk}/runs/").json()
    assert [r["id"] for r in body["results"]] == [second.pk, first.pk]
    assert "result" not in body["results"][0]
    only = client.get(f"/api/v1/projects/{project.pk}/runs/?kind=agreement").json()
    assert [r["id"] for r in only["results"]] == [first.pk]


def test_broker_down_is_a_503_and_the_run_is_recorded_failed(project, monkeypatch, api_client_for):
    # A real unreachable broker (nothing listens on port 1), not a mock. The app's cached
    # connection pools are dropped before and after so they are rebuilt from the URL in use.
    # Celery lets the CELERY_BROKER_URL variable win over its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    celery_app._pool, celery_app.amqp._producer_pool = None, None
    try:
        response = start(api_client_for(project.created_by), project, {"kind": "agreement"})
    finally:
        celery_app._pool, celery_app.amqp._producer_pool = None, None
    assert response.status_code == 503
    assert "unavailable" in response.json()["detail"]
    run = AnalysisRun.objects.get()
    assert run.status == "failed" and "unavailable" in run.error
