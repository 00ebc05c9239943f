"""Consensus and export of span projects (issue 15, deliverable 6): the final spans of every
item (token majority under both tie rules, Dawid-Skene, reviews), every file format value by
value, annotation rows, dataset versions and their diff, streaming, and the export page."""

import csv
import io
import json
import random
import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.http import StreamingHttpResponse
from playwright.sync_api import expect
from rest_framework.test import APIClient

from analysis.exports import rows as export_rows
from analysis.exports import span_decisions
from analysis.exports.decisions import LabelDecisions
from analysis.exports.versions import dataset_diff, label_snapshot
from analysis.models import DatasetVersion
from labeling import demo_spans
from labeling.importing.jobs import import_file
from labeling.models import ImportBatch, Membership, Project
from labeling.services.reviewing import review_set
from labeling.spans import token_bounds, token_bounds_many
from tests.conftest import log_in
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = pytest.mark.django_db

# Tokens: Ada(0-3) Lovelace(4-12) visited(13-20) Acme(21-25) Robotics(26-34) in(35-37)
# London(38-44) .(45-46)
S1 = "Ada Lovelace visited Acme Robotics in London ."
# Grace(0-5) Hopper(6-12) works(13-18) at(19-21) Globex(22-28) .(29-30)
S2 = "Grace Hopper works at Globex ."
# 🙂(0-1) Zoë(2-5) met(6-9) Ada(10-13) in(14-16) Kraków(17-23) .(24-25): code points; in
# UTF-16 every offset after the emoji is one more.
S5 = "🙂 Zoë met Ada in Kraków ."
S4 = "Tim <b>Berners-Lee</b> & Initech"


@pytest.fixture
def spans_project(manager):
    project = make_project(
        manager, name="Entities", labels=("PER", "ORG", "LOC"), task_type=Project.TaskType.SPANS,
        overlap=3,
    )  # fmt: skip
    a, b, c = (add_member(project, name) for name in ("ann1", "ann2", "ann3"))
    items = make_items(
        project,
        {"s1": S1, "s2": S2, "s3": "Nobody labeled this .", "s4": S4, "s5": S5},
        metadata=lambda n: {"source": f"src{n}"},
    )
    s1, s2, s3, s4, s5 = items
    make_annotations(
        project,
        [
            # s1: Ada: B-PER B-PER O; Lovelace: I-PER I-PER B-PER; Acme: B-ORG B-ORG B-LOC;
            # Robotics: I-ORG O I-LOC (a three-way tie, O among it); London: B-LOC B-LOC O.
            (s1, a, [(0, 12, "PER"), (21, 34, "ORG"), (38, 44, "LOC")]),
            (s1, b, [(0, 12, "PER"), (21, 25, "ORG"), (38, 44, "LOC")]),
            (s1, c, [(4, 12, "PER"), (21, 34, "LOC")]),
            # s2, two annotators: Grace Hopper B-PER/I-PER against B-ORG/I-ORG (entity
            # against entity); Globex B-ORG against O.
            (s2, a, [(0, 12, "PER"), (22, 28, "ORG")]),
            (s2, b, [(0, 12, "ORG")]),
            (s4, a, [(0, 3, "PER")]),
            (s4, b, [(0, 3, "PER")]),
            (s5, a, [(2, 5, "PER"), (10, 13, "PER"), (17, 23, "LOC")]),
            (s5, b, [(2, 5, "PER"), (10, 13, "PER"), (17, 23, "LOC")]),
            (s5, c, [(2, 5, "PER"), (17, 23, "LOC")]),
        ],
    )
    # The reviewer's spans of s4 win over the annotators' PER on "Tim".
    review_set(
        item=s4,
        reviewer=manager,
        spans=[{"start": 0, "end": 22, "label": "PER"}, {"start": 25, "end": 32, "label": "ORG"}],
    )
    project.manager = manager
    return project


def export(project, **params) -> bytes:
    client = APIClient()
    client.force_authenticate(project.manager)
    response = client.get(f"/api/v1/projects/{project.pk}/export/", params)
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


def jsonl(project, **params) -> dict[str, dict]:
    body = export(project, format="jsonl", **params).decode("utf-8")
    return {row["external_id"]: row for row in map(json.loads, body.splitlines())}


def span(start, end, label):
    return {"start": start, "end": end, "label": label}


# --- the decisions ------------------------------------------------------------------------


@pytest.mark.parametrize("tie_rule", ["unresolved", "first_class"])
def test_majority_decides_per_token_and_ties_follow_the_projects_tie_rule(spans_project, tie_rule):
    Project.objects.filter(pk=spans_project.pk).update(tie_rule=tie_rule)
    spans_project.refresh_from_db()
    rows = jsonl(spans_project, labels="majority")

    s1 = rows["s1"]
    # Robotics' three-way tie is O under first_class (O has the lowest tag code) and undecided
    # (decoded as O) under unresolved: either way "Acme" alone is the ORG.
    assert s1["spans"] == [span(0, 12, "PER"), span(21, 25, "ORG"), span(38, 44, "LOC")]
    assert s1["label_source"] == "majority"
    assert s1["n_annotations"] == 3
    assert s1["tied_tokens"] == (1 if tie_rule == "unresolved" else 0)
    # Span F1 against the export: ann1 2/3 matched (F1 4/6), ann2 all (1), ann3 none (0).
    assert s1["agreement"] == pytest.approx((4 / 6 + 1 + 0) / 3, abs=1e-6)

    s2 = rows["s2"]
    if tie_rule == "first_class":
        # B-PER/I-PER beat B-ORG/I-ORG (PER comes first); O beats B-ORG on Globex.
        assert s2["spans"] == [span(0, 12, "PER")]
        assert s2["tied_tokens"] == 0
        assert s2["agreement"] == pytest.approx((2 / 3 + 0) / 2, abs=1e-6)
    else:
        # Every entity token is tied: nothing is decided, the item has no spans.
        assert s2["spans"] == []
        assert s2["tied_tokens"] == 3
        assert s2["agreement"] == 0.0

    assert rows["s3"]["spans"] is None and rows["s3"]["label_source"] is None
    assert rows["s3"]["n_annotations"] == 0 and rows["s3"]["agreement"] is None
    assert rows["s5"]["spans"] == [span(2, 5, "PER"), span(10, 13, "PER"), span(17, 23, "LOC")]


def test_exclude_unresolved_drops_items_with_tied_tokens_unless_reviewed(spans_project):
    rows = jsonl(spans_project, labels="majority", exclude="unresolved")
    # s1 and s2 have tied tokens, s3 no decision, s5 has 3 annotations and no tie; s4 is
    # reviewed (2 annotations, below the overlap of 3, but a review settles it).
    assert sorted(rows) == ["s4", "s5"]


def test_a_review_wins_over_every_strategy_and_reviewed_exports_only_reviews(spans_project):
    for labels in ("majority", "dawid_skene", "reviewed"):
        rows = jsonl(spans_project, labels=labels)
        assert rows["s4"]["spans"] == [span(0, 22, "PER"), span(25, 32, "ORG")], labels
        assert rows["s4"]["label_source"] == "review"
        # Both annotators gave PER "Tim": F1 against the review 2 * 0 / (1 + 2) = 0.
        assert rows["s4"]["agreement"] == 0.0
    rows = jsonl(spans_project, labels="reviewed")
    assert [r["spans"] for key, r in rows.items() if key != "s4"] == [None] * 4
    assert [r["label_source"] for key, r in rows.items() if key != "s4"] == [None] * 4


def micro_f1(found: dict[str, list], gold: dict[str, list]) -> float:
    found_set = {(k, s["start"], s["end"], s["label"]) for k, spans in found.items()
                 for s in spans or []}  # fmt: skip
    gold_set = {(k, s, e, t) for k, spans in gold.items() for s, e, t in spans}
    tp = len(found_set & gold_set)
    return 2 * tp / (len(found_set) + len(gold_set))


def test_dawid_skene_recovers_the_gold_of_a_simulated_crowd_at_least_as_well_as_majority(
    manager,
):
    project = make_project(
        manager, name="Crowd", labels=demo_spans.TYPES, task_type=Project.TaskType.SPANS
    )
    sentences = demo_spans.sentences(400, seed=11)
    items = make_items(project, {f"d{n}": s.text for n, s in enumerate(sentences)})
    habits = ("careful", "boundary_shifter", "type_confuser", "misser", "misser")
    crowd = [add_member(project, habit + str(n)) for n, habit in enumerate(habits)]
    rng = random.Random(5)
    answers = {habit: {} for habit in habits}
    votes = []
    for item, sentence in zip(items, sentences, strict=True):
        for annotator, habit in zip(crowd, habits, strict=True):
            spans = demo_spans.annotate(sentence, habit, rng, rate=0.5)
            answers[habit][item.external_id] = [span(*s) for s in spans]
            votes.append((item, annotator, spans))
    make_annotations(project, votes)
    project.manager = manager
    gold = {f"d{n}": s.spans for n, s in enumerate(sentences)}

    majority = micro_f1({k: r["spans"] for k, r in jsonl(project, labels="majority").items()}, gold)
    dawid_skene = micro_f1(
        {k: r["spans"] for k, r in jsonl(project, labels="dawid_skene").items()}, gold
    )
    single = {habit: micro_f1(found, gold) for habit, found in answers.items()}
    print(f"span F1 vs gold: majority {majority:.3f}, Dawid-Skene {dawid_skene:.3f}, single "
          + ", ".join(f"{habit} {f1:.3f}" for habit, f1 in single.items()))  # fmt: skip
    assert dawid_skene >= majority
    assert dawid_skene > max(single.values())
    # The token majority beats every annotator with a habit, not the careful one: where both
    # missers miss an entity and one more annotator errs there, three votes outvote two.
    assert majority > max(f1 for habit, f1 in single.items() if habit != "careful")


# --- the formats ---------------------------------------------------------------------------


def test_jsonl_rows_carry_the_contracts_columns_in_order_with_metadata(spans_project):
    body = export(spans_project, format="jsonl", labels="majority").decode("utf-8")
    lines = body.splitlines()
    first = json.loads(lines[0])
    assert list(first) == [
        "external_id", "text", "spans", "label_source", "agreement", "n_annotations",
        "quality", "issue", "tied_tokens", "metadata.source",
    ]  # fmt: skip
    assert first["text"] == S1 and first["metadata.source"] == "src0"
    assert first["quality"] is None and first["issue"] is False
    # The fast writer writes exactly what json.dumps writes.
    assert all(line == json.dumps(json.loads(line), ensure_ascii=False) for line in lines)
    assert json.loads(lines[4])["text"] == S5  # emoji and accents as they are


def test_conll_writes_iob2_one_token_per_line_with_id_lines(spans_project):
    Project.objects.filter(pk=spans_project.pk).update(tie_rule="first_class")
    body = export(spans_project, format="conll", labels="majority").decode("utf-8")
    sentences = body.split("\n\n")
    assert sentences[0].splitlines() == [
        "# id = s1",
        "Ada\tB-PER", "Lovelace\tI-PER", "visited\tO", "Acme\tB-ORG", "Robotics\tO",
        "in\tO", "London\tB-LOC", ".\tO",
    ]  # fmt: skip
    assert sentences[1].splitlines() == [
        "# id = s2",
        "Grace\tB-PER", "Hopper\tI-PER", "works\tO", "at\tO", "Globex\tO", ".\tO",
    ]  # fmt: skip
    # s3 has no decision and is left out (all-O would claim "no entities"); s4 (reviewed)
    # keeps its markup characters as tokens.
    assert sentences[2].splitlines()[:9] == [
        "# id = s4",
        "Tim\tB-PER", "<\tI-PER", "b\tI-PER", ">\tI-PER", "Berners\tI-PER", "-\tI-PER",
        "Lee\tI-PER", "<\tI-PER",
    ]  # fmt: skip
    assert sentences[2].splitlines()[-2:] == ["&\tO", "Initech\tB-ORG"]
    assert sentences[3].splitlines() == [
        "# id = s5",
        "🙂\tO", "Zoë\tB-PER", "met\tO", "Ada\tB-PER", "in\tO", "Kraków\tB-LOC", ".\tO",
    ]  # fmt: skip
    assert body.endswith(".\tO\n\n") and len(sentences) == 5 and sentences[4] == ""


def test_conll_tokens_are_the_contract_tokenizers(spans_project):
    body = export(spans_project, format="conll", labels="majority").decode("utf-8")
    for sentence in filter(None, body.split("\n\n")):
        lines = sentence.splitlines()
        external_id = lines[0].removeprefix("# id = ")
        text = {"s1": S1, "s2": S2, "s4": S4, "s5": S5}[external_id]
        assert [line.split("\t")[0] for line in lines[1:]] == [
            text[s:e] for s, e in token_bounds(text)
        ]


def test_labelstudio_tasks_carry_labels_results_with_code_point_offsets(spans_project):
    tasks = json.loads(export(spans_project, format="labelstudio", labels="majority"))
    by_id = {task["data"]["external_id"]: task for task in tasks}
    task = by_id["s5"]
    assert task["data"] == {"text": S5, "external_id": "s5"}
    assert task["meta"] == {"source": "src4"}
    assert [a["completed_by"]["username"] for a in task["annotations"]] == ["ann1", "ann2", "ann3"]
    first = task["annotations"][0]
    assert first["concord"]["annotator"] == "ann1" and first["concord"]["guideline_version"] == 1
    assert first["result"] == [
        {
            "id": f"s{n}",
            "from_name": "label",
            "to_name": "text",
            "type": "labels",
            "value": {"start": start, "end": end, "text": text, "labels": [label]},
        }
        for n, (start, end, text, label) in enumerate(
            [(2, 5, "Zoë", "PER"), (10, 13, "Ada", "PER"), (17, 23, "Kraków", "LOC")]
        )
    ]
    # Offsets count code points (Python, Label Studio 1.23), not UTF-16 units.
    assert all(
        S5[r["value"]["start"] : r["value"]["end"]] == r["value"]["text"]
        for a in task["annotations"] for r in a["result"]
    )  # fmt: skip
    [prediction] = task["predictions"]
    assert prediction["model_version"] == "concord-majority"
    assert [r["value"]["text"] for r in prediction["result"]] == ["Zoë", "Ada", "Kraków"]
    assert by_id["s4"]["predictions"][0]["model_version"] == "concord-review"
    assert by_id["s4"]["predictions"][0]["result"][0]["value"]["text"] == "Tim <b>Berners-Lee</b>"
    assert "predictions" not in by_id["s3"] and by_id["s3"]["annotations"] == []


def test_csv_has_the_spans_as_json_text(spans_project):
    body = export(spans_project, format="csv", labels="majority").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    assert list(rows[0])[:3] == ["external_id", "text", "spans"]
    assert json.loads(rows[0]["spans"]) == [
        span(0, 12, "PER"), span(21, 25, "ORG"), span(38, 44, "LOC")
    ]  # fmt: skip
    assert rows[2]["spans"] == "" and rows[2]["label_source"] == ""
    assert rows[3]["text"] == S4 and rows[3]["label_source"] == "review"
    assert rows[0]["tied_tokens"] == "1" and rows[0]["issue"] == "false"


def test_parquet_has_the_spans_as_a_list_of_structs(spans_project):
    table = pq.read_table(io.BytesIO(export(spans_project, format="parquet", labels="majority")))
    spans_type = table.schema.field("spans").type
    assert pa.types.is_list(spans_type)
    assert spans_type.value_type == pa.struct(
        [("start", pa.int64()), ("end", pa.int64()), ("label", pa.string())]
    )
    spans = table.column("spans").to_pylist()
    assert spans[0] == [span(0, 12, "PER"), span(21, 25, "ORG"), span(38, 44, "LOC")]
    assert spans[2] is None  # no decision
    assert spans[4] == [span(2, 5, "PER"), span(10, 13, "PER"), span(17, 23, "LOC")]
    assert table.column("external_id").to_pylist() == ["s1", "s2", "s3", "s4", "s5"]
    assert table.column("tied_tokens").to_pylist() == [1, 3, 0, 0, 0]
    assert table.column("metadata.source").to_pylist() == [f"src{n}" for n in range(5)]


def test_include_annotations_gives_one_row_per_annotation_with_its_spans(spans_project):
    body = export(spans_project, format="jsonl", include="annotations").decode("utf-8")
    rows = [json.loads(line) for line in body.splitlines()]
    assert len(rows) == 10
    assert list(rows[0]) == ["external_id", "annotator", "spans", "guideline_version",
                             "created_at", "suggestion_label", "suggestion_model"]  # fmt: skip
    assert (rows[0]["suggestion_label"], rows[0]["suggestion_model"]) == (None, "")
    assert rows[2]["external_id"] == "s1" and rows[2]["annotator"] == "ann3"
    assert rows[2]["spans"] == [span(4, 12, "PER"), span(21, 34, "LOC")]
    assert rows[2]["guideline_version"] == 1

    body = export(spans_project, format="csv", include="annotations").decode("utf-8")
    listed = list(csv.DictReader(io.StringIO(body, newline="")))
    assert json.loads(listed[4]["spans"]) == [span(0, 12, "ORG")]  # s2 by ann2

    table = pq.read_table(io.BytesIO(export(spans_project, format="parquet",
                                            include="annotations")))  # fmt: skip
    assert table.column("spans").to_pylist()[2] == [span(4, 12, "PER"), span(21, 34, "LOC")]
    assert table.column("annotator").to_pylist()[:3] == ["ann1", "ann2", "ann3"]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"labels": "crowdlab"}, "labels", "labels=crowdlab scores one class per item"),
        ({"format": "conll", "include": "annotations"}, "include", "one tag per token"),
    ],
)
def test_parameters_that_do_not_apply_to_spans_answer_400(spans_project, params, field, message):
    client = APIClient()
    client.force_authenticate(spans_project.manager)
    response = client.get(f"/api/v1/projects/{spans_project.pk}/export/", params)
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])


def test_conll_of_a_classification_project_answers_400(manager):
    project = make_project(manager, labels=("a", "b"))
    client = APIClient()
    client.force_authenticate(manager)
    response = client.get(f"/api/v1/projects/{project.pk}/export/", {"format": "conll"})
    assert response.status_code == 400
    assert "span projects" in response.json()["format"][0]


# --- dataset versions and their diff ---------------------------------------------------------


def test_a_span_dataset_version_downloads_again_and_its_diff_lists_changed_span_sets(
    spans_project, client
):
    api = APIClient()
    api.force_authenticate(spans_project.manager)
    url = f"/api/v1/projects/{spans_project.pk}/export/"
    first = api.get(url, {"format": "jsonl", "labels": "majority"})
    first_body = b"".join(first.streaming_content)
    v1 = int(first["X-Concord-Dataset-Version"])
    again = api.get(f"/api/v1/projects/{spans_project.pk}/datasets/{v1}/")
    assert b"".join(again.streaming_content) == first_body

    s1 = spans_project.items.get(external_id="s1")
    review_set(item=s1, reviewer=spans_project.manager,
               spans=[{"start": 0, "end": 12, "label": "PER"}])  # fmt: skip
    second = api.get(url, {"format": "jsonl", "labels": "majority"})
    b"".join(second.streaming_content)
    v2 = int(second["X-Concord-Dataset-Version"])

    diff = api.get(f"/api/v1/projects/{spans_project.pk}/datasets/{v1}/diff/{v2}/").json()
    assert diff["count"] == 1 and diff["added"] == 0 and diff["removed"] == 0
    [row] = diff["results"]
    assert row["external_id"] == "s1"
    assert row["spans_a"] == [span(0, 12, "PER"), span(21, 25, "ORG"), span(38, 44, "LOC")]
    assert row["spans_b"] == [span(0, 12, "PER")]

    client.force_login(spans_project.manager)
    page = client.get(f"/projects/{spans_project.pk}/datasets/{v1}/diff/{v2}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Spans changed" in html
    assert "[Ada Lovelace]PER visited [Acme]ORG Robotics in [London]LOC ." in html
    assert "[Ada Lovelace]PER visited Acme Robotics in London ." in html


# --- streaming ---------------------------------------------------------------------------------


def streamed_peak(manager, n_items: int, monkeypatch) -> tuple[int, int]:
    """(chunks, peak traced bytes while the response streams) for an n_items export."""
    project = make_project(
        manager, name=f"Stream {n_items}", labels=("PER", "LOC"),
        task_type=Project.TaskType.SPANS,
    )  # fmt: skip
    annotators = [add_member(project, f"st{k}") for k in range(3)]
    text = "Ada Lovelace lives in London and Grace Hopper in New York ."
    items = make_items(project, [text] * n_items, prefix=f"n{n_items}-")
    make_annotations(
        project,
        [
            (item, annotator, [(0, 12, "PER"), (22, 28, "LOC")])
            for item in items
            for annotator in annotators
        ],
    )
    monkeypatch.setattr(export_rows, "PAGE_SIZE", 100)
    client = APIClient()
    client.force_authenticate(manager)
    response = client.get(f"/api/v1/projects/{project.pk}/export/",
                          {"format": "jsonl", "labels": "majority"})  # fmt: skip
    assert isinstance(response, StreamingHttpResponse) and response.streaming
    chunks = iter(response.streaming_content)
    first = next(chunks)  # the decisions are made before the first byte
    tracemalloc.start()
    count, size = 1, len(first)
    for chunk in chunks:
        count += 1
        size += len(chunk)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size > 100 * n_items
    return count, peak


def test_the_export_streams_page_by_page_and_its_memory_does_not_grow_with_the_items(
    manager, monkeypatch
):
    small_chunks, small_peak = streamed_peak(manager, 300, monkeypatch)
    large_chunks, large_peak = streamed_peak(manager, 1500, monkeypatch)
    assert (small_chunks, large_chunks) == (3, 15)
    print(f"peak while streaming: {small_peak} B (300 items), {large_peak} B (1500 items)")
    assert large_peak < 1.5 * small_peak + 50_000


# --- the tokenizer the loader and CoNLL use -------------------------------------------------


def test_token_bounds_of_many_texts_are_the_contract_tokenizers():
    rng = random.Random(3)
    alphabet = "ab_1 \t\n.,-'é\u0301😀日本\u00a0\u2028\u200b\ud800x9٣Ⅻ\"\r&<>"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
             for _ in range(2000)] + ["", "  ", S1, S5]  # fmt: skip
    lengths, starts, ends = token_bounds_many(texts)
    k = 0
    for text, n in zip(texts, lengths.tolist(), strict=True):
        assert list(zip(starts[k : k + n].tolist(), ends[k : k + n].tolist(), strict=True)) == (
            token_bounds(text)
        )
        k += n
    assert k == len(starts)


# --- the export page -----------------------------------------------------------------------


def test_the_export_page_offers_conll_and_previews_spans_in_brackets(spans_project, client):
    add_member(spans_project, "rita", Membership.Role.REVIEWER)
    client.force_login(spans_project.manager)
    page = client.get(f"/projects/{spans_project.pk}/export/", {"labels": "majority"})
    assert page.status_code == 200
    html = page.content.decode()
    assert '<option value="conll"' in html
    assert '<option value="crowdlab"' not in html
    assert "[Ada Lovelace]PER visited [Acme]ORG Robotics in [London]LOC ." in html
    # The item's markup is text: escaped, never rendered.
    assert "[Tim &lt;b&gt;Berners-Lee&lt;/b&gt;]PER &amp; [Initech]ORG" in html
    assert "<b>Berners" not in html

    crowdlab = client.get(f"/projects/{spans_project.pk}/export/", {"labels": "crowdlab"})
    assert crowdlab.status_code == 200
    assert "labels=crowdlab scores one class per item" in crowdlab.content.decode()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_reviewer_downloads_conll_from_the_export_page(live_server, page, manager, artifacts):
    project = make_project(
        manager, name="People", labels=("PER", "LOC"), task_type=Project.TaskType.SPANS
    )
    annotators = [add_member(project, f"a{k}") for k in range(3)]
    add_member(project, "rita", Membership.Role.REVIEWER)
    [item] = make_items(project, {"p1": "Ada Lovelace lives in London ."})
    make_annotations(
        project,
        [(item, a, [(0, 12, "PER"), (22, 28, "LOC")]) for a in annotators[:2]]
        + [(item, annotators[2], [(0, 3, "PER")])],
    )
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/projects/{project.pk}/export/")
    page.select_option("select[name=format]", "conll")
    page.select_option("select[name=labels]", "majority")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview")).to_contain_text("[Ada Lovelace]PER lives in [London]LOC .")
    page.screenshot(path=str(artifacts / "export-spans-preview.png"), full_page=True)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download conll").click()
    body = open(info.value.path(), encoding="utf-8").read()
    assert body == (
        "# id = p1\nAda\tB-PER\nLovelace\tI-PER\nlives\tO\nin\tO\nLondon\tB-LOC\n.\tO\n\n"
    )
    assert info.value.suggested_filename.endswith(".conll")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "labelstudio", "conll"])
def test_a_span_project_without_items_or_annotations_exports_a_valid_file(manager, fmt):
    project = make_project(manager, labels=("PER",), task_type=Project.TaskType.SPANS)
    project.manager = manager
    empty = export(project, format=fmt)
    make_items(project, {"u1": "Ada wrote .", "u2": ""})
    unlabeled = export(project, format=fmt)
    if fmt == "parquet":
        assert pq.read_table(io.BytesIO(empty)).num_rows == 0
        table = pq.read_table(io.BytesIO(unlabeled))
        assert table.column("spans").to_pylist() == [None, None]
    elif fmt == "labelstudio":
        assert json.loads(empty) == []
        assert [task["data"]["external_id"] for task in json.loads(unlabeled)] == ["u1", "u2"]
    elif fmt == "jsonl":
        assert empty == b""
        assert [json.loads(line)["spans"] for line in unlabeled.splitlines()] == [None, None]
    elif fmt == "csv":
        assert empty.decode().splitlines()[0].startswith("external_id,text,spans,")
        assert len(unlabeled.decode().splitlines()) == 3
    else:  # CoNLL leaves items without a decision out
        assert empty == unlabeled == b""


def test_guideline_version_and_min_agreement_filter_span_items(spans_project):
    rows = jsonl(spans_project, labels="majority", min_agreement="0.5")
    # s1 0.556 and s5 (F1 1, 1, 0.8) pass, s2 0 and s3 (no annotations) do not, s4 is reviewed.
    assert sorted(rows) == ["s1", "s4", "s5"]
    assert rows["s5"]["agreement"] == pytest.approx((1 + 1 + 0.8) / 3, abs=1e-6)
    assert jsonl(spans_project, labels="majority", guideline_version="1").keys() == {
        "s1", "s2", "s4", "s5"
    }  # fmt: skip


# --- round trips through Concord's span importer ----------------------------------------------


def imported(project, body: bytes, fmt: str, **options) -> Project:
    target = make_project(
        project.manager, name=f"Copy {fmt}", labels=("PER", "ORG", "LOC"),
        task_type=Project.TaskType.SPANS,
    )  # fmt: skip
    batch = import_file(
        project=target, fileobj=io.BytesIO(body), filename=f"export.{fmt}", format=fmt,
        kind="items", options=options, user=project.manager,
    )  # fmt: skip
    assert batch.status == ImportBatch.Status.SUCCEEDED, batch.errors
    return target


def annotation_spans(project) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(item, annotator) -> the spans as (covered text, type)."""
    names = dict(project.labels.values_list("id", "name"))
    out = {}
    for external_id, data, annotator, spans in project.annotations.values_list(
        "item__external_id", "item__data", "annotator__username", "spans"
    ):
        out[external_id, annotator] = [(data["text"][s:e], names[label]) for s, e, label in spans]
    return out


def test_a_labelstudio_export_reimports_with_identical_spans(spans_project):
    body = export(spans_project, format="labelstudio", labels="majority")
    target = imported(spans_project, body, "labelstudio")
    assert annotation_spans(target) == annotation_spans(spans_project)
    assert dict(target.items.values_list("external_id", "data")) == dict(
        spans_project.items.values_list("external_id", "data")
    )


def test_a_conll_export_reimports_with_identical_spans(spans_project):
    body = export(spans_project, format="conll", labels="majority")
    target = imported(spans_project, body, "conll", annotator="consensus")
    exported = jsonl(spans_project, labels="majority")

    def tokens(text: str) -> tuple[str, ...]:  # the re-imported text is its tokens joined by " "
        return tuple(text[s:e] for s, e in token_bounds(text))

    again = {item: [(tokens(t), label) for t, label in spans]
             for (item, _), spans in annotation_spans(target).items()}  # fmt: skip
    assert again == {
        key: [(tokens(row["text"][s["start"] : s["end"]]), s["label"]) for s in row["spans"]]
        for key, row in exported.items()
        if row["spans"] is not None
    }


def test_other_data_fields_and_metadata_keep_their_types(manager):
    project = make_project(manager, labels=("PER",), task_type=Project.TaskType.SPANS)
    project.manager = manager
    make_items(
        project,
        {
            "m1": {"text": 'Ada said "hi" .', "lang": "en", "score": 1.5, "spans": 7},
            "m2": {"text": "Nobody .", "lang": "fr", "score": 2, "spans": 8},
        },
        metadata=lambda n: {"tags": {"n": n}, "flag": n == 0, "rank": n, "note": "ünï\n"},
    )
    rows = list(jsonl(project).values())
    assert list(rows[0])[9:] == [
        "lang", "score", "data.spans", "metadata.flag", "metadata.note", "metadata.rank",
        "metadata.tags",
    ]  # fmt: skip
    assert [r["text"] for r in rows] == ['Ada said "hi" .', "Nobody ."]
    assert [r["data.spans"] for r in rows] == [7, 8]
    assert [r["lang"] for r in rows] == ["en", "fr"]
    assert [r["score"] for r in rows] == [1.5, 2.0]
    assert [r["metadata.flag"] for r in rows] == [True, False]
    assert [r["metadata.note"] for r in rows] == ["ünï\n"] * 2
    assert [r["metadata.rank"] for r in rows] == [0, 1]
    assert [r["metadata.tags"] for r in rows] == [{"n": 0}, {"n": 1}]


def test_the_preview_of_annotation_rows_lists_each_annotations_spans(spans_project, client):
    client.force_login(spans_project.manager)
    page = client.get(f"/projects/{spans_project.pk}/export/", {"include": "annotations"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "4–12 PER, 21–34 LOC" in html  # s1 by ann3
    assert "0–12 ORG" in html  # s2 by ann2


def test_the_token_majority_computed_in_blocks_of_items_is_the_same(spans_project, monkeypatch):
    whole = export(spans_project, format="jsonl", labels="majority")
    monkeypatch.setattr(span_decisions, "MAJORITY_BLOCK", 2)
    assert export(spans_project, format="jsonl", labels="majority") == whole


def test_a_version_recorded_with_labels_only_diffs_as_items_without_spans(spans_project):
    ids = np.array(sorted(spans_project.items.values_list("id", flat=True)), dtype=np.int64)
    n = len(ids)
    old = LabelDecisions(
        item_ids=ids, label=np.full(n, -1, np.int16), source=np.zeros(n, np.int8),
        agreement=np.full(n, np.nan), n_annotations=np.zeros(n, np.int32),
        quality=np.full(n, np.nan), issue=np.zeros(n, bool), keep=np.ones(n, bool),
        class_names=["PER", "ORG", "LOC"],
    )  # fmt: skip
    before = DatasetVersion.objects.create(
        project=spans_project, params={}, format="csv", row_count=n,
        label_snapshot=label_snapshot(old),
    )  # fmt: skip
    api = APIClient()
    api.force_authenticate(spans_project.manager)
    response = api.get(f"/api/v1/projects/{spans_project.pk}/export/", {"labels": "majority"})
    b"".join(response.streaming_content)
    after = DatasetVersion.objects.get(pk=int(response["X-Concord-Dataset-Version"]))
    diff = dataset_diff(a=before, b=after)
    # Every item with a decision now differs from "no decision"; s3 has none in either.
    assert len(diff.item_ids) == 4 and diff.labels_a[0] is None
