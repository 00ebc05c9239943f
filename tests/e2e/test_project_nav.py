"""The project navigation fits one line at 1366 px with every link a manager has, even under a
long project name (which gives way with an ellipsis)."""

import pytest

from tests.conftest import log_in
from tests.factories import make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LONG_NAME = "Customer support tickets, second quarter, English and German (pilot)"


def test_manager_navigation_is_one_line_at_1366_px(live_server, page, make_user, artifacts):
    project = make_project(make_user("mia"), name=LONG_NAME)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server, "mia")
    for path in ("", "dashboard/", "members/", "guidelines/", "items/", "webhooks/"):
        page.goto(f"{live_server.url}/projects/{project.pk}/{path}")
        nav = page.evaluate(
            """() => {
                const links = [...document.querySelectorAll(".project-nav a")];
                const name = document.querySelector(".project-nav-name");
                return {
                    names: links.map(a => a.textContent.trim()),
                    tops: links.map(a => Math.round(a.getBoundingClientRect().top)),
                    truncated: name.scrollWidth > name.clientWidth,
                    title: name.title,
                    scrollWidth: document.documentElement.scrollWidth,
                };
            }"""
        )
        assert nav["names"][-4:] == ["Imports", "Members", "Webhooks", "Settings"], nav["names"]
        assert len(nav["names"]) == 16  # the name, then every link a manager has
        assert len(set(nav["tops"])) == 1, f"{path or 'overview'} wraps: {nav}"
        assert nav["truncated"] and nav["title"].startswith(LONG_NAME)
        assert nav["scrollWidth"] <= 1366
    page.screenshot(path=str(artifacts / "project-nav-long-name.png"))
