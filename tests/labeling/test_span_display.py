"""The read-only span display (`{% spans_text %}`) and the span editor's page data
(`{% span_editor %}`): spans marked in their label's colour, every text escaped."""

import json
import re

import pytest
from django.template import Context, Template

from labeling.models import LabelClass, Project
from labeling.spans import span_colours
from tests.factories import make_project

TEXT = 'Ada <script>alert("x")</script> met Bob & Co in London.'


def render(source: str, **context) -> str:
    return Template("{% load concord %}" + source).render(Context(context))


def labels(*names: str) -> list[LabelClass]:
    return [LabelClass(pk=n + 10, name=name, order=n) for n, name in enumerate(names)]


def test_spans_are_marks_with_the_label_name_and_its_colour_by_position():
    html = render(
        "{% spans_text text spans labels %}",
        text="Ada Lovelace met Charles Babbage in London.",
        spans=[[36, 42, 12], [0, 12, 10]],  # any order
        labels=labels("PER", "ORG", "LOC"),
    )
    assert html == (
        '<span class="span-text">'
        '<mark class="span span-c0" data-label="PER" title="PER">Ada Lovelace</mark>'
        ' met Charles Babbage in '
        '<mark class="span span-c2" data-label="LOC" title="LOC">London</mark>.</span>'
    )  # fmt: skip


def test_script_in_the_text_and_in_label_names_is_escaped():
    start = TEXT.index("<script>")
    end = TEXT.index("</script>") + len("</script>")
    evil = '"><script>alert(1)</script>'
    html = render(
        "{% spans_text text spans labels %}",
        text=TEXT,
        spans=[[start, end, 10], [TEXT.index("Bob"), TEXT.index("Co") + 2, 11]],
        labels=labels(evil, "ORG&"),
    )
    assert "<script>" not in html and "</script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert 'data-label="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    assert "Bob &amp; Co" in html and 'data-label="ORG&amp;"' in html
    # only the marks are tags
    assert re.findall(r"<(\w+)", html) == ["span", "mark", "mark"]


def test_spans_out_of_range_overlapping_or_malformed_are_left_out():
    html = render(
        "{% spans_text text spans labels %}",
        text="one two three",
        spans=[[0, 3, 10], [2, 7, 10], [8, 99, 10], "junk", [4, 7, 999]],
        labels={10: "A"},
    )
    assert html == (
        '<span class="span-text"><mark class="span span-c0" data-label="A" title="A">one</mark>'
        ' <mark class="span span-cunknown" data-label="?" title="?">two</mark> three</span>'
    )  # fmt: skip


def test_colours_repeat_after_ten_labels():
    colours = span_colours({pk: f"L{pk}" for pk in range(12)})
    assert [colour for colour, _ in colours.values()] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


@pytest.mark.django_db
def test_the_editor_gets_text_tokens_labels_and_spans_as_json_never_as_html(manager):
    project = make_project(
        manager, labels=("PER", "</script><b>"), task_type=Project.TaskType.SPANS
    )
    per, odd = project.labels.all()
    html = render("{% span_editor text spans labels %}", text=TEXT, spans=[[0, 3, per.pk]],
                  labels=project.labels.all())  # fmt: skip
    assert "<script>alert" not in html and "</script><b>" not in html
    payload = re.search(r'<script type="application/json">(.*?)</script>', html, re.S).group(1)
    data = json.loads(payload)
    assert data["text"] == TEXT
    assert data["tokens"][:3] == [[0, 3], [4, 5], [5, 11]]
    assert data["labels"] == [
        {"id": per.pk, "name": "PER", "key": "1", "colour": 0},
        {"id": odd.pk, "name": "</script><b>", "key": "2", "colour": 1},
    ]
    assert data["spans"] == [[0, 3, per.pk]]
