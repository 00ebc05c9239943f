"""Importing span projects: JSON Lines (with the Prodigy/spaCy shape), CoNLL and Label Studio
NER exports; every span checked by the one rule, all or nothing."""

import io
import json
import random

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from seqeval.metrics.sequence_labeling import get_entities

from labeling.importing.jobs import import_file
from labeling.importing.parsers.rules import text_id
from labeling.models import Annotation, Item, Project
from labeling.spans import is_token_end, is_token_start, token_bounds
from tests.factories import make_project
from tests.labeling.importing.uploads import assert_rejected

pytestmark = pytest.mark.django_db
User = get_user_model()

ADA = "Ada Lovelace met Charles Babbage in London ."
GLOBEX = "Globex opened an office in Lyon on 3 May 2021 ."
NOTHING = "Nothing happened ."


@pytest.fixture
def project(manager):
    return make_project(
        manager, labels=("PER", "ORG", "LOC", "DATE"), task_type=Project.TaskType.SPANS
    )


def run(project, user, content, *, format="jsonl", kind="items", **options):
    if not isinstance(content, bytes):
        content = content.encode()
    return import_file(
        project=project,
        fileobj=io.BytesIO(content),
        filename=options.pop("filename", f"upload.{format}"),
        format=format,
        kind=kind,
        options=options,
        user=user,
    )


def jsonl(*rows) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def stored(project) -> dict:
    """(external_id, annotator) -> the annotation's spans, labels by name."""
    names = dict(project.labels.values_list("id", "name"))
    rows = Annotation.objects.filter(project=project).values_list(
        "item__external_id", "annotator__username", "spans", "label_id", "labels"
    )
    out = {}
    for external_id, annotator, spans, label_id, labels in rows:
        assert (label_id, labels) == (None, [])
        out[(external_id, annotator)] = [[s, e, names[label]] for s, e, label in spans]
    return out


def texts(project) -> dict:
    return dict(Item.objects.filter(project=project).values_list("external_id", "data__text"))


# --------------------------------------------------------------------------------------
# JSON Lines


def test_jsonl_items_then_annotations_store_the_spans_exactly(project, manager):
    items = jsonl(
        {"external_id": "a", "text": ADA, "source": "news"},
        {"external_id": "g", "text": GLOBEX, "source": "wire"},
    )
    assert run(project, manager, items, metadata_columns="source").status == "succeeded"
    annotations = jsonl(
        {
            "external_id": "a",
            "annotator": "alex",
            "spans": [
                {"start": 36, "end": 42, "label": "LOC"},
                {"start": 0, "end": 12, "label": "PER"},
                {"start": 17, "end": 32, "label": "PER"},
            ],
        },
        {"external_id": "a", "annotator": "bo", "spans": [[0, 3, "PER"], [17, 32, "PER"]]},
        {"external_id": "g", "annotator": "alex", "spans": []},
        {
            "external_id": "g",
            "annotator": "bo",
            "spans": [
                {"start": 0, "end": 6, "label": "ORG"},
                {"start": 35, "end": 45, "label": "DATE"},
            ],
        },
    )
    batch = run(project, manager, annotations, kind="annotations")
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 4
    assert stored(project) == {
        ("a", "alex"): [[0, 12, "PER"], [17, 32, "PER"], [36, 42, "LOC"]],  # sorted by start
        ("a", "bo"): [[0, 3, "PER"], [17, 32, "PER"]],
        ("g", "alex"): [],
        ("g", "bo"): [[0, 6, "ORG"], [35, 45, "DATE"]],
    }
    label = dict(project.labels.values_list("name", "id"))
    raw = Annotation.objects.get(item__external_id="g", annotator__username="bo").spans
    assert raw == [[0, 6, label["ORG"]], [35, 45, label["DATE"]]]
    assert Item.objects.get(project=project, external_id="a").metadata == {"source": "news"}
    # The queue counts the imported annotations.
    assert not User.objects.get(username="alex").is_active


def test_a_prodigy_file_imports_texts_and_spans_for_the_annotator_option(project, manager):
    prodigy = jsonl(
        {
            "text": ADA,
            "_input_hash": -1230431921,
            "_task_hash": 1715434271,
            "tokens": [{"text": "Ada", "start": 0, "end": 3, "id": 0, "ws": True}],
            "spans": [
                {"start": 0, "end": 12, "token_start": 0, "token_end": 1, "label": "PER"},
                {"start": 36, "end": 42, "token_start": 6, "token_end": 6, "label": "LOC"},
            ],
            "_view_id": "ner_manual",
            "answer": "accept",
            "meta": {"source": "news"},
        },
        {"text": NOTHING, "spans": [], "answer": "accept", "_input_hash": 17},
        # The same text again from another annotator: one item, a second annotation.
        {"text": ADA, "annotator": "kim", "spans": [{"start": 0, "end": 3, "label": "PER"}]},
        {"text": GLOBEX},  # a text without spans: an item only
        # A rejected answer: the item, but its spans are what the annotator called wrong.
        {"text": GLOBEX, "annotator": "kim", "answer": "reject",
         "spans": [{"start": 0, "end": 6, "label": "PER"}]},
    )  # fmt: skip
    batch = run(project, manager, prodigy, annotator="prodigy-anna")
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 3
    ada, nothing, globex = text_id(ADA), text_id(NOTHING), text_id(GLOBEX)
    assert len(ada) == 16 and ada == text_id(ADA) != nothing
    assert texts(project) == {ada: ADA, nothing: NOTHING, globex: GLOBEX}
    item = Item.objects.get(project=project, external_id=ada)
    # Prodigy's bookkeeping (_input_hash, tokens, answer, spans) is not the item's data.
    assert item.data == {"text": ADA, "meta": {"source": "news"}}
    assert stored(project) == {
        (ada, "prodigy-anna"): [[0, 12, "PER"], [36, 42, "LOC"]],
        (nothing, "prodigy-anna"): [],
        (ada, "kim"): [[0, 3, "PER"]],
    }
    assert "imported 3 rows, 3 annotations" in batch.message
    # A file of annotations finds the items by the same hash of their text.
    more = jsonl({"text": GLOBEX, "spans": [{"start": 27, "end": 31, "label": "LOC"}]})
    batch = run(project, manager, more, kind="annotations", annotator="lee")
    assert batch.status == "succeeded", batch.errors
    assert stored(project)[(globex, "lee")] == [[27, 31, "LOC"]]


def test_spans_without_any_annotator_are_a_row_error(project, manager):
    batch = run(project, manager, jsonl({"text": ADA, "spans": []}))
    assert_rejected(
        batch,
        project,
        [
            {
                "row": 1,
                "reason": "spans without an annotator: give the annotator option or an "
                "'annotator' field",
            }
        ],
    )


# --------------------------------------------------------------------------------------
# CoNLL

CONLL_IOB2 = """-DOCSTART- -X- -X- O

# id = ada-1
Ada NNP B-NP B-PER
Lovelace NNP I-NP I-PER
met VBD B-VP O
Charles NNP B-NP B-PER
Babbage NNP I-NP I-PER
in IN B-PP O
London NNP B-NP B-LOC
. . O O

The DT B-NP O
U.S. NNP I-NP B-LOC
team NN I-NP O
didn't VBD B-VP O
meet VB I-VP O
Globex NNP B-NP B-ORG
Acme NNP I-NP B-ORG
Robotics NNP I-NP I-ORG
. . O O

-DOCSTART- -X- -X- O

Nothing NN B-NP O
happened VBD B-VP O
. . O O
"""
US_TEXT = "The U.S. team didn't meet Globex Acme Robotics ."
US_SPANS = [[4, 8, "LOC"], [26, 32, "ORG"], [33, 46, "ORG"]]


def conll_tags(content: str) -> list[list[str]]:
    """The files' tag sequences, sentence by sentence (as seqeval reads them)."""
    sentences, current = [], []
    for line in content.splitlines():
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-" or line.startswith("# "):
            if current:
                sentences.append(current)
            current = []
            continue
        current.append(fields[-1])
    return sentences + ([current] if current else [])


def test_a_conll_iob2_file_with_docstart_and_id_lines_imports_items_and_spans(project, manager):
    batch = run(project, manager, CONLL_IOB2, format="conll", annotator="conll-gold")
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 3
    # `# id =` names the first sentence; the others are numbered in file order.
    assert texts(project) == {"ada-1": ADA, "s2": US_TEXT, "s3": NOTHING}
    assert stored(project) == {
        ("ada-1", "conll-gold"): [[0, 12, "PER"], [17, 32, "PER"], [36, 42, "LOC"]],
        ("s2", "conll-gold"): US_SPANS,
        ("s3", "conll-gold"): [],
    }
    # "U.S." and "didn't" are several contract tokens; the span still covers whole tokens.
    bounds = token_bounds(US_TEXT)
    assert [US_TEXT[s:e] for s, e in bounds][1:5] == ["U", ".", "S", "."]
    assert (4, 5) in bounds and (7, 8) in bounds
    # seqeval reads the same tags to the same entities (token ranges).
    for sentence, (external_id, text) in zip(
        conll_tags(CONLL_IOB2), [("ada-1", ADA), ("s2", US_TEXT)], strict=False
    ):
        starts = [0]
        for token in text.split(" ")[:-1]:
            starts.append(starts[-1] + len(token) + 1)
        ends = [start + len(token) for start, token in zip(starts, text.split(" "), strict=True)]
        expected = [[starts[a], ends[b], kind] for kind, a, b in get_entities(sentence)]
        assert stored(project)[(external_id, "conll-gold")] == expected


@pytest.mark.parametrize(
    "scheme, tags",
    [
        # IOB1: B- only between two adjacent entities of one type.
        ("iob1", ["O", "I-LOC", "O", "O", "O", "I-ORG", "B-ORG", "I-ORG", "O"]),
        # IO: no B- at all; a bare label is I- too.
        ("io", ["O", "LOC", "O", "O", "O", "I-ORG", "O", "ORG", "O"]),
        ("iob2", ["O", "B-LOC", "O", "O", "O", "B-ORG", "B-ORG", "I-ORG", "O"]),
    ],
)
def test_iob1_io_and_iob2_tags_give_spans_on_the_same_rule(project, manager, scheme, tags):
    tokens = US_TEXT.split(" ")
    content = "".join(f"{token}\t{tag}\n" for token, tag in zip(tokens, tags, strict=True))
    batch = run(project, manager, content, format="conll", annotator="tagger")
    assert batch.status == "succeeded", batch.errors
    expected = US_SPANS if scheme != "io" else [[4, 8, "LOC"], [26, 32, "ORG"], [38, 46, "ORG"]]
    assert stored(project) == {("s1", "tagger"): expected}


def test_a_conll_span_over_tokens_the_contract_splits_further_stays_aligned(project, manager):
    content = "Shaquille B-PER\nO'Neal I-PER\nJr. I-PER\ndidn't O\ncome O\nto O\nU.S. B-LOC\n"
    batch = run(project, manager, content, format="conll", annotator="tagger")
    assert batch.status == "succeeded", batch.errors
    text = "Shaquille O'Neal Jr. didn't come to U.S."
    assert texts(project) == {"s1": text}
    assert stored(project) == {("s1", "tagger"): [[0, 20, "PER"], [36, 40, "LOC"]]}
    assert [text[s:e] for s, e in token_bounds(text)][:7] == [
        "Shaquille", "O", "'", "Neal", "Jr", ".", "didn",
    ]  # fmt: skip


def test_a_conll_file_without_an_annotator_imports_items_only(project, manager):
    batch = run(project, manager, CONLL_IOB2, format="conll")
    assert batch.status == "succeeded", batch.errors
    assert texts(project) == {"ada-1": ADA, "s2": US_TEXT, "s3": NOTHING}
    assert not Annotation.objects.exists()


def test_conll_annotations_label_existing_items_with_the_same_text(project, manager):
    assert run(project, manager, CONLL_IOB2, format="conll").status == "succeeded"
    again = CONLL_IOB2.replace("B-PER\nLovelace NNP I-NP I-PER", "B-PER\nLovelace NNP I-NP O")
    batch = run(project, manager, again, format="conll", kind="annotations", annotator="rui")
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 3
    assert stored(project)[("ada-1", "rui")] == [[0, 3, "PER"], [17, 32, "PER"], [36, 42, "LOC"]]
    assert stored(project)[("s2", "rui")] == US_SPANS


def test_conll_annotations_for_an_item_with_another_text_import_nothing(project, manager):
    assert run(project, manager, CONLL_IOB2, format="conll").status == "succeeded"
    changed = CONLL_IOB2.replace("London NNP", "Paris NNP")
    batch = run(project, manager, changed, format="conll", kind="annotations", annotator="rui")
    assert_rejected(
        batch,
        project,
        [
            {
                "row": 3,
                "reason": f"item 'ada-1' exists with another text: {ADA!r} in the project, "
                "'Ada Lovelace met Charles Babbage in Paris .' in the file; its spans would not "
                "fit",
            }
        ],
    )
    assert not Annotation.objects.exists()


def test_conll_annotations_need_an_annotator_and_items_that_exist(project, manager):
    with pytest.raises(Exception, match="give the annotator"):
        run(project, manager, CONLL_IOB2, format="conll", kind="annotations")
    batch = run(project, manager, CONLL_IOB2, format="conll", kind="annotations", annotator="r")
    assert_rejected(
        batch,
        project,
        [
            {"row": 3, "reason": "unknown item 'ada-1'"},
            {"row": 13, "reason": "unknown item 's2'"},
            {"row": 25, "reason": "unknown item 's3'"},
        ],
    )


def test_a_bad_conll_tag_names_its_line_and_sentence(project, manager):
    content = "Ada B-PER\nLovelace I-PER\n\nGlobex B-MISC\nsaid O\n\nLyon E-LOC\n"
    batch = run(project, manager, content, format="conll", annotator="t")
    assert_rejected(
        batch,
        project,
        [
            {"row": 4, "reason": "sentence 's2': unknown label 'MISC' in tag 'B-MISC'"},
            {
                "row": 7,
                "reason": "sentence 's3': tag 'E-LOC' is not O, B-<label> or I-<label> "
                "(IOB2, IOB1 or IO)",
            },
        ],
    )


def test_conll_is_refused_for_a_classification_project(manager):
    project = make_project(manager, name="Sentiment")
    batch = run(project, manager, CONLL_IOB2, format="conll", annotator="x")
    assert batch.status == "failed"
    assert batch.errors == [
        {
            "row": None,
            "reason": "A CoNLL file holds entity spans: import it into a project of task type "
            "spans.",
        }
    ]


# --------------------------------------------------------------------------------------
# Label Studio

EMOJI_TEXT = "Hey 🙂 Ada Lovelace visited 😀😀 New Delhi !"


def ner(result_id, start, end, text, label, *, origin=None):
    result = {
        "id": result_id,
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "value": {"start": start, "end": end, "text": text, "labels": [label]},
    }
    if origin:
        result["origin"] = origin
    return result


def label_studio_export() -> list[dict]:
    """What Label Studio 1.x writes with Export -> JSON for a NER project (two annotators per
    task, a model's prediction, a cancelled annotation, an emoji before entities)."""
    return [
        {
            "id": 1,
            "annotations": [
                {
                    "id": 11,
                    "completed_by": 1,
                    "result": [
                        ner("a1", 0, 12, "Ada Lovelace", "PER"),
                        ner("a2", 17, 32, "Charles Babbage", "PER"),
                        ner("a3", 36, 42, "London", "LOC"),
                    ],
                    "was_cancelled": False,
                    "ground_truth": False,
                    "created_at": "2024-05-02T09:12:03.123456Z",
                    "updated_at": "2024-05-02T09:12:03.123456Z",
                    "lead_time": 12.4,
                    "prediction": {},
                    "result_count": 0,
                    "task": 1,
                    "project": 3,
                    "parent_prediction": None,
                    "parent_annotation": None,
                },
                {
                    "id": 12,
                    "completed_by": {"id": 2, "email": "bo@example.org", "first_name": "Bo"},
                    "result": [
                        ner("b1", 0, 12, "Ada Lovelace", "PER"),
                        ner("b2", 36, 42, "London", "ORG"),
                    ],
                    "was_cancelled": False,
                    "lead_time": 8.0,
                    "task": 1,
                },
            ],
            "file_upload": "news.json",
            "drafts": [],
            "predictions": [
                {
                    "id": 5,
                    "model_version": "spacy-en_core_web_sm",
                    "score": 0.91,
                    "result": [ner("p1", 0, 3, "Ada", "LOC")],
                }
            ],
            "data": {"text": ADA, "source": "news"},
            "meta": {},
            "created_at": "2024-05-01T10:00:00.000000Z",
            "updated_at": "2024-05-02T09:12:03.000000Z",
            "inner_id": 1,
            "total_annotations": 2,
            "cancelled_annotations": 0,
            "total_predictions": 1,
            "project": 3,
        },
        {
            "id": 2,
            "annotations": [
                # Code points, as Label Studio 1.23 counts them.
                {
                    "id": 21,
                    "completed_by": 1,
                    "result": [
                        ner("c1", 6, 18, "Ada Lovelace", "PER"),
                        ner("c2", 30, 39, "New Delhi", "LOC"),
                    ],
                    "was_cancelled": False,
                },
                # UTF-16 code units, as other JavaScript tools count them: each emoji is two.
                {
                    "id": 22,
                    "completed_by": {"id": 2, "email": "bo@example.org"},
                    "result": [
                        ner("d1", 7, 19, "Ada Lovelace", "PER"),
                        ner("d2", 33, 42, "New Delhi", "LOC"),
                    ],
                    "was_cancelled": False,
                },
                {
                    "id": 23,
                    "completed_by": 3,
                    "result": [ner("e1", 6, 9, "Ada", "LOC")],
                    "was_cancelled": True,
                },
            ],
            "predictions": [],
            "data": {"text": EMOJI_TEXT, "source": "chat"},
            "meta": {},
        },
        {
            "id": 3,
            "annotations": [
                {"id": 31, "completed_by": 1, "result": [], "was_cancelled": False},
                {
                    "id": 32,
                    "completed_by": {"id": 2, "email": "bo@example.org"},
                    "result": [
                        ner("f1", 0, 6, "Globex", "ORG"),
                        ner("f2", 35, 45, "3 May 2021", "DATE"),
                    ],
                    "was_cancelled": False,
                },
            ],
            "predictions": [],
            "data": {"text": GLOBEX, "source": "wire"},
            "meta": {},
        },
    ]


def test_a_label_studio_ner_export_imports_each_annotators_spans(project, manager):
    content = json.dumps(label_studio_export(), ensure_ascii=False, indent=2)
    batch = run(project, manager, content, format="labelstudio", metadata_columns="source")
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 3
    assert texts(project) == {"1": ADA, "2": EMOJI_TEXT, "3": GLOBEX}
    assert Item.objects.get(project=project, external_id="2").metadata == {"source": "chat"}
    # Predictions are not annotations; the cancelled annotation (by labelstudio-3) is skipped;
    # UTF-16 offsets are converted to the same code points.
    assert stored(project) == {
        ("1", "labelstudio-1"): [[0, 12, "PER"], [17, 32, "PER"], [36, 42, "LOC"]],
        ("1", "bo@example.org"): [[0, 12, "PER"], [36, 42, "ORG"]],
        ("2", "labelstudio-1"): [[6, 18, "PER"], [30, 39, "LOC"]],
        ("2", "bo@example.org"): [[6, 18, "PER"], [30, 39, "LOC"]],
        ("3", "labelstudio-1"): [],
        ("3", "bo@example.org"): [[0, 6, "ORG"], [35, 45, "DATE"]],
    }
    assert not User.objects.filter(username="labelstudio-3").exists()


def test_a_label_studio_span_that_matches_neither_way_imports_nothing(project, manager):
    tasks = label_studio_export()
    tasks[1]["annotations"][1]["result"][1] = ner("d2", 31, 40, "New Delhi", "LOC")
    batch = run(project, manager, json.dumps(tasks), format="labelstudio")
    assert_rejected(
        batch,
        project,
        [
            {
                "row": 2,
                "reason": "item '2', annotation by 'bo@example.org': the span [31, 40) 'LOC' "
                "does not select 'New Delhi' in the text, as code points or as UTF-16 code units",
            }
        ],
    )


def test_label_studio_annotations_attach_to_existing_items(project, manager):
    tasks = label_studio_export()
    items = [{**task, "annotations": []} for task in tasks]
    assert run(project, manager, json.dumps(items), format="labelstudio").status == "succeeded"
    batch = run(project, manager, json.dumps(tasks), format="labelstudio", kind="annotations")
    assert batch.status == "succeeded", batch.errors
    assert batch.rows == 6
    assert stored(project)[("2", "bo@example.org")] == [[6, 18, "PER"], [30, 39, "LOC"]]


# --------------------------------------------------------------------------------------
# The one rule, all or nothing


def annotations_file(*spans_per_row) -> str:
    return jsonl(
        *(
            {"external_id": external_id, "annotator": "alex", "spans": spans}
            for external_id, spans in spans_per_row
        )
    )


@pytest.fixture
def items(project, manager):
    content = jsonl({"external_id": "a", "text": ADA}, {"external_id": "g", "text": GLOBEX})
    assert run(project, manager, content).status == "succeeded"


def test_the_boundary_check_spans_clean_uses_agrees_with_the_tokenizer():
    # spans_clean checks each span's two ends from their neighbours (so an import's cost does
    # not grow with the text); they must be exactly the tokenizer's token edges.
    rng = random.Random(15)
    alphabet = "ab_9 \t\n.,'-éß日本🙂\u0301\u00a0\u2028٣Ⅻ$"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        bounds = token_bounds(text)
        starts, ends = {s for s, _ in bounds}, {e for _, e in bounds}
        for index in range(-1, len(text) + 2):
            assert is_token_start(text, index) == (index in starts), (text, index)
            assert is_token_end(text, index) == (index in ends), (text, index)


def test_a_file_with_one_bad_span_imports_nothing_and_names_the_row_and_span(
    project, manager, items
):
    content = annotations_file(
        ("a", [[0, 12, "PER"]]),
        ("g", [[0, 6, "ORG"], [27, 33, "LOC"]]),  # "Lyon o": ends inside a word
    )
    batch = run(project, manager, content, kind="annotations")
    assert_rejected(
        batch,
        project,
        [
            {
                "row": 2,
                "reason": "item 'g': Span 2 [27, 33) 'Lyon o': does not fall on token boundaries "
                "(a span covers whole words and marks).",
            }
        ],
    )
    assert not Annotation.objects.exists()
    assert not User.objects.filter(username="alex").exists()


def test_a_misaligned_span_in_a_file_of_items_is_a_row_error(project, manager):
    content = jsonl({"external_id": "a", "text": ADA, "spans": [[1, 12, "PER"]]})
    batch = run(project, manager, content, annotator="alex")
    assert_rejected(
        batch,
        project,
        [
            {
                "row": 1,
                "reason": "item 'a': Span 1 [1, 12) 'da Lovelace': does not fall on token "
                "boundaries (a span covers whole words and marks).",
            }
        ],
    )


def test_overlapping_spans_are_a_row_error(project, manager, items):
    content = annotations_file(("a", [[0, 12, "PER"], [4, 16, "PER"]]))
    batch = run(project, manager, content, kind="annotations")
    assert_rejected(
        batch,
        project,
        [
            {
                "row": 1,
                "reason": "item 'a': Spans [0, 12) 'Ada Lovelace' and [4, 16) 'Lovelace met' "
                "overlap; spans may not overlap.",
            }
        ],
    )


def test_an_unknown_label_is_a_row_error(project, manager, items):
    label_ids = list(project.labels.values_list("id", flat=True))
    content = annotations_file(("a", [[0, 12, "PERSON"]]), ("g", [[0, 6, label_ids[1]]]))
    batch = run(project, manager, content, kind="annotations")
    assert_rejected(
        batch,
        project,
        [
            {
                "row": 1,
                "reason": "item 'a': Span 1 [0, 12) 'Ada Lovelace': unknown label 'PERSON'; "
                "the labels are: PER, ORG, LOC, DATE.",
            },
            {
                "row": 2,
                "reason": f"item 'g': Span 1: give the label by name, not {label_ids[1]}.",
            },
        ],
    )


def test_the_same_annotator_twice_and_an_unknown_item_are_row_errors(project, manager, items):
    content = annotations_file(("a", []), ("a", [[0, 3, "PER"]]), ("zz", []))
    batch = run(project, manager, content, kind="annotations")
    assert_rejected(
        batch,
        project,
        [
            {"row": 2, "reason": "the same annotator labels the same item twice in the file"},
            {"row": 3, "reason": "unknown item 'zz'"},
        ],
    )


def test_a_csv_file_of_annotations_is_refused_for_a_span_project(project, manager, items):
    batch = run(project, manager, "external_id,annotator,label\na,x,PER\n", format="csv",
                kind="annotations")  # fmt: skip
    assert batch.status == "failed"
    assert batch.errors[0]["reason"].startswith("Spans come in JSON Lines, CoNLL or Label Studio")


def test_existing_items_kept_by_skip_must_have_the_files_text(project, manager, items):
    content = jsonl(
        {"external_id": "a", "text": ADA, "spans": [[0, 12, "PER"]]},
        {"external_id": "g", "text": "Globex closed .", "spans": [[0, 6, "ORG"]]},
    )
    batch = run(project, manager, content, annotator="alex", on_duplicate="skip")
    assert batch.status == "failed"
    assert [e["row"] for e in batch.errors] == [2]
    assert "item 'g' exists with another text" in batch.errors[0]["reason"]
    content = jsonl({"external_id": "a", "text": ADA, "spans": [[0, 12, "PER"]]})
    batch = run(project, manager, content, annotator="alex", on_duplicate="skip")
    assert batch.status == "succeeded", batch.errors
    assert stored(project) == {("a", "alex"): [[0, 12, "PER"]]}


def test_on_duplicate_update_replaces_an_annotations_spans(project, manager, items):
    run(project, manager, annotations_file(("a", [[0, 12, "PER"]])), kind="annotations")
    content = annotations_file(("a", [[0, 3, "PER"], [36, 42, "LOC"]]))
    batch = run(project, manager, content, kind="annotations", on_duplicate="update")
    assert batch.status == "succeeded", batch.errors
    assert stored(project) == {("a", "alex"): [[0, 3, "PER"], [36, 42, "LOC"]]}


def test_an_update_may_not_change_the_text_under_marked_spans(project, manager, items):
    run(project, manager, annotations_file(("a", [[0, 12, "PER"]])), kind="annotations")
    changed = jsonl({"external_id": "a", "text": "Ada King met Charles Babbage ."})
    batch = run(project, manager, changed, on_duplicate="update")
    assert batch.status == "failed"
    assert "has spans marked on its text, so its text cannot change" in batch.errors[0]["reason"]
    assert project.items.get(external_id="a").data["text"] == ADA
    same_text = jsonl({"external_id": "a", "text": ADA, "metadata": {"desk": "science"}})
    batch = run(project, manager, same_text, on_duplicate="update")
    assert batch.status == "succeeded", batch.errors
    assert project.items.get(external_id="a").metadata == {"desk": "science"}


# --------------------------------------------------------------------------------------
# One declaration: the API, the command and the page take the same options


def test_the_api_takes_a_conll_file_with_its_annotator(project, manager, api_client_for):
    upload = io.BytesIO(CONLL_IOB2.encode())
    upload.name = "news.conll"
    response = api_client_for(manager).post(
        f"/api/v1/projects/{project.pk}/imports/",
        {"file": upload, "format": "conll", "kind": "items", "annotator": "gold"},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert stored(project)[("s2", "gold")] == US_SPANS
    bad = io.BytesIO(b"x O\n")
    bad.name = "x.conll"
    response = api_client_for(manager).post(
        f"/api/v1/projects/{project.pk}/imports/",
        {"file": bad, "format": "conll", "kind": "items", "annotator": "not a name!"},
        format="multipart",
    )
    assert response.status_code == 400
    assert "annotator" in response.json()


def test_the_command_takes_the_annotator_option(project, manager, tmp_path):
    path = tmp_path / "news.conll"
    path.write_text(CONLL_IOB2)
    out = io.StringIO()
    call_command(
        "import_items", project.pk, str(path), "--format", "conll", "--annotator", "gold",
        stdout=out,
    )  # fmt: skip
    assert "imported 3 rows, 3 annotations" in out.getvalue()
    assert stored(project)[("ada-1", "gold")] == [[0, 12, "PER"], [17, 32, "PER"], [36, 42, "LOC"]]
    with pytest.raises(CommandError, match="annotator: A CoNLL file of annotations"):
        call_command("import_items", project.pk, str(path), "--format", "conll", "--kind",
                     "annotations")  # fmt: skip


def test_the_import_page_offers_conll_and_the_annotator_field(project, manager, client):
    client.force_login(manager)
    page = client.get(f"/projects/{project.pk}/imports/").content.decode()
    assert '<option value="conll">CoNLL (IOB2, IOB1, IO)</option>' in page
    assert page.count('name="annotator"') == 1  # beside the format, not among the columns
    assert "a Prodigy or\n       spaCy file imports as is" in page
    assert "<code>PER</code>, <code>ORG</code>, <code>LOC</code>, <code>DATE</code>" in page
    classification = make_project(manager, name="Sentiment")
    page = client.get(f"/projects/{classification.pk}/imports/").content.decode()
    assert 'name="annotator"' not in page  # classification files name their annotators
    upload = io.BytesIO(CONLL_IOB2.encode())
    upload.name = "news.conll"
    response = client.post(
        f"/projects/{project.pk}/imports/",
        {"file": upload, "format": "conll", "kind": "items", "annotator": "gold"},
        follow=True,
    )
    assert response.status_code == 200
    assert stored(project)[("s3", "gold")] == []
