"""Bench: import N generated CSV rows through the import service on PostgreSQL.

    .venv/bin/python bench/import_items.py --rows 1000000 \
        [--database-url postgres://postgres@127.0.0.1:5432/concord_bench_import]

Prints JSON `{rows, seconds, rows_per_s, peak_rss_mb, copy_seconds, ratio}` (plus the import
process's CPU seconds and the load average, since both timings depend on how busy the machine is):
- `seconds`: `import_file` (validation pass + write pass) in a child process, which also
  reports its own peak RSS (VmHWM, the whole process: Python, Django and the import);
- `copy_seconds`: PostgreSQL `COPY ... FROM STDIN (FORMAT csv)` of the same file into a bare
  table without indexes, in the same run; `ratio` = seconds / copy_seconds;
- `copy_item_rows_seconds`: `COPY` of the same rows already encoded as item rows into a table
  like `labeling_item` (same indexes and checks), PostgreSQL's own share of any import;
  `ratio_to_item_rows_copy` = seconds / copy_item_rows_seconds.
- `cpu_ratio_to_item_rows_copy`: the same ratio in CPU seconds, the import process's plus its
  PostgreSQL backend's against that COPY's backend (read from /proc: the database runs on
  this host), which other work on a shared machine disturbs less than wall time.

The bench database is dropped and recreated each run, its tables built from the current
models (like `pytest --nomigrations`), so it never depends on migration files being current.

Django's and the project's modules are imported inside the functions: they need Django set
up first (`benchdb.setup_django`), which happens once the command line has named the database.
"""

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import benchdb

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/concord_bench_import"
WORDS = (
    "the a great terrible phone battery screen film plot actor service food waiter price "
    "quality would not buy again love it works fine broke after two days highly recommend "
    "slow fast cheap expensive friendly rude clean dirty loud quiet"
).split()


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """external_id,text (~100 chars),source,device,region."""
    rng = random.Random(seed)
    sources, devices, regions = ["amazon", "imdb", "yelp"], ["mobile", "desktop"], list("NESW")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["external_id", "text", "source", "device", "region"])
        block = [" ".join(rng.choices(WORDS, k=18))[:100] for _ in range(5000)]
        for i in range(rows):
            writer.writerow(
                [
                    f"item-{i:08d}",
                    f"{block[i % 5000]} #{i}",
                    sources[i % 3],
                    devices[i % 2],
                    regions[i % 4],
                ]
            )


def build_schema_and_project() -> int:
    from django.contrib.auth import get_user_model

    from labeling.services.projects import project_create

    benchdb.create_tables()
    user = get_user_model().objects.create_user("bench-manager", password=None)
    project = project_create(
        name="Import bench", labels=[{"name": "negative"}, {"name": "positive"}], created_by=user
    )
    return project.pk


def backend_cpu_seconds() -> float:
    """CPU seconds used so far by this connection's PostgreSQL backend process (the database
    runs on this host: /proc). Under a shared machine's load, CPU time is steadier than wall
    time."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def child(project_id: int, path: Path) -> None:
    """Runs in its own process so its peak RSS is the import's own."""
    from labeling.importing.jobs import import_file
    from labeling.models import Project

    project = Project.objects.get(pk=project_id)
    backend_before = backend_cpu_seconds()
    cpu_before = time.process_time()
    with open(path, "rb") as f:
        start = time.perf_counter()
        batch = import_file(
            project=project,
            fileobj=f,
            filename=path.name,
            format="csv",
            kind="items",
            options={"metadata_columns": "source,device,region"},
            user=project.created_by,
        )
        seconds = time.perf_counter() - start
    benchdb.print_report(
        {
            "status": batch.status,
            "rows": batch.rows,
            "errors": batch.errors[:3],
            "seconds": seconds,
            "peak_rss_mb": benchdb.peak_rss_mb(),
            "cpu_seconds": time.process_time() - cpu_before,
            "backend_cpu_seconds": backend_cpu_seconds() - backend_before,
        }
    )


def copy_seconds(path: Path) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute(
            "CREATE TABLE bench_copy (external_id text, text text, source text, device text,"
            " region text)"
        )
        backend_before = backend_cpu_seconds()
        start = time.perf_counter()
        with (
            open(path, "rb") as f,
            cursor.cursor.copy("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
        ):
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        seconds = time.perf_counter() - start
        cpu = backend_cpu_seconds() - backend_before
        cursor.execute("SELECT count(*) FROM bench_copy")
        assert cursor.fetchone()[0] > 0
        cursor.execute("DROP TABLE bench_copy")
    return seconds, cpu


def copy_item_rows_seconds(path: Path, project_id: int) -> float:
    """COPY of the same rows, already encoded as item rows (JSON `data` and `metadata`), into a
    table like `labeling_item` with the same indexes and checks: the part of an import that is
    PostgreSQL's own work. Encoding the file is not timed."""
    from django.db import connection
    from django.utils import timezone

    from labeling.models import Item
    from labeling.rawsql import copy_defaults

    given = ("project_id", "external_id", "data", "metadata", "created_at")
    # Columns added to Item later get their defaults, as the import's COPY gives them.
    extra_names, extra_values = copy_defaults(Item, given)
    encoded = path.with_suffix(".tsv")
    created = timezone.now().isoformat()
    with open(path, newline="") as source, open(encoded, "w") as out:
        reader = csv.reader(source)
        next(reader)
        for external_id, text, source_name, device, region in reader:
            data = json.dumps({"text": text}, ensure_ascii=False)
            metadata = json.dumps({"source": source_name, "device": device, "region": region})
            # JSON text holds no raw tab or newline; COPY text format escapes backslashes.
            data, metadata = data.replace("\\", "\\\\"), metadata.replace("\\", "\\\\")
            out.write(f"{project_id}\t{external_id}\t{data}\t{metadata}\t{created}{extra_values}\n")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_items")
        cursor.execute("CREATE TABLE bench_items (LIKE labeling_item INCLUDING ALL)")
        columns = ", ".join(given) + extra_names
        backend_before = backend_cpu_seconds()
        start = time.perf_counter()
        with (
            open(encoded, "rb") as f,
            cursor.cursor.copy(f"COPY bench_items ({columns}) FROM STDIN") as copy,
        ):
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        seconds = time.perf_counter() - start
        cpu = backend_cpu_seconds() - backend_before
        cursor.execute("DROP TABLE bench_items")
    encoded.unlink()
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--child", nargs=2, metavar=("PROJECT_ID", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        benchdb.setup_django(args.database_url, debug=True)
        child(int(args.child[0]), Path(args.child[1]))
        return

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "items.csv"
        generate(path, args.rows)
        benchdb.recreate_database(args.database_url)
        benchdb.setup_django(args.database_url, debug=True)
        project_id = build_schema_and_project()
        result = benchdb.run_child(
            __file__,
            ["--database-url", args.database_url, "--child", str(project_id), str(path)],
            what="the import process",
        )
        if result["status"] != "succeeded" or result["rows"] != args.rows:
            sys.exit(f"the import did not succeed: {result}")
        copy, copy_cpu = copy_seconds(path)
        copy_items, copy_items_cpu = copy_item_rows_seconds(path, project_id)
    benchdb.print_report(
        {
            "rows": result["rows"],
            "seconds": round(result["seconds"], 2),
            "rows_per_s": round(result["rows"] / result["seconds"]),
            "peak_rss_mb": round(result["peak_rss_mb"], 1),
            "copy_seconds": round(copy, 2),
            "ratio": round(result["seconds"] / copy, 2),
            # What PostgreSQL alone needs for these rows in the items table, and the import
            # against that floor: the rest of the ratio is Concord's own work.
            "copy_item_rows_seconds": round(copy_items, 2),
            "ratio_to_item_rows_copy": round(result["seconds"] / copy_items, 2),
            # CPU seconds (the process's own plus its PostgreSQL backend's): steadier than
            # wall time when other work shares the cores. The floor COPYs' clients only send
            # the file, so their backend's CPU is theirs.
            "import_cpu_seconds": round(result["cpu_seconds"], 2),
            "import_backend_cpu_seconds": round(result["backend_cpu_seconds"], 2),
            "copy_item_rows_backend_cpu_seconds": round(copy_items_cpu, 2),
            "cpu_ratio_to_item_rows_copy": round(
                (result["cpu_seconds"] + result["backend_cpu_seconds"]) / copy_items_cpu, 2
            ),
            "copy_backend_cpu_seconds": round(copy_cpu, 2),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
    )


if __name__ == "__main__":
    main()
