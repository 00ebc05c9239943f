"""Load test of the annotator API: N annotators doing next + submit against gunicorn.

    .venv/bin/python bench/labeling_load.py [--annotators 32] [--seconds 60] [--items 100000]
        [--queue-order import|random|uncertainty|activelab] [--webhook-delay-ms 200]
    .venv/bin/python bench/labeling_load.py --open-loop --annotators 600 --think-seconds 4
        [--think-distribution uniform|exponential] [--connections 32] [--seed 0]
        [--find-max --rate-step 50 --max-rate 600 --max-p95-ms 100]

What it does, all on loopback and bounded in time:
1. (Re)creates the PostgreSQL database `--database-url` (default concord_bench_labeling) and
   its tables: from the current models with migrations disabled (`migrate --run-syncdb`, as
   the test suite does), or with `--use-migrations` through the real migrations.
2. Seeds one project (overlap `--overlap`, default 3, queue order `--queue-order`, default
   import) with `--items` text items in bulk, and `--annotators` annotator accounts with API
   tokens. For the scored orders (`uncertainty`, `activelab`) every item first gets a
   priority (seeded random numbers, written by the model-refresh job's bulk writer
   `priorities_write`, whose time is reported as `priorities_write_s`); the claims then read
   them, and every `scores_refresh_every` (200) submissions ask for a refresh as in
   production (the request waits on the broker: no worker runs during the bench).
3. Starts gunicorn (`config.wsgi`, `--workers` 4, gthread so keep-alive works) on 127.0.0.1.
4. Runs one thread per annotator with a keep-alive HTTP connection and token auth, looping
   GET /next/ -> POST /annotations/ for `--seconds`.
5. Stops gunicorn, checks the database and prints one JSON line:
   {queue_order, annotators, submissions, per_s, next_p50_ms, next_p95_ms, submit_p50_ms,
    submit_p95_ms, errors, duplicates, overfilled, cpu_ms_per_submission, priorities_write_s,
    load_avg, speed_probe_ms} (the last two after the run; `benchdb.speed_probe_ms`: this
   machine's speed drifts).
   `cpu_ms_per_submission`: CPU time of the gunicorn workers, of their PostgreSQL backends and
   of the simulated annotators (this process) during the load, per stored submission. It
   depends less than the rates on what else the machine is doing, but this machine's own
   speed drifts (`speed_probe_ms`).
   `duplicates`: (item, annotator) pairs with more than one annotation; `overfilled`: items
   with more annotations than the overlap.
6. With `--webhook-delay-ms N` steps 1-5 run `--rounds` times in pairs, each run with a
   Celery worker (concurrency 2): without a webhook, and with one on `annotation.created`
   pointed at a receiver (a process of its own, its CPU not counted: it stands for another
   machine) that answers 200 after N ms; the order swaps every round. The worker's CPU
   (main process and pool) during the load counts as `worker` in `cpu_ms_per_submission`.
   One JSON line holds every run (with the POSTs the receiver got and the deliveries
   logged while the load ran: the rest were still queued; a slow receiver makes a backlog,
   never a slower labeling), the medians, `throughput_ratio` and `cpu_ratio` (with /
   without, every part of the CPU summed).

7. With `--open-loop`, a team that thinks between items (closed loop above: 32 annotators who
   never pause). Each simulated annotator asks for an item, thinks (uniform within +-50% of
   `--think-seconds`, or exponential; seeded), submits and asks for the next, on a schedule
   fixed in advance (`Schedule`): `--annotators` / `--think-seconds` submissions per second
   are offered whatever the server does. A submit is due at its scheduled time, the `next`
   after it as soon as it is answered, and latency runs from the due time, so a server that
   falls behind builds a backlog that shows in the latency (no coordinated omission).
   `--connections` threads, each with a keep-alive connection, serve every annotator's calls
   in the order they fall due (`OpenLoopClient`), as a reverse proxy pools browsers. One
   JSON line: offered and achieved submissions/s (achieved: stored per second after the
   first think time, when everyone is at work), submissions offered, stored and `unserved`
   (not answered within `--drain-seconds` after the end), p50/p95/p99 of `next` and of
   submit, errors, duplicates, over-filled, CPU per submission of the web workers, of
   their database backends (`database`; `database_other`: autovacuum and other backends
   of the bench database, sampled every half second), of this process (`client`), and
   the load average and `speed_probe_ms` (`benchdb.speed_probe_ms`) before and after.
   With `--find-max` the rate steps up by `--rate-step` (one seeding and one gunicorn, a
   JSON line per rate) until a rate misses `--max-p95-ms` for either call or leaves a
   submission unserved or in error; the last line names the largest rate that held.

Django's and the project's modules are imported inside the functions: they need Django set
up first (`setup_django`), which happens once the command line has named the database.
"""

import argparse
import heapq
import http.client
import json
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
WORKER_CONCURRENCY = 2  # the webhook runs' Celery worker
sys.path.insert(0, str(ROOT))

import benchdb  # noqa: E402  (bench/ is on sys.path when run as a script)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/concord_bench_labeling"
    )
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument(
        "--queue-order", default="import", choices=["import", "random", "uncertainty", "activelab"]
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--use-migrations", action="store_true")
    parser.add_argument(
        "--webhook-delay-ms",
        type=int,
        default=None,
        help="run twice: without a webhook, then with one on annotation.created whose receiver "
        "answers after this many ms (a worker delivers; one JSON line compares the two)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="with --webhook-delay-ms: pairs of runs"
    )
    parser.add_argument(
        "--open-loop",
        action="store_true",
        help="annotators who think between items, on a fixed schedule (see the docstring)",
    )
    parser.add_argument(
        "--think-seconds", type=float, default=4.0, help="open loop: mean time per item"
    )
    parser.add_argument(
        "--think-distribution",
        default="uniform",
        choices=["uniform", "exponential"],
        help="open loop: uniform within +-50%% of the mean, or exponential",
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="open loop: keep-alive connections"
    )
    parser.add_argument(
        "--separate-next",
        action="store_true",
        help="open loop: ask `next` in a call of its own after each submit, instead of the "
        "submission's `?next=1` (one call per item, as the labeling page makes)",
    )
    parser.add_argument("--seed", type=int, default=0, help="open loop: the schedule's seed")
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=15.0,
        help="open loop: how long calls still queued at the end may take to be served",
    )
    parser.add_argument(
        "--find-max",
        action="store_true",
        help="open loop: offer --annotators / --think-seconds, then --rate-step more per run, "
        "until p95 of next or submit exceeds --max-p95-ms or a submission is not served",
    )
    parser.add_argument("--rate-step", type=float, default=50.0)
    parser.add_argument("--max-rate", type=float, default=600.0)
    parser.add_argument("--max-p95-ms", type=float, default=100.0)
    parser.add_argument(
        "--broker-url",
        default=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/5"),
        help="only used for the shared cache (login throttling)",
    )
    return parser.parse_args()


def setup_django(env: dict) -> None:
    """Django in this process on the bench database, with the server's environment."""
    os.environ.update(env)
    benchdb.setup_django(env["DATABASE_URL"], force_debug=True)


def setup_tables(use_migrations: bool) -> None:
    """The tables on the (empty) bench database."""
    if use_migrations:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    else:
        benchdb.create_tables()


def server_env(args, *, name: str) -> dict:
    """The environment the bench's gunicorn (and worker) run with: production settings."""
    return {
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.broker_url,
        "DEBUG": "0",
        "SECRET_KEY": f"{name}-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CONCORD_SSL_REDIRECT": "0",
        "CONCORD_LOG_LEVEL": "ERROR",
    }


def seed(n_items: int, n_annotators: int, overlap: int, queue_order: str):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from rest_framework.authtoken.models import Token

    from labeling.models import Item, Membership
    from labeling.services.projects import project_create

    User = get_user_model()
    manager = User.objects.create_user("bench-manager", password="bench-password-123")
    project = project_create(
        name="Load test",
        labels=[{"name": "negative"}, {"name": "positive"}, {"name": "neutral"}],
        created_by=manager,
        overlap=overlap,
        queue_order=queue_order,
    )
    batch = 10_000
    for start in range(0, n_items, batch):
        Item.objects.bulk_create(
            Item(
                project=project,
                external_id=f"item-{i:07d}",
                data={
                    "text": f"Review {i}: the battery lasts {i % 48} hours and the screen is ok."
                },
            )
            for i in range(start, min(start + batch, n_items))
        )
    password = make_password("bench-password-123")
    User.objects.bulk_create(
        User(username=f"bench-annotator-{i:03d}", password=password) for i in range(n_annotators)
    )
    users = list(User.objects.filter(username__startswith="bench-annotator-").order_by("username"))
    Membership.objects.bulk_create(
        Membership(project=project, user=u, role=Membership.Role.ANNOTATOR) for u in users
    )
    tokens = [Token.objects.create(user=u).key for u in users]
    write_s = None
    if queue_order in ("uncertainty", "activelab"):
        from analysis.services.model_refresh import priorities_write

        item_ids = np.array(
            Item.objects.filter(project=project).order_by("id").values_list("id", flat=True)
        )
        started = time.perf_counter()
        priorities_write(
            project=project,
            item_ids=item_ids,
            priorities=np.random.default_rng(0).random(len(item_ids)),
        )
        write_s = round(time.perf_counter() - started, 2)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum does soon after a bulk load
    return project.pk, tokens, write_s


def start_gunicorn(args, env: dict) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "--config",
            "config/gunicorn.py",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return process
        except OSError:
            pass
        time.sleep(0.3)
    stop(process)
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Annotator(threading.Thread):
    LABELS = ("negative", "positive", "neutral")

    def __init__(self, n: int, token: str, project_id: int, port: int, deadline: float):
        super().__init__(daemon=True)
        self.n, self.project_id, self.port, self.deadline = n, project_id, port, deadline
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.next_ms: list[float] = []
        self.submit_ms: list[float] = []
        self.errors: list[str] = []
        self.submissions = 0

    def call(self, conn, method, path, body=None):
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=self.headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, payload, (time.perf_counter() - started) * 1000

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        base = f"/api/v1/projects/{self.project_id}"
        while time.monotonic() < self.deadline:
            try:
                status, payload, ms = self.call(conn, "GET", f"{base}/next/")
                self.next_ms.append(ms)
                if status == 204:
                    break
                if status != 200:
                    self.errors.append(f"next {status} {payload[:200]!r}")
                    continue
                item = json.loads(payload)["item"]["id"]
                body = json.dumps(
                    {
                        "item": item,
                        "label": self.LABELS[(item + self.n) % 3],
                        "request_id": uuid.uuid4().hex,
                        "lead_time_ms": 1200,
                    }
                )
                status, payload, ms = self.call(conn, "POST", f"{base}/annotations/", body)
                self.submit_ms.append(ms)
                if status == 201:
                    self.submissions += 1
                else:
                    self.errors.append(f"submit {status} {payload[:200]!r}")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pids(server: subprocess.Popen) -> list[int]:
    """A server's processes: the parent (gunicorn's arbiter, Celery's main process) and its
    children (the workers, the pool)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [server.pid, *(int(pid) for pid in children)]


def pool_pids(worker: subprocess.Popen, timeout: float = 60) -> list[int]:
    """The Celery worker's processes once its pool has started."""
    deadline = time.monotonic() + timeout
    while len(pids := worker_pids(worker)) < WORKER_CONCURRENCY + 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the Celery worker's pool did not start")
        time.sleep(0.2)
    return pids


def backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL backends serving the bench database (but not this query's own)."""
    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [pid for (pid,) in rows]


def ms_per_submission(submissions: int, **cpu_seconds: float) -> dict[str, float]:
    """CPU seconds per part as milliseconds per submission."""
    return {
        part: round(seconds * 1000 / max(submissions, 1), 2)
        for part, seconds in cpu_seconds.items()
    }


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def check_database(project_id: int, overlap: int) -> tuple[int, int]:
    from django.db.models import Count

    from labeling.models import Annotation

    annotations = Annotation.objects.filter(project_id=project_id)
    duplicates = (
        annotations.values("item_id", "annotator_id").annotate(n=Count("id")).filter(n__gt=1)
    ).count()
    overfilled = (
        annotations.values("item_id").annotate(n=Count("id")).filter(n__gt=overlap)
    ).count()
    return duplicates, overfilled


def serve_slowly(delay_ms: int, port, received, ready) -> None:
    """The receiver's process: answer every POST with 200 after `delay_ms`, counting them."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(delay_ms / 1000)
            with received.get_lock():
                received.value += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port.value = server.server_port
    ready.set()
    server.serve_forever()


class SlowReceiver:
    """A webhook receiver on 127.0.0.1 that answers 200 after `delay_ms`, counting POSTs.

    In a process of its own, as a real receiver runs elsewhere: its threads in this process
    would take the interpreter lock from the simulated annotators' threads and count against
    labeling what is the bench's own cost."""

    def __init__(self, delay_ms: int):
        context = multiprocessing.get_context("spawn")  # not a fork of this Django process
        self.count = context.Value("i", 0)
        port = context.Value("i", 0)
        ready = context.Event()
        self.process = context.Process(
            target=serve_slowly, args=(delay_ms, port, self.count, ready), daemon=True
        )
        self.process.start()
        if not ready.wait(30):
            raise RuntimeError("the webhook receiver did not start")
        self.url = f"http://127.0.0.1:{port.value}/hook"

    @property
    def received(self) -> int:
        return self.count.value

    def reset(self) -> None:
        with self.count.get_lock():
            self.count.value = 0


def start_worker(env: dict) -> subprocess.Popen:
    """A Celery worker as production runs one (it delivers the webhook events)."""
    return subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "celery"), "-A", "config", "worker",
         f"--concurrency={WORKER_CONCURRENCY}", "--without-gossip", "--without-mingle",
         "--loglevel=WARNING"],
        cwd=ROOT, env={**os.environ, **env}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def load_run(args, env: dict, receiver: SlowReceiver | None) -> dict:
    """One load run on a fresh database: seed, (webhook), gunicorn (+ worker), annotators."""
    from django.db import connections

    connections.close_all()
    benchdb.recreate_database(args.database_url)
    setup_tables(args.use_migrations)
    seed_started = time.monotonic()
    project_id, tokens, write_s = seed(args.items, args.annotators, args.overlap, args.queue_order)
    print(
        f"seeded {args.items} items, {args.annotators} annotators "
        f"in {time.monotonic() - seed_started:.1f}s",
        file=sys.stderr,
    )
    from config.celery import app as celery_app
    from labeling.models import Project, WebhookDelivery
    from labeling.services import webhooks

    celery_app.control.purge()  # messages of an earlier run name rows that are gone
    webhooks.subscriptions_changed(project_id)  # likewise its cached subscriptions
    if receiver is not None:
        receiver.reset()
        webhooks.webhook_create(
            project=Project.objects.get(pk=project_id), url=receiver.url,
            events=["annotation.created"], user=None,
        )  # fmt: skip
    connections.close_all()
    worker = start_worker(env) if args.webhook_delay_ms is not None else None
    server = start_gunicorn(args, env)
    try:
        workers = worker_pids(server)
        server_cpu_before = sum(cpu_seconds(pid) for pid in workers)
        delivering = pool_pids(worker) if worker is not None else []
        worker_cpu_before = sum(cpu_seconds(pid) for pid in delivering)
        client_cpu_before = time.process_time()
        deadline = time.monotonic() + args.seconds
        started = time.monotonic()
        threads = [
            Annotator(n, token, project_id, args.port, deadline) for n, token in enumerate(tokens)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.seconds + 60)
        elapsed = time.monotonic() - started
        client_cpu = time.process_time() - client_cpu_before
        server_cpu = sum(cpu_seconds(pid) for pid in workers) - server_cpu_before
        worker_cpu = sum(cpu_seconds(pid) for pid in delivering) - worker_cpu_before
        # Backends start with the first request and end when gunicorn stops: read them now.
        database_cpu = sum(cpu_seconds(pid) for pid in backend_pids(args.database_url))
    finally:
        stop(server)
        if worker is not None:
            stop(worker)
    duplicates, overfilled = check_database(project_id, args.overlap)
    errors = [e for t in threads for e in t.errors]
    for error in errors[:5]:
        print("error:", error, file=sys.stderr)
    submissions = sum(t.submissions for t in threads)
    next_ms = [ms for t in threads for ms in t.next_ms]
    submit_ms = [ms for t in threads for ms in t.submit_ms]
    report = {
        "queue_order": args.queue_order,
        "annotators": args.annotators,
        "submissions": submissions,
        "per_s": round(submissions / elapsed, 1),
        "next_p50_ms": percentile(next_ms, 50),
        "next_p95_ms": percentile(next_ms, 95),
        "submit_p50_ms": percentile(submit_ms, 50),
        "submit_p95_ms": percentile(submit_ms, 95),
        "errors": len(errors),
        "duplicates": duplicates,
        "overfilled": overfilled,
        "cpu_ms_per_submission": ms_per_submission(
            submissions,
            server=server_cpu,
            database=database_cpu,
            client=client_cpu,
            **({"worker": worker_cpu} if worker is not None else {}),
        ),
        "priorities_write_s": write_s,
    }
    if receiver is not None:
        report["webhook_posts_received"] = receiver.received
        report["webhook_deliveries_logged"] = WebhookDelivery.objects.count()
    report["load_avg"] = round(os.getloadavg()[0], 2)
    report["speed_probe_ms"] = benchdb.speed_probe_ms()  # after the run, the machine idle
    return report


class Schedule:
    """When each simulated annotator submits: after a think time per item, seeded.

    Annotator a asks for its first item at a random instant of the first mean think time (so
    the team does not start in step) and submits item k at `submits[a][k]` seconds after the
    start: the first ask plus k + 1 think times, uniform within +-50% of the mean or
    exponential. The times never depend on the server's answers: a slow server makes calls
    late, and the lateness counts in their latency.
    """

    def __init__(self, n: int, think_s: float, seconds: float, distribution: str, seed: int):
        rng = np.random.default_rng(seed)
        self.seconds = seconds
        self.first_ask = rng.uniform(0, think_s, n)
        per_annotator = int(seconds / think_s * 2) + 20  # more than the window can use
        if distribution == "exponential":
            thinks = rng.exponential(think_s, (n, per_annotator))
        else:
            thinks = rng.uniform(0.5 * think_s, 1.5 * think_s, (n, per_annotator))
        times = self.first_ask[:, None] + np.cumsum(thinks, axis=1)
        self.submits = [row[row < seconds].tolist() for row in times]
        self.offered = sum(len(row) for row in self.submits)


class OpenLoopClient:
    """Many annotators on a few keep-alive connections, each call sent when it is due.

    A dispatcher thread moves calls that are due from a heap to a FIFO that `connections`
    threads serve (each with its own keep-alive connection, as a reverse proxy would pool
    browsers' requests). An annotator's submit is due at its scheduled time; the `next` that
    follows it is sent at once on the same connection (the web page asks for it with the
    submit). Latency runs from the time a call was due, so waiting for a connection counts.

    With `separate_next` False the submit asks `?next=1` and its answer carries the next item,
    as the labeling page's one request per item does; that call's latency is then both the
    submit's and the `next`'s (the annotator waits for the next item that long).
    """

    LABELS = Annotator.LABELS

    def __init__(
        self,
        tokens,
        project_id: int,
        port: int,
        schedule: Schedule,
        connections: int,
        separate_next: bool,
    ):
        self.separate_next = separate_next
        self.headers = [
            {"Authorization": f"Token {token}", "Content-Type": "application/json"}
            for token in tokens
        ]
        self.base = f"/api/v1/projects/{project_id}"
        self.port, self.schedule, self.connections = port, schedule, connections
        self.items: list[int | None] = [None] * len(tokens)
        self.done = [0] * len(tokens)  # submissions answered per annotator
        self.next_ms: list[float] = []
        self.submit_ms: list[float] = []
        self.errors: list[str] = []
        self.submissions = 0
        self.answered_at: list[float] = []  # seconds from the start, of each stored submission
        self.due: list[tuple[float, int, str]] = []  # (due, annotator, "next" | "submit")
        self.wakeup = threading.Condition()
        self.ready: queue.Queue = queue.Queue()
        self.pending = 0  # calls in the heap, the FIFO or on the wire

    def push(self, due: float, annotator: int, kind: str) -> None:
        with self.wakeup:
            self.pending += 1
            heapq.heappush(self.due, (due, annotator, kind))
            if self.due[0][1] == annotator:
                self.wakeup.notify()

    def dispatch(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self.wakeup:
                now = time.perf_counter()
                while self.due and self.due[0][0] <= now:
                    self.ready.put(heapq.heappop(self.due))
                wait = self.due[0][0] - now if self.due else 0.1
                self.wakeup.wait(min(wait, 0.1))

    def call(self, conn, annotator: int, method: str, path: str, body=None):
        conn.request(method, path, body=body, headers=self.headers[annotator])
        response = conn.getresponse()
        return response.status, response.read()

    def serve(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while (job := self.ready.get()) is not None:
            due, annotator, kind = job
            try:
                if kind == "submit":
                    due = self.submit(conn, annotator, due)
                if due is not None and (kind == "next" or self.separate_next):
                    self.ask_next(conn, annotator, due)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.errors.append(f"{kind} {type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.push(time.perf_counter() + 1, annotator, kind)  # try again in a second
            with self.wakeup:
                self.pending -= 1
        conn.close()

    def submit(self, conn, annotator: int, due: float) -> float | None:
        """POST the held item; the time the `next` after it is due, None if it is not (or if
        the answer carried it)."""
        item = self.items[annotator]
        body = json.dumps(
            {
                "item": item,
                "label": self.LABELS[(item + annotator) % 3],
                "request_id": uuid.uuid4().hex,
                "lead_time_ms": 4000,
            }
        )
        more = self.done[annotator] + 1 < len(self.schedule.submits[annotator])
        with_next = more and not self.separate_next
        path = f"{self.base}/annotations/" + ("?next=1" if with_next else "")
        status, payload = self.call(conn, annotator, "POST", path, body)
        answered = time.perf_counter()
        self.submit_ms.append((answered - due) * 1000)
        self.done[annotator] += 1
        if status == 201:
            self.submissions += 1
            self.answered_at.append(answered - self.started)
        else:
            self.errors.append(f"submit {status} {payload[:200]!r}")
        if not with_next:
            return answered if more else None
        self.next_ms.append((answered - due) * 1000)
        if status == 201:
            self.next_arrived(annotator, json.loads(payload)["next"])
        else:
            self.push(time.perf_counter() + 1, annotator, "next")
        return None

    def ask_next(self, conn, annotator: int, due: float) -> None:
        status, payload = self.call(conn, annotator, "GET", f"{self.base}/next/")
        self.next_ms.append((time.perf_counter() - due) * 1000)
        if status == 204:
            return  # nothing left for this annotator
        if status != 200:
            self.errors.append(f"next {status} {payload[:200]!r}")
            self.push(time.perf_counter() + 1, annotator, "next")
            return
        self.next_arrived(annotator, json.loads(payload))

    def next_arrived(self, annotator: int, answer: dict | None) -> None:
        """Schedule the submit of the item `answer` hands over (None: nothing left)."""
        if answer is None:
            return
        self.items[annotator] = answer["item"]["id"]
        submit_at = self.schedule.submits[annotator][self.done[annotator]]
        self.push(self.started + submit_at, annotator, "submit")

    def run(self, drain_s: float) -> None:
        """Serves the schedule, then waits up to `drain_s` for the calls still queued."""
        stop = threading.Event()
        self.started = time.perf_counter() + 0.5  # the threads are up before the first call
        for annotator, first_ask in enumerate(self.schedule.first_ask):
            if self.schedule.submits[annotator]:
                self.push(self.started + first_ask, annotator, "next")
        threads = [
            threading.Thread(target=self.serve, daemon=True) for _ in range(self.connections)
        ]
        dispatcher = threading.Thread(target=self.dispatch, args=(stop,), daemon=True)
        for thread in [dispatcher, *threads]:
            thread.start()
        window_end = self.started + self.schedule.seconds + drain_s
        while time.perf_counter() < window_end:
            with self.wakeup:
                if self.pending == 0:
                    break
            time.sleep(0.2)
        stop.set()
        for _ in threads:
            self.ready.put(None)
        for thread in threads:
            thread.join(timeout=60)

    def achieved_per_s(self, think_s: float) -> float:
        """Submissions stored per second once every annotator is at work (after the first
        think time) until the end of the schedule: a backlog pushes answers past the end."""
        steady = [t for t in self.answered_at if think_s <= t < self.schedule.seconds]
        return round(len(steady) / (self.schedule.seconds - think_s), 1)


class BackendCpu:
    """CPU time of the bench database's PostgreSQL backends over a run: those serving the web
    workers (`client backend`) apart from the rest (autovacuum after the load's writes).

    Backends come and go (Django closes a connection after CONN_MAX_AGE), so they are sampled
    every half second: a backend that ends loses at most its last half second.
    """

    def __init__(self, database_url: str):
        self.url = database_url.replace("postgres://", "postgresql://", 1)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.serves_web: dict[int, bool] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample_until_stopped, daemon=True)

    def sample(self, conn) -> None:
        rows = conn.execute(
            "SELECT pid, backend_type = 'client backend' FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        for pid, serves_web in rows:
            self.serves_web[pid] = serves_web
            try:
                seconds = cpu_seconds(pid)
            except FileNotFoundError:
                continue
            # A backend born during the run counts from zero.
            self.first.setdefault(pid, seconds if not self.thread.is_alive() else 0.0)
            self.last[pid] = seconds

    def sample_until_stopped(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.wait(0.5):
                self.sample(conn)
            self.sample(conn)

    def __enter__(self):
        with psycopg.connect(self.url, autocommit=True) as conn:
            self.sample(conn)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def seconds(self, *, serving_web: bool = True) -> float:
        return sum(
            self.last[pid] - self.first[pid]
            for pid in self.last
            if self.serves_web[pid] == serving_web
        )


def open_loop_step(args, server, project_id: int, tokens: list[str], rate: float) -> dict:
    """One open-loop run at `rate` offered submissions/s (rate x think-seconds annotators)."""
    n = round(rate * args.think_seconds)
    schedule = Schedule(n, args.think_seconds, args.seconds, args.think_distribution, args.seed)
    client = OpenLoopClient(
        tokens[:n], project_id, args.port, schedule, args.connections, args.separate_next
    )
    workers = worker_pids(server)
    load_before = os.getloadavg()[0]
    speed_before = benchdb.speed_probe_ms()
    web_before = sum(cpu_seconds(pid) for pid in workers)
    client_before = time.process_time()
    with BackendCpu(args.database_url) as database:
        client.run(args.drain_seconds)
    client_cpu = time.process_time() - client_before
    web_cpu = sum(cpu_seconds(pid) for pid in workers) - web_before
    duplicates, overfilled = check_database(project_id, args.overlap)
    for error in client.errors[:5]:
        print("error:", error, file=sys.stderr)
    served = client.submissions
    return {
        "mode": "open_loop",
        "queue_order": args.queue_order,
        "annotators": n,
        "think_seconds": args.think_seconds,
        "think_distribution": args.think_distribution,
        "connections": args.connections,
        "next_with_submit": not args.separate_next,
        "seconds": args.seconds,
        "offered_per_s": round(n / args.think_seconds, 1),
        "achieved_per_s": client.achieved_per_s(args.think_seconds),
        "submissions_offered": schedule.offered,
        "submissions": served,
        "unserved": schedule.offered - served,
        "next_p50_ms": percentile(client.next_ms, 50),
        "next_p95_ms": percentile(client.next_ms, 95),
        "next_p99_ms": percentile(client.next_ms, 99),
        "submit_p50_ms": percentile(client.submit_ms, 50),
        "submit_p95_ms": percentile(client.submit_ms, 95),
        "submit_p99_ms": percentile(client.submit_ms, 99),
        "errors": len(client.errors),
        "duplicates": duplicates,
        "overfilled": overfilled,
        "cpu_ms_per_submission": ms_per_submission(
            served,
            web=web_cpu,
            database=database.seconds(),
            client=client_cpu,
            database_other=database.seconds(serving_web=False),
        ),
        "load_avg_before": round(load_before, 2),
        "load_avg_after": round(os.getloadavg()[0], 2),
        "speed_probe_ms": {"before": speed_before, "after": benchdb.speed_probe_ms()},
    }


def holds(report: dict, max_p95_ms: float) -> bool:
    """Every offered submission served, without errors, both calls' p95 within the bound."""
    return (
        report["unserved"] == 0
        and report["errors"] == 0
        and report["duplicates"] == 0
        and report["overfilled"] == 0
        and report["next_p95_ms"] <= max_p95_ms
        and report["submit_p95_ms"] <= max_p95_ms
    )


def open_loop(args, env: dict) -> None:
    """Seed once, start gunicorn, and offer one rate (or step it up with --find-max)."""
    first_rate = args.annotators / args.think_seconds
    rates = [first_rate]
    if args.find_max:
        rates = list(np.arange(first_rate, args.max_rate + 1e-9, args.rate_step))
    from django.db import connections

    benchdb.recreate_database(args.database_url)
    setup_tables(args.use_migrations)
    most = round(max(rates) * args.think_seconds)
    project_id, tokens, _ = seed(args.items, most, args.overlap, args.queue_order)
    connections.close_all()
    server = start_gunicorn(args, env)
    best = None
    try:
        for rate in rates:
            report = open_loop_step(args, server, project_id, tokens, float(rate))
            print(json.dumps(report), flush=True)
            if not args.find_max:
                return
            if not holds(report, args.max_p95_ms):
                break
            best = report["offered_per_s"]
    finally:
        stop(server)
    print(json.dumps({"max_p95_ms": args.max_p95_ms, "largest_offered_per_s_held": best}))


def main() -> None:
    args = parse_args()
    env = server_env(args, name="bench")
    if args.open_loop:
        setup_django(env)
        open_loop(args, env)
        return
    if args.webhook_delay_ms is None:
        setup_django(env)
        print(json.dumps(load_run(args, env, None)))
        return
    # The same load without a webhook and with one on annotation.created whose receiver
    # answers after --webhook-delay-ms, back to back, the order swapped every round (the
    # machine's other work drifts); a worker runs in every run.
    env["CONCORD_WEBHOOKS_ALLOW_PRIVATE"] = "1"  # the receiver is on loopback
    setup_django(env)
    receiver = SlowReceiver(args.webhook_delay_ms)
    runs = {"without_webhook": [], "with_webhook": []}
    for round_ in range(args.rounds):
        for hooked in (False, True) if round_ % 2 == 0 else (True, False):
            report = load_run(args, env, receiver if hooked else None)
            runs["with_webhook" if hooked else "without_webhook"].append(report)

    def median(name: str, key) -> float:
        return round(float(np.median([key(r) for r in runs[name]])), 2)

    def cpu(report: dict) -> float:
        return sum(report["cpu_ms_per_submission"].values())

    summary = {
        name: {
            "per_s_median": median(name, lambda r: r["per_s"]),
            "cpu_ms_per_submission_median": median(name, cpu),
            "submit_p95_ms_median": median(name, lambda r: r["submit_p95_ms"]),
        }
        for name in runs
    }
    print(
        json.dumps(
            {
                "webhook_delay_ms": args.webhook_delay_ms,
                "rounds": args.rounds,
                **summary,
                "throughput_ratio": round(
                    summary["with_webhook"]["per_s_median"]
                    / max(summary["without_webhook"]["per_s_median"], 0.1),
                    3,
                ),
                "cpu_ratio": round(
                    summary["with_webhook"]["cpu_ms_per_submission_median"]
                    / summary["without_webhook"]["cpu_ms_per_submission_median"],
                    3,
                ),
                "runs": runs,
            }
        )
    )


if __name__ == "__main__":
    main()
