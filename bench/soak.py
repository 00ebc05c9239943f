"""Soak test: 32 annotators label for `--seconds` against gunicorn + PostgreSQL while agreement
jobs (a real Celery worker) and streamed exports (the same gunicorn) run in the background.

    .venv/bin/python bench/soak.py [--seconds 300] [--annotators 32] [--items 20000]

Reuses bench/labeling_load.py (database, seeding, gunicorn, the annotator threads). All on
loopback and bounded in time:
1. (Re)creates `--database-url` (default concord_bench_soak), seeds `--items` text items, the
   annotators, and `--preseeded` items fully labeled by three other people so the agreement
   job has work from the first second.
2. Starts gunicorn and `celery -A config worker` (broker `--broker-url`, purged first).
3. For `--seconds`: the annotator threads loop GET /next/ -> POST /annotations/; one thread
   starts an agreement run over the API, waits for it to end and starts the next; another
   streams `GET /export/?format=jsonl` and counts the rows, then waits `--export-pause` s.
4. Stops everything and checks the database. Prints one JSON line: throughput, p50/p95
   latencies (next, submit, export), errors, and the loss checks:
   `acknowledged` (201 answers) == `stored` (the annotators' annotations in the database),
   `duplicates` == 0, `overfilled` == 0, every agreement run `succeeded`, every export's row
   count == the number of items. `ok` is true only when all of them hold.

Django's and the project's modules are imported inside the functions: they need Django set
up first (`setup_django`), which happens once the command line has named the database.
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import benchdb
from labeling_load import (
    Annotator,
    check_database,
    percentile,
    seed,
    server_env,
    setup_django,
    start_gunicorn,
    stop,
)

ROOT = Path(__file__).resolve().parent.parent


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/concord_bench_soak"
    )
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--preseeded", type=int, default=5_000)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--export-pause", type=float, default=5.0)
    parser.add_argument("--use-migrations", action="store_true")
    parser.add_argument(
        "--broker-url", default=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/11")
    )
    return parser.parse_args()


def preseed(project_id: int, n_items: int) -> str:
    """Three outside annotators label the first `n_items` items; returns the manager's token."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from labeling.models import Annotation, Item, Membership, Project
    from labeling.services.queue import progress_refresh

    User = get_user_model()
    project = Project.objects.get(pk=project_id)
    people = [User.objects.create_user(f"soak-crowd-{k}") for k in range(3)]
    Membership.objects.bulk_create(
        Membership(project=project, user=u, role=Membership.Role.ANNOTATOR) for u in people
    )
    labels = list(project.labels.order_by("order").values_list("id", flat=True))
    guideline = project.current_guideline()
    items = Item.objects.filter(project=project).order_by("id").values_list("id", flat=True)
    Annotation.objects.bulk_create(
        (
            Annotation(
                project=project,
                item_id=item_id,
                annotator=person,
                guideline=guideline,
                # mostly agreeing, with a disagreement every few items
                label_id=labels[(i + (k == 2 and i % 4 == 0)) % len(labels)],
            )
            for i, item_id in enumerate(items[:n_items].iterator())
            for k, person in enumerate(people)
        ),
        batch_size=5_000,
    )
    progress_refresh(project=project)  # as the annotation import does after its bulk write
    manager = User.objects.get(username="bench-manager")
    return Token.objects.create(user=manager).key


def start_worker(env: dict, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "celery"),
            "-A",
            "config",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


class Background(threading.Thread):
    """A manager's loop until the deadline: `job` returns (milliseconds, outcome) per round."""

    def __init__(self, token: str, port: int, deadline: float, pause: float):
        super().__init__(daemon=True)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.port, self.deadline, self.pause = port, deadline, pause
        self.rounds: list[tuple[float, object]] = []
        self.errors: list[str] = []

    def request(self, method: str, path: str, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            conn.request(method, path, body=body, headers=self.headers)
            response = conn.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            conn.close()

    def run(self):
        while time.monotonic() < self.deadline:
            started = time.perf_counter()
            try:
                outcome = self.job()
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(1)
                continue
            self.rounds.append(((time.perf_counter() - started) * 1000, outcome))
            time.sleep(self.pause)


class AgreementRuns(Background):
    def __init__(self, project_id: int, *args):
        super().__init__(*args)
        self.project_id = project_id

    def job(self):
        body = json.dumps({"kind": "agreement", "params": {"n_bootstrap": 200}})
        status, payload, _ = self.request("POST", f"/api/v1/projects/{self.project_id}/runs/", body)
        if status != 202:
            self.errors.append(f"start {status} {payload[:200]!r}")
            return None
        run_id = json.loads(payload)["id"]
        # A started run is followed to its end even past the deadline (bounded by the timeout).
        give_up = time.monotonic() + 600
        while time.monotonic() < give_up:
            status, payload, _ = self.request("GET", f"/api/v1/runs/{run_id}/")
            run = json.loads(payload)
            if run["status"] in ("succeeded", "failed"):
                return {"id": run_id, "status": run["status"], "message": run.get("message")}
            time.sleep(0.5)
        return {"id": run_id, "status": "still " + run["status"]}


class Exports(Background):
    def __init__(self, project_id: int, *args):
        super().__init__(*args)
        self.project_id = project_id

    def job(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            conn.request(
                "GET",
                f"/api/v1/projects/{self.project_id}/export/?format=jsonl",
                headers=self.headers,
            )
            response = conn.getresponse()
            if response.status != 200:
                self.errors.append(f"export {response.status} {response.read()[:200]!r}")
                return None
            rows, tail = 0, b""
            while chunk := response.read(1 << 16):  # streamed: count lines as they come
                rows += chunk.count(b"\n")
                tail = chunk[-1:]
            rows += 1 if tail not in (b"", b"\n") else 0
            return {"rows": rows, "version": response.getheader("X-Concord-Dataset-Version")}
        finally:
            conn.close()


def main() -> None:
    args = parse_args()
    env = server_env(args, name="soak")
    benchdb.recreate_database(args.database_url)
    setup_django(env, args.use_migrations)
    project_id, tokens = seed(args.items, args.annotators, args.overlap)
    manager_token = preseed(project_id, args.preseeded)
    from django.db import connections

    from config.celery import app as celery_app

    celery_app.control.purge()  # no message of an earlier run may reach this worker
    connections.close_all()

    worker = start_worker(env, ROOT / "var" / "soak-worker.log")
    server = start_gunicorn(args, env)
    try:
        deadline = time.monotonic() + args.seconds
        started = time.monotonic()
        annotators = [
            Annotator(n, token, project_id, args.port, deadline) for n, token in enumerate(tokens)
        ]
        background = [
            AgreementRuns(project_id, manager_token, args.port, deadline, 1.0),
            Exports(project_id, manager_token, args.port, deadline, args.export_pause),
        ]
        for thread in annotators + background:
            thread.start()
        for thread in annotators:
            thread.join(timeout=args.seconds + 60)
        elapsed = time.monotonic() - started
        for thread in background:
            thread.join(timeout=660)
    finally:
        stop(server)
        stop(worker)

    from django.db.models import Count

    from labeling.models import Annotation, Item

    duplicates, overfilled = check_database(project_id, args.overlap)
    stored = Annotation.objects.filter(
        project_id=project_id, annotator__username__startswith="bench-annotator-"
    ).count()
    per_item = Annotation.objects.filter(project_id=project_id).values("item_id")
    fully_labeled = per_item.annotate(n=Count("id")).filter(n=args.overlap).count()
    n_items = Item.objects.filter(project_id=project_id).count()
    agreement, exports = background
    runs = [outcome for _ms, outcome in agreement.rounds if outcome]
    export_rows = [outcome["rows"] for _ms, outcome in exports.rounds if outcome]
    errors = [e for t in annotators + background for e in t.errors]
    for error in errors[:5]:
        print("error:", error, file=sys.stderr)
    acknowledged = sum(t.submissions for t in annotators)
    next_ms = [ms for t in annotators for ms in t.next_ms]
    submit_ms = [ms for t in annotators for ms in t.submit_ms]
    report = {
        "seconds": round(elapsed, 1),
        "annotators": args.annotators,
        "items": n_items,
        "acknowledged": acknowledged,
        "stored": stored,
        "per_s": round(acknowledged / elapsed, 1),
        "next_p50_ms": percentile(next_ms, 50),
        "next_p95_ms": percentile(next_ms, 95),
        "submit_p50_ms": percentile(submit_ms, 50),
        "submit_p95_ms": percentile(submit_ms, 95),
        "errors": len(errors),
        "duplicates": duplicates,
        "overfilled": overfilled,
        "fully_labeled_items": fully_labeled,
        "agreement_runs": len(runs),
        "agreement_succeeded": sum(run["status"] == "succeeded" for run in runs),
        "agreement_p95_ms": percentile([ms for ms, o in agreement.rounds if o], 95),
        "exports": len(export_rows),
        "export_rows_equal_items": all(rows == n_items for rows in export_rows),
        "export_p95_ms": percentile([ms for ms, o in exports.rounds if o], 95),
    }
    report["ok"] = bool(
        acknowledged == stored
        and duplicates == 0
        and overfilled == 0
        and not errors
        and runs
        and report["agreement_succeeded"] == len(runs)
        and export_rows
        and report["export_rows_equal_items"]
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
