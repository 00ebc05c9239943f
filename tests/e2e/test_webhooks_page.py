"""A manager adds a webhook on the Webhooks page, sends a test event to a real receiver on
127.0.0.1 through the real worker, and sees its 200 in the delivery log; pauses and deletes it."""

import hashlib
import hmac
import json
import re

import pytest
from playwright.sync_api import expect

from tests.conftest import log_in
from tests.factories import make_project
from tests.labeling.test_webhooks import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server():
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_a_manager_adds_a_webhook_sends_a_test_event_and_sees_the_200(
    live_server, page, make_user, celery_worker, server, settings, artifacts
):
    settings.CONCORD_WEBHOOKS_ALLOW_PRIVATE = True  # the receiver is on this machine
    project = make_project(make_user("mia"), name="Support tickets")
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server, "mia")
    page.goto(f"{live_server.url}/projects/{project.pk}/")
    page.locator(".project-nav").get_by_role("link", name="Webhooks", exact=True).click()
    expect(page.get_by_role("heading", name="No webhooks yet")).to_be_visible()
    page.screenshot(path=str(artifacts / "webhooks-empty.png"))

    page.fill("input[name=url]", server.url)
    page.locator("input[name=events][value='guideline.published']").uncheck()
    page.get_by_role("button", name="Add webhook").click()
    message = page.locator(".message.success", has_text="Webhook added")
    expect(message).to_be_visible()
    secret = re.search(r"Its secret: (\w+)", message.inner_text()).group(1)
    hook = page.locator("article.webhook")
    expect(hook.locator(".webhook-url")).to_have_text(server.url)
    expect(hook).not_to_contain_text("guideline.published")
    expect(hook).to_contain_text("No deliveries yet")

    hook.get_by_role("button", name="Send test event").click()
    expect(page.get_by_text("Test event queued")).to_be_visible()
    row = page.locator("table.deliveries tbody tr").first
    for _ in range(60):  # the worker delivers it; the page shows the log as it is
        if row.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(row.locator(".status-code")).to_have_text("200")
    expect(row).to_contain_text("ping")
    expect(row).to_contain_text("delivered")
    page.screenshot(path=str(artifacts / "webhooks-delivered.png"), full_page=True)

    (request,) = server.requests
    signed = request["headers"]["X-Concord-Timestamp"].encode() + b"." + request["body"]
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert request["headers"]["X-Concord-Signature"] == expected
    assert json.loads(request["body"])["project"] == project.pk

    hook.get_by_role("button", name="Pause").click()
    expect(hook.locator(".badge.warn")).to_have_text("paused")
    hook.get_by_role("button", name=re.compile("^Delete")).click()
    expect(page.get_by_role("heading", name="No webhooks yet")).to_be_visible()
