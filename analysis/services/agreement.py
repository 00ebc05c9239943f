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
from analysis.metrics import agreement
from analysis.models import AnalysisRun, AnnotatorScore, ItemDisagreement
from analysis.services.run_params import RunParams
from analysis.services.run_recording import RunRecorder
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
        f"(default {agreement.MIN_SHARED_ITEMS}).",
    )

    def settings(self) -> dict:
        return {**PARAM_DEFAULTS, **self.validated_data}


def _usernames(annotator_ids: np.ndarray) -> list[str]:
    names = dict(User.objects.filter(pk__in=annotator_ids.tolist()).values_list("pk", "username"))
    return [names.get(int(pk), f"user {int(pk)}") for pk in annotator_ids]


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
        _save_disagreements(run, rows.item_ids, counts, n_ratings, entropy, rows.class_names)

    return result, persist


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
                "agreement": row["agreement"],
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
                },
            )
            for row in result["per_annotator"]
        ],
        batch_size=1000,
    )


def _save_disagreements(
    run: AnalysisRun,
    item_ids: np.ndarray,
    counts: np.ndarray,
    n_ratings: np.ndarray,
    entropy: np.ndarray,
    class_names: list[str],
) -> None:
    """One row per item with at least two ratings; COPY on PostgreSQL, bulk insert elsewhere.

    counts: (n_items, n_classes) labels given (chosen); n_ratings: (n_items,) annotators.
    """
    keep = np.nonzero(n_ratings >= 2)[0]
    if not len(keep):
        return
    # Items share few distinct count patterns: write each pattern's JSON once.
    patterns, inverse, _ = agreement.count_patterns(counts[keep])
    names = [str(n) for n in class_names]
    texts = [json.dumps({names[c]: int(row[c]) for c in np.nonzero(row)[0]}) for row in patterns]
    if connection.vendor == "postgresql":
        # COPY text format: backslashes doubled; json.dumps leaves no raw tab or newline.
        escaped = [t.replace("\\", "\\\\") for t in texts]
        table = ItemDisagreement._meta.db_table
        sql = f"COPY {table} (run_id, item_id, entropy, n_annotations, label_counts) FROM STDIN"
        ids, ents, ns = item_ids[keep].tolist(), entropy[keep].tolist(), n_ratings[keep].tolist()
        pattern_of, run_id = inverse.tolist(), run.pk
        copy_in_text(
            sql,
            (
                f"{run_id}\t{ids[i]}\t{ents[i]!r}\t{ns[i]}\t{escaped[pattern_of[i]]}\n"
                for i in range(len(keep))
            ),
        )
        return
    for start in range(0, len(keep), INSERT_BATCH):
        ItemDisagreement.objects.bulk_create(
            [
                ItemDisagreement(
                    run=run,
                    item_id=int(item_ids[i]),
                    entropy=float(entropy[i]),
                    n_annotations=int(n_ratings[i]),
                    label_counts=json.loads(texts[inverse[j]]),
                )
                for j, i in enumerate(keep[start : start + INSERT_BATCH].tolist(), start=start)
            ]
        )
