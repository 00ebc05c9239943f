"""Projects over REST: create, list, read, change, members; the OpenAPI schema builds."""

import io

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Annotation, Guideline, LabelClass, Membership, Project
from tests.factories import add_member, make_project

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_create_project_makes_creator_manager_with_labels_and_guideline_v1(make_user):
    ada = make_user("ada")
    answer = client_for(ada).post(
        "/api/v1/projects/",
        {
            "name": "Sentiment",
            "data_type": "text",
            "task_type": "single_label",
            "overlap": 3,
            "labels": [{"name": "negative", "key": "n"}, {"name": "positive"}],
            "ordered": True,
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    project = Project.objects.get(pk=body["id"])
    assert (project.name, project.overlap, project.ordered) == ("Sentiment", 3, True)
    assert body["role"] == "manager"
    assert body["guideline_version"] == 1
    assert [(lab["name"], lab["key"], lab["order"]) for lab in body["labels"]] == [
        ("negative", "n", 0),
        ("positive", "1", 1),
    ]
    assert Membership.objects.get(project=project, user=ada).role == "manager"


def test_list_shows_only_projects_you_are_a_member_of(make_user):
    ada, bob = make_user("ada"), make_user("bob")
    mine = make_project(ada, name="Mine")
    make_project(bob, name="Bob's")
    shared = make_project(bob, name="Shared")
    add_member(shared, "ada", Membership.Role.ANNOTATOR)
    body = client_for(ada).get("/api/v1/projects/").json()
    assert body["count"] == 2
    assert {row["name"]: row["role"] for row in body["results"]} == {
        "Mine": "manager",
        "Shared": "annotator",
    }
    assert {row["id"] for row in body["results"]} == {mine.pk, shared.pk}


def test_project_list_takes_the_same_few_queries_for_many_projects(
    make_user, django_assert_max_num_queries
):
    ada = make_user("ada")
    for i in range(15):
        make_project(ada, name=f"P{i}")
    client = client_for(ada)
    with django_assert_max_num_queries(6):
        body = client.get("/api/v1/projects/").json()
    assert body["count"] == 15
    assert {(row["role"], row["guideline_version"]) for row in body["results"]} == {("manager", 1)}


def test_create_rejects_duplicate_label_names_and_zero_overlap(make_user):
    client = client_for(make_user())
    dup = client.post(
        "/api/v1/projects/",
        {"name": "x", "labels": [{"name": "a"}, {"name": "a"}]},
        format="json",
    )
    assert dup.status_code == 400
    assert "labels" in dup.json()
    zero = client.post(
        "/api/v1/projects/", {"name": "x", "overlap": 0, "labels": [{"name": "a"}]}, format="json"
    )
    assert zero.status_code == 400
    assert "overlap" in zero.json()
    assert not Project.objects.exists()


def test_manager_patches_settings_and_renames_a_used_label_keeping_annotations(make_user):
    ada = make_user("ada")
    project = make_project(ada, labels=("neg", "pos"))
    neg, pos = project.labels.all()
    item = project.items.create(external_id="1", data={"text": "hi"})
    annotation = Annotation.objects.create(
        project=project, item=item, annotator=ada, guideline=project.current_guideline(), label=neg
    )
    answer = client_for(ada).patch(
        f"/api/v1/projects/{project.pk}/",
        {
            "overlap": 2,
            "tie_rule": "first_class",
            "labels": [
                {"id": pos.pk, "name": "positive", "key": "1"},
                {"id": neg.pk, "name": "negative", "key": "2"},
                {"name": "neutral", "key": "3"},
            ],
        },
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    project.refresh_from_db()
    assert (project.overlap, project.tie_rule) == (2, "first_class")
    assert list(project.labels.values_list("name", "key")) == [
        ("positive", "1"),
        ("negative", "2"),
        ("neutral", "3"),
    ]
    annotation.refresh_from_db()
    assert annotation.label.name == "negative"


def test_removing_a_used_label_is_refused(make_user):
    ada = make_user("ada")
    project = make_project(ada, labels=("neg", "pos"))
    neg, pos = project.labels.all()
    item = project.items.create(external_id="1", data={"text": "hi"})
    Annotation.objects.create(
        project=project, item=item, annotator=ada, guideline=project.current_guideline(), label=neg
    )
    answer = client_for(ada).patch(
        f"/api/v1/projects/{project.pk}/",
        {"labels": [{"id": pos.pk, "name": "pos"}]},
        format="json",
    )
    assert answer.status_code == 400
    assert "neg" in str(answer.json()["labels"])
    assert LabelClass.objects.filter(project=project).count() == 2


def test_data_type_cannot_be_patched_and_reviewers_cannot_patch(make_user):
    ada = make_user("ada")
    project = make_project(ada)
    add_member(project, "rita", Membership.Role.REVIEWER)
    answer = client_for(ada).patch(
        f"/api/v1/projects/{project.pk}/", {"name": "New"}, format="json"
    )
    assert answer.status_code == 200
    rita = client_for(project.memberships.get(role="reviewer").user)
    assert rita.patch(f"/api/v1/projects/{project.pk}/", {"name": "X"}).status_code == 403
    assert rita.get(f"/api/v1/projects/{project.pk}/").json()["name"] == "New"


def test_manager_adds_member_then_changes_role(make_user):
    ada = make_user("ada")
    make_user("bob")
    project = make_project(ada)
    client = client_for(ada)
    added = client.post(
        f"/api/v1/projects/{project.pk}/members/",
        {"username": "bob", "role": "annotator"},
        format="json",
    )
    assert added.status_code == 201
    changed = client.post(
        f"/api/v1/projects/{project.pk}/members/",
        {"username": "bob", "role": "reviewer"},
        format="json",
    )
    assert changed.status_code == 200
    listed = client.get(f"/api/v1/projects/{project.pk}/members/").json()
    assert [(m["username"], m["role"]) for m in listed["results"]] == [
        ("ada", "manager"),
        ("bob", "reviewer"),
    ]


def test_adding_unknown_user_or_role_answers_400(make_user):
    ada = make_user("ada")
    make_user("bob")
    project = make_project(ada)
    client = client_for(ada)
    url = f"/api/v1/projects/{project.pk}/members/"
    nobody = client.post(url, {"username": "nobody", "role": "annotator"}, format="json")
    assert nobody.status_code == 400 and "username" in nobody.json()
    bad_role = client.post(url, {"username": "bob", "role": "owner"}, format="json")
    assert bad_role.status_code == 400 and "role" in bad_role.json()


def test_superuser_acts_as_manager(make_user):
    ada = make_user("ada")
    root = make_user("root", is_superuser=True, is_staff=True)
    project = make_project(ada)
    answer = client_for(root).get(f"/api/v1/projects/{project.pk}/members/")
    assert answer.status_code == 200
    assert client_for(root).get(f"/api/v1/projects/{project.pk}/").json()["role"] == "manager"


def test_guideline_draft_and_publish_over_the_api(make_user):
    ada = make_user("ada")
    project = make_project(ada)
    client = client_for(ada)
    base = f"/api/v1/projects/{project.pk}/guidelines/"
    saved = client.post(base, {"body": "# Rules\nBe kind.", "changelog": "Rules"}, format="json")
    assert saved.status_code == 200
    assert saved.json()["status"] == "draft"
    published = client.post(f"{base}2/publish/", {}, format="json")
    assert published.status_code == 201, published.json()
    assert published.json()["version"] == 2
    assert Guideline.objects.get(project=project, version=2).body == "# Rules\nBe kind."
    listed = client.get(base).json()
    assert [g["version"] for g in listed["results"]] == [2, 1]


def test_openapi_schema_builds_without_errors_or_warnings():
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = out.getvalue()
    for path in (
        "/api/v1/projects/{project_id}/items/",
        "/api/v1/projects/{project_id}/guidelines/{version}/publish/",
        "/api/v1/projects/{project_id}/guidelines/{a}/diff/{b}/",
    ):
        assert path in schema
