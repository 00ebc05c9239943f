"""Bad requests get a 4xx JSON answer with `detail` (and field errors), never a 500."""

import json

import pytest

from labeling.models import Guideline, LabelClass, Project
from tests.factories import make_project

pytestmark = pytest.mark.django_db

WRONG_VALUES = [
    None,
    "",
    "x" * 300,
    10**20,
    -1,
    1.5,
    True,
    [],
    {},
    ["a"],
    {"a": 1},
    "a\x00b",
    "\ud800",
]


@pytest.fixture
def setup(manager, project, api_client_for):
    return api_client_for(manager), project


def endpoints(project) -> dict[str, tuple[str, str, dict]]:
    """name -> (method, url, a valid body) for every write of this feature."""
    base = f"/api/v1/projects/{project.pk}"
    return {
        "create": ("post", "/api/v1/projects/", {"name": "P", "labels": [{"name": "a"}]}),
        "patch": ("patch", f"{base}/", {"name": "Q", "overlap": 2}),
        "member": ("post", f"{base}/members/", {"username": "manager", "role": "manager"}),
        "draft": ("post", f"{base}/guidelines/", {"body": "b", "changelog": "c"}),
        "publish": ("post", f"{base}/guidelines/draft/publish/", {"changelog": "c"}),
    }


def assert_json_4xx(answer, status=400):
    assert answer.status_code == status, (answer.status_code, answer.content[:300])
    assert answer["Content-Type"].startswith("application/json")
    assert "detail" in answer.json()


@pytest.mark.parametrize("name", ["create", "patch", "member", "draft", "publish"])
@pytest.mark.parametrize("raw", ['{"name": ', "not json", "[1, 2", '{"a": NaN}', "\xff\xfe"])
def test_malformed_json_body_is_400(setup, name, raw):
    client, project = setup
    method, url, _ = endpoints(project)[name]
    answer = getattr(client, method)(
        url, raw.encode("utf-8", "surrogateescape"), content_type="application/json"
    )
    assert_json_4xx(answer)


@pytest.mark.parametrize("name", ["create", "patch", "member", "draft", "publish"])
@pytest.mark.parametrize("body", ["[]", "[{}]", '"text"', "42", "null", "true"])
def test_a_body_that_is_not_an_object_is_400(setup, name, body):
    client, project = setup
    method, url, _ = endpoints(project)[name]
    answer = getattr(client, method)(url, body, content_type="application/json")
    assert_json_4xx(answer)


@pytest.mark.parametrize("name", ["create", "patch", "member", "draft", "publish"])
def test_every_field_with_every_wrong_type_is_4xx_never_500(setup, name):
    client, project = setup
    method, url, valid = endpoints(project)[name]
    for field in valid:
        for value in WRONG_VALUES:
            body = {**valid, field: value}
            # json.dumps escapes lone surrogates (\ud800) as JSON allows; the server must cope.
            raw = json.dumps(body)
            answer = getattr(client, method)(url, raw, content_type="application/json")
            assert answer.status_code < 500, (field, value, answer.content[:300])
            assert answer["Content-Type"].startswith("application/json"), (field, value)
            if answer.status_code >= 400:
                assert "detail" in answer.json()


@pytest.mark.parametrize(
    "labels",
    [
        "a,b",
        [],
        [None],
        [{"key": "a"}],
        [{"name": "a", "key": "ab"}],
        [{"name": "a", "key": "k"}, {"name": "b", "key": "k"}],
        [{"name": ["a"]}],
        [{"name": "a"}] * 2,
        [{"name": " "}],
    ],
)
def test_bad_label_lists_are_400_and_create_nothing(setup, labels):
    client, _ = setup
    before = Project.objects.count()
    answer = client.post("/api/v1/projects/", {"name": "P", "labels": labels}, format="json")
    assert_json_4xx(answer)
    assert "labels" in answer.json()
    assert Project.objects.count() == before


def test_label_ids_from_another_project_or_garbage_are_refused(setup, make_user):
    client, project = setup
    other = make_project(make_user("zed"), name="Other")
    foreign = other.labels.first()
    url = f"/api/v1/projects/{project.pk}/"
    for labels in ([{"id": foreign.pk, "name": "x"}], [{"id": "abc", "name": "x"}]):
        answer = client.patch(url, {"labels": labels}, format="json")
        assert_json_4xx(answer)
    assert LabelClass.objects.get(pk=foreign.pk).name == foreign.name


def test_unknown_choices_and_oversized_values_are_400(setup):
    client, project = setup
    create = client.post(
        "/api/v1/projects/",
        {"name": "P", "data_type": "video", "task_type": "x", "labels": [{"name": "a"}]},
        format="json",
    )
    assert_json_4xx(create)
    assert {"data_type", "task_type"} <= set(create.json())
    huge = client.post(
        f"/api/v1/projects/{project.pk}/guidelines/", {"body": "x" * 200_001}, format="json"
    )
    assert_json_4xx(huge)
    assert "body" in huge.json()
    assert not Guideline.objects.filter(project=project, published_at__isnull=True).exists()


def test_wrong_media_type_and_method_are_json_4xx(setup):
    client, project = setup
    text = client.post("/api/v1/projects/", "name=x", content_type="text/plain")
    assert_json_4xx(text, 415)
    delete = client.delete(f"/api/v1/projects/{project.pk}/")
    assert_json_4xx(delete, 405)
    bad_filter = client.get(f"/api/v1/projects/{project.pk}/items/?page_size=abc&page=x")
    assert_json_4xx(bad_filter, 404)


def test_form_encoded_body_works_like_json(setup):
    client, project = setup
    answer = client.post(
        f"/api/v1/projects/{project.pk}/members/", {"username": "manager", "role": "manager"}
    )
    assert answer.status_code == 200
    assert json.loads(answer.content)["role"] == "manager"
