"""Bench: the streamed dataset export of 1,000,000 items x 3 annotations in PostgreSQL.

    .venv/bin/python bench/export.py [--items 1000000 --per-item 3 --annotators 10]
        [--database-url postgres://postgres@127.0.0.1:5432/concord_bench_export] [--reuse]

Setup (not timed): the bench database is dropped and recreated and its tables built from the
current models (`migrate --run-syncdb` with migrations switched off, as `pytest
--nomigrations` does), unless `--reuse` finds the data of an earlier run. Then one project
(3 classes, overlap 3, ties go to the first class) gets `items` items, each with a text that
contains commas and quotes and a `source` metadata field, and `items x per-item` annotations
by distinct annotators, all written by PostgreSQL COPY. A label is the item's true class with
probability 0.7, else a uniformly random class.

Timed, each in its own child process (so its peak RSS is the web process's own):
- `csv`, `parquet`: `GET /api/v1/projects/{id}/export/?format=...&labels=majority` through
  Django's full request handler (test client, session of a reviewer, DEBUG off), the
  StreamingHttpResponse read to the end and hashed. That includes computing the majority
  labels from all 3,000,000 annotations and recording the DatasetVersion.
- `copy_same_columns`: `COPY (SELECT ...) TO STDOUT (FORMAT csv, HEADER)` of the same columns
  (external_id, majority label with the same tie rule, label_source, agreement,
  n_annotations, quality, issue, text, metadata.source), consensus computed by PostgreSQL.
- `copy_item_columns`: COPY of the item columns alone (no labels), the floor of any export.
`ratio_*` = export seconds / the COPY's seconds. `peak_rss_mb` = VmHWM of the child process
(it includes importing every view module of the project, about 190 MB, which happens at the
first request). `stream_rows_per_s` counts from the first byte on, i.e. without computing the
labels. The machine's load average is reported because the machine may be shared.

Prints JSON.

Django's and the project's modules are imported inside the functions: they need Django set
up first (`benchdb.setup_django`), which happens once the command line has named the database.
"""

import argparse
import hashlib
import os
import time

import benchdb
import numpy as np
import psycopg

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/concord_bench_export"
PROJECT_NAME = "Export bench"
SOURCES = ("amazon", "imdb", "yelp")


def build(items: int, per_item: int, annotators: int, seed: int = 7) -> int:
    from django.contrib.auth import get_user_model

    from labeling.models import Membership
    from labeling.services.projects import member_set

    benchdb.create_tables()
    project, _ = benchdb.annotated_project(
        name=PROJECT_NAME,
        labels=["negative", "neutral", "positive"],
        items=items,
        per_item=per_item,
        annotators=annotators,
        noise=0.3,
        rng=np.random.default_rng(seed),
        text=lambda i: f'Review {i}: "fine", said the user, really fine',
        metadata=lambda i: {"source": SOURCES[i % 3]},
        overlap=per_item,
        tie_rule="first_class",
    )
    member_set(
        project=project,
        user=get_user_model().objects.create_user("bench-reviewer", password=None),
        role=Membership.Role.REVIEWER,
    )
    benchdb.analyze()
    return project.pk


def existing_project(items: int, per_item: int) -> int | None:
    from django.db.utils import DatabaseError

    from labeling.models import Annotation, Project

    try:
        project = Project.objects.filter(name=PROJECT_NAME).first()
    except DatabaseError:
        return None
    if project is None or project.items.count() != items:
        return None
    if Annotation.objects.filter(project=project).count() != items * per_item:
        return None
    return project.pk


def child_export(project_id: int, fmt: str, *, labels: str = "majority") -> dict:
    """One export through the real view, in this (fresh) process (`labels`: the strategy)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from analysis.exports.params import ExportParams
    from analysis.models import DatasetVersion

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-reviewer"))
    rss_before = benchdb.peak_rss_mb()
    start = time.perf_counter()
    response = client.get(
        f"/api/v1/projects/{project_id}/export/",
        ExportParams(format=fmt, labels=labels).as_query(),
        secure=True,  # DEBUG off redirects plain HTTP to HTTPS
    )
    assert response.status_code == 200, response.status_code
    first_byte_s = None
    digest, size = hashlib.sha256(), 0
    for chunk in response.streaming_content:
        if first_byte_s is None:
            first_byte_s = time.perf_counter() - start
        digest.update(chunk)
        size += len(chunk)
    response.close()
    seconds = time.perf_counter() - start
    version = DatasetVersion.objects.get(pk=int(response["X-Concord-Dataset-Version"]))
    assert version.sha256 == digest.hexdigest(), "recorded sha256 differs from the bytes"
    return {
        "seconds": round(seconds, 2),
        "rows": version.row_count,
        "rows_per_s": round(version.row_count / seconds),
        # after the first byte: the labels are computed, rows are only being written
        "stream_rows_per_s": round(version.row_count / (seconds - (first_byte_s or 0.0))),
        "first_byte_s": round(first_byte_s or 0.0, 2),
        "mb": round(size / 1e6, 1),
        "peak_rss_mb": round(benchdb.peak_rss_mb(), 1),
        "rss_at_start_mb": round(rss_before, 1),
    }


SAME_COLUMNS_SQL = """
COPY (
  SELECT i.external_id,
         l.name AS label,
         CASE WHEN top.label_id IS NULL THEN NULL ELSE 'majority' END AS label_source,
         round(top.c::numeric / top.n, 6) AS agreement,
         coalesce(top.n, 0) AS n_annotations,
         NULL::float AS quality,
         false AS issue,
         i.data ->> 'text' AS text,
         i.metadata ->> 'source' AS "metadata.source"
  FROM labeling_item i
  LEFT JOIN LATERAL (
    SELECT a.label_id, count(*) AS c, sum(count(*)) OVER () AS n
    FROM labeling_annotation a
    JOIN labeling_labelclass lc ON lc.id = a.label_id
    WHERE a.item_id = i.id
    GROUP BY a.label_id, lc."order"
    ORDER BY count(*) DESC, lc."order"
    LIMIT 1
  ) top ON true
  LEFT JOIN labeling_labelclass l ON l.id = top.label_id
  WHERE i.project_id = {project_id}
  ORDER BY i.id
) TO STDOUT (FORMAT csv, HEADER)
"""

ITEM_COLUMNS_SQL = """
COPY (
  SELECT external_id, data ->> 'text' AS text, metadata ->> 'source' AS "metadata.source"
  FROM labeling_item WHERE project_id = {project_id} ORDER BY id
) TO STDOUT (FORMAT csv, HEADER)
"""


def copy_out(url: str, sql: str) -> dict:
    start = time.perf_counter()
    size = 0
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy(sql) as copy:
            for block in copy:
                size += len(block)
    return {"seconds": round(time.perf_counter() - start, 2), "mb": round(size / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--per-item", type=int, default=3)
    parser.add_argument("--annotators", type=int, default=10)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run")
    parser.add_argument(
        "--child", nargs=2, metavar=("PROJECT_ID", "FORMAT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    if args.child:
        benchdb.setup_django(args.database_url, force_debug=True)
        benchdb.print_report(child_export(int(args.child[0]), args.child[1]))
        return

    project_id = None
    if args.reuse:
        try:
            benchdb.setup_django(args.database_url, force_debug=True)
            project_id = existing_project(args.items, args.per_item)
        except Exception:  # no database yet: build it
            project_id = None
    build_s = 0.0
    if project_id is None:
        benchdb.recreate_database(args.database_url)
        benchdb.setup_django(args.database_url, force_debug=True)
        start = time.perf_counter()
        project_id = build(args.items, args.per_item, args.annotators)
        build_s = time.perf_counter() - start

    def run_child(fmt: str) -> dict:
        return benchdb.run_child(
            __file__,
            ["--database-url", args.database_url, "--child", str(project_id), fmt],
            what=f"export child ({fmt})",
        )

    results = {"items": args.items, "annotations": args.items * args.per_item}
    results["cpus"] = os.cpu_count()
    results["load_average_1m_before"] = round(os.getloadavg()[0], 2)
    results["build_s"] = round(build_s, 1)
    results["csv"] = run_child("csv")
    results["parquet"] = run_child("parquet")
    results["copy_same_columns"] = copy_out(
        args.database_url, SAME_COLUMNS_SQL.format(project_id=int(project_id))
    )
    results["copy_item_columns"] = copy_out(
        args.database_url, ITEM_COLUMNS_SQL.format(project_id=int(project_id))
    )
    same, items_only = (
        results["copy_same_columns"]["seconds"],
        results["copy_item_columns"]["seconds"],
    )
    for fmt in ("csv", "parquet"):
        results[f"ratio_{fmt}_vs_copy_same_columns"] = round(results[fmt]["seconds"] / same, 2)
        results[f"ratio_{fmt}_vs_copy_item_columns"] = round(
            results[fmt]["seconds"] / items_only, 2
        )
    results["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    results["targets"] = {
        "csv_rows_per_s_at_least_100000": results["csv"]["rows_per_s"] >= 100_000,
        "peak_rss_under_400_mb": max(
            results["csv"]["peak_rss_mb"], results["parquet"]["peak_rss_mb"]
        )
        < 400,
    }
    benchdb.print_report(results, indent=2)


if __name__ == "__main__":
    main()
