"""The permission matrix: every project route x anonymous / non-member / annotator / reviewer /
manager, generated from the URLconf.

Every route under `/api/v1/projects/<id>/` or `/projects/<pk>/` must have an entry in
MIN_ROLE (method -> lowest role allowed) or this file FAILS: nobody can add an endpoint and
forget its permission. Path parameters are filled from PATH_VALUES (or, for one route,
PATH_VALUES_BY_ROUTE); a new parameter name needs an entry there too. The expected answers:
anonymous 401/403 (API) or a redirect to the login page; non-member 404; a role below the
minimum 403; the minimum role and above anything but 401/403/404/405 and below 500.
"""

import dataclasses
import re
from dataclasses import dataclass

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import URLResolver, get_resolver, reverse

from analysis.exports.params import export_params_parse
from analysis.exports.versions import dataset_export
from analysis.models import AnalysisRun, LabelIssue
from labeling.models import Annotation, ImportBatch, Item, Membership, Project, Webhook
from labeling.permissions import ANNOTATOR, MANAGER, REVIEWER, project_for
from labeling.services.guidelines import worked_example_add
from tests.factories import add_member, make_project

pytestmark = pytest.mark.django_db

# url name -> {HTTP method: lowest role that may use it}. Add your routes here.
MIN_ROLE: dict[str, dict[str, str]] = {
    # REST (labeling/api/projects.py)
    "api-project": {"GET": ANNOTATOR, "PATCH": MANAGER},
    "api-project-members": {"GET": MANAGER, "POST": MANAGER},
    "api-project-member": {"GET": MANAGER, "PATCH": MANAGER, "DELETE": MANAGER},
    "api-project-member-continue": {"POST": MANAGER},
    "api-items": {"GET": REVIEWER},
    "api-item": {"GET": REVIEWER},
    "api-guidelines": {"GET": ANNOTATOR, "POST": MANAGER},
    "api-guideline": {"GET": ANNOTATOR},
    "api-guideline-publish": {"POST": MANAGER},
    "api-guideline-diff": {"GET": ANNOTATOR},
    "api-guideline-examples": {"POST": MANAGER},
    # webhooks (labeling/api/webhooks.py)
    "api-webhooks": {"GET": MANAGER, "POST": MANAGER},
    "api-webhook": {"GET": MANAGER, "PATCH": MANAGER, "DELETE": MANAGER},
    "api-webhook-deliveries": {"GET": MANAGER},
    "api-webhook-test": {"POST": MANAGER},
    # pages (labeling/views.py)
    "labeling:project_detail": {"GET": ANNOTATOR},
    "labeling:project_edit": {"GET": MANAGER, "POST": MANAGER},
    "labeling:members": {"GET": MANAGER, "POST": MANAGER},
    "labeling:member_role": {"POST": MANAGER},
    "labeling:member_continue": {"POST": MANAGER},
    "labeling:member_remove": {"POST": MANAGER},
    "labeling:webhooks": {"GET": MANAGER, "POST": MANAGER},
    "labeling:webhook_active": {"POST": MANAGER},
    "labeling:webhook_delete": {"POST": MANAGER},
    "labeling:webhook_test": {"POST": MANAGER},
    # staff too (the world's manager is staff; test_members_and_accounts.py checks the rest)
    "labeling:account_create": {"POST": MANAGER},
    "labeling:account_password": {"POST": MANAGER},
    "labeling:guidelines": {"GET": ANNOTATOR, "POST": MANAGER},
    "labeling:guideline_preview": {"POST": MANAGER},
    "labeling:guideline_publish": {"POST": MANAGER},
    "labeling:guideline_version": {"GET": ANNOTATOR},
    "labeling:worked_example_add": {"POST": MANAGER},
    "labeling:worked_example_remove": {"POST": MANAGER},
    "labeling:items": {"GET": REVIEWER},
    # annotating and the labeling dashboard (labeling/api/annotating.py, labeling/views.py)
    "api-next": {"GET": ANNOTATOR},
    "api-annotations": {"GET": ANNOTATOR, "POST": ANNOTATOR},
    "api-relabel": {"POST": REVIEWER},  # analysis/api/relabel.py
    "labeling:annotate": {"GET": ANNOTATOR},
    "labeling:annotate_submit": {"POST": ANNOTATOR},
    "labeling:annotate_skip": {"POST": ANNOTATOR},
    "labeling:annotate_undo": {"POST": ANNOTATOR},
    "labeling:dashboard": {"GET": REVIEWER},
    # imports (labeling/api/imports.py, labeling/views.py)
    "api-imports": {"GET": MANAGER, "POST": MANAGER},
    "api-import": {"GET": MANAGER},
    "labeling:imports": {"GET": MANAGER, "POST": MANAGER},
    "labeling:import_status": {"GET": MANAGER},
    # export and dataset versions (analysis/exports/api.py, analysis/exports/views.py)
    "api-export": {"GET": REVIEWER},
    "api-datasets": {"GET": REVIEWER},
    "api-dataset": {"GET": REVIEWER},
    "api-dataset-diff": {"GET": REVIEWER},
    "exports:export": {"GET": REVIEWER},
    "exports:dataset_diff": {"GET": REVIEWER},
    # analysis: annotators are blind to it (analysis/api/*.py, analysis/views*.py)
    "api-runs": {"GET": REVIEWER, "POST": REVIEWER},
    "api-predictions": {"GET": REVIEWER, "POST": REVIEWER},
    "api-issues": {"GET": REVIEWER},
    "api-issue-resolve": {"POST": REVIEWER},
    "analysis:agreement": {"GET": REVIEWER, "POST": REVIEWER},
    "analysis:disagreements": {"GET": REVIEWER},
    "analysis:issues": {"GET": REVIEWER},
    "analysis:issue_example": {"POST": REVIEWER},
    "analysis:item": {"GET": REVIEWER},
    "analysis:baselines": {"GET": REVIEWER, "POST": REVIEWER},
    "analysis:slices": {"GET": REVIEWER, "POST": REVIEWER},
    "analysis:drift": {"GET": REVIEWER, "POST": REVIEWER},
    "analysis:model_curve": {"GET": REVIEWER},
}

# Routes that answer with a file rather than JSON.
FILE_ROUTES = {"api-export", "api-dataset"}


@dataclass
class World:
    project: Project
    item: Item
    example_id: int
    users: dict  # role name -> user ("outsider" is not a member)


# path parameter name -> value taken from the world. Add yours here.
PATH_VALUES = {
    "pk": lambda w: w.project.pk,
    "project_id": lambda w: w.project.pk,
    "item_id": lambda w: w.item.pk,
    "version": lambda w: 1,
    "a": lambda w: 1,
    "b": lambda w: 1,
    "example_pk": lambda w: w.example_id,
    "user_id": lambda w: w.users[ANNOTATOR].pk,
}


# url name -> {parameter name -> value} where a route needs something else (e.g. its own rows:
# `lambda w: make_dataset(w.project).pk`).
def import_batch(world) -> int:
    return ImportBatch.objects.create(project=world.project, filename="x.csv").pk


def dataset_version(world) -> int:
    params = export_params_parse({}, project=world.project)
    plan = dataset_export(project=world.project, params=params, user=world.users[MANAGER])
    b"".join(plan.stream())
    return plan.version.pk


def label_issue(world) -> int:
    run = AnalysisRun.objects.create(
        project=world.project, kind=AnalysisRun.Kind.LABEL_ISSUES, status="succeeded"
    )
    return LabelIssue.objects.create(run=run, item=world.item, quality=0.1, rank=1).pk


def webhook(world) -> int:
    return Webhook.objects.create(
        project=world.project, url="http://127.0.0.1:9/", secret="s", events=["run.finished"]
    ).pk


PATH_VALUES_BY_ROUTE: dict[str, dict] = {
    **{
        name: {"webhook_id": webhook}
        for name in (
            "api-webhook",
            "api-webhook-deliveries",
            "api-webhook-test",
            "labeling:webhook_active",
            "labeling:webhook_delete",
            "labeling:webhook_test",
        )
    },  # fmt: skip
    "api-import": {"import_id": import_batch},
    "labeling:import_status": {"import_id": import_batch},
    "api-dataset": {"version_id": dataset_version},
    "api-dataset-diff": {"a": dataset_version, "b": dataset_version},
    "exports:dataset_diff": {"a": dataset_version, "b": dataset_version},
    "api-issue-resolve": {"issue_id": label_issue},
    "analysis:issue_example": {"issue_id": label_issue},
}

PROJECT_ROUTE = re.compile(r"^\^?(api/v1/)?projects/(<|\(\?P<)")
PARAM = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>")
ROLES = ["outsider", ANNOTATOR, REVIEWER, MANAGER]
RANK = {ANNOTATOR: 1, REVIEWER: 2, MANAGER: 3}


def project_routes() -> list[tuple[str, str, list[str]]]:
    """(url name, route, parameter names) of every project-scoped route in the URLconf."""
    found = []

    def walk(patterns, prefix: str, namespace: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                ns = namespace
                if pattern.namespace:
                    ns = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
                walk(pattern.url_patterns, route, ns)
                continue
            if not PROJECT_ROUTE.match(route):
                continue
            name = pattern.name and (f"{namespace}:{pattern.name}" if namespace else pattern.name)
            params = [a or b for a, b in PARAM.findall(route)]
            found.append((name or f"<unnamed {route}>", route, params))

    walk(get_resolver().url_patterns, "", "")
    return found


ROUTES = project_routes()
CASES = [
    pytest.param(name, params, method, id=f"{name}-{method}")
    for name, _route, params in ROUTES
    for method in MIN_ROLE.get(name, {"GET": None})
]


@pytest.fixture
def world(make_user) -> World:
    manager = make_user("mia", is_staff=True)  # staff: the Members page's account forms
    project = make_project(manager, name="Matrix")
    item = Item.objects.create(project=project, external_id="i-1", data={"text": "some text"})
    example = worked_example_add(
        project=project, item=item, label="negative", why="the tone", user=manager
    )
    users = {
        MANAGER: manager,
        REVIEWER: add_member(project, "rex", Membership.Role.REVIEWER),
        ANNOTATOR: add_member(project, "ann", Membership.Role.ANNOTATOR),
        "outsider": make_user("out"),
    }
    make_project(users["outsider"], name="Someone else's")
    return World(project=project, item=item, example_id=example.pk, users=users)


def test_every_project_route_has_a_minimum_role_and_known_parameters():
    names = {name for name, _route, _params in ROUTES}
    missing = sorted(names - set(MIN_ROLE))
    assert not missing, f"add these routes to MIN_ROLE in {__file__}: {missing}"
    stale = sorted(set(MIN_ROLE) - names)
    assert not stale, f"MIN_ROLE names routes that do not exist: {stale}"
    unknown = sorted(
        f"{name}: {p}"
        for name, _r, params in ROUTES
        for p in params
        if p not in PATH_VALUES and p not in PATH_VALUES_BY_ROUTE.get(name, {})
    )
    assert not unknown, f"add these path parameters to PATH_VALUES: {unknown}"
    assert len(ROUTES) >= len(MIN_ROLE) > 0


def request(client, method: str, url: str, is_api: bool):
    if is_api:
        return client.generic(method, url, "{}", content_type="application/json")
    return client.generic(method, url, "", content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize("name,params,method", CASES)
def test_route_answers_each_role_as_its_minimum_role_says(client, world, name, params, method):
    min_role = MIN_ROLE.get(name, {}).get(method)
    assert min_role in RANK, f"{name} has no minimum role for {method} in MIN_ROLE"
    values = {**PATH_VALUES, **PATH_VALUES_BY_ROUTE.get(name, {})}
    url = reverse(name, kwargs={p: values[p](world) for p in params})
    is_api = url.startswith("/api/")

    anonymous = request(client, method, url, is_api)
    if is_api:
        assert anonymous.status_code in (401, 403), (url, anonymous.status_code)
        assert anonymous["Content-Type"].startswith("application/json")
    else:
        assert anonymous.status_code == 302, (url, anonymous.status_code)
        assert anonymous["Location"].startswith(reverse("login"))

    for role in ROLES:
        client.force_login(world.users[role])
        answer = request(client, method, url, is_api)
        got = (url, method, role, answer.status_code)
        if role == "outsider":
            assert answer.status_code == 404, got
        elif RANK[role] < RANK[min_role]:
            assert answer.status_code == 403, got
        else:
            assert answer.status_code < 500 and answer.status_code not in (401, 403, 404, 405), got
        if is_api and name not in FILE_ROUTES:
            assert answer.status_code == 204 or answer["Content-Type"].startswith(
                "application/json"
            ), got
        client.logout()


def test_superuser_outside_the_project_acts_as_manager(client, world, make_user):
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    assert client.get(f"/projects/{world.project.pk}/members/").status_code == 200
    assert client.get(f"/api/v1/projects/{world.project.pk}/items/").status_code == 200


def test_annotator_never_receives_another_persons_label(client, world):
    Annotation.objects.create(
        project=world.project,
        item=world.item,
        annotator=world.users[REVIEWER],
        guideline=world.project.current_guideline(),
        label=world.project.labels.get(name="positive"),
        comment="secret-comment",
    )
    client.force_login(world.users[ANNOTATOR])
    for url in (
        f"/api/v1/projects/{world.project.pk}/items/",
        f"/api/v1/projects/{world.project.pk}/items/{world.item.pk}/",
        f"/projects/{world.project.pk}/items/",
    ):
        answer = client.get(url)
        assert answer.status_code == 403
        assert b"secret-comment" not in answer.content


def test_non_member_sees_404_for_a_project_that_exists_and_one_that_does_not(client, world):
    client.force_login(world.users["outsider"])
    existing = client.get(f"/api/v1/projects/{world.project.pk}/")
    missing = client.get("/api/v1/projects/999999999/")
    assert existing.status_code == missing.status_code == 404
    assert existing.json() == missing.json()


def test_project_for_answers_the_access_in_one_statement_and_sets_nothing_on_the_project(
    world, django_assert_num_queries
):
    guideline = world.project.current_guideline()
    with django_assert_num_queries(1):
        access = project_for(world.users[REVIEWER], world.project.pk, min_role=ANNOTATOR)
    assert (access.project.pk, access.role, access.user_id) == (
        world.project.pk,
        REVIEWER,
        world.users[REVIEWER].pk,
    )
    assert (access.guideline_id, access.guideline_version) == (guideline.pk, guideline.version)
    assert access.at_least(ANNOTATOR) and access.at_least(REVIEWER)
    assert not access.at_least(MANAGER)
    fields = {f.attname for f in type(access.project)._meta.concrete_fields} | {"_state"}
    assert set(vars(access.project)) == fields
    with pytest.raises(dataclasses.FrozenInstanceError):
        access.role = MANAGER


def test_project_for_raises_djangos_404_and_403(world, make_user):
    with pytest.raises(Http404):
        project_for(world.users["outsider"], world.project.pk, min_role=ANNOTATOR)
    with pytest.raises(Http404):
        project_for(world.users[MANAGER], "not-a-number", min_role=ANNOTATOR)
    with pytest.raises(PermissionDenied):
        project_for(world.users[ANNOTATOR], world.project.pk, min_role=REVIEWER)
    root = make_user("root", is_superuser=True, is_staff=True)
    assert project_for(root, world.project.pk, min_role=MANAGER).role == MANAGER


def test_api_errors_of_the_role_check_are_json_details(client, world):
    client.force_login(world.users[ANNOTATOR])
    refused = client.get(f"/api/v1/projects/{world.project.pk}/items/")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This needs the reviewer role in the project."}
    client.force_login(world.users["outsider"])
    hidden = client.get(f"/api/v1/projects/{world.project.pk}/items/")
    assert hidden.status_code == 404 and hidden.json() == {"detail": "Project not found."}
