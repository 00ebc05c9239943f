"""Model suggestions for annotators: the source, the modes, the share, what is recorded."""

import numpy as np
import pytest
from django.test import Client

from analysis.services.predictions import predictions_upload, token_predictions_upload
from analysis.services.suggestions import suggestions_refresh
from labeling import selectors
from labeling.models import Annotation, Item, Project, Suggestion
from labeling.services.annotating import annotation_submit
from labeling.spans import token_bounds
from tests.factories import PASSWORD, add_member, make_annotations, make_items, make_project

pytestmark = pytest.mark.django_db

# Per item: (negative, positive) probabilities; e0 -> positive 0.9, e1 -> negative 0.7, ...
PROBABILITIES = [[0.1, 0.9], [0.7, 0.3], [0.45, 0.55], [0.2, 0.8]]


@pytest.fixture
def project(manager):
    project = make_project(manager, overlap=3, suggestions="show", suggestion_model="bert")
    make_items(project, len(PROBABILITIES))
    return project


def upload(project, model="bert", probabilities=PROBABILITIES):
    rows = [{"external_id": f"e{n}", "probabilities": p} for n, p in enumerate(probabilities)]
    return predictions_upload(
        project=project, model=model, classes=["negative", "positive"], rows=rows, user=None
    )


def set_mode(project, **fields):
    Project.objects.filter(pk=project.pk).update(**fields)
    project.refresh_from_db()


def item(project, external_id) -> Item:
    return Item.objects.get(project=project, external_id=external_id)


def test_an_upload_of_the_suggestion_model_writes_each_items_top_class_and_probability(project):
    upload(project)
    rows = Suggestion.objects.filter(item__project=project).order_by("item__external_id")
    got = [(s.item.external_id, s.model, s.label.name, s.probability) for s in rows]
    assert got == [
        ("e0", "bert", "positive", pytest.approx(0.9)),
        ("e1", "bert", "negative", pytest.approx(0.7)),
        ("e2", "bert", "positive", pytest.approx(0.55)),
        ("e3", "bert", "positive", pytest.approx(0.8)),
    ]


def test_a_new_upload_replaces_the_old_suggestions_and_another_model_leaves_them(project):
    upload(project)
    upload(project, probabilities=[[0.6, 0.4]] * 4)
    assert set(Suggestion.objects.values_list("label__name", flat=True)) == {"negative"}
    upload(project, model="other", probabilities=[[0.1, 0.9]] * 4)  # not the suggestion model
    assert set(Suggestion.objects.values_list("label__name", flat=True)) == {"negative"}


def test_a_model_without_predictions_means_no_suggestions(project):
    upload(project)
    set_mode(project, suggestion_model="builtin")
    assert suggestions_refresh(project=project) == 0
    assert not Suggestion.objects.exists()


def test_show_mode_puts_the_suggestion_beside_the_item_without_selecting_it(project, client):
    upload(project)
    add_member(project, "ann")
    client.login(username="ann", password=PASSWORD)
    page = client.get(f"/projects/{project.pk}/annotate/").content.decode()
    assert 'aria-label="Model suggestion"' in page
    assert "<strong>positive</strong>" in page and "90%" in page  # e0, the first in the queue
    assert "label-btn chosen" not in page
    assert "a hint, not a choice" in page


def test_prefill_mode_preselects_the_suggested_label(project, client):
    upload(project)
    set_mode(project, suggestions="prefill")
    add_member(project, "ann")
    client.login(username="ann", password=PASSWORD)
    page = client.get(f"/projects/{project.pk}/annotate/").content.decode()
    assert 'value="positive" class="label-btn chosen"' in page
    assert page.count("label-btn chosen") == 1
    assert "pre-selected" in page


def test_off_shows_nothing_and_records_nothing(project, api_client_for):
    upload(project)
    set_mode(project, suggestions="off")
    ann = api_client_for(add_member(project, "ann"))
    body = ann.get(f"/api/v1/projects/{project.pk}/next/").json()
    assert "suggestion" not in body
    posted = ann.post(
        f"/api/v1/projects/{project.pk}/annotations/",
        {"item": body["item"]["id"], "label": "negative"},
        format="json",
    )
    assert posted.json()["suggestion_model"] == "" and posted.json()["suggestion_label"] is None


def test_the_next_api_gives_the_suggestion_and_the_annotation_records_it(project, api_client_for):
    upload(project)
    set_mode(project, suggestions="prefill")
    ann = api_client_for(add_member(project, "ann"))
    body = ann.get(f"/api/v1/projects/{project.pk}/next/").json()
    assert body["item"]["external_id"] == "e0"
    assert body["suggestion"] == {
        "model": "bert",
        "label": "positive",
        "probability": pytest.approx(0.9),
        "mode": "prefill",
    }
    posted = ann.post(
        f"/api/v1/projects/{project.pk}/annotations/",
        {"item": body["item"]["id"], "label": "negative"},  # the annotator disagrees
        format="json",
    )
    assert posted.status_code == 201
    assert posted.json()["suggestion_model"] == "bert"
    assert posted.json()["suggestion_label"] == "positive"
    stored = Annotation.objects.get()
    assert (stored.label.name, stored.suggestion_model, stored.suggestion_label.name) == (
        "negative",
        "bert",
        "positive",
    )


def test_an_item_without_a_suggestion_records_none(project, api_client_for):
    upload(project)
    Suggestion.objects.filter(item__external_id="e0").delete()
    annotation = annotation_submit(
        item=item(project, "e0"), annotator=add_member(project, "ann"), label="positive"
    )
    assert annotation.suggestion_model == "" and annotation.suggestion_label_id is None


def test_the_rate_is_a_stable_share_of_item_annotator_pairs(manager):
    project = make_project(manager, suggestions="show", suggestion_model="m", suggestion_rate=0.3)
    items = make_items(project, 2000)
    rows = [{"external_id": i.external_id, "probabilities": [0.4, 0.6]} for i in items]
    predictions_upload(project=project, model="m", classes=["negative", "positive"], rows=rows,
                       user=None)  # fmt: skip
    users = [add_member(project, f"a{n}") for n in range(2)]

    def shown(user):
        return [
            selectors.suggestion_shown(project=project, item_id=i.pk, annotator_id=user.pk)
            is not None
            for i in items
        ]

    first = shown(users[0])
    assert shown(users[0]) == first  # a reload shows the same
    assert np.mean(first) == pytest.approx(0.3, abs=0.035)
    assert first != shown(users[1])  # another annotator: another draw of pairs
    set_mode(project, suggestion_rate=0.6)
    wider = shown(users[0])
    assert all(w for f, w in zip(first, wider, strict=True) if f)  # raising the rate only adds


def test_the_recorded_suggestion_follows_the_rate_rule(manager):
    project = make_project(manager, suggestions="show", suggestion_model="m", suggestion_rate=0.5)
    items = make_items(project, 40)
    rows = [{"external_id": i.external_id, "probabilities": [0.4, 0.6]} for i in items]
    predictions_upload(project=project, model="m", classes=["negative", "positive"], rows=rows,
                       user=None)  # fmt: skip
    ann = add_member(project, "ann")
    for i in items:
        annotation_submit(item=i, annotator=ann, label="negative")
    expected = {
        i.pk: selectors.suggestion_share(project=project, item_id=i.pk, annotator_id=ann.pk) < 0.5
        for i in items
    }
    recorded = dict(Annotation.objects.values_list("item_id", "suggestion_model"))
    assert {i: m == "m" for i, m in recorded.items()} == expected
    assert 0 < sum(expected.values()) < 40


def test_annotators_see_the_models_suggestion_never_other_annotators_labels(project, client):
    upload(project)
    others = [add_member(project, name) for name in ("x", "y")]
    e0 = item(project, "e0")
    make_annotations(project, [(e0, others[0], "negative"), (e0, others[1], "negative")])
    add_member(project, "ann")
    client.login(username="ann", password=PASSWORD)
    page = client.get(f"/projects/{project.pk}/annotate/").content.decode()
    assert f'data-item="{e0.pk}"' in page
    suggestion = page[page.index('aria-label="Model suggestion"') :]
    suggestion = suggestion[: suggestion.index("</aside>")]
    assert "positive" in suggestion and "negative" not in suggestion
    assert "label-btn chosen" not in page  # the others' "negative" is not preselected either


def test_managers_are_told_when_the_model_has_no_predictions(project, client, manager):
    client.login(username="manager", password=PASSWORD)
    annotate = client.get(f"/projects/{project.pk}/annotate/").content.decode()
    assert "there are no suggestions from the model “bert” yet" in annotate
    settings = client.get(f"/projects/{project.pk}/edit/").content.decode()
    assert "No item has a suggestion from the model “bert”, so annotators" in settings
    upload(project)
    settings = client.get(f"/projects/{project.pk}/edit/").content.decode()
    assert "4 items have a suggestion from the model “bert”" in settings
    annotator_page = Client()
    add_member(project, "ann")
    annotator_page.login(username="ann", password=PASSWORD)
    assert (
        "has no predictions"
        not in annotator_page.get(f"/projects/{project.pk}/annotate/").content.decode()
    )


def test_span_suggestions_are_the_token_models_decoded_spans_and_prefill_the_editor(
    manager, client, api_client_for
):
    project = make_project(
        manager, labels=("PER", "LOC"), task_type="spans", suggestions="prefill",
        suggestion_model="ner",
    )  # fmt: skip
    text = "Ada Lovelace lived in London ."
    make_items(project, [text])
    n = len(token_bounds(text))  # 6 tokens
    probs = [[1.0, 0.0, 0.0]] * n
    probs[0] = probs[1] = [0.1, 0.8, 0.1]  # "Ada Lovelace": PER
    probs[4] = [0.3, 0.1, 0.6]  # "London": LOC
    token_predictions_upload(
        project=project, model="ner", classes=["O", "PER", "LOC"], user=None,
        rows=[{"external_id": "e0", "probabilities": probs}],
    )  # fmt: skip
    ids = dict(project.labels.values_list("name", "id"))
    suggestion = Suggestion.objects.get()
    assert suggestion.spans == [[0, 12, ids["PER"]], [22, 28, ids["LOC"]]]
    assert suggestion.probability == pytest.approx((0.8 + 0.8 + 1 + 1 + 0.6 + 1) / 6)
    ann = add_member(project, "ann")
    client.login(username="ann", password=PASSWORD)
    page = client.get(f"/projects/{project.pk}/annotate/").content.decode()
    assert "2 spans" in page and "already marked in the text" in page
    assert f"[[0, 12, {ids['PER']}], [22, 28, {ids['LOC']}]]" in page  # the editor's start
    shown = api_client_for(ann).get(f"/api/v1/projects/{project.pk}/next/").json()["suggestion"]
    assert shown["spans"] == [
        {"start": 0, "end": 12, "label": "PER"},
        {"start": 22, "end": 28, "label": "LOC"},
    ]
    assert shown["label"] is None and shown["mode"] == "prefill"
    annotation = annotation_submit(
        item=Item.objects.get(project=project), annotator=ann,
        spans=[{"start": 0, "end": 12, "label": "PER"}],
    )  # fmt: skip
    assert annotation.suggestion_model == "ner"
    assert annotation.suggestion_spans == [[0, 12, ids["PER"]], [22, 28, ids["LOC"]]]
