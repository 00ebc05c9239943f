"""The agreement job's work: load the annotations, compute the report, store its rows.

`AgreementParams` declares the run's parameters. `agreement_run` returns the JSON summary and
a `persist(run)` callable that writes the per-annotator and per-item rows inside
`RunRecorder.finish`'s transaction, so a failed run leaves no partial rows and earlier runs
keep theirs.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework import serializers

from analysis import loaders
from analysis.metrics import agreement, anchoring, span_agreement
from analysis.models import AnalysisRun, AnnotatorScore, ItemDisagreement
from analysis.services.run_params import RunParams
from analysis.services.run_recording import RunRecorder
from labeling.gold_scores import gold_accuracy
from labeling.models import Project
from labeling.rawsql import copy_in_text

User = get_user_model()

PARAM_DEFAULTS = {
    "guideline_version": None,
    "n_bootstrap": agreement.BOOTSTRAP_REPLICATES,
    "seed": agreement.BOOTSTRAP_SEED,
    "min_shared": agreement.MIN_SHARED_ITEMS,
}
INSERT_BATCH = 20_000  # rows per bulk_create where there is no COPY


class WholeNumberField(serializers.IntegerField):
    """A whole number, or its digits as text, from `min_value` to `max_value`."""

    default_error_messages = {
        "invalid": "{name} must be a whole number, not {value!r}.",
        "range": "{name} must be between {low} and {high}.",
    }

    def to_internal_value(self, data):
        if isinstance(data, str) and data.strip().isdigit():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid", name=self.field_name, value=data)
        if not self.min_value <= data <= self.max_value:
            self.fail("range", name=self.field_name, low=self.min_value, high=self.max_value)
        return data


class AgreementParams(RunParams):
    """Parameters of an agreement run."""

    guideline_version = WholeNumberField(
        min_value=1,
        max_value=10**9,
        required=False,
        allow_null=True,
        help_text="Only annotations made under this guideline version (omitted: every version, "
        "and each version apart).",
    )
    n_bootstrap = WholeNumberField(
        min_value=0,
        max_value=10_000,
        required=False,
        help_text="Bootstrap replicates for alpha's 95% interval "
        f"(default {agreement.BOOTSTRAP_REPLICATES}; 0: no interval).",
    )
    seed = WholeNumberField(
        min_value=0,
        max_value=2**32 - 1,
        required=False,
        help_text=f"Seed of the bootstrap (default {agreement.BOOTSTRAP_SEED}).",
    )
    min_shared = WholeNumberField(
        min_value=2,
        max_value=10**6,
        required=False,
        help_text="Items two annotators must share for their Cohen's kappa "
        f"(default {agreement.MIN_SHARED_ITEMS}); on a span project, the items with two or "
        "more annotations below which the report says too few items to judge.",
    )

    def settings(self) -> dict:
        return {**PARAM_DEFAULTS, **self.validated_data}


def _usernames(annotator_ids: np.ndarray) -> list[str]:
    names = dict(User.objects.filter(pk__in=annotator_ids.tolist()).values_list("pk", "username"))
    return [names.get(int(pk), f"user {int(pk)}") for pk in annotator_ids]


def gold_report(*, project: Project) -> dict:
    """The report's `gold` block: per-annotator accuracy on the gold questions with its 95%
    Wilson interval (`labeling.gold_scores.gold_accuracy`), and how many answers to gold
    questions the figures above leave out (`loaders.counted_annotations`)."""
    report = gold_accuracy(project=project)
    report["n_excluded"] = sum(row["n"] for row in report["annotators"])
    return report


def agreement_job(recorder: RunRecorder) -> None:
    """Everything the `analysis.run_agreement` task does, reporting progress on the way."""
    params = AgreementParams.parse(recorder.params, project=recorder.project)
    result, persist = agreement_run(
        project=recorder.project, params=params, progress=recorder.progress
    )
    recorder.finish(result, persist)


def agreement_run(
    *, project: Project, params: dict, progress: Callable[[float, str], None]
) -> tuple[dict, Callable[[AnalysisRun], None]]:
    """Compute the agreement report of a project (overall and per guideline version).

    params: `AgreementParams(...).settings()`. Returns (result, persist): the contract's JSON
    result and the writer of its rows.
    """
    only_version = params["guideline_version"]
    versions = loaders.annotation_versions(project=project)
    if only_version is not None:
        if only_version not in versions:
            raise ValueError(f"No annotations were made under guideline version {only_version}.")
        versions = [only_version]
    if project.is_spans:
        result, persist = span_agreement_run(
            project=project, params=params, versions=versions, progress=progress
        )
        result["gold"] = gold_report(project=project)
        return result, persist
    options = {
        "n_replicates": params["n_bootstrap"],
        "seed": params["seed"],
        "min_shared": params["min_shared"],
    }
    multi = project.is_multi_label
    load = loaders.annotation_choices if multi else loaders.annotation_rows
    progress(0.05, "loading annotations")
    rows = load(project=project, version=only_version)
    names = _usernames(rows.annotator_ids)
    version_arrays = []
    if len(versions) > 1:
        for i, version in enumerate(versions):
            progress(0.1 + 0.2 * i / len(versions), f"loading guideline version {version}")
            version_rows = load(project=project, version=version)
            version_arrays.append(
                (version, _array(version_rows, multi), _usernames(version_rows.annotator_ids))
            )
    progress(0.35, "computing agreement")
    array = _array(rows, multi)
    if multi:
        result = agreement.report_multilabel(
            array, rows.class_names, names, versions=version_arrays, **options
        )
    else:
        result = agreement.report(
            array,
            rows.class_names,
            names,
            ordered=project.ordered,
            versions=version_arrays,
            **options,
        )
    if len(versions) == 1:
        # One version: its figures are the overall ones; do not compute them twice.
        headline = {k: v for k, v in result.items() if k in VERSION_KEYS}
        headline["per_annotator"] = result["per_annotator"]
        result["by_guideline_version"] = [{"version": versions[0], **headline}]
    result["params"] = params
    if not multi:
        progress(0.75, "measuring anchoring on suggestions")
        result["anchoring"] = anchoring_report(project=project, version=only_version)
    result["gold"] = gold_report(project=project)
    ids_by_name = dict(zip(names, rows.annotator_ids.tolist(), strict=True))
    for row in result["per_annotator"]:
        row["annotator_id"] = ids_by_name[row["annotator"]]
    progress(0.8, "ranking items by disagreement")
    if multi:
        counts = np.clip(array, 0, None).sum(axis=1, dtype=np.int64)
        n_ratings = (array[:, :, 0] >= 0).sum(axis=1) if array.size else counts.sum(axis=1)
        entropy = agreement.multilabel_entropy(array)
    else:
        counts = agreement.value_counts(array, len(rows.class_names))
        n_ratings = counts.sum(axis=1)
        entropy = agreement.item_entropy(counts)

    def persist(run: AnalysisRun) -> None:
        progress(0.85, "saving per-annotator and per-item rows")
        _save_annotator_scores(run, result)
        keep = np.nonzero(n_ratings >= 2)[0]
        # Items share few distinct count patterns: write each pattern's JSON once.
        patterns, inverse, _ = agreement.count_patterns(counts[keep])
        label_names = [str(n) for n in rows.class_names]
        texts = [
            json.dumps({label_names[c]: int(row[c]) for c in np.nonzero(row)[0]})
            for row in patterns
        ]
        _save_disagreements(
            run,
            item_ids=rows.item_ids[keep],
            n_annotations=n_ratings[keep],
            score=entropy[keep],
            entropy=entropy[keep],
            texts=texts,
            text_of=inverse,
        )

    return result, persist


def anchoring_report(*, project: Project, version: int | None) -> dict | None:
    """The agreement result's `anchoring` block (`analysis.metrics.anchoring`), with its
    verdict sentence and where the reference came from; None when no counted annotation was
    shown a suggestion. Single-label projects."""
    if not loaders.suggestions_shown(project=project, version=version):
        return None
    rows = loaders.shown_rows(project=project, version=version)
    block = anchoring.report(
        item=rows.item_index,
        label=rows.label_index,
        shown=rows.shown_index,
        reference=rows.reference,
        n_classes=len(rows.class_names),
        class_names=rows.class_names,
    )
    if block is None:
        return None
    block["reference"] = {"gold": rows.n_gold, "reviewed": rows.n_reviewed}
    block["min_wrong_shown"] = anchoring.MIN_WRONG_SHOWN
    block["verdict"] = anchoring.verdict(block)
    return block


def _span_report(rows: loaders.SpanRows, names: list[str], options: dict, counts=None) -> dict:
    return span_agreement.report(
        item_lengths=rows.item_lengths,
        annotation_item=rows.annotation_item,
        annotation_annotator=rows.annotation_annotator,
        span_annotation=rows.span_annotation,
        span_start=rows.span_start,
        span_end=rows.span_end,
        span_label=rows.span_label,
        class_names=rows.class_names,
        annotator_names=names,
        counts=counts,
        **options,
    )


def span_agreement_run(
    *,
    project: Project,
    params: dict,
    versions: list[int],
    progress: Callable[[float, str], None],
) -> tuple[dict, Callable[[AnalysisRun], None]]:
    """The agreement report of a span project: span F1 (exact and partial) per annotator pair,
    label and annotator, Krippendorff's alpha over tokens, overall and per guideline version
    (`analysis.metrics.span_agreement.report`), and per item 1 - its mean pairwise F1.

    `min_shared` is the number of items shared by two annotators below which the page says
    "too few items to judge" (the classification page's minimum for Cohen's kappa).
    """
    only_version = params["guideline_version"]
    options = {
        "n_replicates": params["n_bootstrap"],
        "seed": params["seed"],
        "min_items": params["min_shared"],
    }
    progress(0.05, "loading annotations")
    rows = loaders.span_rows(project=project, version=only_version)
    names = _usernames(rows.annotator_ids)
    version_rows = []
    if len(versions) > 1:
        for i, version in enumerate(versions):
            progress(0.1 + 0.2 * i / len(versions), f"loading guideline version {version}")
            loaded = loaders.span_rows(project=project, version=version)
            version_rows.append((version, loaded, _usernames(loaded.annotator_ids)))
    progress(0.35, "computing span agreement")
    counts = span_agreement.pair_counts(
        annotation_item=rows.annotation_item,
        annotation_annotator=rows.annotation_annotator,
        span_annotation=rows.span_annotation,
        span_start=rows.span_start,
        span_end=rows.span_end,
        span_label=rows.span_label,
        n_types=len(rows.class_names),
    )
    result = _span_report(rows, names, options, counts)
    if len(versions) > 1:
        result["by_guideline_version"] = []
        for i, (version, loaded, version_names) in enumerate(version_rows):
            progress(0.5 + 0.25 * i / len(versions), f"guideline version {version}")
            result["by_guideline_version"].append(
                {"version": int(version), **_span_report(loaded, version_names, options)}
            )
    elif versions:
        # One version: its figures are the overall ones; do not compute them twice.
        headline = {k: v for k, v in result.items() if k != "by_guideline_version"}
        result["by_guideline_version"] = [{"version": int(versions[0]), **headline}]
    else:
        result["by_guideline_version"] = []
    result["labels"] = list(rows.class_names)
    result["params"] = params
    result["gold"] = gold_report(project=project)
    ids_by_name = dict(zip(names, rows.annotator_ids.tolist(), strict=True))
    for row in result["per_annotator"]:
        row["annotator_id"] = ids_by_name[row["annotator"]]
        row["agreement"] = row["span_f1"]  # what AnnotatorScore.agreement holds

    progress(0.8, "ranking items by disagreement")
    mean_f1, n_annotations = span_agreement.item_mean_f1(
        counts, rows.annotation_item, len(rows.item_ids)
    )
    keep = np.nonzero(n_annotations >= 2)[0]

    def persist(run: AnalysisRun) -> None:
        progress(0.85, "saving per-annotator and per-item rows")
        _save_annotator_scores(run, result)
        texts, text_of = _spans_per_annotator(rows, names, keep)
        _save_disagreements(
            run,
            item_ids=rows.item_ids[keep],
            n_annotations=n_annotations[keep],
            score=1.0 - mean_f1[keep],
            entropy=None,
            texts=texts,
            text_of=text_of,
        )

    return result, persist


def _spans_per_annotator(
    rows: loaders.SpanRows, names: list[str], keep: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Each kept item's `label_counts` JSON, {annotator: spans marked}: (texts, (n_keep,) text
    of each kept item). Items with the same annotators and counts share one text."""
    n_spans = np.bincount(rows.span_annotation, minlength=len(rows.annotation_item))
    kept = np.isin(rows.annotation_item, keep)
    order = np.flatnonzero(kept)[
        np.lexsort((rows.annotation_annotator[kept], rows.annotation_item[kept]))
    ]
    widest = int(n_spans.max(initial=0)) + 1
    combos, fragment_of = np.unique(
        rows.annotation_annotator[order] * widest + n_spans[order], return_inverse=True
    )
    fragments = [f"{json.dumps(names[c // widest])}: {c % widest}" for c in combos.tolist()]
    bounds = np.searchsorted(rows.annotation_item[order], keep).tolist() + [len(order)]
    fragment_of = fragment_of.ravel().tolist()
    texts_by_key: dict[tuple, int] = {}
    texts, text_of = [], []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        key = tuple(fragment_of[start:end])
        if key not in texts_by_key:
            texts_by_key[key] = len(texts)
            texts.append("{" + ", ".join(fragments[f] for f in key) + "}")
        text_of.append(texts_by_key[key])
    return texts, np.asarray(text_of, dtype=np.int64)


VERSION_KEYS = (
    "alpha",
    "alpha_ci",
    "reading",
    "percent_agreement",
    "fleiss_kappa",
    "fleiss_kappa_reason",
    "n_items",
    "n_annotations",
    "n_items_single_rating",
    "n_items_used",
    "level",
    "notes",
)


def _array(rows, multi: bool) -> np.ndarray:
    return rows.array() if multi else rows.matrix()


def _save_annotator_scores(run: AnalysisRun, result: dict) -> None:
    by_version: dict[int, dict] = {}
    for entry in result["by_guideline_version"]:
        for row in entry.get("per_annotator", []):
            by_version.setdefault(row["annotator"], {})[str(entry["version"])] = {
                "n": row["n"],
                "agreement": row.get("agreement", row.get("span_f1")),
            }
    AnnotatorScore.objects.bulk_create(
        [
            AnnotatorScore(
                run=run,
                annotator_id=row["annotator_id"],
                n=row["n"],
                agreement=row["agreement"],
                extra={
                    "n_annotations": row["n_annotations"],
                    "by_version": by_version.get(row["annotator"], {}),
                    **{k: row[k] for k in ("n_spans", "span_f1_partial") if k in row},
                },
            )
            for row in result["per_annotator"]
        ],
        batch_size=1000,
    )


def _save_disagreements(
    run: AnalysisRun,
    *,
    item_ids: np.ndarray,
    n_annotations: np.ndarray,
    score: np.ndarray,
    entropy: np.ndarray | None,
    texts: list[str],
    text_of: np.ndarray,
) -> None:
    """One ItemDisagreement row per item given (items with at least two annotations); COPY on
    PostgreSQL, bulk insert elsewhere.

    item_ids, n_annotations, score, text_of: (n_rows,); entropy: (n_rows,) or None (span
    projects: null); texts: the distinct `label_counts` JSON texts, text_of indexes them.
    """
    if not len(item_ids):
        return
    ids, scores, ns = item_ids.tolist(), score.tolist(), n_annotations.tolist()
    ents = entropy.tolist() if entropy is not None else [None] * len(ids)
    pattern_of = text_of.tolist()
    if connection.vendor == "postgresql":
        # COPY text format: backslashes doubled; json.dumps leaves no raw tab or newline.
        escaped = [t.replace("\\", "\\\\") for t in texts]
        table = ItemDisagreement._meta.db_table
        sql = (
            f"COPY {table} (run_id, item_id, score, entropy, n_annotations, label_counts) "
            "FROM STDIN"
        )
        run_id, null = run.pk, "\\N"
        copy_in_text(
            sql,
            (
                f"{run_id}\t{ids[i]}\t{scores[i]!r}\t{null if ents[i] is None else repr(ents[i])}"
                f"\t{ns[i]}\t{escaped[pattern_of[i]]}\n"
                for i in range(len(ids))
            ),
        )
        return
    for start in range(0, len(ids), INSERT_BATCH):
        ItemDisagreement.objects.bulk_create(
            [
                ItemDisagreement(
                    run=run,
                    item_id=ids[i],
                    score=scores[i],
                    entropy=ents[i],
                    n_annotations=ns[i],
                    label_counts=json.loads(texts[pattern_of[i]]),
                )
                for i in range(start, min(start + INSERT_BATCH, len(ids)))
            ]
        )
