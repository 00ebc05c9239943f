"""Bench: the label-issues job end to end, and the built-in text model, at 100,000 items.

    .venv/bin/python bench/label_issues.py [--items 100000 --classes 10 --per-item 3
        --annotators 30 --texts 100000] [--database-url
        postgres://postgres@127.0.0.1:5432/concord_bench_issues]

Setup (not timed): the bench database is dropped and recreated and its tables are built from
the current models (`migrate --run-syncdb` with migrations switched off, like `pytest
--nomigrations`). A project with `classes` labels gets `items` items and `per-item`
annotations per item from distinct annotators of a pool (COPY); a label is the item's true
class with probability 0.8, else a random class. A model's probabilities (softmax of
true-class-boosted Gaussian logits, about 75% accurate) are uploaded through
`analysis.services.predictions.predictions_upload` (validation included; `upload_s`).

Timed, in a child process (its peak RSS is the job's own):
- `job_s`: the `analysis.run_label_issues` task body, called synchronously on an AnalysisRun
  with params {"model": "bench-model"}: load 300,000 annotations and 100,000 probability rows
  from PostgreSQL, CROWDLAB (`get_label_quality_multiannotator`) plus `find_label_issues`,
  and write 100,000 LabelIssue rows and the AnnotatorScore rows;
- `bare_s`: the same two cleanlab calls on the same arrays, already in memory, same process;
  `ratio` = job_s / bare_s; the flagged counts of both are printed and must be equal.
Then, in a second child process, the built-in text model (TF-IDF word 1-2 + char_wb 2-5
n-grams, logistic regression, 5-fold stratified CV) on `texts` generated short texts
(6-14 words from a 20,000-word vocabulary whose frequencies depend on the class):
`builtin_text_s`, `builtin_text_peak_rss_mb`, `builtin_text_accuracy`.

Prints one JSON line `{items, job_s, bare_s, ratio, peak_rss_mb, ...}`.

Django's and the project's modules are imported inside the functions: they need Django set
up first (`benchdb.setup_django`), which happens once the command line has named the database.
"""

import argparse
import sys
import time

import benchdb
import numpy as np
import pandas as pd

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/concord_bench_issues"


def model_probabilities(truth, classes: int, rng):
    logits = rng.normal(0.0, 1.0, (len(truth), classes))
    logits[np.arange(len(truth)), truth] += 2.2
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def build(items: int, classes: int, per_item: int, annotators: int, seed: int = 6) -> dict:
    from analysis.services.predictions import predictions_upload

    benchdb.create_tables()
    rng = np.random.default_rng(seed)
    project, truth = benchdb.annotated_project(
        name="Label issues bench",
        labels=[f"class-{c}" for c in range(classes)],
        items=items,
        per_item=per_item,
        annotators=annotators,
        noise=0.2,
        rng=rng,
    )
    probs = model_probabilities(truth, classes, rng)
    rows = [
        {"external_id": f"item-{i:07d}", "probabilities": p} for i, p in enumerate(probs.tolist())
    ]
    start = time.perf_counter()
    predictions_upload(
        project=project,
        model="bench-model",
        classes=[f"class-{c}" for c in range(classes)],
        rows=rows,
        user=project.created_by,
    )
    upload_s = time.perf_counter() - start
    benchdb.analyze()
    return {"project_id": project.pk, "upload_s": round(upload_s, 2)}


def job_child(project_id: int) -> None:
    """The job and bare cleanlab, timed in this process."""
    # cleanlab here, not at the top: the text child does not use it, and its peak RSS is
    # reported (builtin_text_peak_rss_mb).
    from cleanlab.filter import find_label_issues
    from cleanlab.multiannotator import get_label_quality_multiannotator

    import analysis.services.label_issues  # noqa: F401 (imported before timing: a warm worker)
    from analysis import loaders
    from analysis.models import AnalysisRun, LabelIssue
    from analysis.tasks import run_label_issues
    from labeling.models import Project

    project = Project.objects.get(pk=project_id)
    run, job_s, peak_mb = benchdb.run_analysis_job(
        run_label_issues,
        project=project,
        kind=AnalysisRun.Kind.LABEL_ISSUES,
        params={"model": "bench-model"},
    )
    n_rows = LabelIssue.objects.filter(run=run).count()

    rows = loaders.annotation_rows(project=project)
    matrix = rows.matrix()
    _, probs = loaders.predictions(project=project, model="bench-model")
    frame = pd.DataFrame(np.where(matrix >= 0, matrix, np.nan))
    start = time.perf_counter()
    bare = get_label_quality_multiannotator(
        frame, probs, return_detailed_quality=False, verbose=False
    )
    consensus = bare["label_quality"]["consensus_label"].to_numpy()
    bare_flags = find_label_issues(consensus, probs, n_jobs=1)
    bare_s = time.perf_counter() - start
    benchdb.print_report(
        {
            "items": int(run.result["n_items"]),
            **benchdb.job_against_bare(job_s, bare_s, peak_mb),
            "method": run.result["method"],
            "n_issues": run.result["n_issues"],
            "bare_n_issues": int(bare_flags.sum()),
            "issue_rows": n_rows,
            "job_load_s": run.result["timings"]["load_and_model_s"],
            "job_judge_s": run.result["timings"]["judge_s"],
            "job_write_s": round(
                job_s
                - run.result["timings"]["load_and_model_s"]
                - run.result["timings"]["judge_s"],
                2,
            ),
        }
    )


def short_texts(n: int, classes: int, seed: int = 7):
    """n texts of 6-14 words; each class favours its own slice of a Zipf vocabulary."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = ["".join(rng.choice(letters, rng.integers(3, 9))) for _ in range(20_000)]
    base = 1.0 / np.arange(1, len(vocabulary) + 1)
    labels = rng.integers(0, classes, n)
    texts = []
    per_class = []
    for _ in range(classes):
        weights = base.copy()
        favoured = rng.choice(len(vocabulary), 300, replace=False)
        weights[favoured] += 0.02
        per_class.append(np.cumsum(weights / weights.sum()))
    for label in labels:
        length = int(rng.integers(6, 15))
        words = np.searchsorted(per_class[label], rng.random(length))
        texts.append(" ".join(vocabulary[w] for w in words))
    return texts, labels


def text_child(n: int, classes: int) -> None:
    from analysis.metrics.out_of_sample import out_of_sample_probabilities

    texts, labels = short_texts(n, classes)
    start = time.perf_counter()
    result = out_of_sample_probabilities(texts, labels, n_classes=classes, kind="text", folds=5)
    seconds = time.perf_counter() - start
    peak_mb = benchdb.peak_rss_mb()
    benchdb.print_report(
        {
            "builtin_text_items": n,
            "builtin_text_s": round(seconds, 1),
            "builtin_text_peak_rss_mb": round(peak_mb, 1),
            "builtin_text_accuracy": round(result.accuracy, 3),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-item", type=int, default=3)
    parser.add_argument("--annotators", type=int, default=30)
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--job-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--text-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job_child:
        benchdb.setup_django(args.database_url)
        job_child(args.job_child)
        return
    if args.text_child:
        sys.path.insert(0, str(benchdb.ROOT))
        text_child(args.texts, args.classes)
        return
    benchdb.recreate_database(args.database_url)
    benchdb.setup_django(args.database_url)
    built = build(args.items, args.classes, args.per_item, args.annotators)
    report = benchdb.run_child(
        __file__, ["--database-url", args.database_url, "--job-child", str(built["project_id"])]
    )
    report["upload_s"] = built["upload_s"]
    if args.texts:
        report.update(
            benchdb.run_child(
                __file__,
                ["--text-child", "--texts", str(args.texts), "--classes", str(args.classes)],
            )
        )
    benchdb.print_report(report)


if __name__ == "__main__":
    main()
