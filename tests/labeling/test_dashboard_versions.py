"""The labeling dashboard counts every guideline version by default, so publishing a new
version no longer empties it; a version selector narrows it to one."""

import pytest

from labeling import selectors
from labeling.services.annotating import annotation_submit
from labeling.services.guidelines import guideline_draft_update, guideline_publish
from tests.factories import add_member, make_items, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_versions(manager):
    """ann labels 3 items under v1, then v2 is published and bob labels 1 under it."""
    project = make_project(manager, overlap=2)
    items = make_items(project, ["t"] * 4)
    ann, bob = add_member(project, "ann"), add_member(project, "bob")
    for item in items[:3]:
        annotation_submit(item=item, annotator=ann, label="positive", lead_time_ms=2000)
    guideline_draft_update(project=project, body="Sarcasm is negative.", user=manager)
    guideline_publish(project=project, user=manager, changelog="sarcasm")
    annotation_submit(item=items[0], annotator=bob, label="negative", lead_time_ms=5000)
    return project, manager


def annotator_rows(stats) -> list[tuple[str, int]]:
    return [(row["username"], row["n"]) for row in stats["annotators"]]


def test_selector_counts_every_version_by_default_and_one_when_asked(two_versions):
    project, _ = two_versions
    everything = selectors.labeling_dashboard(project=project)
    assert annotator_rows(everything) == [("ann", 3), ("bob", 1)]
    assert everything["n_annotations"] == 4
    assert sum(row["n"] for row in everything["throughput"]) == 4
    v1, v2 = project.guidelines.filter(published_at__isnull=False).order_by("version")
    assert annotator_rows(selectors.labeling_dashboard(project=project, guideline=v1)) == [
        ("ann", 3)
    ]
    assert annotator_rows(selectors.labeling_dashboard(project=project, guideline=v2)) == [
        ("bob", 1)
    ]


def test_page_shows_all_versions_then_the_chosen_one(client, two_versions):
    project, mia = two_versions
    client.force_login(mia)
    url = f"/projects/{project.pk}/dashboard/"
    html = client.get(url).content.decode()
    assert '<td>ann</td><td class="num">3</td>' in html
    assert '<td>bob</td><td class="num">1</td>' in html
    assert "(all versions)" in html
    assert '<option value="" selected>All versions</option>' in html

    html = client.get(url, {"version": 1}).content.decode()
    assert "<td>ann</td>" in html and "<td>bob</td>" not in html
    assert '<option value="1" selected>v1</option>' in html

    html = client.get(url, {"version": 2}).content.decode()
    assert "<td>bob</td>" in html and "<td>ann</td>" not in html


def test_an_unknown_version_says_so_and_shows_every_version(client, two_versions):
    project, mia = two_versions
    client.force_login(mia)
    for bad in ("9", "latest"):
        answer = client.get(f"/projects/{project.pk}/dashboard/", {"version": bad})
        html = answer.content.decode()
        assert answer.status_code == 200
        assert "Select a valid choice" in html and "Showing every version." in html
        assert "<td>ann</td>" in html and "<td>bob</td>" in html
