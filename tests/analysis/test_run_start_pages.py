"""Every analysis page starts runs the way the API does (`kinds.run_start`, checked by
the kind's parameters in `analysis.kinds`): refusals answer alike, escaped, and a run stores
the parameters the API would store."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from analysis.models import AnalysisRun
from config.celery import app as celery_app
from tests.factories import make_project

pytestmark = pytest.mark.django_db

REFUSED = [
    (
        "agreement",
        {"n_bootstrap": "<b>lots</b>"},
        "n_bootstrap must be a whole number, not &#x27;&lt;b&gt;lots&lt;/b&gt;&#x27;.",
    ),
    ("issues", {"folds": "99"}, "folds must be between 2 and 20."),
    ("baselines", {"guideline_version": "0"}, "guideline_version starts at 1."),
    ("slices", {"model": "m" * 101}, "model names are at most 100 characters."),
    ("drift", {"batch_a": "999999", "batch_b": "1"}, "Import batch 999999 is not in this project."),
]


@pytest.fixture
def manager_client(make_user):
    manager = make_user("mgr")
    client = Client()
    client.force_login(manager)
    return make_project(manager), client


@pytest.mark.parametrize("page, posted, message", REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_parameters_are_refused_alike_on_every_page(manager_client, page, posted, message):
    project, client = manager_client
    url = f"/projects/{project.pk}/{page}/"

    answer = client.post(url, posted, headers={"HX-Request": "true"})

    # 200 so htmx swaps the message in where the progress would show.
    assert answer.status_code == 200
    assert answer.content.decode() == f'<p class="message error">{message}</p>'
    plain = client.post(url, posted, follow=True)
    assert plain.redirect_chain == [(url, 302)]
    assert message in plain.content.decode()
    assert not AnalysisRun.objects.exists()


def test_a_page_and_the_api_store_the_same_typed_parameters(manager_client):
    project, client = manager_client
    api = APIClient()
    api.force_authenticate(project.created_by)
    try:
        page = client.post(
            f"/projects/{project.pk}/baselines/",
            {"model": " builtin ", "guideline_version": "1", "csrfmiddlewaretoken": "x"},
        )
        started = api.post(
            f"/api/v1/projects/{project.pk}/runs/",
            {"kind": "baselines", "params": {"model": "builtin", "guideline_version": "1"}},
            format="json",
        )
    finally:
        # Nobody runs these jobs: drop their messages so no later worker picks them up.
        celery_app.control.purge()
    assert page.status_code == 302 and started.status_code == 202
    by_page, by_api = AnalysisRun.objects.order_by("id")
    assert by_page.params == by_api.params == {"model": "builtin", "guideline_version": 1}
    assert by_page.guideline_version == by_api.guideline_version == 1
