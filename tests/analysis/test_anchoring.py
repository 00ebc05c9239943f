"""Anchoring: what the shown suggestions did to the labels, in the agreement report."""

from typing import NamedTuple

import krippendorff
import numpy as np
import pytest

from analysis.metrics import anchoring
from analysis.services.agreement import anchoring_report
from labeling.models import Annotation, GoldLabel, Item, Review
from tests.analysis.test_agreement_job import run_to_the_end
from tests.factories import add_member, crowd_accounts, make_items, make_project

CLASSES = ("a", "b", "c")
ACCURACY = 0.8  # each annotator's own accuracy, errors spread evenly over the other classes
FOLLOW = 0.41  # the share of suggestions an annotator takes whatever they think
MODEL_WRONG = 0.25  # the share of items whose suggestion is wrong
SHOWN = 0.5  # the share of (item, annotator) pairs shown the suggestion


class Simulation(NamedTuple):
    truth: np.ndarray  # (n_items,) true class
    suggestion: np.ndarray  # (n_items,) suggested class
    item: np.ndarray  # (n,) per annotation
    annotator: np.ndarray
    label: np.ndarray
    shown: np.ndarray  # suggested class shown, -1 none


def simulate(n_items: int, n_annotators: int = 3, *, seed: int, follow=FOLLOW, shown=SHOWN):
    """Annotators of known accuracy who take the shown suggestion at rate `follow` (and
    otherwise answer by their own judgement), on a model wrong on MODEL_WRONG of the items."""
    rng = np.random.default_rng(seed)
    k = len(CLASSES)
    truth = rng.integers(0, k, n_items)
    wrong = rng.random(n_items) < MODEL_WRONG
    suggestion = np.where(wrong, (truth + rng.integers(1, k, n_items)) % k, truth)
    item = np.repeat(np.arange(n_items), n_annotators)
    annotator = np.tile(np.arange(n_annotators), n_items)
    own_right = rng.random(len(item)) < ACCURACY
    own = np.where(own_right, truth[item], (truth[item] + rng.integers(1, k, len(item))) % k)
    is_shown = rng.random(len(item)) < shown
    takes = is_shown & (rng.random(len(item)) < follow)
    label = np.where(takes, suggestion[item], own)
    return Simulation(
        truth, suggestion, item, annotator, label, np.where(is_shown, suggestion[item], -1)
    )


def store(project, sim: Simulation, *, reference: str = "half gold, half reviewed") -> None:
    """The simulation's items and annotations in bulk, each annotation recording what it was
    shown; the truth as gold labels on even items and reviews on odd ones (or none)."""
    items = make_items(project, len(sim.truth))
    item_ids = [i.pk for i in items]
    class_ids = dict(project.labels.values_list("name", "id"))
    ids = [class_ids[name] for name in CLASSES]
    users = crowd_accounts([f"sim{n}" for n in range(int(sim.annotator.max()) + 1)])
    user_ids = [users[f"sim{n}"] for n in range(len(users))]
    guideline = project.current_guideline()
    Annotation.objects.bulk_create(
        (
            Annotation(
                project=project,
                item_id=item_ids[i],
                annotator_id=user_ids[a],
                guideline=guideline,
                label_id=ids[label],
                suggestion_model="sim" if shown >= 0 else "",
                suggestion_label_id=ids[shown] if shown >= 0 else None,
            )
            for i, a, label, shown in zip(
                sim.item.tolist(), sim.annotator.tolist(), sim.label.tolist(),
                sim.shown.tolist(), strict=True,
            )
        ),
        batch_size=5000,
    )  # fmt: skip
    if reference == "none":
        return
    even = range(0, len(items), 2)
    Item.objects.filter(pk__in=[item_ids[i] for i in even]).update(is_gold=True)
    GoldLabel.objects.bulk_create(
        GoldLabel(item_id=item_ids[i], label_id=ids[sim.truth[i]]) for i in even
    )
    Review.objects.bulk_create(
        Review(item_id=item_ids[i], label_id=ids[sim.truth[i]]) for i in range(1, len(items), 2)
    )


def expected_figures(sim: Simulation) -> dict:
    """The figures computed again with plain numpy on the simulation's own arrays."""
    shown, label, truth = sim.shown >= 0, sim.label, sim.truth[sim.item]
    wrong_shown = shown & (sim.shown != truth)
    # An item's suggestion is known from the annotations that were shown it.
    known = np.zeros(len(sim.truth), dtype=bool)
    known[sim.item[shown]] = True
    alone_on_wrong = ~shown & known[sim.item] & (sim.suggestion[sim.item] != truth)
    followed = (label[wrong_shown] == sim.shown[wrong_shown]).mean()
    chance = (label[alone_on_wrong] == sim.suggestion[sim.item][alone_on_wrong]).mean()
    return {
        "acceptance": (label[shown] == sim.shown[shown]).mean(),
        "followed_wrong": followed,
        "by_chance": chance,
        "anchoring": (followed - chance) / (1 - chance),
        "right": (label[shown & ~wrong_shown] == truth[shown & ~wrong_shown]).mean(),
        "wrong": (label[wrong_shown] == truth[wrong_shown]).mean(),
        "none": (label[~shown] == truth[~shown]).mean(),
    }


def group_alpha(sim: Simulation, mask: np.ndarray) -> float:
    """Krippendorff's alpha (the krippendorff package) of the annotations in `mask`."""
    matrix = np.full((int(sim.annotator.max()) + 1, len(sim.truth)), np.nan)
    matrix[sim.annotator[mask], sim.item[mask]] = sim.label[mask]
    return krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_job_recovers_the_known_rate_of_following_wrong_suggestions(
    manager, api_client_for, celery_worker
):
    project = make_project(manager, labels=CLASSES, overlap=3, name="anchored crowd")
    sim = simulate(20_000, seed=7)
    store(project, sim)
    client = api_client_for(add_member(project, "rae", "reviewer"))

    body = run_to_the_end(client, project, celery_worker)

    assert body["status"] == "succeeded", body["error"]
    block = body["result"]["anchoring"]
    k = len(CLASSES)
    # What the design puts in, recovered within 0.02 ...
    assert block["anchoring"]["rate"] == pytest.approx(FOLLOW, abs=0.02)
    low, high = block["anchoring"]["ci"]
    assert low < FOLLOW < high
    assert block["suggestion_accuracy"]["rate"] == pytest.approx(1 - MODEL_WRONG, abs=0.02)
    by_chance = (1 - ACCURACY) / (k - 1)
    assert block["followed_wrong_by_chance"]["rate"] == pytest.approx(by_chance, abs=0.02)
    followed = FOLLOW + (1 - FOLLOW) * by_chance  # taken, or the annotator's own same error
    assert block["followed_wrong"]["rate"] == pytest.approx(followed, abs=0.02)
    accuracy = block["accuracy"]
    assert accuracy["no_suggestion"]["rate"] == pytest.approx(ACCURACY, abs=0.02)
    right = FOLLOW + (1 - FOLLOW) * ACCURACY
    assert accuracy["suggestion_right"]["rate"] == pytest.approx(right, abs=0.02)
    assert accuracy["suggestion_wrong"]["rate"] == pytest.approx((1 - FOLLOW) * ACCURACY, abs=0.02)
    # ... and every figure exactly as plain numpy computes it on the same arrays.
    expected = expected_figures(sim)
    assert block["acceptance"]["rate"] == pytest.approx(expected["acceptance"], abs=1e-12)
    assert block["followed_wrong"]["rate"] == pytest.approx(expected["followed_wrong"], abs=1e-12)
    assert block["followed_wrong_by_chance"]["rate"] == pytest.approx(
        expected["by_chance"], abs=1e-12
    )
    assert block["anchoring"]["rate"] == pytest.approx(expected["anchoring"], abs=1e-12)
    assert accuracy["suggestion_right"]["rate"] == pytest.approx(expected["right"], abs=1e-12)
    assert accuracy["suggestion_wrong"]["rate"] == pytest.approx(expected["wrong"], abs=1e-12)
    assert accuracy["no_suggestion"]["rate"] == pytest.approx(expected["none"], abs=1e-12)
    # Agreement: copying one answer raises it among the annotators shown the suggestion.
    shown = sim.shown >= 0
    groups = block["agreement"]
    assert groups["with_suggestion"]["alpha"] == pytest.approx(group_alpha(sim, shown), abs=1e-9)
    assert groups["without_suggestion"]["alpha"] == pytest.approx(
        group_alpha(sim, ~shown), abs=1e-9
    )
    assert groups["with_suggestion"]["alpha"] > groups["without_suggestion"]["alpha"]
    assert block["reference"] == {"gold": 10_000, "reviewed": 10_000}
    followed_percent = f"{100 * expected['followed_wrong']:.0f}%"
    assert block["verdict"].startswith(
        f"Annotators followed a wrong suggestion in {followed_percent} of cases"
    )


@pytest.mark.django_db
def test_no_suggestion_shown_means_no_anchoring_block(manager):
    project = make_project(manager, labels=CLASSES)
    sim = simulate(50, seed=1, shown=0.0)
    store(project, sim)
    assert anchoring_report(project=project, version=None) is None


@pytest.mark.django_db
def test_without_gold_or_reviewed_labels_anchoring_is_not_measurable(manager):
    project = make_project(manager, labels=CLASSES)
    sim = simulate(300, seed=2)
    store(project, sim, reference="none")
    block = anchoring_report(project=project, version=None)
    assert block["measurable"] is False and block["followed_wrong"] is None
    assert block["acceptance"]["rate"] == pytest.approx(expected_figures(sim)["acceptance"])
    assert block["verdict"].startswith("Not measurable: no item shown a suggestion has a gold")


@pytest.mark.django_db
def test_too_few_wrong_suggestions_are_too_few_items_to_judge(manager):
    project = make_project(manager, labels=CLASSES)
    sim = simulate(20, seed=3)  # about 8 annotations shown a wrong suggestion
    store(project, sim)
    block = anchoring_report(project=project, version=None)
    assert block["measurable"] and not block["enough"]
    assert 0 < block["followed_wrong"]["n"] < anchoring.MIN_WRONG_SHOWN
    assert block["verdict"].startswith("Too few items to judge:")


def test_agreement_groups_are_left_out_when_one_side_is_empty():
    # Every annotation was shown the suggestion: nothing to compare agreement with.
    result = anchoring.report(
        item=np.array([0, 0, 1, 1]), label=np.array([0, 0, 1, 0]),
        shown=np.array([0, 0, 1, 1]), reference=np.array([0, 0]), n_classes=2,
    )  # fmt: skip
    assert result["agreement"] is None
    assert result["acceptance"]["rate"] == 0.75
    # Item 1's suggestion (1) is wrong (the truth is 0): one of its two annotators took it.
    assert result["followed_wrong"]["rate"] == 0.5 and result["followed_wrong"]["n"] == 2
    assert result["suggestion_accuracy"]["rate"] == 0.5
    assert result["anchoring"] is None  # no one was left alone on a wrong suggestion
