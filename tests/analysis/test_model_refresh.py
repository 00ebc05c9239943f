"""The model-refresh job: probabilities for every item, the queue's scores, and its triggers.

The scores are checked against bare cleanlab (`get_active_learning_scores`, its ensemble form)
and numpy's max on the same arrays, read back from what the job stored.
"""

import csv
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from cleanlab.multiannotator import (
    get_active_learning_scores,
    get_active_learning_scores_ensemble,
)
from django.utils import timezone

from analysis import loaders
from analysis.metrics import active_learning
from analysis.metrics.intervals import wilson_interval
from analysis.models import AnalysisRun, PredictionSet
from analysis.services import model_refresh
from analysis.services.predictions import predictions_store
from analysis.tasks import request_model_refresh, run_label_issues, run_model_refresh
from labeling.models import Annotation, Item, Project
from labeling.services import queue_scores
from labeling.services.annotating import annotation_submit
from labeling.services.projects import project_update
from tests.conftest import wait_for
from tests.factories import SENTIMENT_DATA, add_member, make_annotations, make_items, make_project

pytestmark = pytest.mark.django_db

N_ITEMS = 240
N_LABELED = 120
RESULT_KEYS = {
    "model",
    "order",
    "n_annotations",
    "n_labeled_items",
    "n_scored",
    "accuracy",
    "accuracy_interval",
    "n_judged",
}


def sentences(n=N_ITEMS):
    frame = pd.read_csv(
        SENTIMENT_DATA / "amazon.tsv",
        sep="\t",
        header=None,
        names=["text", "label"],
        quoting=csv.QUOTE_NONE,
    ).iloc[:n]
    return frame["text"].tolist(), frame["label"].to_numpy()


def crowd_project(manager, *, order, overlap=3, full=(), gold=()):
    """Items s0..: the first N_LABELED labeled by one or two of three annotators (10% wrong),
    the items in `full` by all three; the rest unlabeled. `gold` items are gold questions."""
    texts, truth = sentences()
    project = make_project(manager, labels=("0", "1"), overlap=overlap, queue_order=order)
    items = make_items(project, texts, prefix="s")
    annotators = [add_member(project, f"annotator{a}") for a in range(3)]
    rng = np.random.default_rng(1)
    votes = []
    for i in range(N_LABELED):
        who = range(3) if i in full else rng.choice(3, size=1 + i % 2, replace=False)
        for a in who:
            label = truth[i] if rng.random() > 0.1 else 1 - truth[i]
            votes.append((items[i], annotators[a], str(label)))
    make_annotations(project, votes)
    Item.objects.filter(pk__in=[items[i].pk for i in gold]).update(is_gold=True)
    return project, items


def refresh(project):
    run = AnalysisRun.objects.create(project=project, kind=AnalysisRun.Kind.MODEL_REFRESH)
    run_model_refresh(run.pk)
    run.refresh_from_db()
    return run


def stored(project, model="builtin"):
    return loaders.predictions(project=project, model=model)


def priorities(items):
    by_id = dict(Item.objects.filter(pk__in=[i.pk for i in items]).values_list("id", "priority"))
    return np.array([np.nan if by_id[i.pk] is None else by_id[i.pk] for i in items])


def label_matrix(project, items):
    """(n_items, n_annotators) float class indices, NaN where not labeled: from the rows."""
    rows = list(Annotation.objects.filter(project=project).values_list("item_id", "annotator_id",
                                                                       "label__name"))  # fmt: skip
    annotators = sorted({a for _, a, _ in rows})
    at = {item.pk: n for n, item in enumerate(items)}
    out = np.full((len(items), len(annotators)), np.nan)
    for item_id, annotator_id, name in rows:
        if item_id in at:
            out[at[item_id], annotators.index(annotator_id)] = float(name)
    return out


def test_uncertainty_writes_the_top_probability_of_the_stored_builtin_model_for_every_item(
    manager,
):
    project, items = crowd_project(manager, order=Project.QueueOrder.UNCERTAINTY)
    run = refresh(project)
    assert run.status == AnalysisRun.Status.SUCCEEDED, run.error
    item_ids, probs = stored(project)
    # The built-in model scored every item, labeled (out of fold) and unlabeled alike.
    assert item_ids.tolist() == [item.pk for item in items]
    assert np.allclose(probs.sum(axis=1), 1)
    assert np.allclose(priorities(items), probs.max(axis=1))
    assert run.result["n_scored"] == N_ITEMS
    assert run.result["model"] == "builtin"


def test_activelab_scores_equal_bare_cleanlab_on_the_same_arrays(manager):
    project, items = crowd_project(manager, order=Project.QueueOrder.ACTIVELAB)
    run = refresh(project)
    assert run.status == AnalysisRun.Status.SUCCEEDED, run.error
    _, probs = stored(project)
    labels = label_matrix(project, items)
    labeled = ~np.isnan(labels).all(axis=1)
    expected_labeled, expected_unlabeled = get_active_learning_scores(
        labels_multiannotator=labels[labeled],
        pred_probs=probs[labeled],
        pred_probs_unlabeled=probs[~labeled],
    )
    got = priorities(items)
    assert np.allclose(got[labeled], expected_labeled)
    assert np.allclose(got[~labeled], expected_unlabeled)
    assert run.result["method"] == "activelab"


def test_an_uploaded_model_joins_the_builtin_in_an_activelab_ensemble(manager):
    project, items = crowd_project(manager, order=Project.QueueOrder.ACTIVELAB)
    rng = np.random.default_rng(5)
    uploaded = rng.dirichlet([2, 2], size=N_ITEMS)
    predictions_store(
        project=project,
        model="vendor",
        classes=["0", "1"],
        item_ids=np.array([i.pk for i in items]),
        probs=uploaded,
    )
    run = refresh(project)
    assert run.status == AnalysisRun.Status.SUCCEEDED, run.error
    assert run.result["model"] == "builtin+vendor"
    _, builtin = stored(project)
    labels = label_matrix(project, items)
    labeled = ~np.isnan(labels).all(axis=1)
    expected_labeled, expected_unlabeled = get_active_learning_scores_ensemble(
        labels_multiannotator=labels[labeled],
        pred_probs=np.stack([builtin[labeled], uploaded[labeled]]),
        pred_probs_unlabeled=np.stack([builtin[~labeled], uploaded[~labeled]]),
    )
    got = priorities(items)
    assert np.allclose(got[labeled], expected_labeled)
    assert np.allclose(got[~labeled], expected_unlabeled)


def test_the_result_has_the_dashboard_keys_and_the_accuracy_against_the_majority(manager):
    project, items = crowd_project(manager, order=Project.QueueOrder.UNCERTAINTY)
    result = refresh(project).result
    assert RESULT_KEYS <= set(result)
    _, probs = stored(project)
    labels = label_matrix(project, items)
    votes = np.stack([(labels == c).sum(axis=1) for c in (0, 1)], axis=1)
    judged = (votes.sum(axis=1) > 0) & (votes[:, 0] != votes[:, 1])
    correct = int((probs[judged].argmax(axis=1) == votes[judged].argmax(axis=1)).sum())
    assert result["n_judged"] == int(judged.sum())
    assert result["accuracy"] == pytest.approx(correct / judged.sum())
    assert result["accuracy_interval"] == pytest.approx(
        list(wilson_interval(correct, judged.sum()))
    )
    assert 0.6 < result["accuracy"] <= 1
    assert result["n_annotations"] == Annotation.objects.filter(project=project).count()
    assert result["n_labeled_items"] == N_LABELED
    assert result["order"] == "uncertainty"


def test_full_items_get_no_priority_so_the_queue_never_walks_them(manager):
    project, items = crowd_project(manager, order=Project.QueueOrder.ACTIVELAB, full={0, 1, 2})
    refresh(project)
    got = priorities(items)
    assert np.isnan(got[:3]).all()
    assert np.isfinite(got[3:]).all()


def test_gold_items_and_their_answers_are_left_out(manager):
    gold = {0, 1, 200}
    project, items = crowd_project(manager, order=Project.QueueOrder.ACTIVELAB, gold=gold)
    run = refresh(project)
    assert run.status == AnalysisRun.Status.SUCCEEDED, run.error
    regular = [item for n, item in enumerate(items) if n not in gold]
    item_ids, probs = stored(project)
    assert item_ids.tolist() == [item.pk for item in regular]
    got = priorities(items)
    assert np.isnan(got[sorted(gold)]).all()
    labels = label_matrix(project, regular)
    labeled = ~np.isnan(labels).all(axis=1)
    expected_labeled, expected_unlabeled = get_active_learning_scores(
        labels_multiannotator=labels[labeled],
        pred_probs=probs[labeled],
        pred_probs_unlabeled=probs[~labeled],
    )
    kept = np.array([n not in gold for n in range(N_ITEMS)])
    assert np.allclose(got[kept][labeled], expected_labeled)
    assert np.allclose(got[kept][~labeled], expected_unlabeled)
    on_gold = Annotation.objects.filter(project=project, item__is_gold=True).count()
    assert on_gold > 0
    assert run.result["n_annotations"] == Annotation.objects.count() - on_gold


def test_a_failed_refresh_leaves_the_earlier_priorities_as_they_were(manager, monkeypatch):
    project, items = crowd_project(manager, order=Project.QueueOrder.UNCERTAINTY)
    refresh(project)
    before = priorities(items)

    def broken(*args, **kwargs):
        raise RuntimeError("scoring broke")

    monkeypatch.setattr(model_refresh, "queue_priorities", broken)
    run = refresh(project)
    assert run.status == AnalysisRun.Status.FAILED
    assert "scoring broke" in run.error
    assert np.array_equal(priorities(items), before)


def test_a_project_without_any_model_fails_with_the_reason_and_keeps_its_scores(manager):
    project = make_project(manager, queue_order=Project.QueueOrder.UNCERTAINTY)
    items = make_items(project, 4)
    Item.objects.filter(pk=items[0].pk).update(priority=0.5)
    run = refresh(project)
    assert run.status == AnalysisRun.Status.FAILED
    assert "nothing to score the items with" in run.error
    assert priorities(items)[0] == 0.5


def test_the_import_order_refreshes_probabilities_but_writes_no_queue_scores(manager):
    project, items = crowd_project(manager, order=Project.QueueOrder.IMPORT)
    run = refresh(project)
    assert run.status == AnalysisRun.Status.SUCCEEDED, run.error
    assert np.isnan(priorities(items)).all()
    assert PredictionSet.objects.get(project=project, model="builtin").n_rows == N_ITEMS
    assert run.result["n_scored"] == 0


def test_multi_label_projects_are_refused_with_the_reason(manager, api_client_for):
    project = make_project(manager, task_type=Project.TaskType.MULTI)
    answer = api_client_for(manager).post(
        f"/api/v1/projects/{project.pk}/runs/", {"kind": "model_refresh"}, format="json"
    )
    assert answer.status_code == 400
    assert "single label projects only" in answer.json()["detail"]


@pytest.fixture
def sent(monkeypatch):
    """Tasks handed to the job queue by name: (task name, args)."""
    calls = []
    monkeypatch.setattr(queue_scores, "enqueue", lambda name, *args: calls.append((name, args)))
    return calls


def test_every_nth_new_annotation_asks_for_a_refresh_after_commit(
    manager, sent, django_capture_on_commit_callbacks
):
    project = make_project(manager, overlap=1, queue_order=Project.QueueOrder.ACTIVELAB)
    project_update(project=project, user=manager, scores_refresh_every=3)
    items = make_items(project, 8)
    ann = add_member(project, "ann")
    asked_after = []
    for n, item in enumerate(items[:7], start=1):
        with django_capture_on_commit_callbacks(execute=True):
            annotation_submit(item=item, annotator=ann, label="positive")
        if sent:
            asked_after.append(n)
            sent.clear()
    assert asked_after == [3, 6]
    # Changing a label is not a new annotation.
    with django_capture_on_commit_callbacks(execute=True):
        annotation_submit(item=items[5], annotator=ann, label="negative")
    assert sent == []


def test_a_project_without_scores_or_suggestions_never_asks(
    manager, sent, django_capture_on_commit_callbacks
):
    project = make_project(manager, overlap=1)
    project_update(project=project, user=manager, scores_refresh_every=1)
    ann = add_member(project, "ann")
    for item in make_items(project, 3):
        with django_capture_on_commit_callbacks(execute=True):
            annotation_submit(item=item, annotator=ann, label="positive")
    assert sent == []
    # Turning the suggestions on is enough (they read the refreshed probabilities).
    project_update(project=project, user=manager, suggestions=Project.Suggestions.SHOW)
    with django_capture_on_commit_callbacks(execute=True):
        annotation_submit(
            item=make_items(project, 1, prefix="x")[0], annotator=ann, label="positive"
        )
    assert sent == [(queue_scores.MODEL_REFRESH_REQUEST_TASK, (project.pk,))]


def test_switching_to_a_scored_order_asks_for_scores_at_once(
    manager, sent, django_capture_on_commit_callbacks
):
    project = make_project(manager)
    with django_capture_on_commit_callbacks(execute=True):
        project_update(project=project, user=manager, queue_order=Project.QueueOrder.UNCERTAINTY)
    assert sent == [(queue_scores.MODEL_REFRESH_REQUEST_TASK, (project.pk,))]


def test_a_request_starts_one_run_and_no_second_while_it_is_queued(manager, monkeypatch):
    started = []

    def enqueue(name, *args):
        started.append(name)
        return f"task-{len(started)}"

    monkeypatch.setattr("analysis.kinds.enqueue", enqueue)
    project = make_project(manager, queue_order=Project.QueueOrder.ACTIVELAB)
    request_model_refresh(project.pk)
    request_model_refresh(project.pk)
    runs = AnalysisRun.objects.filter(project=project, kind=AnalysisRun.Kind.MODEL_REFRESH)
    assert runs.count() == 1 and runs.get().status == AnalysisRun.Status.QUEUED
    assert started == ["analysis.run_model_refresh"]
    runs.update(status=AnalysisRun.Status.SUCCEEDED)
    request_model_refresh(project.pk)
    assert runs.count() == 2
    # A run left queued past the run timeout (its message lost) does not block refreshes.
    runs.filter(status=AnalysisRun.Status.QUEUED).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    request_model_refresh(project.pk)
    assert runs.count() == 3


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_new_annotations_start_a_refresh_that_a_real_worker_runs(manager, celery_worker):
    project, items = crowd_project(manager, order=Project.QueueOrder.ACTIVELAB)
    project_update(project=project, user=manager, scores_refresh_every=2)
    late = add_member(project, "late")
    for item in items[200:202]:
        annotation_submit(item=item, annotator=late, label="1")

    def succeeded():
        runs = AnalysisRun.objects.filter(project=project, kind=AnalysisRun.Kind.MODEL_REFRESH)
        return runs.filter(status__in=["succeeded", "failed"]).first()

    run = wait_for(succeeded, timeout=180, what="the model refresh", on_timeout=celery_worker.log)
    assert run.status == AnalysisRun.Status.SUCCEEDED, run.error
    assert run.result["n_annotations"] == Annotation.objects.filter(project=project).count()
    assert np.isfinite(priorities(items)).all()
    assert AnalysisRun.objects.filter(project=project).count() == 1


def test_a_successful_label_issue_run_asks_for_a_refresh(
    manager, sent, django_capture_on_commit_callbacks
):
    project, _ = crowd_project(manager, order=Project.QueueOrder.UNCERTAINTY)
    run = AnalysisRun.objects.create(project=project, kind=AnalysisRun.Kind.LABEL_ISSUES)
    with django_capture_on_commit_callbacks(execute=True):
        run_label_issues(run.pk)
    run.refresh_from_db()
    assert run.status == AnalysisRun.Status.SUCCEEDED, run.error
    assert sent == [(queue_scores.MODEL_REFRESH_REQUEST_TASK, (project.pk,))]


def test_a_failed_label_issue_run_does_not(manager, sent, django_capture_on_commit_callbacks):
    project = make_project(manager, queue_order=Project.QueueOrder.UNCERTAINTY)
    run = AnalysisRun.objects.create(project=project, kind=AnalysisRun.Kind.LABEL_ISSUES)
    with django_capture_on_commit_callbacks(execute=True):
        run_label_issues(run.pk)
    run.refresh_from_db()
    assert run.status == AnalysisRun.Status.FAILED
    assert sent == []


def test_queue_priorities_match_numpy_and_cleanlab_directly():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet([1, 1, 1], size=30)
    labels = np.full((30, 4), -1)
    labels[:20, 0] = rng.integers(0, 3, 20)
    labels[:10, 1] = rng.integers(0, 3, 10)
    labels[5:15, 3] = rng.integers(0, 3, 10)  # annotator 2 gave nothing: left out
    got, method = active_learning.queue_priorities("uncertainty", labels, [probs])
    assert method == "uncertainty" and np.allclose(got, probs.max(axis=1))
    got, method = active_learning.queue_priorities("activelab", labels, [probs])
    matrix = np.where(labels >= 0, labels, np.nan)[:20][:, [0, 1, 3]]
    expected_labeled, expected_unlabeled = get_active_learning_scores(
        labels_multiannotator=matrix, pred_probs=probs[:20], pred_probs_unlabeled=probs[20:]
    )
    assert method == "activelab"
    assert np.allclose(got[:20], expected_labeled) and np.allclose(got[20:], expected_unlabeled)
