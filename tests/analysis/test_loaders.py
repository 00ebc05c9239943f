"""Annotations become arrays without losing or duplicating any."""

import numpy as np
import pytest
from django.utils import timezone

from analysis.loaders import annotation_rows
from labeling.models import Annotation, Guideline
from tests.factories import make_project, simulated_crowd

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
