"""Faults around analysis jobs, with the real Celery worker: a pool process killed with SIGKILL
mid-job, a whole worker killed mid-job while a second one runs (two nodes), a run stuck in
`running`, and the broker down while people keep labeling."""

import csv
import os
import signal
import uuid
from datetime import timedelta

import pandas as pd
import pytest
from django.utils import timezone

from analysis.models import AnalysisRun, LabelIssue
from analysis.services.run_recording import analysis_run, runs_fail_stuck
from config.celery import app as celery_app
from labeling.models import Annotation, Membership
from tests.conftest import WorkerProcess, wait_for
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def sentiment_project(manager, sentiment_data):
    """3000 real review sentences, each labeled by three annotators (two agree with the truth)."""
    frames = [
        pd.read_csv(
            sentiment_data / f"{source}.tsv",
            sep="\t",
            header=None,
            names=["text", "label"],
            quoting=csv.QUOTE_NONE,
        )
        for source in ("amazon", "imdb", "yelp")
    ]
    frame = pd.concat(frames, ignore_index=True)
    project = make_project(manager, labels=("0", "1"), name="Sentiment")
    items = make_items(project, list(frame["text"]), prefix="s")
    annotators = [add_member(project, f"a{k}", Membership.Role.ANNOTATOR) for k in range(3)]
    make_annotations(
        project,
        (
            # annotator k flips every (k+7)th label, so the votes disagree now and then
            (item, annotator, str(truth if i % (k + 7) else 1 - truth))
            for i, (item, truth) in enumerate(zip(items, frame["label"], strict=True))
            for k, annotator in enumerate(annotators)
        ),
    )
    return project


def pool_children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (the prefork pool's children of the worker)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may contain spaces: the parent pid is the 2nd field after ")"
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry))
    return children


def test_pool_process_killed_mid_job_the_run_is_retried_or_fails_never_hangs(
    manager, api_client_for, sentiment_data, celery_worker
):
    project = sentiment_project(manager, sentiment_data)
    client = api_client_for(manager)
    answer = client.post(
        f"/api/v1/projects/{project.pk}/runs/",
        {"kind": "label_issues", "params": {"folds": 5}},
        format="json",
    )
    assert answer.status_code == 202, answer.json()
    run_id = answer.json()["id"]

    def computing():
        run = AnalysisRun.objects.get(pk=run_id)
        return run.status == "running" and run.progress >= 0.05

    wait_for(
        computing,
        timeout=120,
        interval=0.05,
        what="the job to be computing",
        on_timeout=celery_worker.log,
    )
    children = pool_children(celery_worker.process.pid)
    assert len(children) == 1, children  # --concurrency=1
    os.kill(children[0], signal.SIGKILL)

    def ended():
        run = AnalysisRun.objects.get(pk=run_id)
        return run if run.status in ("succeeded", "failed") else None

    run = wait_for(
        ended, timeout=300, what="the run to end after the kill", on_timeout=celery_worker.log
    )
    # Late acknowledgement + reject-on-worker-lost: the message came back and ran again.
    assert run.attempts == 2, (run.attempts, run.status, run.error)
    if run.status == "succeeded":
        assert run.result["n_items"] == 3000
        assert LabelIssue.objects.filter(run=run).count() == 3000
    else:
        assert run.error, "a failed run says why"
        assert not LabelIssue.objects.filter(run=run).exists()
    assert not AnalysisRun.objects.filter(status="running").exists()


@pytest.mark.skipif(
    not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"),
    reason="a lost worker's job comes back through Redis' visibility timeout",
)
def test_a_worker_killed_mid_job_its_run_is_finished_by_the_other_worker(
    manager, sentiment_data, tmp_path
):
    """Two nodes, each with its own var folder: node A is killed (SIGKILL, the whole worker,
    so nobody gives its message back); node B takes the job over after the visibility
    timeout and finishes it, with one set of result rows."""
    project = sentiment_project(manager, sentiment_data)
    run = AnalysisRun.objects.create(project=project, kind="label_issues", params={"folds": 5})
    queue = f"twonode-{uuid.uuid4().hex[:8]}"  # not the session worker's queue

    def node(name: str, env: dict) -> WorkerProcess:
        (tmp_path / name).mkdir()
        worker = WorkerProcess(
            os.environ["CELERY_BROKER_URL"],
            tmp_path / name,
            tmp_path / f"{name}.log",
            env=env,
            args=("-n", f"{name}@%h", "-Q", queue),
        )
        worker.start()
        return worker

    node_a = node("a", {})
    node_b = None
    try:
        celery_app.send_task("analysis.run_label_issues", args=[run.pk], queue=queue)

        def computing():
            run.refresh_from_db()
            return run.status == "running" and run.progress >= 0.05

        wait_for(computing, timeout=120, interval=0.05, what="A to compute", on_timeout=node_a.log)
        assert run.worker.startswith("a@") and run.attempts == 1
        killed_at = timezone.now()
        os.killpg(node_a.process.pid, signal.SIGKILL)
        node_a.process.wait()
        # B hands itself a job taken more than 5 s ago and never acknowledged.
        node_b = node("b", {"CONCORD_BROKER_VISIBILITY_TIMEOUT": "5"})

        def ended():
            run.refresh_from_db()
            return run.status in ("succeeded", "failed")

        wait_for(ended, timeout=300, what="B to finish the run", on_timeout=node_b.log)
    finally:
        for worker in (node_a, node_b):
            if worker is not None:
                worker.stop()

    assert run.status == "succeeded", run.error
    assert run.worker.startswith("b@")
    assert run.attempts == 2
    # The retry restarted the watchdog's clock: it times B's attempt, not A's lost one.
    assert run.started_at > killed_at
    assert runs_fail_stuck() == 0
    assert run.result["n_items"] == 3000
    assert LabelIssue.objects.filter(run=run).count() == 3000


def test_a_second_delivery_of_a_running_run_runs_it_and_one_result_is_kept(project):
    """A message given again while its first worker still runs the job (the job outlived the
    visibility timeout): both run; the first to finish is kept, the other is dropped."""
    run = AnalysisRun.objects.create(project=project, kind="agreement")
    stored = []

    def persist(result):
        return lambda run: stored.append(result)

    with analysis_run(run.pk, "agreement", worker="celery@a") as first:
        with analysis_run(run.pk, "agreement", worker="celery@b") as second:
            assert second is not None, "a run marked running is run again, not refused"
            second.finish({"alpha": 0.5}, persist=persist("b"))
        first.progress(0.9, "still computing")
        first.finish({"alpha": 0.4}, persist=persist("a"))

    run.refresh_from_db()
    assert stored == ["b"]
    assert (run.status, run.result, run.worker, run.attempts) == (
        "succeeded", {"alpha": 0.5}, "celery@b", 2,
    )  # fmt: skip
    assert (run.progress, run.message) == (1.0, "done")


def test_a_message_back_after_three_lost_workers_fails_the_run_with_the_reason(
    project, celery_worker
):
    """The cap that stops a job that kills its worker every time (e.g. out of memory)."""
    run = AnalysisRun.objects.create(
        project=project,
        kind="label_issues",
        params={},
        status="running",
        attempts=3,
        started_at=timezone.now(),
    )
    celery_app.send_task("analysis.run_label_issues", args=[run.pk])

    def ended():
        run.refresh_from_db()
        return run.status == "failed"

    wait_for(ended, timeout=60, what="the attempt cap", on_timeout=celery_worker.log)
    assert "lost 3 times" in run.error
    assert not LabelIssue.objects.filter(run=run).exists()


def test_watchdog_fails_runs_stuck_in_running_past_the_timeout(project):
    stuck = AnalysisRun.objects.create(
        project=project,
        kind="agreement",
        status="running",
        started_at=timezone.now() - timedelta(hours=2),
        attempts=1,
    )
    fresh = AnalysisRun.objects.create(
        project=project,
        kind="agreement",
        status="running",
        started_at=timezone.now(),
        attempts=1,
    )
    done = AnalysisRun.objects.create(
        project=project,
        kind="agreement",
        status="succeeded",
        started_at=timezone.now() - timedelta(hours=3),
        result={"alpha": 0.5},
    )

    assert runs_fail_stuck(timeout_seconds=3600) == 1

    stuck.refresh_from_db(), fresh.refresh_from_db(), done.refresh_from_db()
    assert stuck.status == "failed" and "worker running it was lost" in stuck.error
    assert stuck.finished_at is not None
    assert fresh.status == "running"
    assert done.status == "succeeded" and done.result == {"alpha": 0.5}


def test_broker_down_starting_a_run_is_503_while_labeling_goes_on(
    manager, project, annotator, api_client_for, monkeypatch
):
    make_items(project, 3, prefix="i")
    boss, worker = api_client_for(manager), api_client_for(annotator)

    # A real unreachable broker: nothing listens on port 1. Celery reads the variable first;
    # the app's cached pools are dropped so they are rebuilt from it (and again afterwards).
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    celery_app._pool, celery_app.amqp._producer_pool = None, None
    try:
        started = boss.post(
            f"/api/v1/projects/{project.pk}/runs/", {"kind": "agreement"}, format="json"
        )
        next_item = worker.get(f"/api/v1/projects/{project.pk}/next/")
        assert next_item.status_code == 200, next_item.content
        item_id = next_item.json()["item"]["id"]
        submitted = worker.post(
            f"/api/v1/projects/{project.pk}/annotations/",
            {"item": item_id, "label": "positive"},
            format="json",
        )
    finally:
        celery_app._pool, celery_app.amqp._producer_pool = None, None

    assert started.status_code == 503
    assert started["Content-Type"].startswith("application/json")
    assert "unavailable" in started.json()["detail"]
    assert AnalysisRun.objects.get(project=project).status == "failed"
    assert submitted.status_code == 201, submitted.content
    assert Annotation.objects.filter(item_id=item_id, annotator=annotator).count() == 1
