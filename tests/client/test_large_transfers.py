"""A million rows through the client: logged from a file, exported into a DataFrame, and that
DataFrame logged into a second project (written to a temporary CSV in chunks, then streamed).

The client runs in a subprocess of its own (it imports only concord_client, pandas and
pyarrow), so the peak RSS it prints (its VmHWM) is the client's alone: not the server's
(another process), not this test process's (which has Django and every earlier test in it).

Rows: 1,000,000 on PostgreSQL (CI); on SQLite (a clean clone's `make test`) 200,000, because
SQLite writes a million items in about a minute more than the suite should spend here.
CONCORD_CLIENT_LARGE_ROWS overrides both.
"""

import csv
import json
import os
import subprocess
import sys

CLIENT_RUN = r"""
import json, resource, sys, time
from concord_client import Concord

def peak_mb():
    # VmHWM: this program's own peak. ru_maxrss would carry over the forking pytest's size
    # (Linux keeps it across exec).
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

url, token, first, second, path = sys.argv[1:6]
concord = Concord(url, token, progress=False)
out = {"peak_rss_mb_at_start": peak_mb()}
start = time.perf_counter()
done = concord.projects.get(int(first)).items.log(path, metadata=["source", "region"])
out["rows_logged"] = done.rows
out["log_file_seconds"] = round(time.perf_counter() - start, 1)
out["peak_rss_mb_after_file"] = peak_mb()
start = time.perf_counter()
export = concord.projects.get(int(first)).export(labels="majority", format="parquet")
frame = export.to_pandas()
export.path.unlink()
out["export_to_pandas_seconds"] = round(time.perf_counter() - start, 1)
out["rows_exported"] = len(frame)
out["exported_ids_unique"] = int(frame["external_id"].nunique())
out["peak_rss_mb_after_export"] = peak_mb()
start = time.perf_counter()
again = concord.projects.get(int(second)).items.log(frame[["external_id", "text"]])
out["rows_logged_from_dataframe"] = again.rows
out["log_dataframe_seconds"] = round(time.perf_counter() - start, 1)
out["peak_rss_mb"] = peak_mb()
print(json.dumps(out))
"""


def large_rows(live) -> int:
    given = os.environ.get("CONCORD_CLIENT_LARGE_ROWS")
    if given:
        return int(given)
    return 1_000_000 if live.postgres else 200_000


def write_items(path, rows: int) -> None:
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["external_id", "text", "source", "region"])
        for i in range(rows):
            writer.writerow(
                [
                    f"item-{i:07d}",
                    f"review number {i}: the battery lasts and the screen is fine",
                    ("amazon", "imdb", "yelp")[i % 3],
                    "NESW"[i % 4],
                ]
            )


def test_a_million_rows_are_logged_from_a_file_and_exported_into_a_dataframe_in_little_memory(
    live, concord, tmp_path, capsys
):
    rows = large_rows(live)
    path = tmp_path / "items.csv"
    write_items(path, rows)
    first = concord.projects.create("client-large", labels=["negative", "positive"])
    second = concord.projects.create("client-large-again", labels=["negative", "positive"])
    token = concord.http.client.headers["Authorization"].split()[1]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CLIENT_RUN,
            live.url,
            token,
            str(first.id),
            str(second.id),
            str(path),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout)
    measured.update(rows=rows, file_mb=round(path.stat().st_size / 1e6, 1))
    measured["database"] = "postgresql" if live.postgres else "sqlite"
    with capsys.disabled():  # the figures belong in the CI log, not only in captured output
        print("\nclient large transfer:", json.dumps(measured))
    assert measured["rows_logged"] == rows
    assert measured["rows_exported"] == rows == measured["exported_ids_unique"]
    assert measured["rows_logged_from_dataframe"] == rows
    assert measured["peak_rss_mb"] < 1500
    # The upload streams the file: its size does not show in the client's memory.
    assert measured["peak_rss_mb_after_file"] - measured["peak_rss_mb_at_start"] < 50
