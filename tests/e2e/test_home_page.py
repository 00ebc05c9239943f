"""The home page opens in Chromium and shows the navigation."""

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_login_then_home_page_shows_navigation_and_empty_state(
    live_server, page, make_user, artifacts
):
    make_user("ada")
    page.goto(f"{live_server.url}/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Projects")).to_be_visible()
    expect(nav.get_by_role("link", name="API")).to_be_visible()
    expect(page.get_by_role("heading", name="No projects yet")).to_be_visible()
    page.screenshot(path=str(artifacts / "home-empty.png"), full_page=True)
