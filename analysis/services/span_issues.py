"""The label-issues job of a span project (DESIGN.md, "Span projects"): given classes per
token, a token model, cleanlab's token classification, and the rows of the review queue.

Given labels. Each annotation becomes IOB2 tags (`span_tags.tags_from_spans`). An item's
given tags are its single annotation's, or else the token majority over its annotations
(`span_tags.majority_winners`, ties unresolved), the consensus the exports decode. A token's
given class is its tag's entity type (B- and I- alike) or `O`. A tied token (no majority tag)
is left out of the judgement: neither flagged nor counted in its item's score, since no one
answer was given for it; `given_spans` (the consensus decoded, ties read as `O` as the exports
read them) leave it outside any span. An item all of whose tokens are tied is not judged.

Model. An uploaded token model by name (`model`), or the built-in linear-chain CRF's
out-of-fold probabilities (`metrics.span_crf`, folds split by item), stored as the token
predictions of model "builtin" for the baselines pages. The CRF learns from the items without
a tied token and scores every item, but for the items with a type too rare for the folds
(`excluded_types`): those are not judged, and a token given such a type in an item the CRF
scored anyway (a tied one) is left out of the judgement (the model cannot predict the type).
`model: "none"` is refused: without a model nothing judges a span's tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model

from analysis import loaders
from analysis.metrics import span_crf
from analysis.metrics.out_of_sample import CannotTrain
from analysis.metrics.span_issues import (
    LEFT_OUT,
    METHOD,
    SpanIssues,
    annotator_token_scores,
    find_span_issues,
    token_types,
)
from analysis.metrics.span_tags import (
    char_offsets,
    decode_tags,
    item_token_index,
    majority_winners,
    sequence_offsets,
    tags_from_spans,
)
from analysis.models import AnalysisRun, AnnotatorScore, LabelIssue
from analysis.services.label_issues import BATCH, BUILTIN, NO_MODEL, LabelIssueSettings
from analysis.services.predictions import token_predictions_store
from analysis.services.run_recording import RunRecorder
from labeling.rawsql import copy_in_rows


@dataclass(frozen=True)
class GivenTags:
    """The tags a run judges.

    annotation_tags: (sum of annotation lengths,) every annotation's IOB2 tags, flat;
    token_item_index: (same,) their positions among the items' tokens; item_tags: (T,) the
    given IOB2 tag per item token (the single annotation's, or the majority; -1 tied);
    n_annotations: (n_items,).
    """

    annotation_tags: np.ndarray
    token_item_index: np.ndarray
    item_tags: np.ndarray
    n_annotations: np.ndarray


def given_tags(rows: loaders.SpanRows) -> GivenTags:
    """Each annotation's IOB2 tags and each item's given tags (see the module docstring)."""
    known = rows.span_label >= 0  # a span of a deleted label class is no tag
    annotation_tags = tags_from_spans(
        rows.annotation_lengths,
        rows.span_annotation[known],
        rows.span_start[known],
        rows.span_end[known],
        rows.span_label[known],
    )
    token_item_index = item_token_index(
        rows.annotation_item, rows.annotation_lengths, rows.item_lengths
    )
    n_annotations = np.bincount(rows.annotation_item, minlength=len(rows.item_ids))
    if (n_annotations == 1).all():
        # One annotation per item, in item order (span_rows sorts them): its tags as they are.
        item_tags = annotation_tags.astype(np.int64)
    else:
        item_tags = majority_winners(
            annotation_tags,
            token_item_index,
            n_item_tokens=int(rows.item_lengths.sum()),
            n_types=len(rows.class_names),
        )
    return GivenTags(annotation_tags, token_item_index, item_tags, n_annotations)


def span_issues_job(recorder: RunRecorder, params: LabelIssueSettings) -> None:
    """`label_issues_job` for a span project, reporting progress on the way."""
    project = recorder.project
    if params.model == NO_MODEL:
        raise ValueError(
            "Label issues of a span project need a token model: leave `model` out for the "
            "built-in CRF, or upload token predictions and name them."
        )
    started = time.perf_counter()
    recorder.progress(0.02, "loading span annotations")
    rows = loaders.span_rows(project=project, version=params.guideline_version)
    if not len(rows.annotation_item):
        raise ValueError("The project has no span annotations to check.")
    recorder.progress(0.06, "finding the given tags")
    given = given_tags(rows)
    classes = [loaders.OUTSIDE, *rows.class_names]
    labels = token_types(given.item_tags)
    summary: dict = {"model": params.model, "model_note": None, "folds": None,
                     "excluded_types": [], "builtin_token_accuracy": None}  # fmt: skip
    builtin = None
    if params.model and params.model != BUILTIN:
        recorder.progress(0.1, f"loading token predictions {params.model!r}")
        predictions = loaders.token_predictions(project=project, model=params.model)
        probs, judged = _aligned(rows, predictions)
        del predictions
        if not judged.all():
            summary["model_note"] = (
                f"{int((~judged).sum())} annotated items have no predictions {params.model!r} "
                "of as many tokens as their text; they were not judged."
            )
    else:
        recorder.progress(0.08, "building token features")
        builtin, probs, judged = _builtin(recorder, rows, given, params.folds)
        summary.update(
            model=BUILTIN,
            folds=builtin.folds,
            excluded_types=[rows.class_names[t] for t in builtin.excluded_types],
            builtin_token_accuracy=_float(builtin.token_accuracy),
        )
        if builtin.excluded_types:
            excluded = np.isin(labels, np.asarray(builtin.excluded_types, dtype=np.int64) + 1)
            labels = np.where(excluded, LEFT_OUT, labels)
            summary["model_note"] = (
                f"Too few items of {', '.join(summary['excluded_types'])} for "
                f"{builtin.folds} folds: the built-in CRF did not learn them, and the items "
                "with them were not judged."
            )
    recorder.progress(0.85, "finding label issues")
    judging = time.perf_counter()
    issues = find_span_issues(labels, rows.item_lengths, probs, judged=judged)
    judged_at = time.perf_counter()
    # The model's most probable class per token (argmax of a NaN row is 0: masked out).
    model_types = np.where(np.repeat(judged, rows.item_lengths), probs.argmax(axis=1), -1)
    annotators = annotator_token_scores(
        token_types(given.annotation_tags),
        given.token_item_index,
        np.repeat(rows.annotation_annotator, rows.annotation_lengths),
        n_annotators=len(rows.annotator_ids),
        consensus=token_types(given.item_tags),
        shared=np.repeat(given.n_annotations > 1, rows.item_lengths),
        model=model_types,
    )
    n_labeled = np.bincount(rows.annotation_annotator, minlength=len(rows.annotator_ids))
    result = {
        "n_items": issues.n_items,
        "n_issues": issues.n_issues,
        "n_flagged_tokens": issues.n_flagged_tokens,
        "method": issues.method,
        **summary,
        "given": "annotation" if (given.n_annotations == 1).all() else "token_majority",
        "n_unjudged": len(rows.item_ids) - issues.n_items,
        "n_tokens": issues.n_tokens,
        "n_tied_tokens": int((given.item_tags < 0).sum()),
        "model_token_accuracy": issues.model_token_accuracy,
        "annotators": _annotator_summary(rows, n_labeled, annotators),
        # Where the time went (the row writes come after and are not included).
        "timings": {
            "load_and_model_s": round(judging - started, 3),
            "judge_s": round(judged_at - judging, 3),
        },
    }
    recorder.progress(0.9, "saving results")

    def persist(run: AnalysisRun) -> None:
        if builtin is not None:
            scored = np.flatnonzero(judged)
            token_predictions_store(
                project=project,
                model=BUILTIN,
                classes=classes,
                item_ids=rows.item_ids[scored],
                probs=[builtin.probabilities[i] for i in scored.tolist()],
                user=run.created_by,
            )
        span_issues_persist(run=run, rows=rows, given=given, issues=issues)
        AnnotatorScore.objects.bulk_create(
            [
                AnnotatorScore(
                    run=run,
                    annotator_id=int(annotator_id),
                    n=int(n_labeled[a]),
                    quality=_float(annotators.quality[a]),
                    agreement=_float(annotators.agreement[a]),
                    extra={
                        "method": METHOD,
                        "n_tokens": int(annotators.n_tokens[a]),
                        "n_shared_tokens": int(annotators.n_shared_tokens[a]),
                        "model_agreement": _float(annotators.model_agreement[a]),
                    },
                )
                for a, annotator_id in enumerate(rows.annotator_ids.tolist())
            ],
            batch_size=BATCH,
        )

    note = summary["model_note"]
    recorder.finish(result, persist=persist, message=f"done: {note}" if note else "done")


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions start..start + length - 1 of every range, concatenated. (sum,) int64."""
    lengths = np.asarray(lengths, dtype=np.int64)
    within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(
        sequence_offsets(lengths)[:-1], lengths
    )
    return np.repeat(np.asarray(starts, dtype=np.int64), lengths) + within


def _aligned(rows: loaders.SpanRows, predictions: loaders.TokenPredictions):
    """(T, 1 + n_types) probabilities per item token (NaN rows where none) and (n_items,)
    bool: the items with predictions of as many tokens as the item has now (an item whose
    text changed since the upload is not judged)."""
    lengths = np.diff(predictions.offsets)
    if np.array_equal(predictions.item_ids, rows.item_ids) and np.array_equal(
        lengths, rows.item_lengths
    ):  # the predictions are for exactly these items: their rows as they are
        return predictions.probs, np.ones(len(rows.item_ids), dtype=bool)
    n_columns = predictions.probs.shape[1]
    probs = np.full((int(rows.item_lengths.sum()), n_columns), np.nan)
    at = np.full(len(rows.item_ids), -1, dtype=np.int64)
    if len(predictions.item_ids):
        found = np.clip(np.searchsorted(predictions.item_ids, rows.item_ids), 0,
                        len(predictions.item_ids) - 1)  # fmt: skip
        at = np.where(predictions.item_ids[found] == rows.item_ids, found, -1)
    judged = (at >= 0) & (lengths[np.maximum(at, 0)] == rows.item_lengths) if len(at) else at >= 0
    items = np.flatnonzero(judged)
    if len(items):
        item_offsets = sequence_offsets(rows.item_lengths)
        counts = rows.item_lengths[items]
        probs[_ranges(item_offsets[items], counts)] = predictions.probs[
            _ranges(predictions.offsets[at[items]], counts)
        ]
    return probs, judged


def _builtin(recorder: RunRecorder, rows: loaders.SpanRows, given: GivenTags, folds: int):
    """The CRF's out-of-fold result, its (T, 1 + n_types) probabilities and (n_items,) bool
    scored items. Raises ValueError saying why when it cannot train."""
    offsets = sequence_offsets(rows.item_lengths)
    starts, ends = rows.token_starts.tolist(), rows.token_ends.tolist()
    tokens = [
        [text[s:e] for s, e in zip(starts[a:b], ends[a:b], strict=True)]
        for text, a, b in zip(rows.item_texts, offsets[:-1].tolist(), offsets[1:].tolist(),
                              strict=True)
    ]  # fmt: skip
    tied = np.bincount(
        np.repeat(np.arange(len(rows.item_ids)), rows.item_lengths)[given.item_tags < 0],
        minlength=len(rows.item_ids),
    )
    tags = [
        None if tied[i] else given.item_tags[a:b]
        for i, (a, b) in enumerate(zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True))
    ]

    def fold_done(fraction: float, message: str) -> None:
        recorder.progress(0.1 + 0.7 * fraction, f"built-in CRF: {message} done")

    recorder.progress(0.1, f"training the built-in CRF ({folds} folds)")
    try:
        builtin = span_crf.out_of_fold_token_probabilities(
            tokens, tags, n_types=len(rows.class_names), folds=folds, seed=0, progress=fold_done
        )
    except CannotTrain as exc:
        raise ValueError(
            f"The built-in CRF cannot run: {exc}. Upload token predictions instead."
        ) from exc
    n_columns = 1 + len(rows.class_names)
    probs = np.full((int(offsets[-1]), n_columns), np.nan)
    judged = np.zeros(len(rows.item_ids), dtype=bool)
    for i in np.flatnonzero(builtin.scored & (rows.item_lengths > 0)).tolist():
        probs[offsets[i] : offsets[i + 1]] = builtin.probabilities[i]
        judged[i] = True
    return builtin, probs, judged


def span_issues_persist(
    *, run: AnalysisRun, rows: loaders.SpanRows, given: GivenTags, issues: SpanIssues
) -> None:
    """Write the run's LabelIssue rows in bulk: per judged item its score, rank, flagged
    tokens `[start, end, given label id | None, suggested label id | None]` (character
    offsets; None is O) and the spans judged `[start, end, label id]`."""
    label_id = [None, *rows.class_ids]  # class c -> its label id; 0 (O) -> None
    # Flagged tokens, in item order, as the JSON lists the rows hold.
    token_at = sequence_offsets(rows.item_lengths)[issues.flagged_item] + issues.flagged_token
    flagged = [
        [start, end, label_id[g], label_id[s]]
        for start, end, g, s in zip(
            rows.token_starts[token_at].tolist(), rows.token_ends[token_at].tolist(),
            issues.flagged_given.tolist(), issues.flagged_suggested.tolist(), strict=True,
        )
    ]  # fmt: skip
    flagged_starts = np.searchsorted(issues.flagged_item, issues.item_index).tolist()
    flagged_ends = np.searchsorted(issues.flagged_item, issues.item_index, "right").tolist()
    # The spans judged: the given tags decoded (ties read as O).
    sequence, start, end, label = decode_tags(given.item_tags, rows.item_lengths)
    char_start, char_end = char_offsets(
        sequence, start, end, rows.item_lengths, rows.token_starts, rows.token_ends
    )
    ids = np.asarray(rows.class_ids, dtype=np.int64)[label] if len(label) else label
    spans = [
        list(span)
        for span in zip(char_start.tolist(), char_end.tolist(), ids.tolist(), strict=True)
    ]
    span_bounds = np.searchsorted(sequence, issues.item_index).tolist()
    span_ends = np.searchsorted(sequence, issues.item_index, side="right").tolist()
    open_ = LabelIssue.Resolution.OPEN
    copy_in_rows(
        LabelIssue,
        ["run_id", "item_id", "quality", "is_issue", "rank", "flagged_tokens", "given_spans",
         "resolution"],
        (
            (run.pk, item_id, quality, flag, rank, flagged[f0:f1], spans[s0:s1], open_)
            for item_id, quality, flag, rank, f0, f1, s0, s1 in zip(
                rows.item_ids[issues.item_index].tolist(), issues.quality.tolist(),
                issues.is_issue.tolist(), issues.rank.tolist(), flagged_starts, flagged_ends,
                span_bounds, span_ends, strict=True,
            )
        ),
    )  # fmt: skip


def _annotator_summary(rows: loaders.SpanRows, n_labeled: np.ndarray, scores) -> list[dict]:
    User = get_user_model()
    names = dict(
        User.objects.filter(id__in=rows.annotator_ids.tolist()).values_list("id", "username")
    )
    return [
        {
            "annotator": names.get(annotator_id, str(annotator_id)),
            "n": int(n_labeled[a]),
            "n_tokens": int(scores.n_tokens[a]),
            "quality": _float(scores.quality[a]),
            "agreement": _float(scores.agreement[a]),
            "model_agreement": _float(scores.model_agreement[a]),
        }
        for a, annotator_id in enumerate(rows.annotator_ids.tolist())
    ]


def _float(value) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(value)
