"""A staff manager runs the team from the Members page in Chromium: creates an account, which
then logs in; changes a role; cannot remove the last manager; removes a member."""

import pytest
from playwright.sync_api import expect

from labeling.models import Membership
from tests.conftest import log_in
from tests.factories import PASSWORD, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "first-day-password"


def roles(project) -> dict[str, str]:
    return dict(project.memberships.values_list("user__username", "role"))


def test_staff_manager_creates_an_account_changes_roles_and_removes_members(
    live_server, page, make_user, artifacts
):
    page.set_viewport_size({"width": 1366, "height": 900})
    sam = make_user("sam", password=PASSWORD, is_staff=True)
    project = make_project(sam, name="Reviews")
    log_in(page, live_server, "sam")
    page.goto(f"{live_server.url}/projects/{project.pk}/")
    page.get_by_role("link", name="Members", exact=True).click()
    expect(page.locator("select[name=role]")).to_have_value("annotator")  # the add form

    page.fill("input[name=account-username]", "newbie")
    page.fill("input[name=account-password]", NEW_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Account newbie created and added as annotator.")).to_be_visible()
    row = page.locator("tr[data-member=newbie]")
    expect(row.locator("select")).to_have_value("annotator")
    page.screenshot(path=str(artifacts / "members-account-created.png"), full_page=True)

    row.locator("select").select_option("reviewer")
    row.get_by_role("button", name="Change").click()
    expect(page.get_by_text("newbie is now reviewer.")).to_be_visible()
    assert roles(project) == {"sam": "manager", "newbie": "reviewer"}

    # The only manager stays: removing or demoting them is refused with a reason.
    page.get_by_role("button", name="Remove sam").click()
    expect(page.locator(".message.error")).to_have_text(
        "A project needs at least one manager: make someone else manager first."
    )
    own = page.locator("tr[data-member=sam]")
    own.locator("select").select_option("annotator")
    own.get_by_role("button", name="Change").click()
    expect(page.locator(".message.error")).to_contain_text("at least one manager")
    assert roles(project) == {"sam": "manager", "newbie": "reviewer"}
    page.screenshot(path=str(artifacts / "members-last-manager.png"), full_page=True)

    # The new account works.
    log_in(page, live_server, "newbie", NEW_PASSWORD)
    expect(page.get_by_role("link", name="Reviews")).to_be_visible()

    log_in(page, live_server, "sam")
    page.goto(f"{live_server.url}/projects/{project.pk}/members/")
    page.get_by_role("button", name="Remove newbie").click()
    expect(
        page.get_by_text("newbie was removed from the project; their labels stay.")
    ).to_be_visible()
    expect(page.locator("tr[data-member=newbie]")).to_have_count(0)
    assert roles(project) == {"sam": Membership.Role.MANAGER}
    facts = page.evaluate("document.documentElement.scrollWidth")
    assert facts <= 1366
