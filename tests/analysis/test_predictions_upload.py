"""Uploading model probabilities: JSON or CSV, all or nothing, errors with row numbers."""

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from analysis.loaders import predictions
from analysis.models import Prediction, PredictionSet
from labeling.models import Item, Membership
from tests.factories import add_member, make_items, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(manager):
    project = make_project(manager, labels=("neg", "pos", "neutral"))
    make_items(project, [f"sentence {i}" for i in range(4)], prefix="s")
    return project


def client_for(project, role=Membership.Role.REVIEWER):
    client = APIClient()
    client.force_authenticate(add_member(project, f"{role}-user", role))
    return client


def url(project):
    return f"/api/v1/projects/{project.pk}/predictions/"


def rows(*probabilities):
    return [{"external_id": f"s{i}", "probabilities": p} for i, p in enumerate(probabilities)]


def test_json_upload_stores_probabilities_in_the_project_label_order(project):
    body = {
        "model": "bert-v1",
        "classes": ["pos", "neg", "neutral"],  # another order than the project's
        "rows": rows([0.7, 0.2, 0.1], [0.1, 0.8, 0.1]),
    }
    response = client_for(project).post(url(project), body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json() == {"model": "bert-v1", "classes": ["neg", "pos", "neutral"], "rows": 2}
    item_ids, probs = predictions(project=project, model="bert-v1")
    assert item_ids.tolist() == list(
        Item.objects.filter(external_id__in=["s0", "s1"])
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert probs.tolist() == [[0.2, 0.7, 0.1], [0.8, 0.1, 0.1]]
    listed = client_for(project).get(url(project)).json()
    assert [(m["model"], m["rows"], m["classes"]) for m in listed] == [
        ("bert-v1", 2, ["neg", "pos", "neutral"])
    ]


def test_csv_upload_takes_the_model_name_from_a_form_field(project):
    csv = b"external_id,neg,pos,neutral\ns0,0.5,0.5,0\ns3,0.1,0.1,0.8\n"
    response = client_for(project, Membership.Role.MANAGER).post(
        url(project),
        {"model": "csv-model", "file": SimpleUploadedFile("p.csv", csv, "text/csv")},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    _, probs = predictions(project=project, model="csv-model")
    assert probs.tolist() == [[0.5, 0.5, 0.0], [0.1, 0.1, 0.8]]


def test_rows_that_do_not_sum_to_one_are_rejected_with_row_numbers_and_nothing_is_stored(project):
    body = {
        "model": "m",
        "classes": ["neg", "pos", "neutral"],
        "rows": rows([0.5, 0.5, 0.0], [0.5, 0.5, 0.1], [0.3, 0.3, 0.3995], [0.2, 0.2, 0.5]),
    }
    response = client_for(project).post(url(project), body, format="json")
    assert response.status_code == 400
    answer = response.json()
    assert [e["row"] for e in answer["errors"]] == [2, 4]  # row 3 is within 1e-3
    assert "sum to 1.1" in answer["errors"][0]["reason"]
    assert "nothing was stored" in answer["detail"]
    assert not PredictionSet.objects.exists() and not Prediction.objects.exists()


def test_unknown_external_ids_duplicates_and_bad_numbers_are_reported(project):
    body = {
        "model": "m",
        "classes": ["neg", "pos", "neutral"],
        "rows": [
            {"external_id": "s0", "probabilities": [1, 0, 0]},
            {"external_id": "nope", "probabilities": [1, 0, 0]},
            {"external_id": "s0", "probabilities": [0, 1, 0]},
            {"external_id": "s1", "probabilities": ["x", 0, 0]},
            {"external_id": "s2", "probabilities": [1, 0]},
            {"external_id": "s3", "probabilities": [1.5, -0.5, 0]},
        ],
    }
    response = client_for(project).post(url(project), body, format="json")
    assert response.status_code == 400
    reasons = {e["row"]: e["reason"] for e in response.json()["errors"]}
    assert set(reasons) == {2, 3, 4, 5, 6}
    assert "No item with external_id 'nope'" in reasons[2]
    assert "repeats row 1" in reasons[3]
    assert "numbers" in reasons[4]
    assert "3 probabilities" in reasons[5]
    assert "between 0 and 1" in reasons[6]


def test_classes_must_match_the_project_labels(project):
    body = {"model": "m", "classes": ["neg", "pos", "other"], "rows": rows([1, 0, 0])}
    response = client_for(project).post(url(project), body, format="json")
    assert response.status_code == 400
    assert "unknown classes: other" in str(response.json()["classes"])
    assert "missing classes: neutral" in str(response.json()["classes"])


def test_csv_short_row_and_missing_id_column_are_rejected(project):
    client = client_for(project)
    short = b"external_id,neg,pos,neutral\ns0,0.5,0.5\n"
    response = client.post(
        url(project),
        {"model": "m", "file": SimpleUploadedFile("p.csv", short, "text/csv")},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"row": 1, "reason": "Give 3 probabilities, one per class."}
    ]
    no_id = b"id,neg,pos,neutral\ns0,1,0,0\n"
    response = client.post(
        url(project),
        {"model": "m", "file": SimpleUploadedFile("p.csv", no_id, "text/csv")},
        format="multipart",
    )
    assert response.status_code == 400
    assert "external_id column" in str(response.json())


def test_reupload_replaces_the_model_atomically(project):
    client = client_for(project)
    first = {"model": "m", "classes": ["neg", "pos", "neutral"], "rows": rows([1, 0, 0], [1, 0, 0])}
    assert client.post(url(project), first, format="json").status_code == 201
    bad = {"model": "m", "classes": ["neg", "pos", "neutral"], "rows": rows([0.9, 0, 0])}
    assert client.post(url(project), bad, format="json").status_code == 400
    _, probs = predictions(project=project, model="m")
    assert probs.tolist() == [[1, 0, 0], [1, 0, 0]]  # the failed upload changed nothing
    second = {"model": "m", "classes": ["neg", "pos", "neutral"], "rows": rows([0, 0, 1])}
    assert client.post(url(project), second, format="json").status_code == 201
    item_ids, probs = predictions(project=project, model="m")
    assert probs.tolist() == [[0, 0, 1]] and len(item_ids) == 1
    assert PredictionSet.objects.get(model="m").n_rows == 1
    assert Prediction.objects.count() == 1


def test_annotators_and_strangers_cannot_upload(project, make_user, api_client_for):
    body = {"model": "m", "classes": ["neg", "pos", "neutral"], "rows": rows([1, 0, 0])}
    annotator = client_for(project, Membership.Role.ANNOTATOR)
    assert annotator.post(url(project), body, format="json").status_code == 403
    stranger = api_client_for(make_user())
    assert stranger.post(url(project), body, format="json").status_code == 404
    assert not PredictionSet.objects.exists()


def test_probabilities_round_trip_exactly(project):
    rng = np.random.default_rng(3)
    values = rng.dirichlet(np.ones(3), 4)
    body = {"model": "m", "classes": ["neg", "pos", "neutral"], "rows": rows(*values.tolist())}
    assert client_for(project).post(url(project), body, format="json").status_code == 201
    _, probs = predictions(project=project, model="m")
    assert np.array_equal(probs, values)


def test_a_json_body_over_the_limit_gets_a_json_413_that_points_to_csv(project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    body = {"model": "m", "classes": ["neg", "pos", "neutral"], "rows": rows(*[[1, 0, 0]] * 4)}
    body["rows"] *= 20
    response = client_for(project).post(url(project), body, format="json")
    assert response.status_code == 413
    assert "CSV" in response.json()["detail"]
    big_csv = b"external_id,neg,pos,neutral\n" + b"".join(
        f"s{i % 4},0.2,0.3,0.5\n".encode() for i in range(800)
    )
    response = client_for(project).post(
        url(project),
        {"model": "m", "file": SimpleUploadedFile("p.csv", big_csv, "text/csv")},
        format="multipart",
    )
    # The file itself may be big; its repeated ids are what is wrong here.
    assert response.status_code == 400 and "repeats row 1" in response.json()["errors"][0]["reason"]
