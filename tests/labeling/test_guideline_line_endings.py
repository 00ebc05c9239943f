"""A guideline edited in a browser (whose textarea posts CRLF) diffs line by line against the
LF versions, and the version page colours the diff, escaped."""

import pytest
from django.template import Context, Template

from labeling.models import Guideline, Item, WorkedExample
from labeling.services.guidelines import (
    guideline_diff,
    guideline_draft_update,
    guideline_publish,
    worked_example_add,
)
from tests.factories import make_project

pytestmark = pytest.mark.django_db

BODY = "# Sentiment\n\nSarcasm is negative.\nPraise is positive.\nMixed is neutral.\n"


def published_v2(user):
    project = make_project(user)
    guideline_draft_update(project=project, body=BODY, user=user)
    return project, guideline_publish(project=project, user=user, changelog="rules")


def test_a_draft_posted_with_crlf_from_the_page_is_stored_with_lf(manager, client):
    project, v2 = published_v2(manager)
    client.force_login(manager)
    edited = BODY.replace("Praise is positive.", "Praise is positive, unless sarcastic.")
    answer = client.post(
        f"/projects/{project.pk}/guidelines/",
        {"body": edited.replace("\n", "\r\n"), "changelog": "one rule\r\nclarified"},
    )
    assert answer.status_code == 302
    draft = Guideline.objects.get(project=project, published_at__isnull=True)
    assert draft.body == edited and draft.changelog == "one rule\nclarified"

    v3 = guideline_publish(project=project, user=manager, changelog="Sarcasm\r\nclarified")
    assert v3.changelog == "Sarcasm\nclarified"
    changed = [
        line
        for line in guideline_diff(v2, v3).splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ["-Praise is positive.", "+Praise is positive, unless sarcastic."]


def test_the_api_and_lone_carriage_returns_are_normalized_too(manager, api_client_for):
    project, _ = published_v2(manager)
    api = api_client_for(manager)
    api.post(
        f"/api/v1/projects/{project.pk}/guidelines/",
        {"body": "old\rmac\r\nwindows\nunix", "changelog": "a\r\nb"},
        format="json",
    )
    draft = Guideline.objects.get(project=project, published_at__isnull=True)
    assert (draft.body, draft.changelog) == ("old\nmac\nwindows\nunix", "a\nb")


def test_worked_example_why_and_text_are_stored_with_lf(manager, project):
    item = Item.objects.create(
        project=project, external_id="r1", data={"text": "line one\r\nline two"}
    )
    worked_example_add(
        project=project, item=item, label="negative", why="tone\r\nand words", user=manager
    )
    example = WorkedExample.objects.get()
    assert (example.text, example.why) == ("line one\nline two", "tone\nand words")


def test_a_version_stored_with_crlf_before_the_fix_still_diffs_line_by_line(manager):
    project, v2 = published_v2(manager)
    guideline_draft_update(project=project, body=BODY + "Emoji count.\n", user=manager)
    v3 = guideline_publish(project=project, user=manager, changelog="emoji")
    # as rows saved before saving normalized: the whole body in CRLF
    Guideline.objects.filter(pk=v2.pk).update(body=BODY.replace("\n", "\r\n"))
    v2.refresh_from_db()
    changed = [line for line in guideline_diff(v2, v3).splitlines() if line[:1] in "+-"]
    assert changed == ["--- v2", "+++ v3", "+Emoji count."]


def test_diff_of_an_image_example_names_the_image_instead_of_printing_it(manager):
    project, v2 = published_v2(manager)
    image = "data:image/png;base64," + "iVBORw0KGgo" * 2000
    item = Item.objects.create(project=project, external_id="digit-7", data={"image": image})
    worked_example_add(project=project, item=item, label="positive", why="a seven", user=manager)
    v3 = guideline_publish(project=project, user=manager, changelog="example")
    diff = guideline_diff(v2, v3)
    assert "+- digit-7 -> positive: (image)" in diff
    assert "data:" not in diff and len(diff) < 1000


def test_version_page_colours_added_and_removed_lines_and_escapes_them(manager, client):
    project, v2 = published_v2(manager)
    guideline_draft_update(
        project=project,
        body=BODY.replace("Mixed is neutral.\n", "<script>alert(1)</script>\n---\n"),
        user=manager,
    )
    guideline_publish(project=project, user=manager, changelog="hostile")
    client.force_login(manager)
    html = client.get(f"/projects/{project.pk}/guidelines/v3/").content.decode()
    assert '<span class="diff-line removed">-Mixed is neutral.</span>' in html
    assert '<span class="diff-line added">+&lt;script&gt;alert(1)&lt;/script&gt;</span>' in html
    # a markdown rule added inside a hunk is an added line, not a file header
    assert '<span class="diff-line added">+---</span>' in html
    assert '<span class="diff-line file">--- v2</span>' in html
    assert "<script>alert(1)" not in html


def test_diff_lines_filter_sorts_each_line_by_kind():
    diff = "--- v1\n+++ v2\n@@ -1,2 +1,2 @@\n same\n-old\n+new\n--- rule\n"
    rendered = Template(
        "{% load concord %}{% for kind, line in diff|diff_lines %}[{{ kind }}]{% endfor %}"
    ).render(Context({"diff": diff}))
    assert rendered == "[file][file][hunk][][removed][added][removed]"
