"""The label-issues job through the API and a real Celery worker."""

import csv

import numpy as np
import pandas as pd
import pytest
from cleanlab.filter import find_label_issues
from cleanlab.multiannotator import get_label_quality_multiannotator
from cleanlab.rank import get_label_quality_scores
from django.contrib.auth import get_user_model

from analysis.metrics.consensus import majority_vote
from analysis.metrics.label_issues import dawid_skene_issues
from analysis.metrics.out_of_sample import out_of_sample_probabilities
from analysis.models import AnalysisRun, AnnotatorScore, LabelIssue, PredictionSet
from labeling.models import Membership
from tests.conftest import wait_for
from tests.factories import (
    SENTIMENT_DATA,
    add_member,
    make_annotations,
    make_items,
    make_project,
    simulated_crowd,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
User = get_user_model()
N = 600


def sentiment(n=N):
    frame = pd.read_csv(
        SENTIMENT_DATA / "amazon.tsv",
        sep="\t",
        header=None,
        names=["text", "label"],
        quoting=csv.QUOTE_NONE,
    ).iloc[:n]
    truth = frame["label"].to_numpy()
    rng = np.random.default_rng(0)
    noisy = truth.copy()
    flip = rng.choice(n, size=n // 10, replace=False)
    noisy[flip] = 1 - noisy[flip]
    return frame["text"].tolist(), truth, noisy


def text_project(manager, texts, label_columns):
    """A text project whose items s0.. carry the texts, annotated by one user per column."""
    project = make_project(manager, labels=("0", "1"))
    items = make_items(project, texts, prefix="s", metadata=lambda i: {"half": str(i % 2)})
    votes = []
    for column, values in enumerate(label_columns):
        user = add_member(project, f"annotator{column}", Membership.Role.ANNOTATOR)
        votes += [(items[i], user, str(v)) for i, v in enumerate(values) if v >= 0]
    make_annotations(project, votes)
    return project


@pytest.fixture
def reviewer_client(api_client_for):
    return lambda project: api_client_for(add_member(project, "reviewer", Membership.Role.REVIEWER))


def run_to_end(client, project, params, worker, *, expect="succeeded"):
    response = client.post(
        f"/api/v1/projects/{project.pk}/runs/",
        {"kind": "label_issues", "params": params},
        format="json",
    )
    assert response.status_code == 202, response.json()
    run_id = response.json()["id"]

    def finished():
        answer = client.get(f"/api/v1/runs/{run_id}/").json()
        return answer if answer["status"] in ("succeeded", "failed") else None

    answer = wait_for(finished, timeout=240, what="the label-issues run", on_timeout=worker.log)
    assert answer["status"] == expect, answer
    return answer


def issue_rows(client, project, query=""):
    answer = client.get(f"/api/v1/projects/{project.pk}/issues/?page_size=1000{query}").json()
    return answer


def test_uploaded_predictions_give_the_rows_of_bare_cleanlab(
    manager, reviewer_client, celery_worker
):
    texts, _, noisy = sentiment()
    project = text_project(manager, texts, [noisy])
    client = reviewer_client(project)
    probs = out_of_sample_probabilities(texts, noisy, n_classes=2, kind="text").probabilities
    upload = {
        "model": "my-model",
        "classes": ["0", "1"],
        "rows": [
            {"external_id": f"s{i}", "probabilities": p} for i, p in enumerate(probs.tolist())
        ],
    }
    assert (
        client.post(
            f"/api/v1/projects/{project.pk}/predictions/", upload, format="json"
        ).status_code
        == 201
    )

    run = run_to_end(client, project, {"model": "my-model"}, celery_worker)
    result = run["result"]
    bare_flags = find_label_issues(noisy, probs, n_jobs=1)
    bare_quality = get_label_quality_scores(noisy, probs)
    assert result["method"] == "confident_learning"
    assert result["model"] == "my-model"
    assert (result["n_items"], result["n_issues"]) == (N, int(bare_flags.sum()))
    assert result["model_accuracy"] == pytest.approx((probs.argmax(1) == noisy).mean())

    answer = issue_rows(client, project)
    assert answer["count"] == N and answer["run"]["method"] == "confident_learning"
    rows = {int(r["external_id"][1:]): r for r in answer["results"]}
    flagged = {i for i, r in rows.items() if r["is_issue"]}
    assert flagged == set(np.flatnonzero(bare_flags).tolist())
    for i, row in rows.items():
        assert row["quality"] == pytest.approx(bare_quality[i], abs=1e-12)
        assert row["given_label"] == str(noisy[i])
        assert row["suggested_label"] == str(probs[i].argmax())
        assert row["votes"] == {str(noisy[i]): 1}
    ranks = [r["rank"] for r in answer["results"]]
    assert ranks == sorted(ranks) == list(range(1, N + 1))
    assert [r["quality"] for r in answer["results"]] == sorted(r["quality"] for r in rows.values())

    only_issues = issue_rows(client, project, "&is_issue=true&label=1&meta_half=0")
    expected = {i for i in flagged if noisy[i] == 1 and i % 2 == 0}
    assert {int(r["external_id"][1:]) for r in only_issues["results"]} == expected
    low = issue_rows(client, project, "&max_quality=0.2")
    assert {int(r["external_id"][1:]) for r in low["results"]} == set(
        np.flatnonzero(bare_quality <= 0.2).tolist()
    )
    assert client.get(f"/api/v1/projects/{project.pk}/issues/?max_quality=x").status_code == 400


def test_several_annotators_with_predictions_use_crowdlab(manager, reviewer_client, celery_worker):
    texts, truth, noisy = sentiment(300)
    rng = np.random.default_rng(5)
    second = np.where(rng.random(300) < 0.85, truth, 1 - truth)
    third = np.where(rng.random(300) < 0.5, truth, -1)  # labels only half the items
    project = text_project(manager, texts, [noisy, second, third])
    client = reviewer_client(project)
    probs = out_of_sample_probabilities(texts, noisy, n_classes=2, kind="text").probabilities
    upload = {
        "model": "m",
        "classes": ["0", "1"],
        "rows": [
            {"external_id": f"s{i}", "probabilities": p} for i, p in enumerate(probs.tolist())
        ],
    }
    assert (
        client.post(
            f"/api/v1/projects/{project.pk}/predictions/", upload, format="json"
        ).status_code
        == 201
    )
    run = run_to_end(client, project, {"model": "m"}, celery_worker)
    assert run["result"]["method"] == "crowdlab"

    matrix = np.stack([noisy, second, third], axis=1).astype(float)
    matrix[matrix < 0] = np.nan
    bare = get_label_quality_multiannotator(pd.DataFrame(matrix), probs, verbose=False)
    consensus = bare["label_quality"]["consensus_label"].to_numpy()
    quality = bare["label_quality"]["consensus_quality_score"].to_numpy()
    rows = {int(r["external_id"][1:]): r for r in issue_rows(client, project)["results"]}
    assert len(rows) == 300
    assert [rows[i]["given_label"] for i in range(300)] == [str(c) for c in consensus]
    assert np.allclose([rows[i]["quality"] for i in range(300)], quality, atol=1e-12)
    flags = find_label_issues(consensus, probs, n_jobs=1)
    assert {i for i, r in rows.items() if r["is_issue"]} == set(np.flatnonzero(flags).tolist())

    scores = {
        s.annotator.username: s.quality
        for s in AnnotatorScore.objects.filter(run_id=run["id"]).select_related("annotator")
    }
    stats = bare["annotator_stats"]["annotator_quality"]
    for column in range(3):
        assert scores[f"annotator{column}"] == pytest.approx(stats[column])
    assert {a["annotator"] for a in run["result"]["annotators"]} == set(scores)


def test_builtin_model_runs_through_the_folds_and_stores_its_predictions(
    manager, reviewer_client, celery_worker
):
    texts, _, noisy = sentiment()
    project = text_project(manager, texts, [noisy])
    client = reviewer_client(project)
    run = run_to_end(client, project, {"folds": 4}, celery_worker)
    result = run["result"]
    assert (result["method"], result["model"], result["folds"]) == (
        "confident_learning",
        "builtin",
        4,
    )
    assert result["n_items"] == N and result["excluded_classes"] == []
    assert result["n_trained"] == N  # one label per item: every item is a training example
    assert 0.6 < result["model_accuracy"] < 0.95
    builtin = PredictionSet.objects.get(project=project, model="builtin")
    assert builtin.n_rows == N and builtin.classes == ["0", "1"]
    assert LabelIssue.objects.filter(run_id=run["id"], is_issue=True).count() == result["n_issues"]


def test_crowd_answers_without_features_use_dawid_skene(manager, reviewer_client, celery_worker):
    project = make_project(manager, labels=("0", "1", "2", "3"), data_type="image")
    # Three experts and six novices: a plain vote trusts the novices, skill weighting does not.
    experts = {f"expert{n}": 0.9 for n in range(3)}
    novices = {f"novice{n}": 0.35 for n in range(6)}
    crowd = simulated_crowd(
        project, n_items=300, workers={**experts, **novices}, per_item=5, seed=0
    )
    client = reviewer_client(project)
    run = run_to_end(client, project, {}, celery_worker)
    result = run["result"]
    assert (result["method"], result["model"]) == ("dawid_skene", "none")
    assert result["n_items"] == 300 and result["n_trained"] is None
    rows = issue_rows(client, project)
    assert rows["count"] == 300
    suggested = {}
    page = rows
    while True:
        suggested.update({r["external_id"]: r["suggested_label"] for r in page["results"]})
        if not page["next"]:
            break
        page = client.get(page["next"]).json()
    direct = dawid_skene_issues(crowd.matrix(), 4).suggested
    assert [suggested[q] for q in crowd.truth] == [crowd.classes[c] for c in direct]
    accuracy = np.mean([suggested[q] == t for q, t in crowd.truth.items()])
    majority, _, _ = majority_vote(crowd.matrix(), 4, tie_rule="first_class")
    assert accuracy >= (majority == crowd.true_classes()).mean() + 0.05
    scores = dict(
        AnnotatorScore.objects.filter(run_id=run["id"]).values_list(
            "annotator__username", "quality"
        )
    )
    assert len(scores) == 9 and all(0 <= q <= 1 for q in scores.values())
    assert min(scores[name] for name in experts) > max(scores[name] for name in novices)


def test_a_failed_run_says_why_and_keeps_the_earlier_rows(manager, reviewer_client, celery_worker):
    texts, _, noisy = sentiment(100)
    project = text_project(manager, texts, [noisy])
    client = reviewer_client(project)
    first = run_to_end(client, project, {"folds": 3}, celery_worker)
    failed = run_to_end(
        client, project, {"model": "never-uploaded"}, celery_worker, expect="failed"
    )
    assert "no predictions named 'never-uploaded'" in failed["error"]
    answer = issue_rows(client, project)
    assert answer["run"]["id"] == first["id"] and answer["count"] == 100
    assert AnalysisRun.objects.get(pk=failed["id"]).label_issues.count() == 0


def test_annotators_cannot_see_the_issues(manager, make_user, api_client_for):
    texts, _, noisy = sentiment(20)
    project = text_project(manager, texts, [noisy])
    client = api_client_for(User.objects.get(username="annotator0"))
    assert client.get(f"/api/v1/projects/{project.pk}/issues/").status_code == 403
    stranger = api_client_for(make_user())
    assert stranger.get(f"/api/v1/projects/{project.pk}/issues/").status_code == 404


def test_a_class_too_small_for_the_folds_is_reported_and_its_items_left_out(
    manager, reviewer_client, celery_worker
):
    texts, _, noisy = sentiment(200)
    labels = noisy.copy()
    labels[:3] = 2  # three items of a class that cannot be spread over 5 folds
    project = make_project(manager, labels=("0", "1", "2"))
    items = make_items(project, texts, prefix="s")
    annotator = add_member(project, "solo", Membership.Role.ANNOTATOR)
    votes = zip(items, labels, strict=True)
    make_annotations(project, ((item, annotator, str(v)) for item, v in votes))
    client = reviewer_client(project)
    result = run_to_end(client, project, {}, celery_worker)["result"]
    assert result["excluded_classes"] == ["2"]
    assert (result["n_items"], result["n_unjudged"]) == (197, 3)
    assert result["n_trained"] == 197
    listed = {r["external_id"] for r in issue_rows(client, project)["results"]}
    assert listed.isdisjoint({"s0", "s1", "s2"}) and len(listed) == 197


def test_the_builtin_model_learns_from_agreed_items_and_still_judges_the_ties(
    manager, reviewer_client, celery_worker
):
    texts, truth, noisy = sentiment(300)
    tied = int((noisy != truth).sum())  # two annotators who split on these items
    project = text_project(manager, texts, [truth, noisy])
    client = reviewer_client(project)
    result = run_to_end(client, project, {"folds": 3}, celery_worker)["result"]
    assert (result["method"], result["model"]) == ("crowdlab", "builtin")
    assert tied == 30
    assert result["n_trained"] == 300 - tied
    assert result["n_items"] == 300  # every fold's model scores the ties
