"""Annotations become arrays without losing or duplicating any."""

import numpy as np
import pytest
from django.utils import timezone

from analysis.loaders import annotation_rows
from labeling.models import Annotation, Guideline
from tests.factories import load_crowd_answers, make_project

pytestmark = pytest.mark.django_db


def test_dog_answers_load_as_an_items_by_workers_matrix(make_user, crowd_data):
    project = make_project(make_user(), labels=("0", "1", "2", "3"))
    load_crowd_answers(project, crowd_data / "dog")
    rows = annotation_rows(project=project)
    assert (rows.n_items, rows.n_annotators, len(rows.label_index)) == (807, 109, 8070)
    matrix = rows.matrix()
    assert (matrix >= 0).sum() == 8070
    assert set(np.unique(matrix[matrix >= 0])) == {0, 1, 2, 3}


def test_newest_version_wins_when_an_annotator_relabeled(make_user):
    manager = make_user()
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
