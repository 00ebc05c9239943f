"""Bench databases: a fresh PostgreSQL database, tables from the current models, rows by COPY,
a simulated annotated project, and timed child processes that report JSON.

The bench scripts in this folder share this setup. Each drops and recreates its own database
and builds the tables from the models with migrations switched off (as `pytest
--nomigrations` does), so a bench never depends on migration files being current. The timed
part runs in a child process so that its peak RSS is its own: `ru_maxrss` would not do, since
a process started by `subprocess` inherits its parent's peak there, hence `peak_rss_mb`.

Django's and the project's modules are imported inside the functions: they need Django set
up first (`setup_django`), which happens once the bench's command line has named the database.
"""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
COPY_BLOCK = 100_000  # annotations made in numpy per block of items, then streamed to COPY


def recreate_database(url: str) -> None:
    """Drop the database named in `url` (closing its connections) and create it empty."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str, *, debug: bool = False, force_debug: bool = False) -> None:
    """Set up Django (config.settings) on the database at `url`.

    DEBUG is `debug` unless the environment already sets it; `force_debug` ignores the
    environment (with DEBUG on, Django keeps a log of every query, which production does not).
    """
    os.environ["DATABASE_URL"] = url
    if force_debug:
        os.environ["DEBUG"] = "1" if debug else "0"
    else:
        os.environ.setdefault("DEBUG", "1" if debug else "0")
    os.environ.setdefault("SECRET_KEY", "concord-bench")  # required with DEBUG off
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


class NoMigrations(dict):
    """A MIGRATION_MODULES that switches every app's migrations off (tables from models)."""

    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


def create_tables() -> None:
    """Create every table from the current models, as `migrate --run-syncdb` without
    migrations (after `setup_django`, on an empty database)."""
    from django.conf import settings
    from django.core.management import call_command

    settings.MIGRATION_MODULES = NoMigrations()
    call_command("migrate", run_syncdb=True, verbosity=0)


def copy_model_rows(model, columns: list[str], rows) -> None:
    """COPY `rows` (tuples of the `columns`) into the model's table.

    Every other NOT NULL column gets the field's default (auto_now fields: now), so the rows
    look like the ORM made them. The rows point at rows that exist by construction, so the
    per-row foreign-key checks are skipped (`session_replication_role = replica`, as bulk
    loaders do; the bench database's user is a superuser): at ten million annotations they
    took longer than the COPY.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    now = timezone.now()
    extra_columns, extra_values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.column in columns or field.null:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        else:
            value = field.get_default()
            if field.get_internal_type() == "JSONField":
                value = json.dumps(value)
        extra_columns.append(field.column)
        extra_values.append(value)
    names = ", ".join(columns + extra_columns)
    sql = f"COPY {model._meta.db_table} ({names}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        with cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row((*row, *extra_values))


def create_annotators(count: int):
    """`count` users annotator-000, annotator-001, ... (those already there are reused, so
    several projects of one database share them); returns their ids (count,) in order."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    names = [f"annotator-{a:03d}" for a in range(count)]
    ids = dict(User.objects.filter(username__in=names).values_list("username", "pk"))
    created = User.objects.bulk_create(User(username=name) for name in names if name not in ids)
    ids.update((user.username, user.pk) for user in created)
    return np.array([ids[name] for name in names])


def copy_items(project, count: int, *, text=lambda i: f"item {i}", metadata=None):
    """COPY `count` items item-0000000, item-0000001, ... into the project.

    `text(i)` gives item i's data["text"]; `metadata(i)`, if given, its metadata dict.
    Returns the item ids (count,) in the same order.
    """
    from labeling.models import Item

    columns = ["project_id", "external_id", "data"] + (["metadata"] if metadata else [])
    copy_model_rows(
        Item,
        columns,
        (
            (project.pk, f"item-{i:07d}", json.dumps({"text": text(i)}))
            + ((json.dumps(metadata(i)),) if metadata else ())
            for i in range(count)
        ),
    )
    return np.array(
        Item.objects.filter(project=project).order_by("pk").values_list("pk", flat=True)
    )


def simulated_labels(rng, *, items: int, classes: int, annotators: int, per_item: int, noise):
    """Crowd labels: each item gets `per_item` distinct annotators drawn at random; a label is
    the item's true class with probability 1 - `noise`, else a uniformly random class.

    Returns (truth (items,), who (items, per_item) annotator indices, labels (items, per_item)
    class indices), drawn from `rng` in that order.
    """
    truth = rng.integers(0, classes, items)
    who = np.argsort(rng.random((items, annotators)), axis=1)[:, :per_item]
    wrong = rng.random((items, per_item)) < noise
    labels = np.where(wrong, rng.integers(0, classes, (items, per_item)), truth[:, None])
    return truth, who, labels


def copy_annotations(project, *, item_ids, annotator_ids, label_ids, who, labels) -> None:
    """COPY one annotation per cell of `who`/`labels` (items, per_item): item `item_ids[i]`,
    annotator `annotator_ids[who[i, j]]`, label `label_ids[labels[i, j]]`, under the project's
    current guideline."""
    from labeling.models import Annotation

    guideline_id = project.current_guideline().pk
    per_item = who.shape[1]

    def rows():
        for start in range(0, len(item_ids), COPY_BLOCK):
            stop = min(start + COPY_BLOCK, len(item_ids))
            block_items = np.repeat(item_ids[start:stop], per_item)
            block_users = annotator_ids[who[start:stop].ravel()]
            block_labels = label_ids[labels[start:stop].ravel()]
            for item_id, user_id, label_id in zip(
                block_items.tolist(), block_users.tolist(), block_labels.tolist(), strict=True
            ):
                yield (project.pk, item_id, user_id, guideline_id, label_id)

    copy_model_rows(
        Annotation, ["project_id", "item_id", "annotator_id", "guideline_id", "label_id"], rows()
    )


def annotated_project(
    *,
    name: str,
    labels: list[str],
    items: int,
    per_item: int,
    annotators: int,
    noise: float,
    rng,
    text=lambda i: f"item {i}",
    metadata=None,
    **project_options,
):
    """A project made by `project_create` (creator "bench-manager"), `items` items (see
    `copy_items`) and `items x per-item` annotations by `annotators` users (see
    `simulated_labels`), all by COPY. Returns (project, truth (items,) class indices).

    `project_options` go to `project_create` (overlap, tie_rule, ...).
    """
    from django.contrib.auth import get_user_model

    from labeling.services.projects import project_create

    manager = get_user_model().objects.filter(username="bench-manager").first()
    if manager is None:
        manager = get_user_model().objects.create_user("bench-manager", password=None)
    project = project_create(
        name=name,
        labels=[{"name": label} for label in labels],
        created_by=manager,
        **project_options,
    )
    annotator_ids = create_annotators(annotators)
    label_ids = np.array(project.labels.order_by("order").values_list("pk", flat=True))
    item_ids = copy_items(project, items, text=text, metadata=metadata)
    truth, who, chosen = simulated_labels(
        rng, items=items, classes=len(labels), annotators=annotators, per_item=per_item, noise=noise
    )
    copy_annotations(
        project,
        item_ids=item_ids,
        annotator_ids=annotator_ids,
        label_ids=label_ids,
        who=who,
        labels=chosen,
    )
    return project, truth


def analyze() -> None:
    """ANALYZE the database, so the planner knows the sizes of the freshly COPYed tables."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def machine() -> dict:
    """The machine a bench ran on, for its JSON."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), "")  # fmt: skip
    except OSError:
        pass
    return {"machine": platform.machine(), "cpu": model, "cpus": os.cpu_count(),
            "python": platform.python_version()}  # fmt: skip


def speed_probe_ms() -> float:
    """CPU milliseconds a fixed single-threaded workload (JSON and sorting of 2,000 small
    dicts, the kind of work a request does) takes now: the best of three.

    This machine's speed is not constant: on an idle machine the same probe took 103-196 ms
    within 16 seconds (2026-12-07), while the kernel reported almost no steal time. A CPU
    figure (ms per submission, say) is comparable with another run's only next to this.
    """
    rows = [{"id": i, "text": f"item {i}", "label": i % 3, "score": i / 7} for i in range(2000)]
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(20):
            json.loads(json.dumps(rows))
            sorted(rows, key=lambda row: row["score"])
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (VmHWM: since it started, its own)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_analysis_job(task, *, project, kind, params=None):
    """Create an AnalysisRun of `kind` and call `task` (an `analysis.run_<kind>` task body)
    on it synchronously in this process, as a started worker would.

    Returns (the finished run, its seconds, this process's peak RSS in MB right after it).
    Exits with the run's error if it did not succeed.
    """
    from analysis.models import AnalysisRun

    run = AnalysisRun.objects.create(project=project, kind=kind, params=params or {})
    start = time.perf_counter()
    task(run.pk)
    seconds = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    run.refresh_from_db()
    if run.status != AnalysisRun.Status.SUCCEEDED:
        sys.exit(f"the {kind} run failed: {run.error}")
    return run, seconds, peak_mb


def job_against_bare(job_s: float, bare_s: float, peak_mb: float) -> dict:
    """The report's timing keys: the job's seconds, the bare library call's seconds on the same
    arrays in memory, their `ratio` (the job's overhead) and the job's peak RSS."""
    return {
        "job_s": round(job_s, 2),
        "bare_s": round(bare_s, 2),
        "ratio": round(job_s / bare_s, 2),
        "peak_rss_mb": round(peak_mb, 1),
    }


def print_report(report: dict, *, indent: int | None = None) -> None:
    """Print a bench's JSON: on one line for a parent to read (`run_child`), or indented."""
    print(json.dumps(report, indent=indent))


def run_child(script: str, args: list[str], *, what: str = "the bench process") -> dict:
    """Run `python script *args` in a fresh process and return the JSON of its last line.

    Exits with the tail of the child's stderr if it fails. Closes this process's database
    connections first: the child makes its own, and ours would only sit idle meanwhile.
    """
    from django.apps import apps

    if apps.ready:
        from django.db import connections

        connections.close_all()
    done = subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if done.returncode != 0:
        sys.exit(f"{what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
