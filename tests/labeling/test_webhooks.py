"""Webhooks: each event reaches a real receiver on 127.0.0.1, signed, from the real worker;
failures are retried with backoff and logged; rolled-back writes send nothing; private
addresses are refused; only managers manage webhooks.

The session's worker runs with CONCORD_WEBHOOKS_ALLOW_PRIVATE=1 and retry delays of 0.5 s
(tests/conftest.py, WORKER_ENV).
"""

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from django.db import transaction

from analysis.kinds import run_start
from labeling.models import Item, Webhook, WebhookDelivery
from labeling.services import webhooks
from labeling.services.guidelines import guideline_draft_update, guideline_publish
from tests.conftest import wait_for
from tests.factories import add_member, make_items, make_project

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

GRACE_S = 2.5  # several retry delays of the worker (0.5 s): a late extra POST would show
EVENTS = list(webhooks.EVENTS)


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers the given status
    codes in turn, then 200."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append(
                        {"headers": dict(self.headers), "body": body, "path": self.path}
                    )
                    status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        with self.lock:
            return [json.loads(r["body"])["event"] for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(answers=()):
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def private_allowed(settings):
    settings.CONCORD_WEBHOOKS_ALLOW_PRIVATE = True


def verified(request: dict, secret: str) -> dict:
    """What a receiver does: check the signature over `<timestamp>.<body>`, then parse."""
    headers = request["headers"]
    signed = headers["X-Concord-Timestamp"].encode() + b"." + request["body"]
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Concord-Signature"], expected), headers
    assert abs(time.time() - int(headers["X-Concord-Timestamp"])) < 60
    payload = json.loads(request["body"])
    assert headers["X-Concord-Event"] == payload["event"]
    assert headers["X-Concord-Delivery"] == payload["id"]
    return payload


def hook(client, project, url, events, **extra):
    response = client.post(
        f"/api/v1/projects/{project.pk}/webhooks/", {"url": url, "events": events, **extra},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    return response.json()


def received(server, n: int, worker, timeout: float = 60) -> list[dict]:
    wait_for(lambda: len(server.requests) >= n, timeout=timeout, what=f"{n} webhook POSTs",
             on_timeout=lambda: f"got {server.events()}\n{worker.log()}")  # fmt: skip
    return server.requests


def test_each_event_reaches_the_receiver_signed_with_its_documented_payload(
    celery_worker, manager, api_client_for, receiver, private_allowed
):
    project = make_project(manager, overlap=1)
    annotator = add_member(project, "ann")
    item_ids = make_items(project, ["great phone", "awful battery"])
    server = receiver()
    created = hook(api_client_for(manager), project, server.url, EVENTS, secret="s3cret-value")
    assert created["secret"] == "s3cret-value" and created["secret_hint"] == "…alue"

    guideline_draft_update(project=project, body="Label the tone.", changelog="Tone.", user=manager)
    guideline_publish(project=project, user=manager)
    client = api_client_for(annotator)
    item = client.get(f"/api/v1/projects/{project.pk}/next/").json()["item"]
    answer = client.post(
        f"/api/v1/projects/{project.pk}/annotations/",
        {"item": item["id"], "label": "positive", "unsure": True},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    run = run_start(project=project, kind="agreement", params={}, user=manager)
    export = api_client_for(manager).get(f"/api/v1/projects/{project.pk}/export/?format=csv")
    b"".join(export.streaming_content)

    requests = received(server, 5, celery_worker)
    time.sleep(0.5)
    assert len(server.requests) == 5, server.events()
    by_event = {}
    for request in requests:
        payload = verified(request, "s3cret-value")
        assert payload["project"] == project.pk and payload["created_at"]
        by_event[payload["event"]] = payload["data"]
    assert set(by_event) == set(EVENTS)
    assert by_event["guideline.published"] == {
        "version": 2,
        "changelog": "Tone.",
        "published_at": by_event["guideline.published"]["published_at"],
        "published_by": "manager",
    }
    annotation = by_event["annotation.created"]
    assert annotation == {
        "annotation": annotation["annotation"],
        "item": item["id"],
        "external_id": item["external_id"],
        "annotator": "ann",
        "guideline_version": 2,
        "label": "positive",
        "labels": [],
        "spans": [],
        "unsure": True,
    }
    assert by_event["item.completed"] == {
        "item": item["id"],
        "external_id": item["external_id"],
        "overlap": 1,
    }
    finished = by_event["run.finished"]
    assert finished["run"] == run.pk and finished["kind"] == "agreement"
    assert finished["status"] in ("succeeded", "failed") and finished["url"] == (
        f"/api/v1/runs/{run.pk}/"
    )
    run.refresh_from_db()
    assert finished["status"] == run.status and finished["error"] == run.error
    assert all(not isinstance(v, list | dict) for v in finished["summary"].values())
    version = project.datasets.get()
    assert by_event["dataset_version.created"] == {
        "id": version.pk,
        "format": "csv",
        "rows": len(item_ids),
        "sha256": version.sha256,
        "guideline_version": 2,
        "params": version.params,
        "download": f"/api/v1/projects/{project.pk}/datasets/{version.pk}/",
    }
    log = WebhookDelivery.objects.filter(webhook_id=created["id"])
    assert sorted(log.values_list("event", "status", "status_code", "attempt")) == sorted(
        (event, "delivered", 200, 1) for event in EVENTS
    )


def test_a_receiver_failing_three_times_gets_the_event_exactly_once_more(
    celery_worker, manager, api_client_for, receiver, private_allowed
):
    project = make_project(manager)
    server = receiver(answers=[500, 500, 500])
    created = hook(api_client_for(manager), project, server.url, ["guideline.published"])
    guideline_draft_update(project=project, body="v2", changelog="Second.", user=manager)
    guideline_publish(project=project, user=manager)

    received(server, 4, celery_worker)
    time.sleep(GRACE_S)
    assert len(server.requests) == 4, server.events()
    payloads = [verified(r, created["secret"]) for r in server.requests]
    assert len({p["id"] for p in payloads}) == 1  # the same event each time: receivers dedupe
    assert len({r["body"] for r in server.requests}) == 1
    log = WebhookDelivery.objects.filter(webhook_id=created["id"]).order_by("attempt")
    assert list(log.values_list("attempt", "status_code", "status")) == [
        (1, 500, "retrying"),
        (2, 500, "retrying"),
        (3, 500, "retrying"),
        (4, 200, "delivered"),
    ]
    assert log[0].error.startswith("HTTP 500")


def test_a_write_that_rolls_back_sends_nothing(
    celery_worker, manager, api_client_for, receiver, private_allowed
):
    project = make_project(manager)
    server = receiver()
    created = hook(api_client_for(manager), project, server.url, ["guideline.published"])
    guideline_draft_update(project=project, body="v2", changelog="Second.", user=manager)
    with pytest.raises(RuntimeError), transaction.atomic():
        guideline_publish(project=project, user=manager)
        raise RuntimeError("rolled back")
    assert project.current_guideline().version == 1
    # a committed event afterwards, through the same queue: it arrives alone
    ping = api_client_for(manager).post(
        f"/api/v1/projects/{project.pk}/webhooks/{created['id']}/test/"
    )
    assert ping.status_code == 202
    received(server, 1, celery_worker)
    time.sleep(GRACE_S)
    assert server.events() == ["ping"]
    assert json.loads(server.requests[0]["body"])["id"] == ping.json()["event_id"]


def test_a_dead_receiver_ends_failed_after_bounded_retries_and_labeling_goes_on(
    celery_worker, manager, api_client_for, private_allowed
):
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    project = make_project(manager, overlap=1)
    annotator = add_member(project, "ann")
    make_items(project, ["one", "two", "three"])
    created = hook(
        api_client_for(manager), project, f"http://127.0.0.1:{port}/", ["annotation.created"]
    )
    client = api_client_for(annotator)
    took = []
    for _ in range(3):
        item = client.get(f"/api/v1/projects/{project.pk}/next/").json()["item"]
        started = time.perf_counter()
        answer = client.post(
            f"/api/v1/projects/{project.pk}/annotations/",
            {"item": item["id"], "label": "negative"},
            format="json",
        )
        took.append(time.perf_counter() - started)
        assert answer.status_code == 201
    assert max(took) < 2  # nobody waited for the receiver
    assert Item.objects.filter(project=project, done_count=1).count() == 3

    log = WebhookDelivery.objects.filter(webhook_id=created["id"])
    wait_for(lambda: log.filter(status="failed").count() == 3, timeout=60,
             what="three failed deliveries", on_timeout=celery_worker.log)  # fmt: skip
    time.sleep(GRACE_S)
    rows = list(log.order_by("event_id", "attempt").values_list("attempt", "status", "status_code"))
    per_event = [(1, "retrying", None), (2, "retrying", None), (3, "retrying", None),
                 (4, "failed", None)]  # fmt: skip
    assert rows == per_event * 3
    assert "ConnectError" in log.first().error


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8000/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_private_and_loopback_addresses_are_refused_unless_allowed(
    url, manager, api_client_for, project, settings
):
    client = api_client_for(manager)
    settings.CONCORD_WEBHOOKS_ALLOW_PRIVATE = False
    path = f"/api/v1/projects/{project.pk}/webhooks/"
    refused = client.post(path, {"url": url, "events": EVENTS}, format="json")
    assert refused.status_code == 400
    assert "private or loopback" in refused.json()["url"][0]
    assert "CONCORD_WEBHOOKS_ALLOW_PRIVATE=1" in refused.json()["url"][0]
    assert not Webhook.objects.exists()
    settings.CONCORD_WEBHOOKS_ALLOW_PRIVATE = True
    assert client.post(path, {"url": url, "events": EVENTS}, format="json").status_code == 201


@pytest.mark.parametrize(
    "body, field, reason",
    [
        ({"url": "ftp://example.org/x", "events": EVENTS}, "url", "http:// or https://"),
        ({"url": "http:///nohost", "events": EVENTS}, "url", "names no host"),
        ({"url": "http://127.0.0.1/", "events": ["item.done"]}, "events", "'item.done'"),
        ({"url": "http://127.0.0.1/", "events": []}, "events", "at least one event"),
    ],
)  # fmt: skip
def test_a_bad_webhook_is_refused_with_the_reason(
    body, field, reason, manager, api_client_for, project, private_allowed
):
    answer = api_client_for(manager).post(
        f"/api/v1/projects/{project.pk}/webhooks/", body, format="json"
    )
    assert answer.status_code == 400
    assert reason in " ".join(answer.json()[field]), answer.json()


def test_a_delivery_rechecks_the_address_and_gives_up_on_a_private_one(
    manager, project, private_allowed, settings
):
    webhook = webhooks.webhook_create(
        project=project, url="http://127.0.0.1:9/", events=["run.finished"], user=manager
    )
    settings.CONCORD_WEBHOOKS_ALLOW_PRIVATE = False  # as if DNS now answered a private address
    again = webhooks.deliveries_attempt(
        webhook_id=webhook.pk, project_id=project.pk, attempt=1,
        events=[["run.finished", "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d", '{"event": "x"}']],
    )  # fmt: skip
    assert again == ([], None)
    row = webhook.deliveries.get()
    assert (row.status, row.status_code, row.attempt) == ("failed", None, 1)
    assert "private or loopback" in row.error


def test_a_receiver_that_does_not_answer_costs_one_timeout_per_batch_not_one_per_event(
    manager, project, private_allowed, settings, monkeypatch
):
    settings.CONCORD_WEBHOOK_TIMEOUT_SECONDS = 0.3
    monkeypatch.setattr(webhooks, "_clients", {})  # a client made with that timeout
    silent = socket.create_server(("127.0.0.1", 0))  # takes connections, never answers
    accepted = []

    def hold():
        while True:
            try:
                accepted.append(silent.accept()[0])
            except OSError:  # closed
                return

    threading.Thread(target=hold, daemon=True).start()
    webhook = webhooks.webhook_create(
        project=project, url=f"http://127.0.0.1:{silent.getsockname()[1]}/",
        events=["run.finished"], user=manager,
    )  # fmt: skip
    events = [
        ["run.finished", *webhooks._body(project.pk, "run.finished", {"run": n})] for n in range(3)
    ]
    try:
        again, delay = webhooks.deliveries_attempt(
            webhook_id=webhook.pk, project_id=project.pk, events=events, attempt=1
        )
    finally:
        silent.close()
        for connection in accepted:
            connection.close()
    assert again == events and delay == webhooks.retry_delay(1)  # all three, later, together
    assert len(accepted) == 1  # one connection: the first event's
    log = list(webhook.deliveries.order_by("id").values_list("event_id", "status", "error"))
    assert [(str(row[0]), row[1]) for row in log] == [(e[1], "retrying") for e in events]
    timeout = "No answer within 0.3 s."
    assert [row[2] for row in log] == [timeout] + 2 * [
        f"Not sent: an earlier event of this attempt got no answer ({timeout})"
    ]


def test_only_managers_manage_webhooks_and_the_secret_stays_hidden(
    manager, reviewer, annotator, make_user, api_client_for, project, private_allowed
):
    base = f"/api/v1/projects/{project.pk}/webhooks/"
    created = hook(api_client_for(manager), project, "http://127.0.0.1:9/", ["item.completed"])
    assert len(created["secret"]) == 48 and created["secret_hint"] == "…" + created["secret"][-4:]
    paths = [base, f"{base}{created['id']}/", f"{base}{created['id']}/deliveries/"]
    for user, status in ((annotator, 403), (reviewer, 403), (make_user("outsider"), 404)):
        client = api_client_for(user)
        for path in paths:
            assert client.get(path).status_code == status, (user, path)
        assert client.post(base, {"url": "http://127.0.0.1/", "events": EVENTS},
                           format="json").status_code == status  # fmt: skip
        assert client.post(f"{base}{created['id']}/test/").status_code == status
        assert client.patch(paths[1], {"active": False}, format="json").status_code == status
        assert client.delete(paths[1]).status_code == status
    client = api_client_for(manager)
    listed = client.get(base).json()["results"]
    assert listed == [{k: v for k, v in created.items() if k != "secret"}]
    changed = client.patch(paths[1], {"active": False, "events": ["run.finished"]}, format="json")
    assert changed.json()["active"] is False and "secret" not in changed.json()
    rotated = client.patch(paths[1], {"secret": "new-one"}, format="json").json()
    assert rotated["secret_hint"] == "…-one" and "secret" not in rotated
    assert client.get(paths[2]).json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }
    assert client.delete(paths[1]).status_code == 204
    assert client.get(paths[1]).status_code == 404


def test_no_subscriber_costs_no_query_and_a_new_webhook_counts_at_once(
    manager, project, django_assert_num_queries, private_allowed
):
    webhooks.emit(project_id=project.pk, event="annotation.created", data={})  # fills the cache
    with django_assert_num_queries(0):  # and `data` is never made
        webhooks.emit(project_id=project.pk, event="annotation.created", data=lambda: 1 / 0)
    webhook = webhooks.webhook_create(
        project=project, url="http://127.0.0.1:9/", events=["annotation.created"], user=manager
    )
    assert webhooks._subscriptions(project.pk) == {"annotation.created": [webhook.pk]}
    webhooks.webhook_update(webhook=webhook, active=False)
    assert webhooks._subscriptions(project.pk) == {}


def test_a_change_made_by_another_process_applies_within_the_held_second(
    manager, project, monkeypatch, private_allowed
):
    assert webhooks._subscriptions(project.pk) == {}  # read, and held by this process
    # Another web process subscribes: its drop of the shared cache does not reach this one.
    webhook = Webhook.objects.create(
        project=project, url="http://127.0.0.1:9/", events=["annotation.created"], secret="s"
    )
    cache.delete(webhooks._subscriptions_key(project.pk))
    assert webhooks._subscriptions(project.pk) == {}  # still what it read
    monkeypatch.setattr(webhooks, "HELD_SECONDS", 0.0)  # the second has passed
    assert webhooks._subscriptions(project.pk) == {"annotation.created": [webhook.pk]}


def test_the_delivery_log_keeps_the_newest_attempts(
    manager, project, receiver, private_allowed, settings
):
    settings.CONCORD_WEBHOOK_LOG_KEEP = 3
    server = receiver()
    webhook = webhooks.webhook_create(
        project=project, url=server.url, events=["run.finished"], user=manager
    )
    for n in range(5):
        event_id, body = webhooks._body(project.pk, "run.finished", {"run": n})
        assert webhooks.deliveries_attempt(
            webhook_id=webhook.pk, project_id=project.pk, attempt=1,
            events=[["run.finished", event_id, body]],
        ) == ([], None)  # fmt: skip
    assert len(server.requests) == 5
    kept = [row.payload["data"]["run"] for row in webhook.deliveries.order_by("-created_at", "-id")]
    assert kept == [4, 3, 2]
