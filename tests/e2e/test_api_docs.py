"""The Swagger UI works offline and under the Content-Security-Policy."""

import pytest
from playwright.sync_api import expect

from tests.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_lists_the_api_without_console_errors(live_server, page, make_user, artifacts):
    make_user("doc")
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    external = []
    page.on(
        "request",
        lambda r: external.append(r.url) if not r.url.startswith(live_server.url) else None,
    )
    log_in(page, live_server, "doc")
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.get_by_text("/api/v1/projects/").first).to_be_visible(timeout=15000)
    page.screenshot(path=str(artifacts / "api-docs.png"))
    assert [u for u in external if not u.startswith("data:")] == []
    assert errors == []
