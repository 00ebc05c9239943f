"""Span projects: annotations are token-aligned, flat span sets checked on the way in."""

import pytest
from django.core.exceptions import ValidationError

from labeling.models import Annotation, Project
from labeling.services.annotating import annotation_submit
from labeling.services.reviewing import review_set
from labeling.spans import spans_clean, token_bounds, token_spans
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = pytest.mark.django_db

TEXT = "Ada Lovelace met Charles Babbage in London, 1833."


@pytest.fixture
def project(manager):
    return make_project(manager, labels=("PER", "LOC", "DATE"), task_type=Project.TaskType.SPANS)


@pytest.fixture
def item(project):
    [item] = make_items(project, {"s1": TEXT})
    return item


def test_the_contract_tokenizer_splits_words_and_each_other_character():
    text = "Dr. O'Neil paid $5,000 — 🙂 ok"
    assert [text[s:e] for s, e in token_bounds(text)] == [
        "Dr",
        ".",
        "O",
        "'",
        "Neil",
        "paid",
        "$",
        "5",
        ",",
        "000",
        "—",
        "🙂",
        "ok",
    ]


def test_spans_are_stored_sorted_with_label_ids_and_map_to_token_ranges(project):
    names = dict(project.labels.values_list("name", "id"))
    stored = spans_clean(
        TEXT,
        [{"start": 36, "end": 42, "label": "LOC"}, {"start": 0, "end": 12, "label": "PER"}],
        labels=names,
    )
    assert stored == [[0, 12, names["PER"]], [36, 42, names["LOC"]]]
    assert token_spans(token_bounds(TEXT), stored) == [(0, 2, names["PER"]), (6, 7, names["LOC"])]


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        ([{"start": 1, "end": 12, "label": "PER"}], "Span 1 [1, 12) 'da Lovelace': does not fall"),
        ([{"start": 0, "end": 13, "label": "PER"}], "does not fall on token boundaries"),
        ([{"start": 0, "end": 3, "label": "ORG"}], "unknown label 'ORG'"),
        ([{"start": 0, "end": 99, "label": "PER"}], "needs 0 <= start < end <= 49"),
        ([{"start": 4, "end": 4, "label": "PER"}], "needs 0 <= start < end"),
        ([{"start": "0", "end": 3, "label": "PER"}], "whole numbers"),
        (
            [{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 16, "label": "PER"}],
            "Spans [0, 12) 'Ada Lovelace' and [4, 16) 'Lovelace met' overlap",
        ),
        ("PER", "must be a list"),
    ],
)
def test_a_span_off_the_rules_is_refused_naming_the_span(project, item, spans, message):
    ann = add_member(project, "ann")
    with pytest.raises(ValidationError) as caught:
        annotation_submit(item=item, annotator=ann, spans=spans)
    assert message in str(caught.value)
    assert not Annotation.objects.exists()


def test_an_empty_span_list_is_an_answer_and_a_resubmission_keeps_the_old_spans(project, item):
    ann = add_member(project, "ann")
    first = annotation_submit(item=item, annotator=ann, spans=[])
    assert first.spans == []
    again = annotation_submit(
        item=item, annotator=ann, spans=[{"start": 17, "end": 32, "label": "PER"}]
    )
    assert again.pk == first.pk
    assert again.spans == [[17, 32, project.labels.get(name="PER").pk]]
    assert list(again.revisions.values_list("spans", flat=True)) == [[]]


def test_the_api_takes_spans_and_answers_with_tokens_and_named_spans(project, item, api_client_for):
    ann = add_member(project, "ann")
    client = api_client_for(ann)
    url = f"/api/v1/projects/{project.pk}"
    nxt = client.get(f"{url}/next/").json()
    assert nxt["item"]["tokens"][:3] == [[0, 3], [4, 12], [13, 16]]
    bad = client.post(
        f"{url}/annotations/",
        {"item": item.pk, "spans": [{"start": 0, "end": 2, "label": "PER"}]},
        format="json",
    )
    assert bad.status_code == 400
    assert "Span 1 [0, 2) 'Ad'" in bad.json()["spans"][0]
    made = client.post(
        f"{url}/annotations/",
        {"item": item.pk, "spans": [{"start": 0, "end": 12, "label": "PER"}]},
        format="json",
    )
    assert made.status_code == 201, made.json()
    assert made.json()["spans"] == [{"start": 0, "end": 12, "label": "PER"}]
    listed = client.get(f"{url}/annotations/").json()["results"]
    assert listed[0]["spans"] == [{"start": 0, "end": 12, "label": "PER"}]


def test_a_reviewer_sets_the_final_spans_and_the_item_shows_them(
    project, item, manager, api_client_for
):
    review_set(
        item=item,
        reviewer=manager,
        spans=[{"start": 0, "end": 12, "label": "PER"}, {"start": 44, "end": 48, "label": "DATE"}],
    )
    detail = api_client_for(manager).get(f"/api/v1/projects/{project.pk}/items/{item.pk}/").json()
    assert detail["review"]["spans"] == [
        {"start": 0, "end": 12, "label": "PER"},
        {"start": 44, "end": 48, "label": "DATE"},
    ]
    assert len(detail["tokens"]) == len(token_bounds(TEXT))


def test_a_span_project_labels_text_only(manager):
    with pytest.raises(ValidationError, match="Span projects label text items"):
        make_project(manager, task_type=Project.TaskType.SPANS, data_type=Project.DataType.IMAGE)


def test_the_items_label_filter_finds_items_with_a_span_of_that_type(
    project, manager, api_client_for
):
    ada, rain = make_items(project, {"ada": TEXT, "rain": "Rain in Lyon ."})
    ann = add_member(project, "ann")
    make_annotations(project, [(ada, ann, [(0, 12, "PER")]), (rain, ann, [(8, 12, "LOC")])])
    client = api_client_for(manager)
    url = f"/api/v1/projects/{project.pk}/items/"
    assert [i["external_id"] for i in client.get(url, {"label": "PER"}).json()["results"]] == [
        "ada"
    ]
    assert [i["external_id"] for i in client.get(url, {"label": "LOC"}).json()["results"]] == [
        "rain"
    ]
    assert client.get(url, {"label": "DATE"}).json()["count"] == 0
