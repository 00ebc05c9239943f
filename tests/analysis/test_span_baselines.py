"""Baselines and slices of a span project in exact span F1: the F1 against a count of
(item, start, end, type) sets, HLP leave-one-out on a hand-made case and against a brute-force
consensus of a simulated crowd, reviews as the reference from 30 reviewed items, the model's F1
against the final spans, the slices rows and the small-sample rule, and both jobs end to end on
demo sentences with uploaded token predictions."""

import random
from collections import Counter

import numpy as np
import pytest

from analysis.metrics import span_baselines as sb
from analysis.metrics.slices import categorical_dimension
from analysis.models import AnalysisRun, AnnotatorScore
from analysis.services.predictions import token_predictions_store
from analysis.tasks import RUN_TASKS
from labeling.models import Review
from labeling.spans import token_bounds
from tests.analysis.test_span_agreement import (
    CAREFUL,
    MISSER,
    SHIFTER,
    TYPES,
    Crowd,
    simulate,
    span_project,
)
from tests.factories import add_member, make_annotations, make_items

# ---------------------------------------------------------------------------------------------
# An independent computation: token tags by name, Counter majorities, sets of tuples


def token_tags(text: str, spans) -> list[str]:
    """IOB2 tag names of the text's tokens for character spans [(start, end, type name)]."""
    bounds = token_bounds(text)
    tags = ["O"] * len(bounds)
    for start, end, kind in spans:
        inside = [t for t, (s, e) in enumerate(bounds) if s >= start and e <= end]
        tags[inside[0]] = f"B-{kind}"
        for t in inside[1:]:
            tags[t] = f"I-{kind}"
    return tags


def spans_from_tags(tags: list[str]) -> set:
    """{(start token, end token, type)} of IOB2 tags; an I- that does not continue its type
    starts a span."""
    found, open_at, kind = set(), None, None
    for t, tag in enumerate([*tags, "O"]):
        prefix, _, name = tag.partition("-")
        if open_at is not None and (prefix != "I" or name != kind):
            found.add((open_at, t, kind))
            open_at = None
        if prefix == "B" or (prefix == "I" and open_at is None):
            open_at, kind = t, name
    return found


def majority(tag_lists: list[list[str]], ties: list[str] | None = None) -> list[str]:
    """Token majority; a tie reads as O (the "unresolved" rule), or as `ties`' tag there."""
    out = []
    for t, votes in enumerate(zip(*tag_lists, strict=True)):
        ranked = Counter(votes).most_common()
        tied = len(ranked) > 1 and ranked[0][1] == ranked[1][1]
        out.append(("O" if ties is None else ties[t]) if tied else ranked[0][0])
    return out


def pooled_f1(pairs) -> float:
    """Micro F1 over (predicted set, reference set) pairs, each set of (item, ...) tuples."""
    tp = sum(len(p & r) for p, r in pairs)
    total = sum(len(p) + len(r) for p, r in pairs)
    return 2 * tp / total


def brute_hlp(crowd: Crowd, items=None) -> tuple[float, dict]:
    """Pooled leave-one-out HLP (over `items`, default all) and per annotator, from tag names
    and sets: each annotation against the majority of the others, their ties settled by each
    other annotator in turn, counts averaged over those turns."""
    by_item: dict[int, dict] = {}
    for i, a, spans in crowd.annotations:
        if items is None or i in items:
            by_item.setdefault(i, {})[a] = token_tags(crowd.sentences[i].text, spans)
    totals, per = [], {}
    for i, tags in by_item.items():
        for a, own in tags.items():
            others = [t for b, t in tags.items() if b != a]
            if not others:
                continue
            mine = {(i, *s) for s in spans_from_tags(own)}
            num = den = 0.0
            for settler in others:
                ref = {(i, *s) for s in spans_from_tags(majority(others, ties=settler))}
                num += 2 * len(mine & ref) / len(others)
                den += (len(mine) + len(ref)) / len(others)
            totals.append((num, den))
            per.setdefault(a, []).append((num, den))

    def ratio(pairs):
        return sum(n for n, _ in pairs) / sum(d for _, d in pairs)

    return ratio(totals), {a: ratio(p) for a, p in per.items()}


def brute_final(crowd: Crowd) -> dict[int, set]:
    """Each annotated item's final spans: the token majority of all its annotators."""
    by_item: dict[int, list] = {}
    for i, _, spans in crowd.annotations:
        by_item.setdefault(i, []).append(token_tags(crowd.sentences[i].text, spans))
    return {i: {(i, *s) for s in spans_from_tags(majority(t))} for i, t in by_item.items()}


def gold_set(crowd: Crowd, i: int) -> set:
    """Sentence i's gold spans as {(i, start token, end token, type name)}."""
    sentence = crowd.sentences[i]
    return {(i, *s) for s in spans_from_tags(token_tags(sentence.text, sentence.spans))}


def inputs_of(crowd: Crowd, **extra) -> sb.Inputs:
    data = crowd.arrays()
    n_items = len(data["item_lengths"])
    return sb.Inputs(
        **data,
        n_types=len(TYPES),
        n_annotators=len(crowd.habits),
        reviewed=extra.pop("reviewed", np.zeros(n_items, dtype=bool)),
        review=extra.pop("review", sb.Spans.empty()),
        reviewer_annotator=extra.pop("reviewer_annotator", np.full(n_items, -1)),
        **extra,
    )


def gold_spans(crowd: Crowd, items=None) -> sb.Spans:
    rows = sorted(g for g in crowd.gold() if items is None or g[0] in items)
    return sb.Spans(*(np.array(c, dtype=np.int64) for c in zip(*rows, strict=True)))


@pytest.fixture(scope="module")
def crowd() -> Crowd:
    return simulate(400, [CAREFUL, SHIFTER, MISSER], per_item=(2, 3), seed=8)


# ---------------------------------------------------------------------------------------------
# Exact span F1 and the model's spans


def test_exact_f1_equals_a_count_of_item_start_end_type_tuples():
    rng = np.random.default_rng(4)

    def random_spans(n_items):
        rows = set()
        for item in range(n_items):
            for start in rng.choice(12, size=rng.integers(0, 4), replace=False):
                rows.add((item, int(start), int(start) + 1 + int(rng.integers(0, 2) * 0), 0))
        for item, start, end, _ in list(rows):
            rows.discard((item, start, end, 0))
            rows.add((item, start, end, int(rng.integers(0, 3))))
        return sorted(rows)

    predicted, reference = random_spans(60), random_spans(60)
    scores = sb.exact_scores(
        sb.Spans(*(np.array(c) for c in zip(*predicted, strict=True))),
        sb.Spans(*(np.array(c) for c in zip(*reference, strict=True))),
        n_sequences=60,
        n_types=3,
    )
    num, den = scores.num_den(by=np.arange(60), n_groups=60)
    expected = 2 * len(set(predicted) & set(reference)) / (len(predicted) + len(reference))
    assert sb.f1(num.sum(), den.sum()) == pytest.approx(expected)
    for k in range(3):
        p = {s for s in predicted if s[3] == k}
        r = {s for s in reference if s[3] == k}
        assert scores.tp[:, k].sum() == len(p & r)
        assert (scores.n_predicted[:, k].sum(), scores.n_reference[:, k].sum()) == (len(p), len(r))


def test_model_spans_take_the_argmax_per_token_and_join_consecutive_tokens_of_a_type():
    # 7 tokens, columns O, PER, LOC: PER PER O LOC LOC PER O, then a second sequence LOC.
    best = [1, 1, 0, 2, 2, 1, 0, 2]
    probs = np.full((8, 3), 0.1)
    probs[np.arange(8), best] = 0.8
    spans = sb.model_spans(probs, np.array([7, 1]))
    assert list(zip(*spans, strict=True)) == [
        (0, 0, 2, 0),
        (0, 3, 5, 1),
        (0, 5, 6, 0),
        (1, 0, 1, 1),
    ]


# ---------------------------------------------------------------------------------------------
# HLP: leave-one-out consensus, reviews


def hand_made() -> sb.Inputs:
    """Item 0 (5 tokens): A and B mark PER 0-2 and LOC 3-4, C only PER 0-2. Item 1 (4 tokens):
    A marks ORG 1-3, B ORG 1-2. Types PER, LOC, ORG; annotators A, B, C = 0, 1, 2."""
    spans = [(0, 0, 2, 0), (0, 3, 4, 1), (1, 0, 2, 0), (1, 3, 4, 1), (2, 0, 2, 0)]
    spans += [(3, 1, 3, 2), (4, 1, 2, 2)]
    s = np.array(spans)
    return sb.Inputs(
        item_lengths=np.array([5, 4]),
        annotation_item=np.array([0, 0, 0, 1, 1]),
        annotation_annotator=np.array([0, 1, 2, 0, 1]),
        span_annotation=s[:, 0],
        span_start=s[:, 1],
        span_end=s[:, 2],
        span_label=s[:, 3],
        n_types=3,
        n_annotators=3,
        reviewed=np.zeros(2, dtype=bool),
        review=sb.Spans.empty(),
        reviewer_annotator=np.full(2, -1),
    )


def test_hlp_scores_each_annotator_against_the_majority_of_the_others_on_a_hand_made_case():
    report = sb.baselines(hand_made())
    # A against B + C: LOC 3-4 is B's alone, a tie. Settled by B, the reference is PER and
    # LOC: 2 x 2 / (2 + 2); by C, PER alone: 2 x 1 / (2 + 1); each half: 3 / 3.5. B likewise.
    # C against A + B (PER, LOC, no tie): 2 x 1 / (1 + 2).
    # Item 1: A against B and B against A, nothing matches: 0 / (1 + 1) each.
    assert report["hlp"] == pytest.approx(8 / 14)
    assert report["hlp_source"] == "consensus"
    per = {r["annotator_index"]: r["hlp"] for r in report["per_annotator"]}
    assert per == pytest.approx({0: 3 / 5.5, 1: 3 / 5.5, 2: 2 / 3})
    per_type = [t["f1"] for t in report["hlp_consensus"]["per_type"]]
    assert per_type == pytest.approx([1.0, 0.5, 0.0])  # PER 6/6, LOC 2/4, ORG 0/4
    assert report["hlp_consensus"]["n_items"] == 2
    assert report["model"] is None and report["verdict"] is None


def test_hlp_equals_a_brute_force_leave_one_out_over_a_simulated_crowd(crowd):
    report = sb.baselines(inputs_of(crowd))
    expected, per_annotator = brute_hlp(crowd)
    print(f"HLP {report['hlp']:.4f}, 95% {report['hlp_ci']}")
    assert report["hlp"] == pytest.approx(expected)
    for row in report["per_annotator"]:
        assert row["hlp"] == pytest.approx(per_annotator[row["annotator_index"]])
    low, high = report["hlp_ci"]
    assert low < report["hlp"] < high and high - low < 0.1
    # The careful annotator agrees with the others best, the misser and the shifter less.
    hlp = {r["annotator_index"]: r["hlp"] for r in report["per_annotator"]}
    assert hlp[0] > max(hlp[1], hlp[2])


def reviewed_inputs(crowd: Crowd, n_reviewed: int, reviewer: int = -1) -> sb.Inputs:
    n_items = len(crowd.sentences)
    reviewed = np.zeros(n_items, dtype=bool)
    reviewed[:n_reviewed] = True
    return inputs_of(
        crowd,
        reviewed=reviewed,
        review=gold_spans(crowd, items=set(range(n_reviewed))),
        reviewer_annotator=np.where(reviewed, reviewer, -1),
    )


def test_reviews_become_the_hlp_reference_from_30_reviewed_items_not_before(crowd):
    below = sb.baselines(reviewed_inputs(crowd, 29))
    assert below["hlp_source"] == "consensus" and below["hlp_reviews"]["f1"] is None
    assert below["hlp_reviews"]["n_items"] == 29 and not below["hlp_reviews"]["sufficient"]

    report = sb.baselines(reviewed_inputs(crowd, 30))
    pairs = [
        (
            {(i, *s) for s in spans_from_tags(token_tags(crowd.sentences[i].text, spans))},
            gold_set(crowd, i),
        )
        for i, _, spans in crowd.annotations
        if i < 30
    ]
    assert report["hlp_source"] == "reviews"
    assert report["hlp"] == pytest.approx(pooled_f1(pairs))
    assert report["hlp_reviews"]["n_annotations"] == len(pairs)


def test_a_reviewers_own_annotation_is_not_scored_against_their_review(crowd):
    report = sb.baselines(reviewed_inputs(crowd, 40, reviewer=0))
    rows = {r["annotator_index"]: r for r in report["per_annotator"]}
    assert rows[0]["n_reviewed"] == 0
    annotated = Counter(a for i, a, _ in crowd.annotations if i < 40)
    assert rows[1]["n_reviewed"] == annotated[1] and rows[2]["n_reviewed"] == annotated[2]


# ---------------------------------------------------------------------------------------------
# The model against the final spans, the verdict, per type


def test_model_f1_is_against_the_reviews_where_reviewed_and_the_majority_elsewhere(crowd):
    inputs = reviewed_inputs(crowd, 50)
    n_items = len(crowd.sentences)
    gold = gold_spans(crowd)
    report = sb.baselines(
        inputs._replace(predicted=gold, predicted_items=np.ones(n_items, dtype=bool))
    )
    final = brute_final(crowd)
    for i in range(50):
        final[i] = gold_set(crowd, i)
    pairs = [(gold_set(crowd, i), final[i]) for i in final]
    print(f"model (gold) F1 {report['model']['f1']:.4f} 95% {report['model']['ci']}")
    assert report["model"]["f1"] == pytest.approx(pooled_f1(pairs))
    assert report["model"]["n_items"] == n_items
    # The gold beats these annotators against their own majority: above human level.
    verdict = report["verdict"]
    assert verdict["gap"] == pytest.approx(report["hlp"] - report["model"]["f1"])
    assert verdict["gap_ci"][1] < 0 and verdict["reading"] == "above"
    for t, row in enumerate(report["model"]["per_type"]):
        name = TYPES[t]
        kept = [({x for x in p if x[3] == name}, {x for x in r if x[3] == name}) for p, r in pairs]
        assert row["f1"] == pytest.approx(pooled_f1(kept))


def test_a_model_far_worse_than_the_annotators_is_below_human_level(crowd):
    n_items = len(crowd.sentences)
    gold = gold_spans(crowd)
    shifted = gold._replace(end=np.maximum(gold.end - 1, gold.start + 1), start=gold.start)
    wrong = np.arange(gold.n) % 2 == 0  # half the spans lose their last token
    spans = gold._replace(end=np.where(wrong, shifted.end, gold.end))
    report = sb.baselines(
        inputs_of(crowd, predicted=spans, predicted_items=np.ones(n_items, dtype=bool))
    )
    assert report["verdict"]["reading"] == "below" and report["verdict"]["gap_ci"][0] > 0


def test_under_30_compared_items_the_verdict_is_too_few_to_judge():
    small = simulate(29, [CAREFUL, SHIFTER, MISSER], per_item=(3,), seed=2)
    report = sb.baselines(
        inputs_of(small, predicted=gold_spans(small), predicted_items=np.ones(29, dtype=bool))
    )
    verdict = report["verdict"]
    assert (verdict["n"], verdict["min_items"], verdict["reading"]) == (29, 30, "too_few")
    assert verdict["gap_ci"] is not None  # the interval is still shown beside "too few"


# ---------------------------------------------------------------------------------------------
# Slices


def test_slice_rows_hold_n_share_model_f1_hlp_gap_and_potential_gain_per_value(crowd):
    n_items = len(crowd.sentences)
    # Two extra items without annotations join the universe (they count in n and share).
    desk = ["sport" if i % 4 == 0 else "world" for i in range(n_items)] + ["world", "world"]
    dims = [categorical_dimension("desk", desk)]
    item_of = np.r_[np.arange(n_items), -1, -1]
    gold = gold_spans(crowd)
    rows, overall = sb.slice_rows(
        dims,
        inputs_of(crowd, predicted=gold, predicted_items=np.ones(n_items, dtype=bool)),
        item_of=item_of,
        n_universe=n_items + 2,
    )
    final = brute_final(crowd)
    by_item: dict[int, dict] = {}
    for i, a, spans in crowd.annotations:
        by_item.setdefault(i, {})[a] = token_tags(crowd.sentences[i].text, spans)
    for row in rows:
        members = [i for i in range(n_items) if desk[i] == row["value"]]
        n = len(members) + (2 if row["value"] == "world" else 0)
        model = pooled_f1([(gold_set(crowd, i), final[i]) for i in members])
        hlp = brute_hlp(crowd, items=set(members))[0]
        assert (row["n"], row["n_labeled"]) == (n, len(members))
        assert row["share"] == pytest.approx(n / (n_items + 2))
        assert row["model_f1"] == pytest.approx(model)
        assert row["hlp"] == pytest.approx(hlp)
        assert row["gap"] == pytest.approx(hlp - model)
        assert row["potential_gain"] == pytest.approx((hlp - model) * row["share"])
        assert row["reliable"] and row["gap_ci"][0] <= row["gap"] <= row["gap_ci"][1]
        assert row["model_ci"][0] <= row["model_f1"] <= row["model_ci"][1]
    gains = [r["potential_gain"] for r in rows]
    assert gains == sorted(gains, reverse=True)  # the largest gain first
    assert overall["hlp"] == pytest.approx(brute_hlp(crowd)[0])


def test_a_slice_under_30_labeled_items_is_too_small_to_judge_and_ranks_last(crowd):
    n_items = len(crowd.sentences)
    rare = ["rare" if i < 29 else "common" for i in range(n_items)]
    rows, _ = sb.slice_rows(
        [categorical_dimension("source", rare)],
        inputs_of(crowd, predicted=gold_spans(crowd), predicted_items=np.ones(n_items, bool)),
        item_of=np.arange(n_items),
        n_universe=n_items,
    )
    assert [(r["value"], r["reliable"]) for r in rows] == [("common", True), ("rare", False)]
    small = rows[1]
    assert small["n_labeled"] == 29 and small["gap_ci"] is None
    assert small["gap"] is not None and small["model_ci"] is not None  # shown, not judged


# ---------------------------------------------------------------------------------------------
# The jobs end to end (database)


def token_probs(text: str, spans, rng: random.Random, *, swap: float) -> np.ndarray:
    """A model's (n_tokens, 1 + n_types) probabilities: the gold spans' types, each entity
    given another type with probability `swap`."""
    bounds = token_bounds(text)
    probs = np.full((len(bounds), 1 + len(TYPES)), 0.02)
    probs[:, 0] = 0.9
    for start, end, kind in spans:
        column = 1 + TYPES.index(kind)
        if rng.random() < swap:
            column = 1 + (TYPES.index(kind) + 1) % len(TYPES)
        for t, (s, e) in enumerate(bounds):
            if s >= start and e <= end:
                probs[t, 0], probs[t, column] = 0.02, 0.9
    return probs


def demo_project(manager, n=240, *, model=True):
    """n demo sentences with a `desk` field, three annotators (careful, boundary shifter,
    misser) on every item, and token predictions named builtin."""
    crowd = simulate(n, [CAREFUL, SHIFTER, MISSER], per_item=(3,), seed=12)
    project = span_project(manager)
    items = make_items(
        project,
        [s.text for s in crowd.sentences],
        prefix="s",
        metadata=lambda i: {"desk": "sport" if i % 3 == 0 else "world"},
    )
    users = [add_member(project, name) for name in ("cara", "shay", "milo")]
    make_annotations(project, [(items[i], users[a], s) for i, a, s in crowd.annotations])
    rng = random.Random(1)
    probs = [token_probs(s.text, s.spans, rng, swap=0.1) for s in crowd.sentences]
    if model:
        token_predictions_store(
            project=project,
            model="builtin",
            classes=["O", *TYPES],
            item_ids=np.array([item.pk for item in items]),
            probs=probs,
        )
    return project, crowd, probs


def run(project, kind: str, params=None) -> AnalysisRun:
    made = AnalysisRun.objects.create(project=project, kind=kind, params=params or {})
    RUN_TASKS[kind](made.pk)
    made.refresh_from_db()
    assert made.status == "succeeded", made.error
    return made


def model_sets(crowd: Crowd, probs) -> dict[int, set]:
    """The model's spans per item, decoded in Python: argmax per token, runs of one type."""
    out = {}
    for i, matrix in enumerate(probs):
        names = ["O", *TYPES]
        best = [names[c] for c in matrix.argmax(axis=1)]
        tags = ["O" if b == "O" else f"I-{b}" for b in best]
        out[i] = {(i, *s) for s in spans_from_tags(tags)}
    return out


@pytest.mark.django_db
def test_the_baselines_job_of_a_span_project_scores_hlp_and_the_uploaded_model(manager):
    project, crowd, probs = demo_project(manager)
    done = run(project, "baselines")
    result = done.result
    final = brute_final(crowd)
    predicted = model_sets(crowd, probs)
    model = pooled_f1([(predicted[i], final[i]) for i in final])
    hlp, per_annotator = brute_hlp(crowd)
    print(
        f"demo: model F1 {result['model']['f1']:.3f} {result['model']['ci']}, "
        f"HLP {result['hlp']:.3f} {result['hlp_ci']}, verdict {result['verdict']}"
    )
    assert result["task"] == "spans" and result["model_name"] == "builtin"
    assert result["model"]["f1"] == pytest.approx(model)
    assert result["hlp"] == pytest.approx(hlp) and result["hlp_source"] == "consensus"
    assert result["gap"] == pytest.approx(hlp - model)
    assert result["verdict"]["n"] == 240 and result["verdict"]["reading"] == "above"
    low, high = result["verdict"]["gap_ci"]
    assert low <= result["gap"] <= high
    assert [t["label"] for t in result["per_type"]] == TYPES
    assert all(t["model_ci"][0] <= t["model"] <= t["model_ci"][1] for t in result["per_type"])
    names = {r["annotator"]: r["hlp"] for r in result["per_annotator"]}
    assert names == pytest.approx(
        {n: per_annotator[a] for a, n in enumerate(["cara", "shay", "milo"])}
    )
    scores = dict(
        AnnotatorScore.objects.filter(run=done).values_list("annotator__username", "agreement")
    )
    assert scores == pytest.approx(names)
    assert result["n_items"] == 240 and result["n_annotations"] == 720


@pytest.mark.django_db
def test_reviews_on_a_span_project_set_the_final_spans_and_from_30_the_hlp(manager):
    project, crowd, probs = demo_project(manager, n=120)
    items = list(project.items.order_by("id"))
    types = dict(project.labels.values_list("name", "id"))
    for i in range(30):
        Review.objects.create(
            item=items[i],
            reviewer=manager,
            spans=[[s, e, types[t]] for s, e, t in crowd.sentences[i].spans],
        )
    result = run(project, "baselines").result
    final = brute_final(crowd)
    for i in range(30):
        final[i] = gold_set(crowd, i)
    predicted = model_sets(crowd, probs)
    assert result["hlp_source"] == "reviews" and result["hlp_reviews"]["n_items"] == 30
    assert result["model"]["f1"] == pytest.approx(
        pooled_f1([(predicted[i], final[i]) for i in final])
    )
    assert result["n_reviewed"] == 30


@pytest.mark.django_db
def test_without_a_token_model_the_job_reports_hlp_and_says_how_to_get_one(manager):
    project, crowd, _ = demo_project(manager, n=60, model=False)
    result = run(project, "baselines").result
    assert result["hlp"] == pytest.approx(brute_hlp(crowd)[0])
    assert result["model"] is None and result["verdict"] is None
    assert "Run Find label issues to train the built-in model" in result["model_note"]
    named = run(project, "baselines", {"model": "crf-v2"}).result
    assert named["model_note"] == "The project has no token predictions named 'crf-v2'."


@pytest.mark.django_db
def test_the_slices_job_of_a_span_project_reports_every_desk_and_text_length_bin(manager):
    project, crowd, probs = demo_project(manager)
    result = run(project, "slices").result
    final = brute_final(crowd)
    predicted = model_sets(crowd, probs)
    desk = {r["value"]: r for r in result["rows"] if r["field"] == "desk"}
    sport = [i for i in range(240) if i % 3 == 0]
    assert desk["sport"]["n"] == 80 and desk["sport"]["share"] == pytest.approx(1 / 3)
    assert desk["sport"]["model_f1"] == pytest.approx(
        pooled_f1([(predicted[i], final[i]) for i in sport])
    )
    assert {r["field"] for r in result["rows"]} == {"desk", "text_length"}
    assert result["overall"]["hlp"] == pytest.approx(brute_hlp(crowd)[0])
    assert result["min_reliable"] == 30 and result["n_labeled"] == 240
    assert all(r["reliable"] for r in result["rows"])


@pytest.mark.django_db
def test_a_span_project_without_annotations_finishes_both_jobs_with_empty_figures(manager):
    project = span_project(manager)
    make_items(project, ["Ada Lovelace met Alan Turing in London ."], metadata={"desk": "world"})
    result = run(project, "baselines").result
    assert (result["hlp"], result["model"], result["verdict"]) == (None, None, None)
    assert result["n_items"] == 0 and "No token model yet" in result["model_note"]
    slices = run(project, "slices").result
    assert slices["n_labeled"] == 0 and slices["overall"]["hlp"] is None
    assert all(r["hlp"] is None and not r["reliable"] for r in slices["rows"])
