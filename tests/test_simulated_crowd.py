"""The simulated crowd (tests/factories.py) that many tests stand on: its workers really have
the confusion they were given, its truth is the truth they answered, and a seed repeats it."""

import numpy as np
import pytest

from labeling.models import Annotation, Item, Profile
from tests.factories import add_member, confusion_matrix, simulate_crowd, simulated_crowd

CLASSES = ("cat", "dog", "bird")
# A worker who mistakes birds for cats; two described by their accuracy alone.
CONFUSED = [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.4, 0.0, 0.6]]
WORKERS = {"careful": 0.95, "confused": CONFUSED, "sloppy": 0.55, "guesser": 1 / 3}


def empirical_confusion(crowd, worker: str) -> tuple[np.ndarray, np.ndarray]:
    """(k, k) share of each answer per true class, and the number of answers per true class."""
    column = crowd.matrix()[:, crowd.workers.index(worker)]
    truth = crowd.true_classes()
    answered = column >= 0
    k = len(crowd.classes)
    counts = np.zeros((k, k))
    np.add.at(counts, (truth[answered], column[answered]), 1)
    per_class = counts.sum(axis=1)
    return counts / per_class[:, None], per_class


def test_each_worker_answers_with_the_confusion_they_were_given():
    crowd = simulate_crowd(classes=CLASSES, n_items=6000, workers=WORKERS, per_item=3, seed=1)
    for worker, given in WORKERS.items():
        expected = confusion_matrix(given, 3)
        measured, per_class = empirical_confusion(crowd, worker)
        assert per_class.min() > 1000  # enough answers per true class for the tolerance
        # A cell's binomial standard error is at most 0.013 here; 0.05 is almost four of them.
        assert np.abs(measured - expected).max() < 0.05, (worker, measured.round(3))
        accuracy = (measured.diagonal() * per_class).sum() / per_class.sum()
        assert accuracy == pytest.approx(np.trace(expected) / 3, abs=0.03), worker


def test_an_accuracy_spreads_the_errors_evenly_and_a_bad_matrix_is_refused():
    expected = [[0.7, 0.15, 0.15], [0.15, 0.7, 0.15], [0.15, 0.15, 0.7]]
    assert np.allclose(confusion_matrix(0.7, 3), expected)
    with pytest.raises(ValueError, match="summing to 1"):
        confusion_matrix([[0.5, 0.4], [0.0, 1.0]], 2)
    with pytest.raises(ValueError, match="2x2"):
        confusion_matrix(CONFUSED, 2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        confusion_matrix(1.2, 2)


def test_each_item_gets_per_item_distinct_workers_and_the_truth_follows_the_prior():
    crowd = simulate_crowd(
        classes=CLASSES, n_items=3000, workers=WORKERS, per_item=2, seed=2, prior=[0.6, 0.3, 0.1]
    )
    matrix = crowd.matrix()
    assert ((matrix >= 0).sum(axis=1) == 2).all()
    assert len(crowd.answers) == len(set((q, w) for q, w, _ in crowd.answers)) == 6000
    # Workers are drawn evenly: each answers about half the items.
    assert (np.abs((matrix >= 0).mean(axis=0) - 0.5) < 0.05).all()
    shares = np.bincount(crowd.true_classes(), minlength=3) / 3000
    assert shares == pytest.approx([0.6, 0.3, 0.1], abs=0.03)
    everyone = simulate_crowd(classes=CLASSES, n_items=10, workers=WORKERS, seed=2)
    assert ((everyone.matrix() >= 0).sum(axis=1) == len(WORKERS)).all()


def test_the_same_seed_gives_the_same_crowd_and_another_seed_another():
    first = simulate_crowd(classes=CLASSES, n_items=200, workers=WORKERS, per_item=3, seed=7)
    again = simulate_crowd(classes=CLASSES, n_items=200, workers=WORKERS, per_item=3, seed=7)
    other = simulate_crowd(classes=CLASSES, n_items=200, workers=WORKERS, per_item=3, seed=8)
    assert (first.truth, first.answers) == (again.truth, again.answers)
    assert first.answers != other.answers


def test_answers_file_has_one_row_per_answer():
    crowd = simulate_crowd(classes=CLASSES, n_items=5, workers=WORKERS, per_item=2, seed=3)
    lines = crowd.answers_csv().decode().splitlines()
    assert lines[0] == "external_id,annotator,label"
    assert lines[1:] == [",".join(answer) for answer in crowd.answers]
    assert crowd.answers_csv(("question", "worker", "answer")).startswith(b"question,worker,")


@pytest.mark.django_db
def test_a_stored_crowd_is_exactly_its_answers_by_external_accounts(manager, project):
    member = add_member(project, "careful")  # an existing account answers as itself
    crowd = simulated_crowd(
        project, n_items=40, workers={"careful": 0.9, "w2": 0.7, "w3": 0.6}, per_item=2, seed=5
    )
    stored = sorted(
        Annotation.objects.filter(project=project).values_list(
            "item__external_id", "annotator__username", "label__name"
        )
    )
    assert stored == sorted(crowd.answers)
    assert list(project.items.order_by("id").values_list("external_id", flat=True)) == list(
        crowd.truth
    )
    assert project.items.get(external_id="q3").data == {"text": "question 3"}
    assert set(Annotation.objects.values_list("guideline__version", flat=True)) == {1}
    # The queue sees every item as done by two people, as after an import.
    assert set(Item.objects.filter(project=project).values_list("done_count", flat=True)) == {2}
    external = Profile.objects.filter(is_external=True, user__is_active=False)
    assert sorted(external.values_list("user__username", flat=True)) == ["w2", "w3"]
    member.refresh_from_db()
    assert member.is_active and not Profile.objects.filter(user=member).exists()
