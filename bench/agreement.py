"""Bench: the agreement job end to end on 1,000,000 annotations in PostgreSQL.

    .venv/bin/python bench/agreement.py [--items 200000 --per-item 5 --annotators 20
        --classes 10] [--database-url postgres://postgres@127.0.0.1:5432/concord_bench_agreement]

Setup (not timed): the bench database is dropped and recreated, its tables built from the
current models (`migrate --run-syncdb` with migrations switched off, like `pytest
--nomigrations`), then a project with `classes` labels, `annotators` users, `items` items and
`items x per-item` annotations is bulk-loaded with PostgreSQL COPY. Each item is labeled by
`per-item` distinct annotators drawn at random; a label is the item's true class with
probability 0.7, else a uniformly random class.

Timed, in one child process (so its peak RSS is the job's own):
- `job_s`: the `analysis.run_agreement` task body called synchronously on an AnalysisRun:
  load the annotations from PostgreSQL, alpha + bootstrap 95% interval (1000 replicates),
  percent agreement, Fleiss, Cohen per pair, per label, per annotator, confusion, and the
  per-annotator and per-item rows written back;
- `bare_s`: `krippendorff.alpha` (nominal) on the same (annotators x items) matrix, already
  in memory, in the same process; `ratio` = job_s / bare_s.
- `peak_rss_mb`: the child's peak RSS after the job (before the bare call).
The job's modules (scikit-learn, scipy, krippendorff) are imported before timing, as in a
worker that has started up.

Prints JSON `{annotations, job_s, bare_s, ratio, peak_rss_mb, alpha, bare_alpha}`.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/concord_bench_agreement"
COPY_BLOCK = 100_000


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-agreement")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


class NoMigrations(dict):
    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


def copy_model_rows(model, columns: list[str], rows) -> None:
    """COPY rows (tuples of `columns`) into the model's table; every other NOT NULL column
    gets the field's default, so the rows look like the ORM made them."""
    from django.db import connection
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
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row((*row, *extra_values))


def build(items: int, per_item: int, annotators: int, classes: int, seed: int = 11) -> int:
    """Schema, project, users, items and annotations; returns the project id."""
    import numpy as np
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from labeling.models import Annotation, Item
    from labeling.services.projects import project_create

    settings.MIGRATION_MODULES = NoMigrations()
    call_command("migrate", run_syncdb=True, verbosity=0)
    User = get_user_model()
    manager = User.objects.create_user("bench-manager", password=None)
    project = project_create(
        name="Agreement bench",
        labels=[{"name": f"class-{c}"} for c in range(classes)],
        created_by=manager,
    )
    User.objects.bulk_create(User(username=f"annotator-{a:02d}") for a in range(annotators))
    user_ids = np.array(
        User.objects.filter(username__startswith="annotator-")
        .order_by("username")
        .values_list("pk", flat=True)
    )
    label_ids = np.array(project.labels.order_by("order").values_list("pk", flat=True))
    guideline = project.current_guideline()

    copy_model_rows(
        Item,
        ["project_id", "external_id", "data"],
        ((project.pk, f"item-{i:07d}", json.dumps({"text": f"item {i}"})) for i in range(items)),
    )
    item_ids = np.array(
        Item.objects.filter(project=project).order_by("pk").values_list("pk", flat=True)
    )
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, items)
    who = np.argsort(rng.random((items, annotators)), axis=1)[:, :per_item]
    noise = rng.random((items, per_item)) < 0.3
    labels = np.where(noise, rng.integers(0, classes, (items, per_item)), truth[:, None])

    def annotation_rows():
        for start in range(0, items, COPY_BLOCK):
            stop = min(start + COPY_BLOCK, items)
            block_items = np.repeat(item_ids[start:stop], per_item)
            block_users = user_ids[who[start:stop].ravel()]
            block_labels = label_ids[labels[start:stop].ravel()]
            for item_id, user_id, label_id in zip(
                block_items.tolist(), block_users.tolist(), block_labels.tolist(), strict=True
            ):
                yield (project.pk, item_id, user_id, guideline.pk, label_id)

    copy_model_rows(
        Annotation,
        ["project_id", "item_id", "annotator_id", "guideline_id", "label_id"],
        annotation_rows(),
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return project.pk


def child(project_id: int) -> None:
    """The timed part, in its own process."""
    import krippendorff
    import numpy as np

    import analysis.services.agreement  # noqa: F401 (imported before timing, as in a warm worker)
    from analysis import loaders
    from analysis.models import AnalysisRun, ItemDisagreement
    from analysis.tasks import run_agreement
    from labeling.models import Project

    project = Project.objects.get(pk=project_id)
    run = AnalysisRun.objects.create(project=project, kind=AnalysisRun.Kind.AGREEMENT)
    start = time.perf_counter()
    run_agreement(run.pk)  # the task body, synchronously in this process
    job_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run.refresh_from_db()
    if run.status != AnalysisRun.Status.SUCCEEDED:
        sys.exit(f"the agreement run failed: {run.error}")
    n_rows = ItemDisagreement.objects.filter(run=run).count()

    rows = loaders.annotation_rows(project=project)
    reliability = np.where(rows.matrix() >= 0, rows.matrix(), np.nan).T  # (annotators, items)
    start = time.perf_counter()
    bare = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    bare_s = time.perf_counter() - start
    print(
        json.dumps(
            {
                "annotations": int(run.result["n_annotations"]),
                "job_s": round(job_s, 2),
                "bare_s": round(bare_s, 2),
                "ratio": round(job_s / bare_s, 2),
                "peak_rss_mb": round(peak_mb, 1),
                "alpha": run.result["alpha"],
                "alpha_ci": run.result["alpha_ci"],
                "bare_alpha": round(float(bare), 6),
                "item_rows": n_rows,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--per-item", type=int, default=5)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--child", type=int, metavar="PROJECT_ID", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        setup_django(args.database_url)
        child(args.child)
        return
    recreate_database(args.database_url)
    setup_django(args.database_url)
    project_id = build(args.items, args.per_item, args.annotators, args.classes)
    from django.db import connection

    connection.close()
    run = subprocess.run(
        [sys.executable, __file__, "--database-url", args.database_url, "--child", str(project_id)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if run.returncode != 0:
        sys.exit(f"the bench process failed:\n{run.stderr[-3000:]}")
    print(run.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
