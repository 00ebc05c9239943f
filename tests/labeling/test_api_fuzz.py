"""Schemathesis against `/api/schema/`: every operation, a bounded number of generated requests
as a project manager, no 5xx and every answer matching the documented schema.

Path parameters are pinned to real rows (a project with items, annotations, a published
guideline, an import, a dataset version, a run, a label issue, a webhook with a delivery) so
the generated bodies and query strings reach the views instead of stopping at a 404.
Deterministic: a fixed seed and derandomized Hypothesis (the seed comes from each test's
name), no example database.
"""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from analysis.exports.params import export_params_parse
from analysis.exports.versions import dataset_export
from analysis.models import AnalysisRun, LabelIssue
from config.celery import app as celery_app
from labeling.models import ImportBatch, Membership, Webhook, WebhookDelivery
from labeling.services.guidelines import guideline_draft_update, guideline_publish
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def load_operations():
    from config.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    return [result.ok() for result in schema.get_all_operations()]


OPERATIONS = load_operations()
KNOWN_PATH_PARAMETERS = {
    "project_id",
    "item_id",
    "import_id",
    "issue_id",
    "run_id",
    "version",
    "version_id",
    "a",
    "b",
    "user_id",
    "webhook_id",
}


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """As Django's test client does: the WSGI app must not close the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(make_user):
    manager = make_user("fuzz-manager", is_staff=True)
    project = make_project(manager, name="Fuzzed")
    annotator = add_member(project, "fuzz-annotator", Membership.Role.ANNOTATOR)
    items = make_items(project, 6, prefix="f-")
    labels = list(project.labels.all())
    make_annotations(
        project,
        (
            (item, user, labels[(i + j) % 2].name)
            for i, item in enumerate(items)
            for j, user in enumerate((manager, annotator))
        ),
    )
    guideline_draft_update(project=project, body="# Rules", changelog="first", user=manager)
    published = guideline_publish(project=project, user=manager)
    batch = ImportBatch.objects.create(
        project=project,
        created_by=manager,
        filename="items.csv",
        format="csv",
        kind="items",
        status="succeeded",
        rows=6,
    )
    run = AnalysisRun.objects.create(
        project=project,
        kind=AnalysisRun.Kind.LABEL_ISSUES,
        status=AnalysisRun.Status.SUCCEEDED,
        progress=1.0,
        result={"n_items": 6, "n_issues": 1, "method": "test"},
    )
    issue = LabelIssue.objects.create(
        run=run,
        item=items[0],
        given_label=labels[0],
        suggested_label=labels[1],
        quality=0.1,
        is_issue=True,
        rank=1,
    )
    version = dataset_export(
        project=project, params=export_params_parse({}, project=project), user=manager
    ).version
    webhook = Webhook.objects.create(
        project=project, url="http://127.0.0.1:9/hook", secret="fuzz", events=["run.finished"]
    )
    WebhookDelivery.objects.create(
        webhook=webhook,
        event="run.finished",
        event_id="0b6a3b52-7f7e-4a38-9d55-6f2f3e6c0f55",
        payload={"event": "run.finished"},
        status=WebhookDelivery.Status.FAILED,
        error="ConnectError: connection refused",
    )
    token = Token.objects.create(user=manager)
    yield {
        "headers": {"Authorization": f"Token {token.key}"},
        "path": {
            "project_id": project.pk,
            "item_id": items[0].pk,
            "import_id": batch.pk,
            "issue_id": issue.pk,
            "run_id": run.pk,
            "version": published.version,
            "version_id": version.pk,
            "a": version.pk,
            "b": version.pk,
            "user_id": annotator.pk,
            "webhook_id": webhook.pk,
        },
    }
    # The runs this test started roll back with it: drop their messages so no later worker
    # runs a job for a run id that a later test reuses.
    celery_app.control.purge()


def test_every_operation_is_covered_with_known_path_parameters():
    assert len(OPERATIONS) >= 25
    unknown = {
        f"{op.label}: {p.name}"
        for op in OPERATIONS
        for p in op.path_parameters
        if p.name not in KNOWN_PATH_PARAMETERS
    }
    assert not unknown, f"pin these path parameters to real rows in {__file__}: {unknown}"


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_operation_answers_within_its_schema_and_never_5xx(world, operation):
    path = {p.name: world["path"][p.name] for p in operation.path_parameters}
    strategy = operation.as_strategy(path_parameters=path or None)

    @given(case=strategy)
    @settings(
        max_examples=15,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        case.call_and_validate(headers=world["headers"], checks=CHECKS)

    check()
