"""`/api/v1/projects/{id}/imports/`: 201 imported, 400 rejected with row errors, roles enforced."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from labeling.models import ImportBatch, Item
from tests.factories import add_member, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(manager, project, api_client_for):
    return project, api_client_for(manager)


def upload(client, project, content: bytes, **fields):
    return client.post(
        f"/api/v1/projects/{project.pk}/imports/",
        {"file": SimpleUploadedFile("items.csv", content, "text/csv"), **fields},
        format="multipart",
    )


def test_small_csv_answers_201_with_rows(setup):
    project, client = setup
    response = upload(
        client,
        project,
        b"id,text,lang\n1,hello,en\n2,hallo,de\n",
        id_column="id",
        metadata_columns="lang",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body == {"id": body["id"], "status": "succeeded", "rows": 2, "errors": []}
    assert Item.objects.get(project=project, external_id="2").metadata == {"lang": "de"}


def test_rejected_file_answers_400_with_row_errors_and_imports_nothing(setup):
    project, client = setup
    response = upload(client, project, b"external_id,text\n1,ok\n2,\n1,again\n")
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "failed"
    assert body["detail"] == "The file was rejected; nothing was imported."
    assert body["errors"] == [
        {"row": 3, "reason": "empty text"},
        {"row": 4, "reason": "duplicate external_id '1' within the file"},
    ]
    assert not Item.objects.filter(project=project).exists()
    detail = client.get(f"/api/v1/projects/{project.pk}/imports/{body['id']}/").json()
    assert detail["status"] == "failed"
    assert detail["errors"] == body["errors"]


def test_bad_option_is_a_400_naming_the_field(setup):
    project, client = setup
    response = upload(client, project, b"external_id,text\n1,a\n", on_duplicate="merge")
    assert response.status_code == 400
    assert "on_duplicate" in response.json()
    response = client.post(f"/api/v1/projects/{project.pk}/imports/", {}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()


def test_imports_are_listed_newest_first_and_each_has_its_detail(setup):
    project, client = setup
    first = upload(client, project, b"external_id,text\n1,a\n").json()
    upload(client, project, b"external_id,text\n2,\n")
    listing = client.get(f"/api/v1/projects/{project.pk}/imports/").json()
    assert listing["count"] == 2
    assert [row["status"] for row in listing["results"]] == ["failed", "succeeded"]
    assert "errors" not in listing["results"][0]
    detail = client.get(f"/api/v1/projects/{project.pk}/imports/{first['id']}/").json()
    assert {k: detail[k] for k in ("id", "status", "progress", "rows", "errors")} == {
        "id": first["id"],
        "status": "succeeded",
        "progress": 1.0,
        "rows": 1,
        "errors": [],
    }
    assert detail["message"].startswith("imported 1 rows")


@pytest.mark.parametrize("role", ["reviewer", "annotator"])
def test_reviewers_and_annotators_get_403(setup, role, api_client_for):
    project, _ = setup
    client = api_client_for(add_member(project, f"member-{role}", role))
    assert upload(client, project, b"external_id,text\n1,a\n").status_code == 403
    assert client.get(f"/api/v1/projects/{project.pk}/imports/").status_code == 403
    assert not ImportBatch.objects.filter(project=project).exists()


def test_non_members_get_404_and_anonymous_401(setup, make_user, api_client_for):
    project, manager_client = setup
    batch_id = upload(manager_client, project, b"external_id,text\n1,a\n").json()["id"]
    stranger = api_client_for(make_user("stranger"))
    assert upload(stranger, project, b"external_id,text\n1,a\n").status_code == 404
    assert stranger.get(f"/api/v1/projects/{project.pk}/imports/{batch_id}/").status_code == 404
    assert upload(APIClient(), project, b"external_id,text\n1,a\n").status_code in (401, 403)


def test_import_of_another_project_is_404(setup, make_user):
    project, client = setup
    other = make_project(make_user("other-boss"), name="Other")
    other_batch = ImportBatch.objects.create(project=other)
    response = client.get(f"/api/v1/projects/{project.pk}/imports/{other_batch.pk}/")
    assert response.status_code == 404


def test_headerless_tsv_imports_with_first_row_is_data_and_the_text_column(setup, sentiment_data):
    project, client = setup
    content = (sentiment_data / "amazon.tsv").read_bytes()
    response = client.post(
        f"/api/v1/projects/{project.pk}/imports/",
        {
            "file": SimpleUploadedFile("amazon.tsv", content, "text/tab-separated-values"),
            "first_row_is_data": "true",
            "text_column": "column1",
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["rows"] == 1000
    first_sentence, first_label = content.decode().splitlines()[0].rsplit("\t", 1)
    item = Item.objects.get(project=project, external_id="1")
    assert item.data == {"text": first_sentence, "column2": first_label}
    detail = client.get(f"/api/v1/projects/{project.pk}/imports/{response.json()['id']}/")
    options = detail.json()["options"]
    assert (options["delimiter"], options["id_column"], options["first_row_is_data"]) == (
        "tab",
        "",
        True,
    )


def test_headerless_tsv_without_first_row_is_data_is_a_400_saying_how(setup, sentiment_data):
    project, client = setup
    content = (sentiment_data / "amazon.tsv").read_bytes()
    response = upload(client, project, content)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["row"] == 1
    assert error["reason"].startswith("Missing column 'external_id' (the header has: So there")
    assert error["reason"].endswith(
        "leave id_column empty to number the items by row; if the file has no header row, "
        "set first_row_is_data."
    )
