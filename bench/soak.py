"""Soak test: 32 annotators label for `--seconds` against gunicorn + PostgreSQL while agreement
and label-issue jobs (real Celery workers) and streamed exports run in the background; with
`--nodes 2`, on two web nodes and two worker nodes, one of which is killed mid-job.

    .venv/bin/python bench/soak.py [--seconds 300] [--annotators 32] [--items 20000]
        [--nodes 1|2] [--port 8766] [--visibility-timeout 60]

Reuses bench/labeling_load.py (database, seeding, gunicorn, the annotator threads). All on
loopback and bounded in time:
1. (Re)creates `--database-url` (default concord_bench_soak), seeds `--items` text items, the
   annotators, and `--preseeded` items fully labeled by three other people so the jobs have
   work from the first second.
2. Starts, per node, gunicorn on `--port` + k and `celery -A config worker -n node<k>@%h`
   (broker `--broker-url`, its Redis database emptied first). Every node has its own
   CONCORD_VAR_DIR (a fresh temporary folder): the nodes share nothing on disk, only
   PostgreSQL and Redis.
3. For `--seconds`: the annotator threads loop GET /next/ -> POST /annotations/, annotator n
   on node n mod `--nodes`; one thread starts an agreement run over the API, waits for it to
   end and starts the next; another does the same with label-issue runs (the built-in
   cross-validated model, `--folds`); another streams `GET /export/?format=jsonl` and counts
   the rows, then waits `--export-pause` s. Each round goes to the next node in turn.
4. With two nodes, once `--kill-after` s have passed: the first label-issue run seen
   computing has its worker killed with SIGKILL (the whole worker: nobody acknowledges or
   gives back its job). Redis hands the job to the other worker after the visibility
   timeout; the killed node's worker is started again once that run has ended.
5. Stops everything and checks the database. Prints one JSON line: throughput, p50/p95
   latencies (next, submit, export), errors, the load average, and the checks:
   `acknowledged` (201 answers) == `stored` (the annotators' annotations in the database),
   `duplicates` == 0, `overfilled` == 0, every agreement and label-issue run `succeeded`,
   every export's row count == the number of items; with two nodes also `runs_by_worker`
   (from each run's `worker`) naming both workers, the killed run (`killed`) finished by the
   other worker on its second attempt, and `node_var_files` (what each node wrote to its
   CONCORD_VAR_DIR) holding nothing but the empty static folder. `ok` is true only when all
   of them hold.

Django's and the project's modules are imported inside the functions: they need Django set
up first (`setup_django`), which happens once the command line has named the database.
"""

import argparse
import copy
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchdb
import redis
from labeling_load import (
    Annotator,
    check_database,
    percentile,
    seed,
    server_env,
    setup_django,
    setup_tables,
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
    parser.add_argument("--nodes", type=int, default=1, choices=[1, 2])
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers per node")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--port", type=int, default=8766, help="node k listens on port + k")
    parser.add_argument("--folds", type=int, default=3, help="label-issue runs' folds")
    parser.add_argument("--export-pause", type=float, default=5.0)
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=60,
        help="CONCORD_BROKER_VISIBILITY_TIMEOUT of the workers: a killed worker's job comes "
        "back this many seconds after it was taken (keep it above the longest job)",
    )
    parser.add_argument(
        "--kill-after", type=float, default=None, help="two nodes: seconds before the kill"
    )
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


class Node:
    """One machine's share: gunicorn on its port and a Celery worker named `node<k>@host`,
    with a CONCORD_VAR_DIR of its own."""

    def __init__(self, k: int, args, env: dict):
        self.name, self.port = f"node{k}", args.port + k
        self.var_dir = Path(tempfile.mkdtemp(prefix=f"concord-soak-{self.name}-"))
        self.env = {**env, "CONCORD_VAR_DIR": str(self.var_dir)}
        self.gunicorn_args = copy.copy(args)
        self.gunicorn_args.port = self.port
        self.log_path = ROOT / "var" / f"soak-{self.name}-worker.log"
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def start(self) -> None:
        self.start_worker()
        self.server = start_gunicorn(self.gunicorn_args, self.env)

    def start_worker(self) -> None:
        log = open(self.log_path, "ab")
        self.worker = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "celery"), "-A", "config", "worker",
             "-n", f"{self.name}@%h", "--pool=prefork", "--concurrency=1",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel=WARNING"],
            cwd=ROOT, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def kill_worker(self) -> None:
        """SIGKILL to the worker and its pool process at once: a machine lost, not a crash the
        worker could report."""
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def stop(self) -> None:
        for process in (self.server, self.worker):
            if process is not None:
                stop(process)

    def var_files(self) -> list[str]:
        """Every file and folder the node wrote to its CONCORD_VAR_DIR."""
        return sorted(str(path.relative_to(self.var_dir)) for path in self.var_dir.rglob("*"))


class Background(threading.Thread):
    """A manager's loop until the deadline: `job` returns (milliseconds, outcome) per round;
    round i goes to node i mod the number of nodes."""

    def __init__(self, token: str, ports: list[int], deadline: float, pause: float):
        super().__init__(daemon=True)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.ports, self.deadline, self.pause = ports, deadline, pause
        self.rounds: list[tuple[float, object]] = []
        self.errors: list[str] = []

    @property
    def port(self) -> int:
        return self.ports[len(self.rounds) % len(self.ports)]

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


class Runs(Background):
    """Start a run of `kind` over the API, follow it to its end, start the next."""

    def __init__(self, project_id: int, kind: str, params: dict, *args):
        super().__init__(*args)
        self.project_id, self.kind, self.params = project_id, kind, params

    def job(self):
        body = json.dumps({"kind": self.kind, "params": self.params})
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


class WorkerKill(threading.Thread):
    """After `after` s, SIGKILL the worker computing the first label-issue run seen mid-job;
    start it again once that run has ended (so the other worker is the one to finish it)."""

    def __init__(self, nodes: list[Node], project_id: int, after: float, deadline: float):
        super().__init__(daemon=True)
        self.nodes, self.project_id = nodes, project_id
        self.after, self.deadline = after, deadline
        self.killed: dict | None = None
        self.errors: list[str] = []

    def run(self):
        from django.db import connection

        try:
            time.sleep(self.after)
            self.kill()
            if self.killed is None:
                self.errors.append("no label-issue run was seen computing: nothing killed")
            else:
                self.wait_and_restart()
        finally:
            connection.close()

    def kill(self) -> None:
        from analysis.models import AnalysisRun

        by_name = {node.name: node for node in self.nodes}
        while time.monotonic() < self.deadline:
            run = (
                AnalysisRun.objects.filter(
                    project_id=self.project_id,
                    kind=AnalysisRun.Kind.LABEL_ISSUES,
                    status=AnalysisRun.Status.RUNNING,
                    progress__gte=0.05,
                    progress__lt=0.9,
                )
                .only("id", "worker")
                .first()
            )
            if run is None:
                time.sleep(0.05)
                continue
            by_name[run.worker.split("@")[0]].kill_worker()
            self.killed = {"run": run.pk, "worker": run.worker, "at": time.monotonic()}
            return

    def wait_and_restart(self) -> None:
        from analysis.models import AnalysisRun

        ended = (AnalysisRun.Status.SUCCEEDED, AnalysisRun.Status.FAILED)
        give_up = time.monotonic() + 600
        while time.monotonic() < give_up:
            if AnalysisRun.objects.filter(pk=self.killed["run"], status__in=ended).exists():
                self.killed["seconds_to_end"] = round(time.monotonic() - self.killed["at"], 1)
                break
            time.sleep(0.5)
        node_name = self.killed["worker"].split("@")[0]
        next(node for node in self.nodes if node.name == node_name).start_worker()


def two_node_checks(nodes: list[Node], project_id: int, killer: WorkerKill) -> tuple[dict, list]:
    """Which worker ran each run, the killed run's fate, and what each node kept on disk."""
    from analysis.models import AnalysisRun

    runs = list(
        AnalysisRun.objects.filter(project_id=project_id)
        .order_by("id")
        .values("id", "kind", "status", "worker", "attempts")
    )
    by_worker: dict = {}
    for run in runs:
        per_kind = by_worker.setdefault(run["worker"] or "(none)", {})
        per_kind[run["kind"]] = per_kind.get(run["kind"], 0) + 1
    node_of = {run["id"]: run["worker"].split("@")[0] for run in runs}
    killed = killer.killed
    if killed is not None:
        run_id = killed.pop("run")
        killed.pop("at")
        run = next(run for run in runs if run["id"] == run_id)
        killed.update(run=run["id"], status=run["status"], finished_by=run["worker"],
                      attempts=run["attempts"])  # fmt: skip
    files = {node.name: node.var_files() for node in nodes}
    report = {
        "runs_by_worker": by_worker,
        "retried_runs": [run for run in runs if run["attempts"] > 1],
        "jobs_on_every_worker": {node.name for node in nodes} <= set(node_of.values()),
        "killed": killed,
        "node_var_files": files,
        # Only the static folder, made empty at start-up (production collects into it).
        "nothing_shared_on_disk": all(names == ["staticfiles"] for names in files.values()),
    }
    checks = [
        report["jobs_on_every_worker"],
        killed is not None
        and killed["status"] == "succeeded"
        and killed["attempts"] == 2
        and killed["finished_by"].split("@")[0] != killed["worker"].split("@")[0],
        report["nothing_shared_on_disk"],
    ]
    return report, checks


def main() -> None:
    args = parse_args()
    env = server_env(args, name="soak")
    env["CONCORD_BROKER_VISIBILITY_TIMEOUT"] = str(args.visibility_timeout)
    benchdb.recreate_database(args.database_url)
    setup_django(env)
    setup_tables(args.use_migrations)
    project_id, tokens, _ = seed(args.items, args.annotators, args.overlap, "import")
    manager_token = preseed(project_id, args.preseeded)
    from django.db import connections

    # No message of an earlier run may reach these workers: not a queued one, nor one a killed
    # worker took and never acknowledged (Redis would hand it out again); nor its counters.
    redis.Redis.from_url(args.broker_url).flushdb()
    connections.close_all()

    nodes = [Node(k, args, env) for k in range(args.nodes)]
    ports = [node.port for node in nodes]
    killer = None
    try:
        for node in nodes:
            node.start()
        deadline = time.monotonic() + args.seconds
        started = time.monotonic()
        annotators = [
            Annotator(n, token, project_id, ports[n % len(ports)], deadline)
            for n, token in enumerate(tokens)
        ]
        agreement = Runs(project_id, "agreement", {"n_bootstrap": 200},
                         manager_token, ports, deadline, 1.0)  # fmt: skip
        label_issues = Runs(project_id, "label_issues", {"folds": args.folds},
                            manager_token, ports, deadline, 1.0)  # fmt: skip
        exports = Exports(project_id, manager_token, ports, deadline, args.export_pause)
        background = [agreement, label_issues, exports]
        if args.nodes > 1:
            after = args.kill_after if args.kill_after is not None else args.seconds / 4
            killer = WorkerKill(nodes, project_id, after, deadline)
            background.append(killer)
        for thread in annotators + background:
            thread.start()
        for thread in annotators:
            thread.join(timeout=args.seconds + 60)
        elapsed = time.monotonic() - started
        for thread in background:
            thread.join(timeout=660)
        load_avg = [round(x, 2) for x in os.getloadavg()]
    finally:
        for node in nodes:
            node.stop()

    from django.db.models import Count

    from labeling.models import Annotation, Item

    duplicates, overfilled = check_database(project_id, args.overlap)
    stored = Annotation.objects.filter(
        project_id=project_id, annotator__username__startswith="bench-annotator-"
    ).count()
    per_item = Annotation.objects.filter(project_id=project_id).values("item_id")
    fully_labeled = per_item.annotate(n=Count("id")).filter(n=args.overlap).count()
    n_items = Item.objects.filter(project_id=project_id).count()
    agreement_runs = [outcome for _ms, outcome in agreement.rounds if outcome]
    issue_runs = [outcome for _ms, outcome in label_issues.rounds if outcome]
    export_rows = [outcome["rows"] for _ms, outcome in exports.rounds if outcome]
    errors = [e for t in annotators + background for e in t.errors]
    for error in errors[:5]:
        print("error:", error, file=sys.stderr)
    acknowledged = sum(t.submissions for t in annotators)
    next_ms = [ms for t in annotators for ms in t.next_ms]
    submit_ms = [ms for t in annotators for ms in t.submit_ms]
    report = {
        "nodes": args.nodes,
        "seconds": round(elapsed, 1),
        "annotators": args.annotators,
        "items": n_items,
        "acknowledged": acknowledged,
        "acknowledged_per_node": [
            sum(t.submissions for t in annotators if t.port == port) for port in ports
        ],
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
        "agreement_runs": len(agreement_runs),
        "agreement_succeeded": sum(run["status"] == "succeeded" for run in agreement_runs),
        "agreement_p95_ms": percentile([ms for ms, o in agreement.rounds if o], 95),
        "label_issue_runs": len(issue_runs),
        "label_issues_succeeded": sum(run["status"] == "succeeded" for run in issue_runs),
        "label_issues_p95_ms": percentile([ms for ms, o in label_issues.rounds if o], 95),
        "exports": len(export_rows),
        "export_rows_equal_items": all(rows == n_items for rows in export_rows),
        "export_p95_ms": percentile([ms for ms, o in exports.rounds if o], 95),
        "load_avg": load_avg,
    }
    checks = [
        acknowledged == stored,
        duplicates == 0,
        overfilled == 0,
        not errors,
        agreement_runs and report["agreement_succeeded"] == len(agreement_runs),
        issue_runs and report["label_issues_succeeded"] == len(issue_runs),
        export_rows and report["export_rows_equal_items"],
    ]
    if args.nodes > 1:
        more, more_checks = two_node_checks(nodes, project_id, killer)
        report.update(more)
        checks += more_checks
    for node in nodes:
        shutil.rmtree(node.var_dir, ignore_errors=True)
    report["ok"] = bool(all(checks))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
