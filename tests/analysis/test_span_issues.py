"""Likely span errors: token predictions uploaded for a span project, the label-issues job on
span projects (uploaded token probabilities or the built-in CRF) equal to bare
cleanlab.token_classification, and the issues API's span rows."""

import random

import numpy as np
import pytest
from cleanlab.token_classification.filter import find_label_issues
from cleanlab.token_classification.rank import get_label_quality_scores
from django.core.files.uploadedfile import SimpleUploadedFile

from analysis import loaders
from analysis.metrics.span_issues import find_span_issues
from analysis.models import AnalysisRun, AnnotatorScore, LabelIssue, PredictionSet
from analysis.services.predictions import token_predictions_upload
from analysis.tasks import run_label_issues
from labeling import demo_spans
from labeling.models import Membership, Project
from labeling.spans import token_bounds
from tests.analysis.test_label_issues_job import run_to_end
from tests.factories import add_member, make_annotations, make_items, make_project

TYPES = list(demo_spans.TYPES)  # PER, ORG, LOC, DATE: classes 1..4, O = 0
CLASSES = ["O", *TYPES]
CAREFUL, SHIFTER, CONFUSER, MISSER = demo_spans.HABITS


# ---------------------------------------------------------------------------------------------
# Data: demo sentences, simulated annotators, model probabilities near the truth


def token_classes(text: str, spans) -> list[int]:
    """Each token's class (0 = O, 1 + type), by looking at every token: no span_tags."""
    classes = [0] * len(token_bounds(text))
    for start, end, kind in spans:
        for k, (a, b) in enumerate(token_bounds(text)):
            if a >= start and b <= end:
                classes[k] = TYPES.index(kind) + 1
    return classes


def near(classes: list[int], rng: np.random.Generator, *, strength=12.0) -> np.ndarray:
    """(n_tokens, 5) probabilities, each row a Dirichlet draw leaning to the token's class."""
    alpha = np.full((len(classes), len(CLASSES)), 0.4)
    alpha[np.arange(len(classes)), classes] += strength
    return np.array([rng.dirichlet(row) for row in alpha]).reshape(len(classes), len(CLASSES))


def iob2(text: str, spans) -> list[int]:
    """Each token's IOB2 tag code (0 = O, 2t + 1 = B-type t, 2t + 2 = I-type t)."""
    bounds = token_bounds(text)
    tags = [0] * len(bounds)
    for start, end, kind in spans:
        inside = [k for k, (a, b) in enumerate(bounds) if a >= start and b <= end]
        t = TYPES.index(kind)
        tags[inside[0]] = 2 * t + 1
        for k in inside[1:]:
            tags[k] = 2 * t + 2
    return tags


def simulate(n, habits, *, per_item=1, seed=0, rate=0.35):
    """n demo sentences and [(sentence, annotator, spans)] by `per_item` of the annotators."""
    sentences = demo_spans.sentences(n, seed=seed)
    rng = random.Random(seed + 1)
    annotations = []
    for i, sentence in enumerate(sentences):
        for a in sorted(rng.sample(range(len(habits)), per_item)):
            annotations.append((i, a, demo_spans.annotate(sentence, habits[a], rng, rate=rate)))
    return sentences, annotations


def span_project(manager, sentences, annotations, names):
    project = make_project(manager, labels=TYPES, task_type=Project.TaskType.SPANS, name="ner")
    items = make_items(project, [s.text for s in sentences], prefix="s")
    users = [add_member(project, name) for name in names]
    make_annotations(project, [(items[i], users[a], spans) for i, a, spans in annotations])
    return project


def upload_body(model, probabilities, classes=CLASSES):
    return {
        "model": model,
        "classes": classes,
        "rows": [
            {"external_id": f"s{i}", "probabilities": p.tolist()}
            for i, p in enumerate(probabilities)
        ],
    }


def predictions_url(project):
    return f"/api/v1/projects/{project.pk}/predictions/"


@pytest.fixture
def reviewer_client(api_client_for):
    return lambda project: api_client_for(add_member(project, "rae", Membership.Role.REVIEWER))


def issue_rows(client, project) -> list[dict]:
    answer = client.get(f"/api/v1/projects/{project.pk}/issues/?page_size=1000").json()
    return answer["results"]


# ---------------------------------------------------------------------------------------------
# Uploading token predictions


@pytest.fixture
def small(manager):
    """Two sentences, one annotated: 's0' has 7 tokens, 's1' has 4."""
    project = make_project(manager, labels=TYPES, task_type=Project.TaskType.SPANS, name="ner")
    make_items(project, ["Ada Lovelace met Alan in London .", "Nothing happened here ."])
    return project


def uniform(n_tokens):
    return np.full((n_tokens, len(CLASSES)), 1 / len(CLASSES))


@pytest.mark.django_db
def test_token_predictions_are_stored_per_item_with_columns_in_label_order(small, reviewer_client):
    client = reviewer_client(small)
    first = np.tile([0.6, 0.1, 0.1, 0.1, 0.1], (7, 1))
    second = np.tile([0.1, 0.2, 0.3, 0.3, 0.1], (4, 1))
    body = {  # another column order than the project's: LOC first, O last
        "model": "tagger",
        "classes": ["LOC", "PER", "ORG", "DATE", "O"],
        "rows": [
            {"external_id": "e0", "probabilities": first.tolist()},
            {"external_id": "e1", "probabilities": second.tolist()},
        ],
    }
    response = client.post(predictions_url(small), body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json() == {"model": "tagger", "classes": CLASSES, "rows": 2}
    stored = loaders.token_predictions(project=small, model="tagger")
    # Uploaded columns LOC, PER, ORG, DATE, O -> stored O, PER, ORG, LOC, DATE.
    assert stored.of(0).tolist() == [[0.1, 0.1, 0.1, 0.6, 0.1]] * 7
    assert stored.of(1).tolist() == [[0.1, 0.2, 0.3, 0.1, 0.3]] * 4

    body["rows"] = body["rows"][1:]  # a re-upload replaces the model's rows
    assert client.post(predictions_url(small), body, format="json").status_code == 201
    again = loaders.token_predictions(project=small, model="tagger")
    assert len(again.item_ids) == 1 and PredictionSet.objects.get(model="tagger").n_rows == 1


@pytest.mark.django_db
def test_a_row_with_another_token_count_than_its_item_is_named_and_nothing_is_stored(
    small, reviewer_client
):
    body = {
        "model": "tagger",
        "classes": CLASSES,
        "rows": [
            {"external_id": "e0", "probabilities": uniform(6).tolist()},  # 7 tokens
            {"external_id": "e1", "probabilities": uniform(4).tolist()},
            {"external_id": "e9", "probabilities": uniform(4).tolist()},  # no such item
            {"external_id": "e1", "probabilities": uniform(4).tolist()},  # repeated
        ],
    }
    response = reviewer_client(small).post(predictions_url(small), body, format="json")
    assert response.status_code == 400
    answer = response.json()
    assert answer["detail"] == "3 rows are invalid; nothing was stored."
    assert answer["errors"] == [
        {"row": 1, "reason": "The item has 7 tokens; give one row of probabilities per token "
                             "(got 6)."},
        {"row": 3, "reason": "No item with external_id 'e9' in this project."},
        {"row": 4, "reason": "external_id 'e1' repeats row 2."},
    ]  # fmt: skip
    assert not PredictionSet.objects.exists()


@pytest.mark.django_db
def test_token_rows_must_be_lists_of_probabilities_summing_to_one(small, reviewer_client):
    off = uniform(7)
    off[2] = [0.5, 0.5, 0.5, 0.0, 0.0]
    body = {
        "model": "tagger",
        "classes": CLASSES,
        "rows": [
            {"external_id": "e0", "probabilities": off.tolist()},
            {"external_id": "e1", "probabilities": [[0.2] * 5, [0.5, 0.5]]},  # ragged
        ],
    }
    answer = reviewer_client(small).post(predictions_url(small), body, format="json").json()
    assert [(e["row"], e["reason"]) for e in answer["errors"]] == [
        (1, "The probabilities of token 3 sum to 1.5, not 1 (tolerance 1e-3)."),
        (2, "Give one list of 5 probabilities per token. Probabilities must be numbers."),
    ]


@pytest.mark.django_db
def test_classes_must_be_O_and_exactly_the_entity_types(small, reviewer_client):
    client = reviewer_client(small)
    for classes, reason in [
        (["O", "PER", "ORG", "LOC", "MISC"], "unknown classes: MISC; missing classes: DATE"),
        (TYPES, "missing classes: O"),
    ]:
        body = {"model": "tagger", "classes": classes, "rows": []}
        response = client.post(predictions_url(small), body, format="json")
        assert response.status_code == 400
        assert response.json()["classes"] == [
            f"Classes must be exactly 'O' and the project's entity types ({reason})."
        ]
    assert not PredictionSet.objects.exists()


@pytest.mark.django_db
def test_a_csv_upload_to_a_span_project_is_refused(small, reviewer_client):
    csv = b"external_id,O,PER,ORG,LOC,DATE\ne1,1,0,0,0,0\n"
    response = reviewer_client(small).post(
        predictions_url(small),
        {"model": "csv", "file": SimpleUploadedFile("p.csv", csv, "text/csv")},
        format="multipart",
    )
    assert response.status_code == 400
    assert "span project takes token probabilities as JSON" in response.json()["detail"]
    assert not PredictionSet.objects.exists()


# ---------------------------------------------------------------------------------------------
# The job with uploaded token probabilities: bare cleanlab's flags and scores


def bare_cleanlab(sentences, annotations, probabilities):
    """Given classes per sentence (its one annotation) and bare cleanlab's answer."""
    labels = [[] for _ in sentences]
    for i, _, spans in annotations:
        labels[i] = token_classes(sentences[i].text, spans)
    flagged = find_label_issues(labels, probabilities, n_jobs=1)
    scores, _ = get_label_quality_scores(labels, probabilities)
    return labels, flagged, scores


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_uploaded_token_probabilities_give_the_flags_and_scores_of_bare_cleanlab(
    manager, reviewer_client, celery_worker
):
    sentences, annotations = simulate(200, [CAREFUL, SHIFTER, CONFUSER, MISSER], seed=3)
    project = span_project(manager, sentences, annotations, ["cara", "sam", "cole", "mia"])
    rng = np.random.default_rng(7)
    probabilities = [near(token_classes(s.text, s.spans), rng) for s in sentences]
    client = reviewer_client(project)
    upload = upload_body("tagger", probabilities)
    assert client.post(predictions_url(project), upload, format="json").status_code == 201

    run = run_to_end(client, project, {"model": "tagger"}, celery_worker)
    labels, flagged, scores = bare_cleanlab(sentences, annotations, probabilities)
    result = run["result"]
    assert (result["method"], result["model"], result["given"]) == (
        "token_confident_learning", "tagger", "annotation"
    )  # fmt: skip
    flagged_items = {i for i, _ in flagged}
    assert (result["n_items"], result["n_flagged_tokens"], result["n_issues"]) == (
        200, len(flagged), len(flagged_items)
    )  # fmt: skip
    assert result["n_unjudged"] == 0 and result["n_tokens"] == sum(map(len, labels))

    rows = issue_rows(client, project)
    assert len(rows) == 200
    by_item = {int(r["external_id"][1:]): r for r in rows}
    # Item scores: exactly cleanlab's numbers, ranked lowest first.
    assert [by_item[i]["quality"] for i in range(200)] == scores.tolist()
    assert [r["rank"] for r in rows] == list(range(1, 201))
    assert [r["quality"] for r in rows] == sorted(scores.tolist())
    # Flagged tokens: exactly cleanlab's, as character offsets with given and suggested types.
    names = [None, *TYPES]
    expected = set()
    for i, j in flagged:
        start, end = token_bounds(sentences[i].text)[j]
        suggested = names[int(probabilities[i][j].argmax())]
        expected.add((i, start, end, names[labels[i][j]], suggested))
    got = {
        (i, t["start"], t["end"], t["given"], t["suggested"])
        for i, r in by_item.items()
        for t in r["flagged_tokens"]
    }
    assert got == expected and len(flagged) > 20
    assert all(by_item[i]["is_issue"] == (i in flagged_items) for i in range(200))
    # The spans judged are the annotation's, by label name.
    for i, _, spans in annotations[:20]:
        assert by_item[i]["given_spans"] == [
            {"start": s, "end": e, "label": kind} for s, e, kind in spans
        ]
    assert by_item[0]["given_label"] is None and by_item[0]["suggested_label"] is None
    # Per annotator: a single answer per item is its own consensus; the model's view differs.
    scores_by_name = {
        s.annotator.username: s for s in AnnotatorScore.objects.filter(run_id=run["id"])
    }
    assert {name: s.agreement for name, s in scores_by_name.items()} == dict.fromkeys(
        ["cara", "sam", "cole", "mia"], 1.0
    )
    model = {name: s.extra["model_agreement"] for name, s in scores_by_name.items()}
    assert model["cara"] > max(model["sam"], model["cole"], model["mia"])


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_crowd_is_judged_by_its_token_majority_and_each_annotator_against_it(
    manager, reviewer_client, celery_worker
):
    habits = [CAREFUL, CAREFUL, SHIFTER, CONFUSER, MISSER]
    sentences, annotations = simulate(150, habits, per_item=3, seed=5)
    project = span_project(manager, sentences, annotations, ["ann", "ben", "sam", "cole", "mia"])
    rng = np.random.default_rng(11)
    probabilities = [near(token_classes(s.text, s.spans), rng) for s in sentences]
    client = reviewer_client(project)
    upload = upload_body("tagger", probabilities)
    assert client.post(predictions_url(project), upload, format="json").status_code == 201
    result = run_to_end(client, project, {"model": "tagger"}, celery_worker)["result"]
    assert result["given"] == "token_majority"

    # The majority IOB2 tag per token, independently; a token whose vote ties is not judged.
    given, tied = [], 0
    for i, sentence in enumerate(sentences):
        votes = [iob2(sentence.text, spans) for j, _, spans in annotations if j == i]
        column = []
        for token_votes in zip(*votes, strict=True):
            counts = np.bincount(token_votes, minlength=2 * len(TYPES) + 1)
            winners = np.flatnonzero(counts == counts.max())
            column.append((int(winners[0]) + 1) // 2 if len(winners) == 1 else -1)
            tied += len(winners) > 1
        given.append(column)
    kept = [[t for t, c in enumerate(column) if c >= 0] for column in given]
    judged = [i for i in range(150) if kept[i]]
    labels = [[given[i][t] for t in kept[i]] for i in judged]
    probs = [probabilities[i][kept[i]] for i in judged]
    flagged = find_label_issues(labels, probs, n_jobs=1)
    scores, _ = get_label_quality_scores(labels, probs)
    assert result["n_tied_tokens"] == tied and tied > 0
    assert (result["n_items"], result["n_flagged_tokens"]) == (len(judged), len(flagged))
    by_item = {int(r["external_id"][1:]): r for r in issue_rows(client, project)}
    assert [by_item[i]["quality"] for i in judged] == scores.tolist()
    got = {
        (i, [a for a, _ in token_bounds(sentences[i].text)].index(t["start"]))
        for i, r in by_item.items()
        for t in r["flagged_tokens"]
    }
    assert got == {(judged[n], kept[judged[n]][j]) for n, j in flagged}

    # Each annotator's token accuracy against the majority, on the tokens it decided.
    hits, total = {}, {}
    for i, a, spans in annotations:
        for t, c in enumerate(token_classes(sentences[i].text, spans)):
            if given[i][t] >= 0:
                total[a] = total.get(a, 0) + 1
                hits[a] = hits.get(a, 0) + (c == given[i][t])
    names = ["ann", "ben", "sam", "cole", "mia"]
    annotators = {a["annotator"]: a for a in result["annotators"]}
    assert {name: annotators[name]["quality"] for name in names} == {
        names[a]: hits[a] / total[a] for a in range(5)
    }
    assert {name: annotators[name]["n"] for name in names} == {
        names[a]: sum(1 for _, who, _ in annotations if who == a) for a in range(5)
    }
    careful = min(annotators["ann"]["quality"], annotators["ben"]["quality"])
    assert careful > max(annotators[name]["quality"] for name in ("sam", "cole", "mia"))


def test_tokens_left_out_are_not_shown_to_cleanlab_and_flags_map_back_to_their_tokens():
    rng = np.random.default_rng(2)
    lengths = np.array([4, 3, 5, 2])
    truth = rng.integers(0, 3, lengths.sum())
    labels = truth.copy()
    labels[[1, 5, 9]] = (labels[[1, 5, 9]] + 1) % 3  # three wrong labels
    labels[[2, 7, 8]] = -1  # tied: not judged (item 2 keeps 3 of its 5 tokens)
    labels[[12, 13]] = -1  # item 3 has no judged token
    probs = np.vstack([rng.dirichlet(np.where(np.arange(3) == c, 30.0, 1.0)) for c in truth])
    issues = find_span_issues(labels, lengths, probs)
    kept = [[t for t in range(a, b) if labels[t] >= 0] for a, b in [(0, 4), (4, 7), (7, 12)]]
    flagged = find_label_issues([labels[k] for k in kept], [probs[k] for k in kept], n_jobs=1)
    scores, _ = get_label_quality_scores([labels[k] for k in kept], [probs[k] for k in kept])
    assert issues.item_index.tolist() == [0, 1, 2]
    assert issues.quality.tolist() == scores.tolist()
    starts = [0, 4, 7]
    expected = sorted((i, kept[i][j] - starts[i]) for i, j in flagged)
    pairs = zip(issues.flagged_item.tolist(), issues.flagged_token.tolist(), strict=True)
    assert list(pairs) == expected
    assert expected == [(0, 1), (1, 1), (2, 2)]  # the wrong labels, at their own positions
    assert issues.flagged_given.tolist() == labels[[1, 5, 9]].tolist()
    assert issues.flagged_suggested.tolist() == truth[[1, 5, 9]].tolist()


# ---------------------------------------------------------------------------------------------
# The built-in CRF


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_builtin_crf_flags_mostly_the_injected_errors_and_stores_its_probabilities(
    manager, reviewer_client, celery_worker
):
    sentences, annotations = simulate(300, [CAREFUL, SHIFTER, CONFUSER, MISSER], seed=8)
    project = span_project(manager, sentences, annotations, ["cara", "sam", "cole", "mia"])
    client = reviewer_client(project)
    run = run_to_end(client, project, {"folds": 3}, celery_worker)
    result = run["result"]
    assert (result["model"], result["folds"], result["method"]) == (
        "builtin", 3, "token_confident_learning"
    )  # fmt: skip
    assert result["excluded_types"] == [] and result["n_items"] == 300
    assert result["builtin_token_accuracy"] > 0.8

    wrong = set()  # (item, token) whose annotated class is not the gold one
    for i, _, spans in annotations:
        gold = token_classes(sentences[i].text, sentences[i].spans)
        given = token_classes(sentences[i].text, spans)
        wrong |= {(i, t) for t, (g, a) in enumerate(zip(gold, given, strict=True)) if g != a}
    flagged = set()
    for row in issue_rows(client, project):
        i = int(row["external_id"][1:])
        starts = [a for a, _ in token_bounds(sentences[i].text)]
        flagged |= {(i, starts.index(t["start"])) for t in row["flagged_tokens"]}
    n_tokens = sum(len(token_bounds(s.text)) for s in sentences)
    precision = len(flagged & wrong) / len(flagged)
    recall = len(flagged & wrong) / len(wrong)
    print(f"CRF flags: {len(flagged)}, precision {precision:.3f}, recall {recall:.3f}, "
          f"errors {len(wrong)} of {n_tokens} tokens")  # fmt: skip
    # Measured: 242 flags, precision 0.963, recall 0.798 (292 wrong tokens of 3,705); random
    # flags of the same number would be right at the error rate, 0.079.
    assert precision > 0.85 and precision > 5 * len(wrong) / n_tokens
    assert recall > 0.6
    stored = loaders.token_predictions(project=project, model="builtin")
    assert len(stored.item_ids) == 300
    assert np.allclose(stored.probs.sum(axis=1), 1.0)


# ---------------------------------------------------------------------------------------------
# Refusals, failures and roles


@pytest.mark.django_db
def test_items_without_predictions_are_not_judged_no_model_is_refused_and_failures_keep_rows(
    manager,
):
    sentences, annotations = simulate(30, [CAREFUL, MISSER], seed=1)
    project = span_project(manager, sentences, annotations, ["cara", "mia"])
    rng = np.random.default_rng(1)
    probabilities = [near(token_classes(s.text, s.spans), rng) for s in sentences]
    token_predictions_upload(
        project=project, model="tagger", classes=CLASSES,
        rows=upload_body("tagger", probabilities)["rows"][:28], user=manager,
    )  # fmt: skip
    # An item's text edited since the upload: its token count no longer matches.
    item = project.items.get(external_id="s27")
    item.data = {"text": item.data["text"] + " Then Ada left ."}
    item.save(update_fields=["data"])

    def run(params):
        run = AnalysisRun.objects.create(project=project, kind="label_issues", params=params)
        run_label_issues(run.pk)
        run.refresh_from_db()
        return run

    first = run({"model": "tagger"})
    assert first.status == "succeeded" and first.label_issues.count() == 27
    assert (first.result["n_items"], first.result["n_unjudged"]) == (27, 3)
    assert first.message == (
        "done: 3 annotated items have no predictions 'tagger' of as many tokens as their "
        "text; they were not judged."
    )
    assert not first.label_issues.filter(item__external_id__in=["s27", "s28", "s29"]).exists()
    refused = run({"model": "none"})
    assert refused.status == "failed"
    assert "need a token model" in refused.error
    unknown = run({"model": "never-uploaded"})
    assert unknown.status == "failed" and "no predictions named 'never-uploaded'" in unknown.error
    latest = AnalysisRun.objects.latest_succeeded(project, AnalysisRun.Kind.LABEL_ISSUES)
    assert latest.pk == first.pk and LabelIssue.objects.filter(run=first).count() == 27


@pytest.mark.django_db
def test_annotators_cannot_read_a_span_projects_issues(manager, api_client_for, make_user):
    sentences, annotations = simulate(5, [CAREFUL], seed=1)
    project = span_project(manager, sentences, annotations, ["cara"])
    cara = project.memberships.get(user__username="cara").user
    assert api_client_for(cara).get(f"/api/v1/projects/{project.pk}/issues/").status_code == 403
    body = upload_body("tagger", [uniform(len(token_bounds(s.text))) for s in sentences])
    assert (
        api_client_for(cara).post(predictions_url(project), body, format="json").status_code == 403
    )
    stranger = api_client_for(make_user())
    assert stranger.get(f"/api/v1/projects/{project.pk}/issues/").status_code == 404
