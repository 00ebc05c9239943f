"""Bench: a span project of 100,000 items x 3 annotators x ~4 spans (1.2M spans) in PostgreSQL:
import, agreement job, majority export, each against the bare computation in the same run.

    .venv/bin/python bench/spans.py [--items 100000 --per-item 3 --annotators 12]
        [--database-url postgres://postgres@127.0.0.1:5432/concord_bench_spans]

Setup (not timed): the bench database is dropped and recreated, its tables built from the
current models (like `pytest --nomigrations`); a span project (PER, ORG, LOC, DATE, overlap
3) and `annotators` users whose habits cycle through `labeling.demo_spans.HABITS`. Two JSONL
files are written: items `{external_id, text}` (every third item is two sentences, so an
annotation has ~4 spans) and annotations `{external_id, annotator, spans}` by 3 distinct
annotators per item (`labeling.demo_spans.annotate`).

Timed, each step in its own child process (so its peak RSS is that step's own):
- `import`: `import_file` of the items file, then of the annotations file (all-or-nothing
  validation of every span against its item's tokens, then COPY). Bare: PostgreSQL `COPY` of
  the same annotation rows, already encoded, into a bare table (`copy_s`).
- `agreement`: the `analysis.run_agreement` task body on an AnalysisRun (load, pairwise span
  F1 exact and partial, per label and annotator, token alpha with its bootstrap interval,
  per-item rows). Bare, on the same arrays already in memory: `seqeval.metrics.f1_score` of
  every annotator pair on the items it shares plus `krippendorff.alpha` on the
  (annotators x tokens) matrix.
- `export`: `GET /export/?format=jsonl&labels=majority` through Django's full request
  handler, read to the end, after an untimed warm-up request (a served process has imported
  its views). Bare: the numpy token vote (bincount over item-token x tag,
  argmax) on the same tag arrays in memory.

Prints JSON; targets: agreement job <= 5x bare and <= 120 s, export >= 50,000 items/s, every
step's peak RSS < 1 GB.
"""

import argparse
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path

import benchdb
import numpy as np

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/concord_bench_spans"
PROJECT_NAME = "Span bench"
TYPES = ["PER", "ORG", "LOC", "DATE"]


def build(items: int, annotators: int) -> int:
    from django.contrib.auth import get_user_model

    from labeling.models import Membership, Project
    from labeling.services.projects import member_set, project_create

    benchdb.create_tables()
    User = get_user_model()
    manager = User.objects.create_user("bench-manager", password=None)
    project = project_create(
        name=PROJECT_NAME,
        labels=[{"name": name} for name in TYPES],
        created_by=manager,
        task_type=Project.TaskType.SPANS,
        overlap=3,
    )
    for a in range(annotators):
        user = User.objects.create_user(f"annotator-{a:03d}", password=None)
        member_set(project=project, user=user, role=Membership.Role.ANNOTATOR)
    reviewer = User.objects.create_user("bench-reviewer", password=None)
    member_set(project=project, user=reviewer, role=Membership.Role.REVIEWER)
    return project.pk


def write_files(folder: Path, *, items: int, per_item: int, annotators: int, seed: int = 7):
    """The items and annotations JSONL files; returns (their paths, the number of spans)."""
    from labeling.demo_spans import HABITS, Sentence, annotate, sentences

    rng = random.Random(seed)
    pool = sentences(items + items // 3 + 1, seed=seed)
    extra = iter(pool[items:])
    items_path, annotations_path = folder / "items.jsonl", folder / "annotations.jsonl"
    n_spans = 0
    with open(items_path, "w") as items_file, open(annotations_path, "w") as annotations_file:
        for i in range(items):
            sentence = pool[i]
            if i % 3 == 0:  # two sentences: ~4 spans per annotation on average
                second = next(extra)
                shift = len(sentence.text) + 1
                sentence = Sentence(
                    f"{sentence.text} {second.text}",
                    sentence.spans + [(s + shift, e + shift, t) for s, e, t in second.spans],
                )
            external_id = f"s{i:07d}"
            items_file.write(json.dumps({"external_id": external_id, "text": sentence.text}))
            items_file.write("\n")
            for a in rng.sample(range(annotators), per_item):
                spans = annotate(sentence, HABITS[a % len(HABITS)], rng)
                n_spans += len(spans)
                row = {
                    "external_id": external_id,
                    "annotator": f"annotator-{a:03d}",
                    "spans": [{"start": s, "end": e, "label": t} for s, e, t in spans],
                }
                annotations_file.write(json.dumps(row))
                annotations_file.write("\n")
    return items_path, annotations_path, n_spans


def child_import(project_id: int, items_path: Path, annotations_path: Path) -> dict:
    from labeling.importing.jobs import import_file
    from labeling.models import Project

    project = Project.objects.get(pk=project_id)
    report = {}
    for kind, path in (("items", items_path), ("annotations", annotations_path)):
        with open(path, "rb") as f:
            start = time.perf_counter()
            batch = import_file(
                project=project,
                fileobj=f,
                filename=path.name,
                format="jsonl",
                kind=kind,
                options={},
                user=project.created_by,
            )
            seconds = time.perf_counter() - start
        if batch.status != "succeeded":
            raise SystemExit(f"the {kind} import failed: {batch.errors[:3]}")
        report[f"{kind}_s"] = round(seconds, 2)
        report[f"{kind}_rows"] = batch.rows
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    report["peak_rss_mb"] = round(benchdb.peak_rss_mb(), 1)
    return report


def copy_seconds(annotations_path: Path) -> float:
    """COPY of the annotation rows (item, annotator, spans as JSON) into a bare table."""
    from django.db import connection

    lines = []
    with open(annotations_path) as f:
        for line in f:
            row = json.loads(line)
            spans = [[s["start"], s["end"], TYPES.index(s["label"])] for s in row["spans"]]
            lines.append(f"{row['external_id']}\t{row['annotator']}\t{json.dumps(spans)}\n")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute("CREATE TABLE bench_copy (external_id text, annotator text, spans jsonb)")
        start = time.perf_counter()
        with cursor.cursor.copy("COPY bench_copy FROM STDIN") as copy:
            for block in range(0, len(lines), 10_000):
                copy.write("".join(lines[block : block + 10_000]))
        seconds = time.perf_counter() - start
        cursor.execute("DROP TABLE bench_copy")
    return seconds


def child_agreement(project_id: int) -> dict:
    import krippendorff
    from seqeval.metrics import f1_score

    import analysis.services.agreement  # noqa: F401 (imported before timing, as in a warm worker)
    from analysis import loaders
    from analysis.metrics.span_tags import sequence_offsets, tag_names, tags_from_spans
    from analysis.models import AnalysisRun
    from analysis.tasks import run_agreement
    from labeling.models import Project

    project = Project.objects.get(pk=project_id)
    run, job_s, peak_mb = benchdb.run_analysis_job(
        run_agreement, project=project, kind=AnalysisRun.Kind.AGREEMENT
    )
    # The bare computation's inputs, prepared untimed: each annotation's IOB2 tag strings,
    # grouped per annotator pair on shared items, and the (annotators x tokens) matrix.
    rows = loaders.span_rows(project=project)
    lengths = rows.annotation_lengths
    tags = tags_from_spans(
        lengths, rows.span_annotation, rows.span_start, rows.span_end, rows.span_label
    )
    names = np.array(tag_names(rows.class_names))
    offsets = sequence_offsets(lengths)
    by_item: dict[int, dict[int, int]] = {}
    for a, (item, annotator) in enumerate(
        zip(rows.annotation_item.tolist(), rows.annotation_annotator.tolist(), strict=True)
    ):
        by_item.setdefault(item, {})[annotator] = a
    pairs: dict[tuple[int, int], tuple[list, list]] = {}
    for annotations in by_item.values():
        who = sorted(annotations)
        for i, first in enumerate(who):
            for second in who[i + 1 :]:
                true, pred = pairs.setdefault((first, second), ([], []))
                for a, out in ((annotations[first], true), (annotations[second], pred)):
                    out.append(names[tags[offsets[a] : offsets[a + 1]]].tolist())
    item_offsets = sequence_offsets(rows.item_lengths)
    matrix = np.full((len(rows.annotator_ids), int(item_offsets[-1])), np.nan)
    for a in range(len(lengths)):
        start = item_offsets[rows.annotation_item[a]]
        matrix[rows.annotation_annotator[a], start : start + lengths[a]] = (
            tags[offsets[a] : offsets[a + 1]] + 1
        ) // 2
    start = time.perf_counter()
    pair_f1 = [f1_score(true, pred) for true, pred in pairs.values()]
    bare_alpha = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    bare_s = time.perf_counter() - start
    result = run.result
    return {
        **benchdb.job_against_bare(job_s, bare_s, peak_mb),
        "annotations": result["n_annotations"],
        "spans": result["n_spans"],
        "span_f1": result["span_f1"],
        "bare_span_f1": round(float(np.mean(pair_f1)), 6),
        "token_alpha": result["token_alpha"],
        "bare_token_alpha": round(float(bare_alpha), 6),
    }


def child_export(project_id: int) -> dict:
    import hashlib

    from django.contrib.auth import get_user_model
    from django.test import Client

    from analysis import loaders
    from analysis.metrics.span_tags import item_token_index, n_tags, tags_from_spans

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-reviewer"))
    # A served web process has imported its views before: warm up with an export of the
    # (empty) reviewed labels, untimed.
    warm = client.get(
        f"/api/v1/projects/{project_id}/export/",
        {"format": "jsonl", "labels": "reviewed"},
        secure=True,
    )
    b"".join(warm.streaming_content)
    start = time.perf_counter()
    response = client.get(
        f"/api/v1/projects/{project_id}/export/",
        {"format": "jsonl", "labels": "majority"},
        secure=True,
    )
    assert response.status_code == 200, response.status_code
    digest, size, rows = hashlib.sha256(), 0, 0
    for chunk in response.streaming_content:
        digest.update(chunk)
        size += len(chunk)
        rows += chunk.count(b"\n")
    response.close()
    seconds = time.perf_counter() - start
    peak_mb = benchdb.peak_rss_mb()

    span_rows = loaders.span_rows(project=_project(project_id))
    lengths = span_rows.annotation_lengths
    tags = tags_from_spans(
        lengths,
        span_rows.span_annotation,
        span_rows.span_start,
        span_rows.span_end,
        span_rows.span_label,
    )
    where = item_token_index(span_rows.annotation_item, lengths, span_rows.item_lengths)
    n_item_tokens = int(span_rows.item_lengths.sum())
    start = time.perf_counter()
    n_classes = n_tags(len(span_rows.class_names))
    votes = np.bincount(where * n_classes + tags, minlength=n_item_tokens * n_classes)
    winner = votes.reshape(n_item_tokens, n_classes).argmax(axis=1)
    bare_s = time.perf_counter() - start
    return {
        "seconds": round(seconds, 2),
        "items": rows,
        "items_per_s": round(rows / seconds),
        "mb": round(size / 1e6, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "bare_vote_s": round(bare_s, 3),
        "bare_tokens_decided": int((winner >= 0).sum()),
    }


def _project(project_id: int):
    from labeling.models import Project

    return Project.objects.get(pk=project_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--per-item", type=int, default=3)
    parser.add_argument("--annotators", type=int, default=12)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        benchdb.setup_django(args.database_url, force_debug=True)
        step, project_id, *paths = args.child
        if step == "import":
            report = child_import(int(project_id), Path(paths[0]), Path(paths[1]))
        elif step == "agreement":
            report = child_agreement(int(project_id))
        else:
            report = child_export(int(project_id))
        benchdb.print_report(report)
        return

    benchdb.recreate_database(args.database_url)
    benchdb.setup_django(args.database_url, force_debug=True)
    project_id = build(args.items, args.annotators)
    results = {"items": args.items, "per_item": args.per_item, "cpus": os.cpu_count()}
    results["load_average_1m_before"] = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as folder:
        items_path, annotations_path, n_spans = write_files(
            Path(folder), items=args.items, per_item=args.per_item, annotators=args.annotators
        )
        results["spans"] = n_spans

        def run_child(*step: str) -> dict:
            return benchdb.run_child(
                __file__,
                ["--database-url", args.database_url, "--child", *step],
                what=f"the {step[0]} step",
            )

        results["import"] = run_child("import", str(project_id), str(items_path),
                                      str(annotations_path))  # fmt: skip
        results["import"]["bare_copy_s"] = round(copy_seconds(annotations_path), 2)
        results["import"]["ratio_annotations_vs_copy"] = round(
            results["import"]["annotations_s"] / results["import"]["bare_copy_s"], 2
        )
    benchdb.analyze()
    results["agreement"] = run_child("agreement", str(project_id))
    results["export"] = run_child("export", str(project_id))
    results["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    agreement = results["agreement"]
    results["targets"] = {
        "agreement_job_at_most_5x_bare": agreement["ratio"] <= 5,
        "agreement_job_at_most_120_s": agreement["job_s"] <= 120,
        "export_at_least_50000_items_per_s": results["export"]["items_per_s"] >= 50_000,
        "every_step_under_1_gb": max(
            results["import"]["peak_rss_mb"], agreement["peak_rss_mb"],
            results["export"]["peak_rss_mb"],
        ) < 1024,
    }  # fmt: skip
    benchdb.print_report(results, indent=2)


if __name__ == "__main__":
    main()
