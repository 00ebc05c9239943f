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
- `peak_rss_mb`: the child's peak RSS (VmHWM) after the job (before the bare call).
The job's modules (scikit-learn, scipy, krippendorff) are imported before timing, as in a
worker that has started up.

Prints JSON `{annotations, job_s, bare_s, ratio, peak_rss_mb, alpha, bare_alpha}`.

Django's and the project's modules are imported inside the functions: they need Django set
up first (`benchdb.setup_django`), which happens once the command line has named the database.
"""

import argparse
import time

import benchdb
import krippendorff
import numpy as np

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/concord_bench_agreement"


def build(items: int, per_item: int, annotators: int, classes: int, seed: int = 11) -> int:
    """Schema, project, users, items and annotations; returns the project id."""
    benchdb.create_tables()
    project, _ = benchdb.annotated_project(
        name="Agreement bench",
        labels=[f"class-{c}" for c in range(classes)],
        items=items,
        per_item=per_item,
        annotators=annotators,
        noise=0.3,
        rng=np.random.default_rng(seed),
    )
    benchdb.analyze()
    return project.pk


def child(project_id: int) -> None:
    """The timed part, in its own process."""
    import analysis.services.agreement  # noqa: F401 (imported before timing, as in a warm worker)
    from analysis import loaders
    from analysis.models import AnalysisRun, ItemDisagreement
    from analysis.tasks import run_agreement
    from labeling.models import Project

    project = Project.objects.get(pk=project_id)
    run, job_s, peak_mb = benchdb.run_analysis_job(
        run_agreement, project=project, kind=AnalysisRun.Kind.AGREEMENT
    )
    n_rows = ItemDisagreement.objects.filter(run=run).count()

    rows = loaders.annotation_rows(project=project)
    reliability = np.where(rows.matrix() >= 0, rows.matrix(), np.nan).T  # (annotators, items)
    start = time.perf_counter()
    bare = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    bare_s = time.perf_counter() - start
    benchdb.print_report(
        {
            "annotations": int(run.result["n_annotations"]),
            **benchdb.job_against_bare(job_s, bare_s, peak_mb),
            "alpha": run.result["alpha"],
            "alpha_ci": run.result["alpha_ci"],
            "bare_alpha": round(float(bare), 6),
            "item_rows": n_rows,
        }
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
        benchdb.setup_django(args.database_url)
        child(args.child)
        return
    benchdb.recreate_database(args.database_url)
    benchdb.setup_django(args.database_url)
    project_id = build(args.items, args.per_item, args.annotators, args.classes)
    report = benchdb.run_child(
        __file__, ["--database-url", args.database_url, "--child", str(project_id)]
    )
    benchdb.print_report(report)


if __name__ == "__main__":
    main()
