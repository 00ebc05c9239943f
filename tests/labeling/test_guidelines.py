"""Versioned guidelines: drafts, immutable published versions, changelog, diff, sanitizing."""

import pytest
from django.core.exceptions import ValidationError
from django.template import Context, Template

from labeling.markdown_render import render_markdown
from labeling.models import Guideline, Item, Membership, WorkedExample
from labeling.services.guidelines import (
    guideline_diff,
    guideline_draft_update,
    guideline_publish,
    worked_example_add,
)
from tests.factories import add_member, make_project

pytestmark = pytest.mark.django_db

# Payloads from the OWASP XSS filter evasion cheat sheet and friends.
XSS_VECTORS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](  javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;:alert(1)">x</a>',
    "![x](javascript:alert(1))",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="https://example.org"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<body onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<style>body{background:red}</style>",
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><button>x</button></form>',
    '<math><a xlink:href="javascript:alert(1)">x</a></math>',
    "<details open ontoggle=alert(1)>",
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<img src="x" onerror="alert(1)"/>',
    "<input autofocus onfocus=alert(1)>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    "<scr<script>ipt>alert(1)</script>",
    "<!--<script>alert(1)</script>-->",
    '<p title="</p><script>alert(1)</script>">x</p>',
]
FORBIDDEN = ["<script", "<iframe", "<style", "<object", "<embed", "<form", "<meta", "<base",
             "<svg", "<math", "<input", "javascript:", "data:", "onerror", "onload", "ontoggle",
             "onfocus", "srcdoc", "style="]  # fmt: skip


@pytest.mark.parametrize("payload", XSS_VECTORS)
def test_sanitizer_strips_every_xss_vector(payload):
    html = render_markdown(f"Intro\n\n{payload}\n\nOutro").lower()
    for bad in FORBIDDEN:
        assert bad not in html, (payload, html)
    assert "intro" in html and "outro" in html


def test_markdown_renders_and_links_get_noopener():
    html = render_markdown("# Rules\n\n**Spam** is [defined here](https://example.org/spam).")
    assert "<h1>Rules</h1>" in html
    assert "<strong>Spam</strong>" in html
    assert 'href="https://example.org/spam"' in html
    assert 'rel="noopener noreferrer"' in html


def test_template_filter_renders_sanitized_markdown():
    html = Template("{% load concord %}{{ body|markdown }}").render(
        Context({"body": "*hi* <script>alert(1)</script>"})
    )
    assert html == "<p><em>hi</em> </p>"


def test_publish_creates_next_version_with_changelog(manager, project):
    guideline_draft_update(project=project, body="Label sarcasm as negative.", user=manager)
    v2 = guideline_publish(project=project, user=manager, changelog="Sarcasm rule")
    assert (v2.version, v2.body, v2.changelog) == (2, "Label sarcasm as negative.", "Sarcasm rule")
    assert project.current_guideline() == v2
    assert not project.guidelines.filter(published_at__isnull=True).exists()
    guideline_draft_update(project=project, body="Second.", changelog="Clarified", user=manager)
    v3 = guideline_publish(project=project, user=manager)
    assert v3.version == 3 and v3.changelog == "Clarified"
    assert list(project.guidelines.values_list("version", flat=True)) == [1, 2, 3]


def test_new_draft_starts_from_newest_version_with_its_examples(manager, project):
    item = Item.objects.create(project=project, external_id="a", data={"text": "meh"})
    worked_example_add(project=project, item=item, label="negative", why="lukewarm", user=manager)
    guideline_draft_update(project=project, body="Body v2", user=manager)
    v2 = guideline_publish(project=project, user=manager, changelog="with example")
    draft = guideline_draft_update(project=project, changelog="next", user=manager)
    assert draft.body == "Body v2"
    assert [(e.item_id, e.label.name, e.why) for e in draft.examples.all()] == [
        (item.pk, "negative", "lukewarm")
    ]
    assert v2.examples.count() == 1  # the copy is separate from the published one
    assert WorkedExample.objects.count() == 2


def test_published_version_is_immutable(project):
    v1 = project.current_guideline()
    v1.body = "sneaky edit"
    with pytest.raises(ValidationError):
        v1.save()
    assert Guideline.objects.get(pk=v1.pk).body == ""


def test_publish_without_draft_or_changelog_is_refused(manager, project):
    with pytest.raises(ValidationError, match="no draft"):
        guideline_publish(project=project, user=manager)
    guideline_draft_update(project=project, body="x", user=manager)
    with pytest.raises(ValidationError) as error:
        guideline_publish(project=project, user=manager, changelog="  ")
    assert "changelog" in error.value.message_dict
    assert project.current_guideline().version == 1


def test_worked_example_needs_a_label_of_the_project_and_a_why(manager, project):
    other = make_project(manager, name="Other")
    item = Item.objects.create(project=project, external_id="a", data={"text": "t"})
    foreign = Item.objects.create(project=other, external_id="b", data={"text": "t"})
    with pytest.raises(ValidationError, match="Unknown label"):
        worked_example_add(project=project, item=item, label="maybe", why="w", user=manager)
    with pytest.raises(ValidationError):
        worked_example_add(project=project, item=item, label="negative", why=" ", user=manager)
    with pytest.raises(ValidationError):
        worked_example_add(project=project, item=foreign, label="negative", why="w", user=manager)
    assert not WorkedExample.objects.exists()


def test_diff_shows_body_and_example_changes(manager, project):
    guideline_draft_update(project=project, body="Rule one.\nRule two.\n", user=manager)
    v2 = guideline_publish(project=project, user=manager, changelog="rules")
    item = Item.objects.create(project=project, external_id="ex-7", data={"text": "so-so"})
    guideline_draft_update(project=project, body="Rule one.\nRule two, clarified.\n", user=manager)
    worked_example_add(
        project=project, item=item, label="positive", why="mild praise", user=manager
    )
    v3 = guideline_publish(project=project, user=manager, changelog="clarify")
    diff = guideline_diff(v2, v3)
    assert diff.startswith("--- v2\n+++ v3\n")
    assert "-Rule two.\n" in diff
    assert "+Rule two, clarified.\n" in diff
    assert "+- ex-7 -> positive: so-so\n" in diff
    assert "+  why: mild praise\n" in diff


def test_api_lists_versions_serves_diff_and_hides_draft_from_annotators(project, api_client_for):
    annie = add_member(project, "annie", Membership.Role.ANNOTATOR)
    manager, annotator = api_client_for(project.created_by), api_client_for(annie)
    base = f"/api/v1/projects/{project.pk}/guidelines/"
    manager.post(base, {"body": "Be <b>kind</b>. <script>x()</script>"}, format="json")
    assert (
        manager.post(f"{base}draft/publish/", {"changelog": "kindness"}, format="json").status_code
        == 201
    )
    manager.post(base, {"body": "Draft in progress"}, format="json")

    seen = annotator.get(base).json()
    assert [(g["version"], g["status"]) for g in seen["results"]] == [
        (2, "published"),
        (1, "published"),
    ]
    assert [g["version"] for g in manager.get(base).json()["results"]] == [None, 2, 1]
    assert annotator.get(f"{base}draft/").status_code == 403

    v2 = annotator.get(f"{base}2/").json()
    assert v2["changelog"] == "kindness"
    assert v2["body_html"] == "<p>Be <b>kind</b>. </p>"
    diff = annotator.get(f"{base}1/diff/2/").json()
    assert diff["diff"].splitlines()[:3] == ["--- v1", "+++ v2", "@@ -1,3 +1,3 @@"]
    assert "+Be <b>kind</b>. <script>x()</script>" in diff["diff"]  # raw text, JSON, not HTML
    assert annotator.get(f"{base}9/").status_code == 404
    assert annotator.get(f"{base}latest/").status_code == 404


def test_publishing_a_wrong_version_number_is_refused(manager, project, api_client_for):
    client = api_client_for(manager)
    base = f"/api/v1/projects/{project.pk}/guidelines/"
    client.post(base, {"body": "x", "changelog": "c"}, format="json")
    for wrong in ("1", "3"):
        answer = client.post(f"{base}{wrong}/publish/", {}, format="json")
        assert answer.status_code == 400 and "version" in answer.json()
    assert project.current_guideline().version == 1
    assert client.post(f"{base}2/publish/", {}, format="json").status_code == 201


def test_worked_example_added_over_the_api_lands_in_the_draft(manager, project, api_client_for):
    Item.objects.create(project=project, external_id="e-1", data={"text": "fine I guess"})
    client = api_client_for(manager)
    url = f"/api/v1/projects/{project.pk}/guidelines/draft/examples/"
    body = {"external_id": "e-1", "label": "negative", "why": "faint praise"}
    answer = client.post(url, body, format="json")
    assert answer.status_code == 201, answer.json()
    assert answer.json()["status"] == "draft"
    assert answer.json()["examples"][0] | {"id": 0} == {
        "id": 0,
        "item": project.items.get().pk,
        "external_id": "e-1",
        "text": "fine I guess",
        "label": "negative",
        "why": "faint praise",
    }
    assert client.post(url, {**body, "label": "maybe"}, format="json").status_code == 400
    assert client.post(url, {**body, "external_id": "nope"}, format="json").status_code == 400
    assert client.post(url, {"label": "negative", "why": "x"}, format="json").status_code == 400
    assert project.current_guideline().examples.count() == 0  # v1 untouched
