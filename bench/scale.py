"""Bench: the analysis jobs and exports at one million and ten million annotations.

    .venv/bin/python bench/scale.py [--scale 1m,10m] [--jobs agreement,label_issues,majority,
        dawid_skene] [--database-url postgres://postgres@127.0.0.1:5432/concord_bench_scale]
        [--reuse]

Scales (each one project in the same database; 20 annotators, 10 classes, a label is the
item's true class with probability 0.7, else a uniformly random class):
- `1m`: 200,000 items x 5 annotations (the shape of `bench/agreement.py`);
- `10m`: 2,000,000 items x 5 annotations;
- `1mx3`: 1,000,000 items x 3 annotations by 10 annotators, 3 classes (the shape of
  `bench/export.py`), for Dawid-Skene at a million items (`--scale 1mx3 --jobs dawid_skene`).

Setup (not timed): the database is dropped and recreated, its tables built from the current
models, then each scale's items and annotations are written by COPY (`benchdb`), with a text
containing commas and quotes and a `source` metadata field per item, and a model's
probabilities per item (about 75% accurate, `bench/label_issues.py`'s) stored as the uploaded
model `bench-model`. `--reuse` keeps the projects an earlier run built (same name and counts).

Timed, each job of each scale in its own child process, so its peak RSS (VmHWM) is its own:
- `agreement`: the `analysis.run_agreement` task body (bootstrap CI of 1000 replicates, every
  per-item row written), as `bench/agreement.py` runs it;
- `label_issues`: the `analysis.run_label_issues` task body with {"model": "bench-model"}
  (CROWDLAB plus confident learning, every LabelIssue row written);
- `majority`, `dawid_skene`: `GET /api/v1/projects/{id}/export/?format=csv&labels=...`
  through Django's request handler, read to the end (`bench/export.py`'s child); the exports
  run after the label-issue job, so they also read its rows (quality, issue columns).
Per job: `seconds`, `peak_rss_mb`, the load average before it; per job present at both `1m`
and `10m`: `ratio_10m_to_1m` (near-linear is 10; the target is <= 12). Targets: every
10m job under 2,000 MB peak, Dawid-Skene at `1mx3` under 1,500 MB.

Prints JSON.
"""

import argparse
import os
import time
from dataclasses import dataclass

import benchdb
import numpy as np
from label_issues import model_probabilities

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/concord_bench_scale"
JOBS = ("agreement", "label_issues", "majority", "dawid_skene")
EXPORTS = ("majority", "dawid_skene")
SOURCES = ("amazon", "imdb", "yelp")
MODEL = "bench-model"
PEAK_TARGETS_MB = {("10m", job): 2000 for job in JOBS} | {("1mx3", "dawid_skene"): 1500}
RATIO_TARGET = 12


@dataclass(frozen=True)
class Scale:
    items: int
    per_item: int
    annotators: int
    classes: int

    @property
    def annotations(self) -> int:
        return self.items * self.per_item


SCALES = {
    "1m": Scale(items=200_000, per_item=5, annotators=20, classes=10),
    "10m": Scale(items=2_000_000, per_item=5, annotators=20, classes=10),
    "1mx3": Scale(items=1_000_000, per_item=3, annotators=10, classes=3),
}


def project_name(scale: str) -> str:
    return f"Scale bench {scale}"


def build(scale: str, seed: int = 19) -> int:
    """One scale's project, annotations and stored model probabilities; returns its id."""
    from django.contrib.auth import get_user_model

    from analysis.services.predictions import predictions_store
    from labeling.models import Membership
    from labeling.services.projects import member_set

    shape = SCALES[scale]
    rng = np.random.default_rng(seed)
    classes = [f"class-{c}" for c in range(shape.classes)]
    project, truth = benchdb.annotated_project(
        name=project_name(scale),
        labels=classes,
        items=shape.items,
        per_item=shape.per_item,
        annotators=shape.annotators,
        noise=0.3,
        rng=rng,
        text=lambda i: f'Review {i}: "fine", said the user, really fine',
        metadata=lambda i: {"source": SOURCES[i % 3]},
        overlap=shape.per_item,
        tie_rule="first_class",
    )
    User = get_user_model()
    reviewer = User.objects.filter(username="bench-reviewer").first()
    if reviewer is None:
        reviewer = User.objects.create_user("bench-reviewer", password=None)
    member_set(project=project, user=reviewer, role=Membership.Role.REVIEWER)
    item_ids = np.array(project.items.order_by("pk").values_list("pk", flat=True))
    predictions_store(
        project=project,
        model=MODEL,
        classes=classes,
        item_ids=item_ids,
        probs=model_probabilities(truth, shape.classes, rng),
    )
    return project.pk


def existing_project(scale: str) -> int | None:
    from analysis.models import PredictionSet
    from labeling.models import Annotation, Project

    shape = SCALES[scale]
    project = Project.objects.filter(name=project_name(scale)).first()
    if project is None or project.items.count() != shape.items:
        return None
    if Annotation.objects.filter(project=project).count() != shape.annotations:
        return None
    if not PredictionSet.objects.filter(project=project, model=MODEL).exists():
        return None
    return project.pk


def child(project_id: int, job: str) -> dict:
    """One job, timed in this (fresh) process."""
    if job in EXPORTS:
        from export import child_export

        report = child_export(project_id, "csv", labels=job)
        return {k: report[k] for k in ("seconds", "peak_rss_mb", "rows", "rows_per_s", "mb")}
    # The job's modules are imported before timing, as in a worker that has started up.
    import analysis.services.agreement  # noqa: F401
    import analysis.services.label_issues  # noqa: F401
    from analysis.models import AnalysisRun
    from analysis.tasks import run_agreement, run_label_issues
    from labeling.models import Project

    project = Project.objects.get(pk=project_id)
    if job == "agreement":
        run, seconds, peak_mb = benchdb.run_analysis_job(
            run_agreement, project=project, kind=AnalysisRun.Kind.AGREEMENT
        )
        found = {"alpha": run.result["alpha"], "alpha_ci": run.result["alpha_ci"]}
    else:
        run, seconds, peak_mb = benchdb.run_analysis_job(
            run_label_issues,
            project=project,
            kind=AnalysisRun.Kind.LABEL_ISSUES,
            params={"model": MODEL},
        )
        found = {
            "method": run.result["method"],
            "n_issues": run.result["n_issues"],
            "timings": run.result["timings"],
        }
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak_mb, 1), **found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1m,10m", help="comma-separated: 1m, 10m, 1mx3")
    parser.add_argument(
        "--jobs", default=",".join(JOBS), help="comma-separated: " + ", ".join(JOBS)
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--reuse", action="store_true", help="keep the projects of an earlier run")
    parser.add_argument("--child", nargs=2, metavar=("PROJECT_ID", "JOB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        benchdb.setup_django(args.database_url, force_debug=True)
        benchdb.print_report(child(int(args.child[0]), args.child[1]))
        return
    scales = args.scale.split(",")
    jobs = args.jobs.split(",")
    unknown = sorted(set(scales) - set(SCALES)) + sorted(set(jobs) - set(JOBS))
    if unknown:
        parser.error(f"unknown scale or job: {', '.join(unknown)}")

    report: dict = {"machine": benchdb.machine(), "cpus": os.cpu_count()}
    projects: dict[str, int | None] = {}
    if args.reuse:
        try:
            benchdb.setup_django(args.database_url, force_debug=True)
            projects = {scale: existing_project(scale) for scale in scales}
        except Exception:  # no database yet: build it
            projects = {}
    if not args.reuse or not projects:
        benchdb.recreate_database(args.database_url)
        benchdb.setup_django(args.database_url, force_debug=True)
        benchdb.create_tables()
    build_s = {}
    for scale in scales:
        if projects.get(scale) is None:
            start = time.perf_counter()
            projects[scale] = build(scale)
            build_s[scale] = round(time.perf_counter() - start, 1)
    if build_s:
        benchdb.analyze()
    report["build_s"] = build_s

    for scale in scales:
        shape = SCALES[scale]
        report[scale] = {"items": shape.items, "annotations": shape.annotations}
        for job in jobs:
            load = round(os.getloadavg()[0], 2)
            report[scale][job] = {
                **benchdb.run_child(
                    __file__,
                    ["--database-url", args.database_url, "--child", str(projects[scale]), job],
                    what=f"{job} at {scale}",
                ),
                "load_average_1m_before": load,
            }
    if "1m" in scales and "10m" in scales:
        report["ratio_10m_to_1m"] = {
            job: round(report["10m"][job]["seconds"] / report["1m"][job]["seconds"], 2)
            for job in jobs
        }
    targets = {}
    for (scale, job), limit in PEAK_TARGETS_MB.items():
        if scale in scales and job in jobs:
            targets[f"{scale}_{job}_peak_under_{limit}_mb"] = (
                report[scale][job]["peak_rss_mb"] < limit
            )
    for job, ratio in report.get("ratio_10m_to_1m", {}).items():
        targets[f"{job}_ratio_at_most_{RATIO_TARGET}"] = ratio <= RATIO_TARGET
    report["targets"] = targets
    report["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    benchdb.print_report(report, indent=2)


if __name__ == "__main__":
    main()
