"""Span agreement: pairwise span F1 equal to seqeval's, token alpha equal to the krippendorff
package's, the consensus of a simulated crowd nearer the gold than any one of its annotators,
and the agreement job and page of a span project in every state."""

import itertools
import random
from dataclasses import dataclass

import krippendorff
import numpy as np
import pytest
from django.utils import timezone
from seqeval.metrics import classification_report, f1_score

from analysis import loaders
from analysis.metrics import agreement, span_agreement
from analysis.metrics.span_tags import (
    decode_tags,
    item_token_index,
    majority_tags,
    sequence_offsets,
    tag_names,
    tags_from_spans,
)
from analysis.models import AnalysisRun, AnnotatorScore, ItemDisagreement
from analysis.tasks import run_agreement
from labeling import demo_spans
from labeling.models import Guideline, Project
from labeling.spans import token_bounds, token_spans
from tests.conftest import wait_for
from tests.factories import add_member, make_annotations, make_items, make_project

TYPES = list(demo_spans.TYPES)
TAGS = tag_names(TYPES)
CAREFUL, SHIFTER, CONFUSER, MISSER = demo_spans.HABITS
CROWD = [CAREFUL, SHIFTER, CONFUSER, MISSER]


@dataclass
class Crowd:
    """Seeded sentences with gold spans and simulated annotations of them.

    annotations: [(sentence index, annotator index, [(start, end, type name)] characters)].
    """

    sentences: list
    annotations: list
    habits: list

    def arrays(self) -> dict:
        """The long form `span_agreement` takes (as `loaders.SpanRows` holds it)."""
        lengths = [len(token_bounds(s.text)) for s in self.sentences]
        spans = [
            (a, *tokens)
            for a, (i, _, chosen) in enumerate(self.annotations)
            for tokens in _token_spans(self.sentences[i].text, chosen)
        ]
        column = np.array(spans, dtype=np.int64).reshape(-1, 4)
        return {
            "item_lengths": np.array(lengths, dtype=np.int64),
            "annotation_item": np.array([i for i, _, _ in self.annotations], dtype=np.int64),
            "annotation_annotator": np.array([a for _, a, _ in self.annotations], dtype=np.int64),
            "span_annotation": column[:, 0],
            "span_start": column[:, 1],
            "span_end": column[:, 2],
            "span_label": column[:, 3],
        }

    def gold(self) -> set:
        return {
            (i, *tokens)
            for i, s in enumerate(self.sentences)
            for tokens in _token_spans(s.text, s.spans)
        }


def _token_spans(text, spans) -> list[tuple[int, int, int]]:
    return token_spans(token_bounds(text), [(s, e, TYPES.index(t)) for s, e, t in spans])


def simulate(n, habits, *, per_item=(3,), seed=0, rate=0.35) -> Crowd:
    """n demo sentences, each annotated by `per_item` (a random choice of these counts) of the
    annotators; habits: a habit name or (habit, rate) per annotator."""
    sentences = demo_spans.sentences(n, seed=seed)
    rng = random.Random(seed + 1)
    annotations = []
    for i, sentence in enumerate(sentences):
        k = rng.choice(per_item)
        for a in sorted(rng.sample(range(len(habits)), k)):
            habit, own_rate = (habits[a], rate) if isinstance(habits[a], str) else habits[a]
            annotations.append((i, a, demo_spans.annotate(sentence, habit, rng, rate=own_rate)))
    return Crowd(sentences, annotations, habits)


def iob2_by_annotation(data: dict) -> list[list[str]]:
    """Every annotation's IOB2 tag names, built with span_tags."""
    lengths = data["item_lengths"][data["annotation_item"]]
    tags = tags_from_spans(
        lengths, data["span_annotation"], data["span_start"], data["span_end"], data["span_label"]
    )
    offsets = sequence_offsets(lengths)
    return [[TAGS[t] for t in tags[offsets[a] : offsets[a + 1]]] for a in range(len(lengths))]


def shared_annotations(data: dict, a: int, b: int) -> list[tuple[int, int]]:
    """(annotation of a, annotation of b) for every item both annotated."""
    by = {}
    for n, (item, who) in enumerate(
        zip(data["annotation_item"], data["annotation_annotator"], strict=True)
    ):
        by[(int(item), int(who))] = n
    return [(by[(i, a)], by[(i, b)]) for (i, who) in list(by) if who == a and (i, b) in by]


def spans_of(data: dict, annotation: int) -> list[tuple[int, int, int]]:
    rows = np.flatnonzero(data["span_annotation"] == annotation)
    return [
        (int(data["span_start"][r]), int(data["span_end"][r]), int(data["span_label"][r]))
        for r in rows
    ]


@pytest.fixture(scope="module")
def crowd() -> Crowd:
    return simulate(300, CROWD, per_item=(3, 4), seed=5)


# ---------------------------------------------------------------------------------------------
# The metrics against independent computations


def test_exact_pair_f1_equals_seqeval_f1_score_for_every_annotator_pair(crowd):
    data = crowd.arrays()
    report = span_agreement.report(class_names=TYPES, annotator_names=CROWD, **data)
    tags = iob2_by_annotation(data)
    assert len(report["per_pair"]) == 6
    for pair in report["per_pair"]:
        a, b = CROWD.index(pair["a"]), CROWD.index(pair["b"])
        shared = shared_annotations(data, a, b)
        expected = f1_score([tags[x] for x, _ in shared], [tags[y] for _, y in shared])
        print(f"{pair['a']:>16} vs {pair['b']:<16} n={len(shared)} exact F1 {expected:.4f}")
        assert pair["n"] == len(shared)
        assert pair["span_f1"] == pytest.approx(expected, abs=1e-6)
    assert report["span_f1"] == pytest.approx(
        np.mean([p["span_f1"] for p in report["per_pair"]]), abs=1e-6
    )


def test_per_label_f1_is_the_mean_over_pairs_of_seqeval_per_type_f1(crowd):
    data = crowd.arrays()
    report = span_agreement.report(class_names=TYPES, annotator_names=CROWD, **data)
    tags = iob2_by_annotation(data)
    per_type = {t: [] for t in TYPES}
    for a, b in itertools.combinations(range(len(CROWD)), 2):
        shared = shared_annotations(data, a, b)
        table = classification_report(
            [tags[x] for x, _ in shared], [tags[y] for _, y in shared], output_dict=True
        )
        for t in TYPES:
            if t in table:
                per_type[t].append(table[t]["f1-score"])
    for row in report["per_label"]:
        assert row["span_f1"] == pytest.approx(np.mean(per_type[row["label"]]), abs=1e-6)


def brute_force_partial(data: dict, a: int, b: int) -> tuple[float, float, float]:
    """Partial precision, recall and F1 of annotator a against b, span by span in Python."""
    n_a = n_b = hit_a = hit_b = 0
    for x, y in shared_annotations(data, a, b):
        spans_a, spans_b = spans_of(data, x), spans_of(data, y)

        def overlaps(s, others):
            return any(s[2] == o[2] and s[0] < o[1] and o[0] < s[1] for o in others)

        n_a, n_b = n_a + len(spans_a), n_b + len(spans_b)
        hit_a += sum(overlaps(s, spans_b) for s in spans_a)
        hit_b += sum(overlaps(s, spans_a) for s in spans_b)
    precision, recall = hit_a / n_a, hit_b / n_b
    return precision, recall, 2 * precision * recall / (precision + recall)


def test_partial_pair_f1_equals_a_brute_force_count_span_by_span(crowd):
    data = crowd.arrays()
    report = span_agreement.report(class_names=TYPES, annotator_names=CROWD, **data)
    for pair in report["per_pair"]:
        a, b = CROWD.index(pair["a"]), CROWD.index(pair["b"])
        _, _, expected = brute_force_partial(data, a, b)
        assert pair["span_f1_partial"] == pytest.approx(expected, abs=1e-6)
        assert pair["span_f1_partial"] >= pair["span_f1"]  # an exact match overlaps
    # The boundary shifter's spans overlap the careful annotator's far more than they match.
    careful_shifter = report["per_pair"][0]
    assert (careful_shifter["a"], careful_shifter["b"]) == (CAREFUL, SHIFTER)
    assert careful_shifter["span_f1_partial"] - careful_shifter["span_f1"] > 0.15


def test_per_annotator_f1_pools_every_pair_the_annotator_is_in(crowd):
    data = crowd.arrays()
    report = span_agreement.report(class_names=TYPES, annotator_names=CROWD, **data)
    rows = {r["annotator"]: r for r in report["per_annotator"]}
    for a, name in enumerate(CROWD):
        matched = own = others = 0
        for b in set(range(len(CROWD))) - {a}:
            for x, y in shared_annotations(data, a, b):
                mine, theirs = set(spans_of(data, x)), set(spans_of(data, y))
                matched, own, others = (
                    matched + len(mine & theirs),
                    own + len(mine),
                    others + len(theirs),
                )
        assert rows[name]["span_f1"] == pytest.approx(2 * matched / (own + others), abs=1e-6)
        assert rows[name]["n"] == int((data["annotation_annotator"] == a).sum())
    # The careful annotator agrees with the others best.
    assert max(rows.values(), key=lambda r: r["span_f1"])["annotator"] == CAREFUL


def token_matrix(data: dict) -> np.ndarray:
    """(annotators x tokens of items with two or more annotations), the token's entity type
    index + 1 or 0 for O, NaN where the annotator did not annotate the item."""
    per_item = np.bincount(data["annotation_item"], minlength=len(data["item_lengths"]))
    offsets = sequence_offsets(data["item_lengths"])
    matrix = np.full((int(data["annotation_annotator"].max()) + 1, offsets[-1]), np.nan)
    tags = iob2_by_annotation(data)
    for n, (item, who) in enumerate(
        zip(data["annotation_item"], data["annotation_annotator"], strict=True)
    ):
        values = [0 if t == "O" else TYPES.index(t[2:]) + 1 for t in tags[n]]
        matrix[who, offsets[item] : offsets[item + 1]] = values
    used = np.repeat(per_item >= 2, data["item_lengths"])
    return matrix[:, used]


def test_token_alpha_equals_krippendorff_alpha_on_the_annotators_by_tokens_matrix(crowd):
    data = crowd.arrays()
    report = span_agreement.report(class_names=TYPES, annotator_names=CROWD, **data)
    matrix = token_matrix(data)
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    print(f"token alpha {expected:.4f} over {matrix.shape[1]} tokens")
    assert report["token_alpha"] == pytest.approx(expected, abs=1e-6)
    assert report["n_tokens_used"] == matrix.shape[1]
    # The sparse coincidence path (large projects) gives the same value.
    counts = span_agreement.token_value_counts(
        n_types=len(TYPES), **_without(data, "annotation_annotator")
    )
    assert agreement.alpha_from_counts(counts, method="coincidence") == pytest.approx(
        expected, abs=1e-9
    )


def _without(data: dict, *keys) -> dict:
    return {k: v for k, v in data.items() if k not in keys}


def test_token_alpha_interval_resamples_sentences_so_it_is_wider_than_a_token_bootstrap(crowd):
    data = crowd.arrays()
    report = span_agreement.report(class_names=TYPES, annotator_names=CROWD, **data)
    low, high = report["token_alpha_ci"]
    assert low < report["token_alpha"] < high
    counts = span_agreement.token_value_counts(
        n_types=len(TYPES), **_without(data, "annotation_annotator")
    )
    token_low, token_high = agreement.bootstrap_alpha_ci(counts)  # tokens as if independent
    print(f"interval over sentences {high - low:.4f}, over tokens {token_high - token_low:.4f}")
    assert high - low > 1.2 * (token_high - token_low)
    # Seeded: the same interval again; another seed, another one.
    again = span_agreement.report(class_names=TYPES, annotator_names=CROWD, **data)
    other = span_agreement.report(class_names=TYPES, annotator_names=CROWD, seed=7, **data)
    assert again["token_alpha_ci"] == report["token_alpha_ci"] != other["token_alpha_ci"]


def test_an_item_scores_the_mean_f1_of_its_pairs_and_one_left_empty_by_all_scores_1():
    # Item 0: three annotators; 0 and 1 agree, 2 marks nothing. Item 1: two annotators mark
    # nothing. Item 2: one annotation only.
    data = {
        "item_lengths": np.array([5, 4, 3]),
        "annotation_item": np.array([0, 0, 0, 1, 1, 2]),
        "annotation_annotator": np.array([0, 1, 2, 0, 1, 0]),
        "span_annotation": np.array([0, 0, 1, 1, 5]),
        "span_start": np.array([0, 3, 0, 3, 0]),
        "span_end": np.array([2, 4, 2, 5, 1]),
        "span_label": np.array([0, 1, 0, 1, 0]),
    }
    counts = span_agreement.pair_counts(n_types=2, **_without(data, "item_lengths"))
    mean_f1, n = span_agreement.item_mean_f1(counts, data["annotation_item"], 3)
    # Pairs of item 0: (0, 1) 2*1/(2+2) = 0.5, (0, 2) 0, (1, 2) 0.
    assert mean_f1[0] == pytest.approx(0.5 / 3)
    assert mean_f1[1] == 1.0 and np.isnan(mean_f1[2])
    assert n.tolist() == [3, 2, 1]
    report = span_agreement.report(class_names=["A", "B"], annotator_names=["x", "y", "z"], **data)
    # Pair (x, y) shares items 0 and 1: exact 1 of 2 + 2 spans; partial: both of x's overlap.
    xy = report["per_pair"][0]
    assert (xy["a"], xy["b"], xy["n"], xy["span_f1"]) == ("x", "y", 2, 0.5)
    assert xy["span_f1_partial"] == 1.0
    assert [p["span_f1"] for p in report["per_pair"][1:]] == [0.0, 0.0]


def test_a_crowd_with_no_annotations_or_one_annotator_reports_nothing_rather_than_crashing():
    empty = span_agreement.report(
        item_lengths=np.zeros(0, dtype=np.int64),
        annotation_item=np.zeros(0, dtype=np.int64),
        annotation_annotator=np.zeros(0, dtype=np.int64),
        span_annotation=np.zeros(0, dtype=np.int64),
        span_start=np.zeros(0, dtype=np.int64),
        span_end=np.zeros(0, dtype=np.int64),
        span_label=np.zeros(0, dtype=np.int64),
        class_names=TYPES,
        annotator_names=[],
    )
    assert empty["span_f1"] is None and empty["token_alpha"] is None and empty["n_items"] == 0
    assert "No annotations yet" in " ".join(empty["notes"])
    alone = simulate(30, [CAREFUL], per_item=(1,), seed=2)
    report = span_agreement.report(class_names=TYPES, annotator_names=["solo"], **alone.arrays())
    assert report["span_f1"] is None and report["token_alpha"] is None
    assert report["n_items"] == 30 and report["n_items_used"] == 0
    assert "Only one annotator" in " ".join(report["notes"])
    assert report["per_annotator"][0]["n"] == 0 and report["per_pair"] == []


def test_consensus_recovers_the_gold_spans_better_than_every_single_annotator():
    # Two careful annotators who still slip on one entity in ten, and three with one habit each
    # (at 35% of entities); 3 or 4 of them on each of 600 sentences.
    habits = [(CAREFUL, 1.0), (CAREFUL, 1.0), SHIFTER, CONFUSER, MISSER]
    names = ["careful-1", "careful-2", SHIFTER, CONFUSER, MISSER]
    crowd = simulate(600, habits, per_item=(3, 4), seed=11)
    data = crowd.arrays()
    gold = crowd.gold()
    lengths = data["item_lengths"]
    annotation_lengths = lengths[data["annotation_item"]]
    tags = tags_from_spans(
        annotation_lengths,
        *(data[k] for k in ("span_annotation", "span_start", "span_end", "span_label")),
    )
    where = item_token_index(data["annotation_item"], annotation_lengths, lengths)
    winner, _ = majority_tags(tags, where, n_item_tokens=int(lengths.sum()), n_types=len(TYPES))
    consensus = set(zip(*(a.tolist() for a in decode_tags(winner, lengths)), strict=True))

    def f1(found: set, truth: set) -> float:
        return 2 * len(found & truth) / (len(found) + len(truth))

    consensus_f1 = f1(consensus, gold)
    singles = {}
    for a, name in enumerate(names):
        mine = np.flatnonzero(data["annotation_annotator"] == a)
        items = set(data["annotation_item"][mine].tolist())
        found = {
            (int(data["annotation_item"][x]), *s) for x in mine.tolist() for s in spans_of(data, x)
        }
        singles[name] = f1(found, {g for g in gold if g[0] in items})
    print("span F1 against the gold spans:")
    for name, value in singles.items():
        print(f"  {name:<17} {value:.4f}")
    print(f"  {'consensus':<17} {consensus_f1:.4f} (token majority, IOB2 decoded)")
    assert consensus_f1 > max(singles.values())


# ---------------------------------------------------------------------------------------------
# The loader, the job and the page (database)


def span_project(manager, name="spans"):
    return make_project(manager, labels=TYPES, task_type=Project.TaskType.SPANS, name=name)


def store(project, crowd: Crowd, names, *, guideline=None):
    """The crowd's sentences as items and its annotations by users `names`."""
    items = make_items(project, [s.text for s in crowd.sentences], prefix="s")
    users = [add_member(project, name) for name in names]
    make_annotations(
        project,
        [(items[i], users[a], spans) for i, a, spans in crowd.annotations],
        guideline=guideline,
    )
    return items, users


@pytest.mark.django_db
def test_span_rows_hold_token_ranges_and_the_newest_version_wins(manager):
    project = span_project(manager)
    text = "Ada Lovelace met Charles Babbage in London, 1833."
    [item] = make_items(project, [text])
    v1 = project.current_guideline()
    v2 = Guideline.objects.create(project=project, version=2, published_at=timezone.now())
    bea = add_member(project, "bea")
    make_annotations(project, [(item, manager, [(0, 12, "PER"), (36, 42, "LOC")])], guideline=v1)
    make_annotations(project, [(item, bea, [(0, 3, "PER")])], guideline=v1)
    make_annotations(project, [(item, bea, [(17, 32, "PER"), (44, 48, "DATE")])], guideline=v2)
    rows = loaders.span_rows(project=project)
    assert rows.item_lengths.tolist() == [10]  # Ada Lovelace met Charles Babbage in London , 1833 .
    assert rows.annotation_version.tolist() == [1, 2]
    spans = list(
        zip(
            rows.span_annotation.tolist(),
            rows.span_start.tolist(),
            rows.span_end.tolist(),
            rows.span_label.tolist(),
            strict=True,
        )
    )
    # manager: "Ada Lovelace" PER, "London" LOC; bea's newer answer: "Charles Babbage", "1833".
    assert spans == [(0, 0, 2, 0), (0, 6, 7, 2), (1, 3, 5, 0), (1, 8, 9, 3)]
    older = loaders.span_rows(project=project, version=1)
    assert older.span_end.tolist() == [2, 7, 1]


def run_synchronously(project, params=None) -> AnalysisRun:
    run = AnalysisRun.objects.create(project=project, kind="agreement", params=params or {})
    run_agreement(run.pk)
    run.refresh_from_db()
    return run


def expected_report(project, params: dict, version=None) -> dict:
    rows = loaders.span_rows(project=project, version=version)
    names = [
        dict(project.memberships.values_list("user_id", "user__username"))[int(pk)]
        for pk in rows.annotator_ids
    ]
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
        **params,
    )


CONTRACT_KEYS = {"span_f1", "span_f1_partial", "token_alpha", "token_alpha_ci", "per_label",
                 "per_annotator", "by_guideline_version", "n_items", "n_annotations",
                 "n_spans"}  # fmt: skip


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_agreement_job_of_a_span_project_reports_the_metrics_and_ranks_items_by_f1(
    manager, api_client_for, celery_worker
):
    project = span_project(manager)
    crowd = simulate(80, CROWD, per_item=(3,), seed=21)
    items, users = store(project, crowd, CROWD)
    client = api_client_for(add_member(project, "reviewer-rae", "reviewer"))
    response = client.post(
        f"/api/v1/projects/{project.pk}/runs/",
        {"kind": "agreement", "params": {"n_bootstrap": 300, "seed": 5}},
        format="json",
    )
    assert response.status_code == 202, response.content
    run_id = response.json()["id"]

    def finished():
        body = client.get(f"/api/v1/runs/{run_id}/").json()
        return body if body["status"] in ("succeeded", "failed") else None

    body = wait_for(finished, timeout=120, what="span agreement run", on_timeout=celery_worker.log)
    assert body["status"] == "succeeded", body["error"]
    assert body["progress"] == 1.0
    result = body["result"]
    assert CONTRACT_KEYS <= set(result) and result["task"] == "spans"
    expected = expected_report(project, {"n_replicates": 300, "seed": 5})
    for key in ("span_f1", "span_f1_partial", "token_alpha", "token_alpha_ci", "per_label",
                "per_pair", "n_items", "n_annotations", "n_spans"):  # fmt: skip
        assert result[key] == expected[key], key
    assert result["n_items"] == 80 and result["n_annotations"] == 240
    assert result["n_spans"] == sum(len(s) for _, _, s in crowd.annotations)
    [version] = result["by_guideline_version"]
    assert version["version"] == 1 and version["span_f1"] == result["span_f1"]
    assert CONTRACT_KEYS - {"by_guideline_version"} <= set(version)
    per_annotator = {r["annotator"]: r for r in result["per_annotator"]}
    assert {"annotator", "n", "span_f1"} <= set(per_annotator[CAREFUL])
    scores = AnnotatorScore.objects.filter(run_id=run_id)
    assert {s.annotator.username: s.agreement for s in scores} == {
        name: row["span_f1"] for name, row in per_annotator.items()
    }

    # Items ranked by 1 - mean pairwise exact F1, computed independently here.
    rows = list(ItemDisagreement.objects.filter(run_id=run_id))
    assert len(rows) == 80
    data = crowd.arrays()
    by_item = {}
    for i, _, _ in crowd.annotations:
        by_item.setdefault(i, [])
    for n, (i, _, _) in enumerate(crowd.annotations):
        by_item[i].append(set(spans_of(data, n)))
    for row in rows:
        i = items.index(next(it for it in items if it.pk == row.item_id))
        pairs = list(itertools.combinations(by_item[i], 2))
        f1s = [2 * len(x & y) / (len(x) + len(y)) if x or y else 1.0 for x, y in pairs]
        assert row.score == pytest.approx(1 - np.mean(f1s), abs=1e-9)
        assert row.entropy is None and row.n_annotations == 3
        assert sum(row.label_counts.values()) == sum(len(s) for s in by_item[i])
        assert set(row.label_counts) <= set(CROWD)
    assert [r.score for r in rows] == sorted((r.score for r in rows), reverse=True)
    assert rows[0].score > 0 and rows[-1].score >= 0


@pytest.mark.django_db
def test_versions_are_reported_apart_with_the_same_keys(manager):
    project = span_project(manager)
    sloppy = [SHIFTER, CONFUSER, MISSER]
    first = simulate(40, sloppy, per_item=(3,), seed=1)
    items, users = store(project, first, sloppy)
    v2 = Guideline.objects.create(project=project, version=2, published_at=timezone.now())
    second = simulate(40, [CAREFUL, CAREFUL, CAREFUL], per_item=(3,), seed=1)
    make_annotations(
        project,
        [(items[i], users[a], spans) for i, a, spans in second.annotations],
        guideline=v2,
    )
    run = run_synchronously(project, {"n_bootstrap": 100})
    assert run.status == "succeeded", run.error
    v1_row, v2_row = run.result["by_guideline_version"]
    assert (v1_row["version"], v2_row["version"]) == (1, 2)
    assert CONTRACT_KEYS - {"by_guideline_version"} <= set(v1_row) <= set(v2_row) | {"version"}
    assert v2_row["span_f1"] > v1_row["span_f1"]  # the same people, careful under version 2
    assert v1_row["span_f1"] == expected_report(project, {"n_replicates": 100}, 1)["span_f1"]
    # Overall: each annotator's newest answer, i.e. version 2's.
    assert run.result["span_f1"] == v2_row["span_f1"]


@pytest.mark.django_db
def test_a_span_project_without_annotations_or_with_one_annotator_finishes_with_a_note(manager):
    project = span_project(manager)
    make_items(project, ["Ada met Alan .", "Nothing here ."])
    run = run_synchronously(project)
    assert run.status == "succeeded", run.error
    assert run.result["span_f1"] is None and run.result["n_items"] == 0
    assert run.result["by_guideline_version"] == []
    assert "No annotations yet" in " ".join(run.result["notes"])
    assert not ItemDisagreement.objects.filter(run=run).exists()

    crowd = simulate(10, [CAREFUL], per_item=(1,), seed=3)
    store(project, crowd, ["solo"])
    run = run_synchronously(project)
    assert run.status == "succeeded", run.error
    assert run.result["token_alpha"] is None and run.result["n_annotations"] == 10
    assert "Only one annotator" in " ".join(run.result["notes"])
    assert not ItemDisagreement.objects.filter(run=run).exists()
    missing = run_synchronously(project, {"guideline_version": 7})
    assert missing.status == "failed" and "guideline version 7" in missing.error


@pytest.fixture
def page(manager, client):
    project = span_project(manager, name="Entities")
    client.force_login(manager)
    return project, lambda: client.get(f"/projects/{project.pk}/agreement/")


@pytest.mark.django_db
def test_the_agreement_page_of_a_span_project_shows_its_numbers(page):
    project, get = page
    crowd = simulate(60, CROWD, per_item=(3,), seed=8)
    store(project, crowd, CROWD)
    run = run_synchronously(project, {"n_bootstrap": 200})
    result = run.result
    response = get()
    assert response.status_code == 200
    html = response.content.decode()
    assert f"{result['span_f1']:.3f}" in html and f"{result['span_f1_partial']:.3f}" in html
    assert f"α = {result['token_alpha']:.3f}" in html
    low, high = result["token_alpha_ci"]
    assert f"{low:.3f} – {high:.3f}" in html
    assert {"reliable": "badge ok", "tentative": "badge warn"}.get(
        result["reading"], "badge bad"
    ) in html
    for row in result["per_label"]:
        assert f"<td>{row['label']}</td>" in html
    for row in result["per_annotator"]:
        assert f"<td>{row['annotator']}</td>" in html and f"{row['span_f1']:.3f}" in html
    assert "too few items to judge" not in html.lower()
    figure = response.context["label_figure"]
    assert figure["data"][0]["y"] == [row["span_f1"] for row in result["per_label"]]
    assert response.context["version_figure"]["data"][0]["y"] == [result["token_alpha"]]


@pytest.mark.django_db
def test_the_span_page_says_too_few_items_below_the_classification_pages_minimum(page):
    project, get = page
    crowd = simulate(agreement.MIN_SHARED_ITEMS - 5, CROWD, per_item=(2,), seed=4)
    store(project, crowd, CROWD)
    run = run_synchronously(project)
    assert run.result["too_few"] and run.result["min_items"] == agreement.MIN_SHARED_ITEMS
    html = get().content.decode()
    assert f"Too few items to judge (n={agreement.MIN_SHARED_ITEMS - 5}" in html
    assert "too few items to judge (n=" in html  # the annotators' rows too


@pytest.mark.django_db
def test_the_span_page_answers_in_every_state_of_its_runs(page, manager):
    project, get = page
    assert get().status_code == 200  # an empty project, no run
    assert "No agreement report yet" in get().content.decode()
    run_synchronously(project)  # finished on nothing
    assert get().status_code == 200
    store(project, simulate(5, CROWD, per_item=(3,), seed=9), CROWD)
    AnalysisRun.objects.create(project=project, kind="agreement", status="running", progress=0.3,
                               message="computing span agreement")  # fmt: skip
    response = get()
    assert response.status_code == 200 and "computing span agreement" in response.content.decode()
    AnalysisRun.objects.create(
        project=project,
        kind="agreement",
        status="failed",
        error="The worker was lost.",
        finished_at=timezone.now(),
    )
    assert get().status_code == 200
    run_synchronously(project)
    assert get().status_code == 200
    # A result missing keys (an older or partial one) still renders.
    AnalysisRun.objects.create(project=project, kind="agreement", status="succeeded",
                               result={"task": "spans"}, finished_at=timezone.now())  # fmt: skip
    assert get().status_code == 200
