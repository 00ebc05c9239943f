"""Annotations become arrays without losing or duplicating any."""

import numpy as np
import pytest
from django.utils import timezone

from analysis.loaders import annotation_rows, token_predictions
from analysis.services.predictions import token_predictions_store
from labeling.models import Annotation, Guideline
from tests.factories import make_items, make_project, simulated_crowd

pytestmark = pytest.mark.django_db


def test_crowd_answers_load_as_an_items_by_workers_matrix(manager):
    project = make_project(manager, labels=("0", "1", "2", "3"))
    workers = {f"w{n}": 0.5 + 0.04 * n for n in range(12)}
    crowd = simulated_crowd(project, n_items=200, workers=workers, per_item=5, seed=3)
    rows = annotation_rows(project=project)
    assert (rows.n_items, rows.n_annotators, len(rows.label_index)) == (200, 12, 1000)
    matrix = rows.matrix()
    assert (matrix >= 0).sum() == 1000
    assert set(np.unique(matrix[matrix >= 0])) == {0, 1, 2, 3}
    # Items and workers in the order they were made: the crowd's own matrix, cell for cell.
    assert np.array_equal(matrix, crowd.matrix())


def test_newest_version_wins_when_an_annotator_relabeled(manager):
    project = make_project(manager, labels=("a", "b"))
    v1 = project.current_guideline()
    v2 = Guideline.objects.create(
        project=project, version=2, published_at=timezone.now(), changelog="sharper"
    )
    item = project.items.create(external_id="x", data={"text": "x"})
    a, b = project.labels.all()
    Annotation.objects.create(project=project, item=item, annotator=manager, guideline=v1, label=a)
    Annotation.objects.create(project=project, item=item, annotator=manager, guideline=v2, label=b)
    assert annotation_rows(project=project).matrix().tolist() == [[1]]
    assert annotation_rows(project=project, version=1).matrix().tolist() == [[0]]


@pytest.mark.django_db
def test_token_predictions_come_back_per_item_in_the_projects_class_order(manager):
    project = make_project(manager, labels=("PER", "LOC"), task_type="spans")
    items = make_items(project, ["Ada went to Lyon .", "Hi"])
    rng = np.random.default_rng(0)
    stored = [rng.dirichlet(np.ones(3), size=n) for n in (5, 1)]  # columns LOC, O, PER
    token_predictions_store(
        project=project,
        model="tagger",
        classes=["LOC", "O", "PER"],
        item_ids=np.array([item.pk for item in reversed(items)]),
        probs=list(reversed(stored)),
    )

    loaded = token_predictions(project=project, model="tagger")

    assert loaded.item_ids.tolist() == [item.pk for item in items]
    assert loaded.offsets.tolist() == [0, 5, 6]
    np.testing.assert_array_equal(loaded.of(0), stored[0][:, [1, 2, 0]])
    np.testing.assert_array_equal(loaded.of(1), stored[1][:, [1, 2, 0]])
