"""Annotators are blind: a scan of every GET route in the URLconf, API and HTML, as annotator A
of a project where B and C labeled the same items with comments, a reviewer decided one item
with a note, and an agreement run has results. No answer A receives may carry B's or C's
names, comments, the review note or any analysis figure.

Path parameters are filled with real ids; a route with a parameter this file does not know
fails the first test, so a new page cannot escape the scan.
"""

import re
from dataclasses import dataclass

import pytest
from django.urls import URLResolver, get_resolver

from analysis.models import AnalysisRun, DatasetVersion
from analysis.tasks import run_agreement
from labeling.models import ImportBatch, Membership, Project
from labeling.services.annotating import annotation_submit
from labeling.services.guidelines import guideline_publish, worked_example_add
from labeling.services.reviewing import review_set
from tests.factories import add_member, make_items, make_project
from tests.labeling.test_permissions import PARAM

pytestmark = pytest.mark.django_db

LABELS = ("zebrafinch", "yakherder", "ibisfeather")
SKIPPED_PREFIXES = ("admin/",)  # Django's admin: staff only, annotators are redirected


@dataclass
class World:
    project: Project
    items: list
    run: AnalysisRun
    version: int
    example_id: int
    import_id: int
    dataset_id: int
    secrets: list[str]
    own_comment: str


def all_get_routes() -> list[tuple[str, str, list[str]]]:
    """(url name, route, parameter names) of every route in the URLconf."""
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
            if route.lstrip("^").startswith(SKIPPED_PREFIXES):
                continue
            name = pattern.name and (f"{namespace}:{pattern.name}" if namespace else pattern.name)
            found.append((name or route, route, [a or b for a, b in PARAM.findall(route)]))

    walk(get_resolver().url_patterns, "", "")
    return found


ROUTES = all_get_routes()

# parameter name -> value from the world; BY_ROUTE where a route means something else by it.
VALUES = {
    "pk": lambda w: w.project.pk,
    "project_id": lambda w: w.project.pk,
    "item_id": lambda w: w.items[0].pk,
    "run_id": lambda w: w.run.pk,
    "version": lambda w: w.version,
    "a": lambda w: 1,
    "b": lambda w: w.version,
    "example_pk": lambda w: w.example_id,
    "import_id": lambda w: w.import_id,
    "issue_id": lambda w: 1,
    "webhook_id": lambda w: 1,
    "version_id": lambda w: w.dataset_id,
    "user_id": lambda w: w.project.memberships.get(user__username="bobannotates").user_id,
}
BY_ROUTE = {"analysis:run_status": {"pk": lambda w: w.run.pk}}
# query strings that try to ask for someone else's rows
QUERIES = ["", "?annotator=bobannotates", "?page_size=1000&format=jsonl&include=annotations"]


def url_for(route: str, params: list[str], world: World, name: str) -> str:
    values = {**VALUES, **BY_ROUTE.get(name, {})}
    path = route.lstrip("^").rstrip("$")

    def fill(match):
        param = match.group(1) or match.group(2)
        return str(values[param](world))

    path = re.sub(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)", fill, path)
    return "/" + path.replace("\\", "")


@pytest.fixture
def world(make_user) -> World:
    manager = make_user("managerperson")
    project = make_project(manager, name="Blind", labels=LABELS, overlap=3)
    items = make_items(project, [f"sentence {i}" for i in range(6)], prefix="b-")
    a = add_member(project, "annaannotates", Membership.Role.ANNOTATOR)
    b = add_member(project, "bobannotates", Membership.Role.ANNOTATOR)
    c = add_member(project, "catannotates", Membership.Role.ANNOTATOR)
    reviewer = add_member(project, "rexreviews", Membership.Role.REVIEWER)
    for i, item in enumerate(items[:4]):
        annotation_submit(item=item, annotator=a, label=LABELS[0], comment=f"anna-own-{i}")
        annotation_submit(item=item, annotator=b, label=LABELS[1], comment=f"bob-secret-{i}")
        annotation_submit(item=item, annotator=c, label=LABELS[2], comment=f"cat-secret-{i}")
    # B and C also labeled items A has not reached yet
    annotation_submit(item=items[4], annotator=b, label=LABELS[1], comment="bob-secret-4")
    annotation_submit(item=items[4], annotator=c, label=LABELS[1], comment="cat-secret-4")
    review_set(item=items[0], reviewer=reviewer, label=LABELS[2], note="review-note-secret")
    example = worked_example_add(
        project=project, item=items[5], label=LABELS[0], why="because", user=manager
    )
    published = guideline_publish(project=project, user=manager, changelog="v2")
    run = AnalysisRun.objects.create(project=project, kind="agreement", params={})
    run_agreement(run.pk)  # the real task, executed synchronously
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    batch = ImportBatch.objects.create(project=project, created_by=manager, status="succeeded")
    dataset = DatasetVersion.objects.create(
        project=project, format="csv", params={"format": "csv", "labels": "majority"}
    )
    result = run.result
    figures = [
        f"{result[key]:.3f}" for key in ("alpha", "percent_agreement") if result.get(key)
    ] + [repr(result["alpha"])]
    secrets = ["bobannotates", "catannotates", "rexreviews", "review-note-secret"]
    secrets += [f"bob-secret-{i}" for i in range(5)] + [f"cat-secret-{i}" for i in range(5)]
    return World(
        project=project,
        items=items,
        run=run,
        version=published.version,
        example_id=example.pk,
        import_id=batch.pk,
        dataset_id=dataset.pk,
        secrets=secrets + figures,
        own_comment="anna-own-0",
    )


def body_of(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def test_every_route_parameter_is_known():
    unknown = sorted(
        f"{name}: {p}"
        for name, _route, params in ROUTES
        for p in params
        if p not in VALUES and p not in BY_ROUTE.get(name, {})
    )
    assert not unknown, f"add these path parameters to VALUES in {__file__}: {unknown}"
    assert len(ROUTES) > 40


def scan(client, world, username: str) -> tuple[list, list]:
    """GET every route (with each query) as `username`: (url, status) pairs and (url, secret)."""
    client.force_login(world.project.memberships.get(user__username=username).user)
    answered, found = [], []
    for name, route, params in ROUTES:
        base = url_for(route, params, world, name)
        for query in QUERIES:
            response = client.get(base + query)
            # a page may echo the request's own URL (the API docs do): that is not a leak
            body = body_of(response).replace(query.lstrip("?"), "")
            answered.append((base + query, response.status_code))
            found += [(base + query, s) for s in world.secrets if s in body]
    return answered, found


def test_annotator_receives_no_one_elses_labels_comments_reviews_or_figures(client, world):
    answered, leaks = scan(client, world, "annaannotates")
    assert not leaks, leaks
    ok = {url for url, status in answered if status == 200}
    # the scan reached the pages an annotator works with
    project = world.project.pk
    for must in (f"/projects/{project}/annotate/", f"/api/v1/projects/{project}/annotations/"):
        assert must in ok, answered
    assert any(status == 403 for _, status in answered)


def test_the_same_scan_finds_every_secret_as_the_manager(client, world):
    """The control: the secrets are really in the pages, so their absence above means blind."""
    _answered, found = scan(client, world, "managerperson")
    assert {secret for _url, secret in found} == set(world.secrets)


def test_annotations_api_lists_only_the_annotators_own(client, world):
    client.force_login(world.project.memberships.get(user__username="annaannotates").user)
    project = world.project.pk
    for query in ("", "?annotator=bobannotates", f"?item={world.items[0].pk}"):
        rows = client.get(f"/api/v1/projects/{project}/annotations/{query}").json()["results"]
        assert rows and {row["annotator"] for row in rows} == {"annaannotates"}, rows
    rows = client.get(f"/api/v1/projects/{project}/annotations/").json()["results"]
    assert sorted(row["comment"] for row in rows) == [f"anna-own-{i}" for i in range(4)]
