"""Human-level performance: each annotator against the others, and against reviews."""

import numpy as np
import pytest

from analysis.metrics.baselines import (
    MIN_REVIEWED,
    baselines,
    leave_one_out,
    majority_class_baseline,
    model_accuracy,
)
from analysis.models import AnalysisRun, AnnotatorScore
from analysis.services.baselines import baselines_job
from analysis.services.predictions import predictions_store
from analysis.services.run_recording import analysis_run
from labeling.models import Review
from tests.factories import add_member, make_annotations, make_items, make_project

# Annotators A, B, C (columns), classes 0/1/2, -1 = not labeled. Hand-checked credits:
#   i0: 0 0 0   -> 1, 1, 1        (the other two agree with each)
#   i1: 0 0 1   -> .5, .5, 0      (A's others are {0, 1}: a tie, half credit)
#   i2: 1 2 -   -> 0, 0
#   i3: 2 - -   -> no reference   (nobody else labeled it)
#   i4: 1 1 2   -> .5, .5, 0
MATRIX = np.array([[0, 0, 0], [0, 0, 1], [1, 2, -1], [2, -1, -1], [1, 1, 2]])


def long_form(matrix):
    items, annotators = np.nonzero(matrix >= 0)
    return items, annotators, matrix[items, annotators]


def test_leave_one_out_hlp_matches_the_hand_checked_matrix():
    items, annotators, labels = long_form(MATRIX)
    report = baselines(items, annotators, labels, n_items=5, n_annotators=3, n_classes=3)
    assert report["hlp_source"] == "consensus"
    assert report["hlp"] == pytest.approx(5 / 11)
    assert report["hlp_consensus"]["n"] == 11
    # Reference class 0 carries weight 5 (4 credited), class 1 weight 4 (1), class 2 weight 2 (0).
    assert report["hlp_consensus"]["per_class"] == pytest.approx([0.8, 0.25, 0.0])
    per = {row["annotator_index"]: row for row in report["per_annotator"]}
    assert (per[0]["n"], per[0]["n_shared"], per[0]["hlp"]) == (5, 4, pytest.approx(0.5))
    assert (per[1]["n"], per[1]["n_shared"], per[1]["hlp"]) == (4, 4, pytest.approx(0.5))
    assert (per[2]["n"], per[2]["n_shared"], per[2]["hlp"]) == (3, 3, pytest.approx(1 / 3))


def test_own_vote_never_counts_as_its_reference():
    # Two annotators who always disagree: with their own vote counted each would score 0.5+.
    matrix = np.array([[0, 1], [1, 0], [0, 1]])
    items, annotators, labels = long_form(matrix)
    loo = leave_one_out(items, labels, n_items=3, n_classes=2)
    assert loo.accuracy == 0.0
    assert loo.reference.tolist() == [1, 0, 0, 1, 1, 0]


def reviewed_case(n_reviewed):
    """A agrees with the review on 75% of items, B on 90%; C reviews and also annotates."""
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, n_reviewed)
    a = truth.copy()
    a[: int(0.25 * n_reviewed)] ^= 1
    b = truth.copy()
    b[-int(0.1 * n_reviewed) :] ^= 1
    matrix = np.column_stack([a, b, truth ^ 1])  # C's annotations all wrong: must not count
    review = truth
    reviewer = np.full(n_reviewed, 2)
    return matrix, review, reviewer


def test_hlp_against_reviews_needs_thirty_reviewed_items():
    matrix, review, reviewer = reviewed_case(40)
    items, annotators, labels = long_form(matrix)
    report = baselines(
        items, annotators, labels, n_items=40, n_annotators=3, n_classes=2,
        review=review, reviewer_annotator=reviewer,
    )  # fmt: skip
    assert report["hlp_source"] == "reviews"
    # 30 + 36 correct of 80 scored annotations; C's own annotations are left out.
    assert report["hlp"] == pytest.approx(66 / 80)
    assert report["hlp_reviews"]["n_items"] == 40
    assert report["hlp_reviews"]["n_annotations"] == 80
    per = {row["annotator_index"]: row for row in report["per_annotator"]}
    assert per[0]["hlp_reviews"] == pytest.approx(0.75)
    assert per[1]["hlp_reviews"] == pytest.approx(0.9)
    assert per[2]["n_reviewed"] == 0 and per[2]["hlp_reviews"] is None

    matrix, review, reviewer = reviewed_case(MIN_REVIEWED - 1)
    items, annotators, labels = long_form(matrix)
    report = baselines(
        items, annotators, labels, n_items=MIN_REVIEWED - 1, n_annotators=3, n_classes=2,
        review=review, reviewer_annotator=reviewer,
    )  # fmt: skip
    assert report["hlp_source"] == "consensus"
    assert report["hlp_reviews"]["accuracy"] is None


def test_majority_class_and_model_accuracy_against_final_labels():
    final = np.array([1, 1, 1, 0, -1])
    assert majority_class_baseline(final, 2) == {"accuracy": 0.75, "label_index": 1, "n": 4}
    probs = np.array([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6], [0.7, 0.3], [0.5, 0.5]])
    probs[2] = np.nan  # no prediction for item 2
    result = model_accuracy(probs, final)
    assert result["n"] == 3  # item 4 has no final label, item 2 no prediction
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["confusion"] == [[1, 0], [1, 1]]


@pytest.mark.django_db
def test_baselines_job_says_when_there_is_no_model_then_uses_uploaded_predictions(manager):
    project = make_project(manager, labels=("neg", "pos"))
    a, b, c = (add_member(project, name) for name in ("ann-a", "ann-b", "ann-c"))
    neg, pos = project.labels.all()
    items = make_items(project, ["x" * i for i in range(5)], prefix="i")
    cls = {0: "neg", 1: "pos", 2: "pos"}
    for j, user in enumerate((a, b, c)):
        make_annotations(
            project,
            (
                (item, user, cls[int(MATRIX[i, j])])
                for i, item in enumerate(items)
                if MATRIX[i, j] >= 0
            ),
            lead_time_ms=1000 * (j + 1),
        )

    run = AnalysisRun.objects.create(project=project, kind="baselines", params={})
    with analysis_run(run.pk) as recorder:
        baselines_job(recorder)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.result["model"] is None
    assert "label-issues job" in run.result["model_note"]
    # Classes 1 and 2 of MATRIX are both "pos" here, so i2 and i4 become agreements:
    # credits 3 (i0) + 1 (i1) + 2 (i2) + 3 (i4) of 11 scored annotations.
    assert run.result["hlp"] == pytest.approx(9 / 11)
    per = {row["annotator"]: row for row in run.result["per_annotator"]}
    assert per["ann-c"]["seconds_per_item"] == 3.0
    assert AnnotatorScore.objects.filter(run=run).count() == 3

    Review.objects.create(item=items[1], reviewer=manager, label=neg)
    predictions_store(
        project=project,
        model="uploaded",
        classes=["neg", "pos"],
        item_ids=np.array([it.pk for it in items]),
        probs=np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.3, 0.7], [0.6, 0.4]]),
    )
    run = AnalysisRun.objects.create(
        project=project, kind="baselines", params={"model": "uploaded"}
    )
    with analysis_run(run.pk) as recorder:
        baselines_job(recorder)
    run.refresh_from_db()
    # Final labels: neg, neg (review), pos, pos, pos; predictions neg, neg, pos, pos, neg.
    assert run.result["model"] == pytest.approx(4 / 5)
    assert run.result["majority_class"] == pytest.approx(3 / 5)
    assert run.result["majority_class_label"] == "pos"
    assert run.result["gap"] == pytest.approx(9 / 11 - 4 / 5)
