"""The new-project form: help in plain words (no literal markdown), overlap 2 by default with
the reason said (agreement needs two labels per item)."""

import pytest

from labeling.models import Project

pytestmark = pytest.mark.django_db


def test_help_shows_a_shortcut_example_as_code_and_no_backticks(client, make_user):
    client.force_login(make_user("mia"))
    html = client.get("/projects/new/").content.decode()
    assert "<code>spam | s</code>" in html
    assert "`" not in html
    assert "need at least 2" in html
    assert 'name="overlap" value="2"' in html


def test_a_project_created_with_the_defaults_has_overlap_two(client, make_user):
    client.force_login(make_user("mia"))
    form = client.get("/projects/new/").context["form"]
    answer = client.post(
        "/projects/new/",
        {
            "name": "Reviews",
            "data_type": "text",
            "task_type": "single_label",
            "overlap": form["overlap"].value(),
            "labels": "negative | n\npositive | p",
        },
    )
    assert answer.status_code == 302
    assert Project.objects.get(name="Reviews").overlap == 2
