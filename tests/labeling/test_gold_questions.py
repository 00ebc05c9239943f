"""Gold questions: imported gold labels, onboarding, mixing at the gold rate, pause and continue."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.gold_scores import MIN_GOLD_ANSWERS, accuracy_interval, gold_accuracy
from labeling.models import Annotation, GoldLabel, ImportBatch, Item, Lease, Membership
from labeling.selectors import labeling_progress
from labeling.services.annotating import annotation_submit
from labeling.services.gold import AnnotatorPaused, membership_continue
from labeling.services.queue import next_item
from tests.factories import add_member, leases_expire, make_items, make_project

pytestmark = pytest.mark.django_db


def gold_upload(client, project, content: bytes, name="gold.csv", **fields):
    return client.post(
        f"/api/v1/projects/{project.pk}/imports/",
        {"file": SimpleUploadedFile(name, content), "kind": "gold", **fields},
        format="multipart",
    )


def with_gold(project, n_regular: int, gold_answers: list[str]):
    """Regular items e0.. and gold items g0.. whose gold labels are `gold_answers`."""
    regular = make_items(project, n_regular)
    golds = make_items(project, len(gold_answers), prefix="g")
    label_ids = dict(project.labels.values_list("name", "id"))
    GoldLabel.objects.bulk_create(
        GoldLabel(item=item, label_id=label_ids[name])
        for item, name in zip(golds, gold_answers, strict=True)
    )
    Item.objects.filter(pk__in=[g.pk for g in golds]).update(is_gold=True)
    return regular, golds


def answer_until_done(project, annotator, answer_for, limit=1000) -> list[Item]:
    """Claim and answer items until none is left; returns them in the order served."""
    served = []
    for _ in range(limit):
        item = next_item(project=project, annotator=annotator)
        if item is None:
            return served
        served.append(item)
        annotation_submit(item=item, annotator=annotator, label=answer_for(item))
    raise AssertionError("the queue never ran out")


# ---- import ------------------------------------------------------------------------------


def test_gold_csv_import_sets_gold_labels_and_marks_the_items(manager, project, api_client_for):
    make_items(project, 3)
    response = gold_upload(
        api_client_for(manager), project, b"external_id,label\ne0,positive\ne2,negative\n"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["rows"] == 2
    golds = dict(GoldLabel.objects.values_list("item__external_id", "label__name"))
    assert golds == {"e0": "positive", "e2": "negative"}
    assert set(Item.objects.filter(is_gold=True).values_list("external_id", flat=True)) == {
        "e0",
        "e2",
    }
    assert ImportBatch.objects.get().kind == ImportBatch.Kind.GOLD


def test_a_malformed_gold_file_imports_nothing_and_lists_rows_and_why(
    manager, project, api_client_for
):
    make_items(project, 3)
    content = b"external_id,label\ne0,positive\nnope,negative\ne1,maybe\ne0,negative\n,positive\n"
    response = gold_upload(api_client_for(manager), project, content)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"row": 4, "reason": "unknown label 'maybe'"},
        {"row": 5, "reason": "item 'e0' is given twice (also row 2)"},
        {"row": 6, "reason": "empty external_id"},
        {"row": 3, "reason": "unknown item 'nope'"},
    ]
    assert not GoldLabel.objects.exists()
    assert not Item.objects.filter(is_gold=True).exists()


def test_an_item_with_a_gold_label_is_refused_unless_update_is_asked(
    manager, project, api_client_for
):
    make_items(project, 2)
    client = api_client_for(manager)
    assert gold_upload(client, project, b"external_id,label\ne0,positive\n").status_code == 201
    again = gold_upload(client, project, b"external_id,label\ne0,negative\n")
    assert again.status_code == 400
    assert "already has a gold label" in again.json()["errors"][0]["reason"]
    update = gold_upload(
        client, project, b"external_id,label\ne0,negative\n", on_duplicate="update"
    )
    assert update.status_code == 201
    assert GoldLabel.objects.get().label.name == "negative"


def test_multi_label_and_span_gold_come_as_in_annotation_imports(manager, api_client_for):
    client = api_client_for(manager)
    multi = make_project(manager, name="multi", labels=("a", "b", "c"), task_type="multi_label")
    make_items(multi, 1)
    rows = b'{"external_id": "e0", "labels": ["c", "a"]}\n'
    assert gold_upload(client, multi, rows, name="g.jsonl", format="jsonl").status_code == 201
    ids = dict(multi.labels.values_list("name", "id"))
    assert GoldLabel.objects.get(item__project=multi).labels == sorted([ids["a"], ids["c"]])

    spans = make_project(manager, name="spans", labels=("PER", "LOC"), task_type="spans")
    make_items(spans, ["Ada lives in Paris"])
    good = {"external_id": "e0", "spans": [{"start": 0, "end": 3, "label": "PER"}]}
    bad = {"external_id": "e0", "spans": [{"start": 0, "end": 2, "label": "PER"}]}
    refused = gold_upload(
        client, spans, json.dumps(bad).encode() + b"\n", name="g.jsonl", format="jsonl"
    )
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["row"] == 1
    assert "item 'e0'" in refused.json()["errors"][0]["reason"]
    ok = gold_upload(
        client, spans, json.dumps(good).encode() + b"\n", name="g.jsonl", format="jsonl"
    )
    assert ok.status_code == 201, ok.json()
    assert GoldLabel.objects.get(item__project=spans).spans == [[0, 3, ids_of(spans)["PER"]]]


def ids_of(project) -> dict:
    return dict(project.labels.values_list("name", "id"))


# ---- onboarding and mixing -----------------------------------------------------------------


def test_a_new_annotator_gets_the_gold_items_first(manager):
    project = make_project(manager, overlap=1, gold_onboarding=3)
    regular, golds = with_gold(project, 5, ["positive"] * 4)
    ann = add_member(project, "ann")
    served = answer_until_done(project, ann, lambda item: "positive")
    assert served[:3] == golds[:3]
    assert Membership.objects.get(user=ann).onboarded_at is not None
    assert set(regular) <= set(served)


def test_gold_is_mixed_in_at_the_gold_rate_and_deterministically(manager):
    project = make_project(manager, overlap=1, gold_onboarding=0, gold_rate=0.1)
    with_gold(project, 600, ["positive"] * 200)
    ann = add_member(project, "ann")
    order = []
    for _ in range(500):
        item = next_item(project=project, annotator=ann)
        order.append(item.is_gold)
        annotation_submit(item=item, annotator=ann, label="positive")
    share = sum(order) / len(order)
    assert 0.06 <= share <= 0.14  # 500 draws at 10%: 3 standard errors either side


def test_the_gold_draw_is_the_same_for_the_same_history(manager):
    project = make_project(manager, overlap=1, gold_onboarding=0, gold_rate=0.5)
    with_gold(project, 40, ["positive"] * 40)
    ann = add_member(project, "ann")
    for _ in range(30):
        item = next_item(project=project, annotator=ann)
        leases_expire(ann)
        assert next_item(project=project, annotator=ann) == item
        annotation_submit(item=item, annotator=ann, label="positive")


def test_gold_items_look_like_any_other_item_in_the_api(manager, api_client_for):
    project = make_project(manager, overlap=1, gold_onboarding=1)
    regular, golds = with_gold(project, 1, ["positive"])
    ann = add_member(project, "ann")
    client = api_client_for(ann)
    first = client.get(f"/api/v1/projects/{project.pk}/next/").json()
    assert first["item"]["id"] == golds[0].pk
    response = client.post(
        f"/api/v1/projects/{project.pk}/annotations/",
        {"item": golds[0].pk, "label": "positive"},
        format="json",
    )
    assert response.status_code == 201
    second = client.get(f"/api/v1/projects/{project.pk}/next/").json()
    assert second["item"]["id"] == regular[0].pk
    assert set(first) == set(second) and set(first["item"]) == set(second["item"])
    assert "gold" not in json.dumps(first).lower()


def test_gold_items_are_never_full_and_not_regular_progress(manager):
    project = make_project(manager, overlap=1, gold_onboarding=1)
    regular, golds = with_gold(project, 2, ["positive"])
    people = [add_member(project, name) for name in "abc"]
    for person in people:
        assert next_item(project=project, annotator=person) == golds[0]
        annotation_submit(item=golds[0], annotator=person, label="positive")
    assert Annotation.objects.filter(item=golds[0]).count() == 3
    assert Item.objects.get(pk=golds[0].pk).done_count == 0
    progress = labeling_progress(
        project=project, annotator=people[0], guideline=project.current_guideline()
    )
    assert progress["available"] == 2  # the two regular items, not the gold one


def test_managers_and_reviewers_get_no_gold(manager):
    project = make_project(manager, overlap=1)
    regular, golds = with_gold(project, 1, ["positive"] * 5)
    assert next_item(project=project, annotator=manager) == regular[0]


# ---- pause and continue --------------------------------------------------------------------


def test_below_the_pass_score_the_annotator_is_paused_and_gets_nothing(manager, api_client_for):
    project = make_project(manager, overlap=1, gold_onboarding=4, gold_pass_score=0.8)
    regular, golds = with_gold(project, 3, ["positive"] * 5)
    ann = add_member(project, "ann")
    answers = iter(["positive", "negative", "positive", "negative"])  # 2 of 4 right
    for _ in range(4):
        item = next_item(project=project, annotator=ann)
        assert item.is_gold
        annotation_submit(item=item, annotator=ann, label=next(answers))
    membership = Membership.objects.get(user=ann)
    assert membership.paused_at is not None
    assert membership.pause_reason == "Onboarding: 2 of 4 gold questions right (50%; pass: 80%)."
    assert not Lease.objects.filter(annotator=ann).exists()
    with pytest.raises(AnnotatorPaused):
        next_item(project=project, annotator=ann)
    response = api_client_for(ann).get(f"/api/v1/projects/{project.pk}/next/")
    assert response.status_code == 409
    assert "2 of 4 gold questions right" in response.json()["detail"]


def test_the_submission_that_pauses_says_so_when_it_asks_for_the_next(manager, api_client_for):
    project = make_project(manager, overlap=1, gold_onboarding=2, gold_pass_score=0.8)
    with_gold(project, 3, ["positive"] * 3)
    client = api_client_for(add_member(project, "ann"))
    url = f"/api/v1/projects/{project.pk}/annotations/?next=1"
    current = client.get(f"/api/v1/projects/{project.pk}/next/").json()
    first = client.post(url, {"item": current["item"]["id"], "label": "negative"}, format="json")
    assert first.status_code == 201 and "paused" not in first.json()
    last_gold = first.json()["next"]["item"]["id"]
    paused = client.post(url, {"item": last_gold, "label": "negative"}, format="json")
    assert paused.status_code == 201  # stored, then the queue has nothing for them
    body = paused.json()
    assert body["next"] is None
    assert "0 of 2 gold questions right" in body["paused"]["detail"]
    assert body["paused"]["paused_at"] is not None


def test_passing_onboarding_sets_onboarded_at(manager):
    project = make_project(manager, overlap=1, gold_onboarding=2, gold_pass_score=0.5)
    with_gold(project, 1, ["positive", "positive"])
    ann = add_member(project, "ann")
    answers = iter(["positive", "negative"])
    for _ in range(2):
        annotation_submit(
            item=next_item(project=project, annotator=ann), annotator=ann, label=next(answers)
        )
    membership = Membership.objects.get(user=ann)
    assert membership.onboarded_at is not None and membership.paused_at is None


def paused_annotator(manager):
    project = make_project(manager, overlap=1, gold_onboarding=2)
    regular, golds = with_gold(project, 2, ["positive", "positive"])
    ann = add_member(project, "ann")
    for _ in range(2):
        item = next_item(project=project, annotator=ann)
        annotation_submit(item=item, annotator=ann, label="negative")
    assert Membership.objects.get(user=ann).paused_at is not None
    return project, regular, ann


def test_a_manager_lets_a_paused_annotator_continue_through_the_api(manager, api_client_for):
    project, regular, ann = paused_annotator(manager)
    url = f"/api/v1/projects/{project.pk}/members/{ann.pk}/continue/"
    response = api_client_for(manager).post(url)
    assert response.status_code == 200
    body = response.json()
    assert body["paused_at"] is None and body["onboarded_at"] is not None
    assert next_item(project=project, annotator=ann) == regular[0]


def test_an_annotator_cannot_let_themselves_continue(manager, api_client_for):
    project, _, ann = paused_annotator(manager)
    url = f"/api/v1/projects/{project.pk}/members/{ann.pk}/continue/"
    assert api_client_for(ann).post(url).status_code == 403
    page = f"/projects/{project.pk}/members/{ann.pk}/continue/"
    from django.test import Client

    browser = Client()
    browser.force_login(ann)
    assert browser.post(page).status_code == 403
    assert Membership.objects.get(user=ann).paused_at is not None


def test_the_paused_page_lists_the_mistakes_and_the_members_page_continues(manager, client):
    project, regular, ann = paused_annotator(manager)
    client.force_login(ann)
    page = client.get(f"/projects/{project.pk}/annotate/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Labeling is paused for you" in html
    assert html.count("data-mistake=") == 2
    client.force_login(manager)
    members = client.get(f"/projects/{project.pk}/members/").content.decode()
    assert 'data-paused-member="ann"' in members
    client.post(f"/projects/{project.pk}/members/{ann.pk}/continue/")
    membership = Membership.objects.get(user=ann)
    assert membership.paused_at is None and membership.onboarded_at is not None


def test_continue_refuses_a_member_who_is_not_an_annotator(manager):
    project = make_project(manager)
    with pytest.raises(Exception, match="Only annotators"):
        membership_continue(project=project, user=manager)


# ---- continuous evaluation -----------------------------------------------------------------


def test_gold_accuracy_per_annotator_with_a_wilson_interval(manager):
    project = make_project(manager, overlap=2, gold_onboarding=12, gold_pass_score=0.5)
    with_gold(project, 3, ["positive"] * 12)
    good, new = add_member(project, "good"), add_member(project, "new")
    served = answer_until_done(
        project,
        good,
        lambda item: "negative" if item.external_id in ("g0", "g1", "g2") else "positive",
    )
    assert [item.is_gold for item in served] == [True] * 12 + [False] * 3
    for _ in range(3):
        item = next_item(project=project, annotator=new)
        annotation_submit(item=item, annotator=new, label="positive")
    rows = {row["annotator"]: row for row in gold_accuracy(project=project)["annotators"]}
    assert rows["good"]["n"] == 12 and rows["good"]["correct"] == 9
    assert rows["good"]["accuracy"] == pytest.approx(0.75)
    low, high = accuracy_interval(9, 12)
    assert rows["good"]["interval"] == [round(low, 4), round(high, 4)]
    assert 0.46 < low < 0.48 and 0.91 < high < 0.92  # Wilson 9/12: [0.468, 0.911]
    assert rows["new"]["judged"] is False and rows["new"]["n"] == 3 < MIN_GOLD_ANSWERS


def test_after_onboarding_no_gold_comes_once_the_regular_items_are_done(manager):
    project = make_project(manager, overlap=1, gold_onboarding=1, gold_rate=0.5)
    regular, golds = with_gold(project, 2, ["positive"] * 10)
    ann = add_member(project, "ann")
    served = answer_until_done(project, ann, lambda item: "positive")
    assert served[0] == golds[0]
    assert set(regular) <= set(served)
    assert served[-1] in regular  # a stream of nothing but gold would give it away
