"""Bench: the label-issues job of a span project at 100,000 items with uploaded token
probabilities, against bare cleanlab token classification; and the built-in CRF on 20,000
sentences.

    .venv/bin/python bench/span_issues.py [--items 100000 --annotators 12 --crf-sentences 20000
        --folds 5] [--database-url postgres://postgres@127.0.0.1:5432/concord_bench_span_issues]

Setup (not timed): the bench database is dropped and recreated, its tables built from the
current models (like `pytest --nomigrations`); a span project (PER, ORG, LOC, DATE) gets
`items` demo sentences (`labeling.demo_spans.sentences`) and one annotation each by one of
`annotators` simulated annotators whose habits cycle through `demo_spans.HABITS` (items and
annotations by COPY). A model's token probabilities, a seeded Dirichlet per token leaning on
the sentence's gold type (so near the given tags, which are the gold ones on most tokens, and
away from them where an annotator erred), are uploaded through
`analysis.services.predictions.token_predictions_upload` (validation included; `upload_s`).

Timed, in a child process (its peak RSS is the job's own):
- `job_s`: the `analysis.run_label_issues` task body, called synchronously on an AnalysisRun
  with params {"model": "bench-model"}, as a worker runs it: load the span annotations and the
  token probabilities from PostgreSQL, `cleanlab.token_classification.filter.find_label_issues`
  and `rank.get_label_quality_scores`, and write the LabelIssue and AnnotatorScore rows;
- `bare_s`: the same two cleanlab calls on the same arrays (per-item label lists and
  probability matrices), already in memory, same process; `ratio` = job_s / bare_s (target
  <= 2); the flagged token counts of both are printed and must be equal.
Then, in a second child process, the built-in CRF (`analysis.metrics.span_crf`, out-of-fold
token probabilities, `folds` folds) on `crf-sentences` demo sentences tagged by the same
simulated annotators: `crf_s`, `crf_peak_rss_mb`, `crf_token_accuracy`.

Prints JSON with the date, the machine and the load average before and after.
"""

import argparse
import datetime
import json
import os
import random
import time

import benchdb
import numpy as np

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/concord_bench_span_issues"
TYPES = ["PER", "ORG", "LOC", "DATE"]
MODEL = "bench-model"


def token_types(text: str, spans, bounds=None) -> list[int]:
    """Each token's class (0 = O, 1 + type index) under `spans` [(start, end, type name)]."""
    from labeling.spans import token_bounds, token_spans

    bounds = bounds if bounds is not None else token_bounds(text)
    classes = [0] * len(bounds)
    for first, after, label in token_spans(bounds, [(s, e, TYPES.index(t)) for s, e, t in spans]):
        classes[first:after] = [label + 1] * (after - first)
    return classes


def annotated(sentences, annotators: int, seed: int):
    """Per sentence: (annotator index, its spans) by an annotator of the pool."""
    from labeling.demo_spans import HABITS, annotate

    rng = random.Random(seed)
    out = []
    for sentence in sentences:
        a = rng.randrange(annotators)
        out.append((a, annotate(sentence, HABITS[a % len(HABITS)], rng)))
    return out


def dirichlet_near(classes: np.ndarray, rng, *, strength: float = 12.0) -> np.ndarray:
    """(n, 1 + n_types) rows, each a Dirichlet draw with alpha 0.4, plus `strength` on the
    token's class (gamma draws, normalised: one vectorised Dirichlet per row)."""
    alpha = np.full((len(classes), 1 + len(TYPES)), 0.4)
    alpha[np.arange(len(classes)), classes] += strength
    draws = rng.gamma(alpha)
    return draws / draws.sum(axis=1, keepdims=True)


def build(items: int, annotators: int, seed: int = 11) -> dict:
    from django.contrib.auth import get_user_model

    from analysis.services.predictions import token_predictions_upload
    from labeling.demo_spans import sentences
    from labeling.models import Annotation, Item, Membership, Project
    from labeling.services.projects import member_set, project_create
    from labeling.spans import token_bounds

    benchdb.create_tables()
    User = get_user_model()
    manager = User.objects.create_user("bench-manager", password=None)
    project = project_create(
        name="Span issues bench",
        labels=[{"name": name} for name in TYPES],
        created_by=manager,
        task_type=Project.TaskType.SPANS,
    )
    annotator_ids = benchdb.create_annotators(annotators)
    for user in User.objects.filter(pk__in=annotator_ids.tolist()):
        member_set(project=project, user=user, role=Membership.Role.ANNOTATOR)
    label_ids = dict(project.labels.values_list("name", "pk"))
    pool = sentences(items, seed=seed)
    answers = annotated(pool, annotators, seed + 1)
    benchdb.copy_model_rows(
        Item,
        ["project_id", "external_id", "data"],
        (
            (project.pk, f"s{i:07d}", json.dumps({"text": sentence.text}))
            for i, sentence in enumerate(pool)
        ),
    )
    item_ids = list(
        Item.objects.filter(project=project).order_by("pk").values_list("pk", flat=True)
    )
    guideline_id = project.current_guideline().pk
    benchdb.copy_model_rows(
        Annotation,
        ["project_id", "item_id", "annotator_id", "guideline_id", "spans"],
        (
            (project.pk, item_id, int(annotator_ids[a]), guideline_id,
             json.dumps([[s, e, label_ids[t]] for s, e, t in spans]))
            for item_id, (a, spans) in zip(item_ids, answers, strict=True)
        ),
    )  # fmt: skip
    # The model: probabilities leaning on each token's gold type.
    rng = np.random.default_rng(seed + 2)
    rows, n_tokens, n_wrong = [], 0, 0
    for i, (sentence, (_, spans)) in enumerate(zip(pool, answers, strict=True)):
        bounds = token_bounds(sentence.text)
        gold = token_types(sentence.text, sentence.spans, bounds)
        given = token_types(sentence.text, spans, bounds)
        n_tokens += len(gold)
        n_wrong += sum(g != a for g, a in zip(gold, given, strict=True))
        probabilities = dirichlet_near(np.asarray(gold, dtype=np.int64), rng)
        rows.append({"external_id": f"s{i:07d}", "probabilities": probabilities.tolist()})
    start = time.perf_counter()
    token_predictions_upload(
        project=project, model=MODEL, classes=["O", *TYPES], rows=rows, user=manager
    )
    upload_s = time.perf_counter() - start
    del rows
    benchdb.analyze()
    return {
        "project_id": project.pk,
        "upload_s": round(upload_s, 2),
        "tokens": n_tokens,
        "wrong_tokens": n_wrong,
    }


def job_child(project_id: int) -> dict:
    """The job and bare cleanlab, timed in this process."""
    from cleanlab.token_classification.filter import find_label_issues
    from cleanlab.token_classification.rank import get_label_quality_scores

    import analysis.services.span_issues  # noqa: F401 (imported before timing: a warm worker)
    from analysis import loaders
    from analysis.metrics.span_tags import tags_from_spans
    from analysis.models import AnalysisRun, LabelIssue
    from analysis.tasks import run_label_issues
    from labeling.models import Project

    project = Project.objects.get(pk=project_id)
    run, job_s, peak_mb = benchdb.run_analysis_job(
        run_label_issues, project=project, kind=AnalysisRun.Kind.LABEL_ISSUES,
        params={"model": MODEL},
    )  # fmt: skip
    n_rows = LabelIssue.objects.filter(run=run).count()

    # The same arrays, untimed: each item's one annotation as token classes, and the model's
    # per-item matrices.
    rows = loaders.span_rows(project=project)
    tags = tags_from_spans(
        rows.annotation_lengths, rows.span_annotation, rows.span_start, rows.span_end,
        rows.span_label,
    )  # fmt: skip
    classes = np.where(tags > 0, (tags.astype(np.int64) - 1) // 2 + 1, 0)
    cut = np.cumsum(rows.annotation_lengths)[:-1]
    labels = np.split(classes, cut)
    predictions = loaders.token_predictions(project=project, model=MODEL)
    assert (predictions.item_ids == rows.item_ids).all()
    probs = [predictions.of(i) for i in range(len(predictions.item_ids))]
    start = time.perf_counter()
    flagged = find_label_issues(labels, probs, n_jobs=1)
    scores, _ = get_label_quality_scores(labels, probs)
    bare_s = time.perf_counter() - start
    result = run.result
    timings = result["timings"]
    return {
        "items": result["n_items"],
        **benchdb.job_against_bare(job_s, bare_s, peak_mb),
        "n_flagged_tokens": result["n_flagged_tokens"],
        "bare_n_flagged_tokens": len(flagged),
        "n_issues": result["n_issues"],
        "bare_n_issues": len({i for i, _ in flagged}),
        "issue_rows": n_rows,
        "bare_min_score": round(float(scores.min()), 6),
        "job_load_s": timings["load_and_model_s"],
        "job_judge_s": timings["judge_s"],
        "job_write_s": round(job_s - timings["load_and_model_s"] - timings["judge_s"], 2),
    }


def crf_child(n: int, annotators: int, folds: int) -> dict:
    from analysis.metrics.span_crf import out_of_fold_token_probabilities
    from labeling.demo_spans import sentences
    from labeling.spans import token_bounds

    pool = sentences(n, seed=21)
    tokens, tags = [], []
    for sentence, (_, spans) in zip(pool, annotated(pool, annotators, 22), strict=True):
        bounds = token_bounds(sentence.text)
        tokens.append([sentence.text[s:e] for s, e in bounds])
        code = []
        previous = 0
        for c in token_types(sentence.text, spans, bounds):
            # IOB2 codes: B- where a span starts (a class change), I- inside.
            code.append(0 if c == 0 else 2 * (c - 1) + (2 if c == previous else 1))
            previous = c
        tags.append(np.asarray(code, dtype=np.int64))
    start = time.perf_counter()
    result = out_of_fold_token_probabilities(tokens, tags, n_types=len(TYPES), folds=folds)
    seconds = time.perf_counter() - start
    return {
        "crf_sentences": n,
        "crf_tokens": sum(map(len, tokens)),
        "crf_folds": folds,
        "crf_s": round(seconds, 1),
        "crf_peak_rss_mb": round(benchdb.peak_rss_mb(), 1),
        "crf_token_accuracy": round(result.token_accuracy, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=12)
    parser.add_argument("--crf-sentences", type=int, default=20_000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        benchdb.setup_django(args.database_url, force_debug=True)
        step, *rest = args.child
        if step == "job":
            report = job_child(int(rest[0]))
        else:
            report = crf_child(args.crf_sentences, args.annotators, args.folds)
        benchdb.print_report(report)
        return

    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **benchdb.machine(),
        "load_average_1m_before": round(os.getloadavg()[0], 2),
        "items": args.items,
    }
    benchdb.recreate_database(args.database_url)
    benchdb.setup_django(args.database_url, force_debug=True)
    built = build(args.items, args.annotators)
    results.update({k: v for k, v in built.items() if k != "project_id"})

    def run_child(*step: str, **options) -> dict:
        extra = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
        return benchdb.run_child(
            __file__,
            ["--database-url", args.database_url, *extra, "--child", *step],
            what=f"the {step[0]} step",
        )

    results["job"] = run_child("job", str(built["project_id"]))
    if args.crf_sentences:
        results["crf"] = run_child(
            "crf", crf_sentences=args.crf_sentences, annotators=args.annotators, folds=args.folds
        )
    results["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    job = results["job"]
    results["targets"] = {
        "job_at_most_2x_bare": job["ratio"] <= 2,
        "same_flags_as_bare": job["n_flagged_tokens"] == job["bare_n_flagged_tokens"],
    }
    benchdb.print_report(results, indent=2)


if __name__ == "__main__":
    main()
