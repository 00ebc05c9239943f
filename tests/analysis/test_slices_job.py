"""The slices job runs on a real Celery worker and stores the hand-checked slice table."""

import numpy as np
import pytest

from analysis.kinds import run_start
from analysis.models import AnalysisRun
from analysis.services.predictions import predictions_store
from labeling.models import Review
from tests.analysis.test_potential_gain import FIRST, PREDICTED, REVIEW, SECOND, SOURCE
from tests.conftest import wait_for
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_slices_job_on_the_worker_ranks_slices_by_potential_gain(celery_worker, manager):
    project = make_project(manager, labels=("neg", "pos"))
    first, second = add_member(project, "first"), add_member(project, "second")
    classes = list(project.labels.all())
    items = make_items(
        project,
        ["t" * (i + 1) for i in range(len(SOURCE))],
        prefix="i",
        metadata=lambda i: {"source": SOURCE[i]},
    )
    make_annotations(
        project,
        (
            (item, user, classes[int(labels[i])].name)
            for i, item in enumerate(items)
            for user, labels in ((first, FIRST), (second, SECOND))
        ),
    )
    for i in np.flatnonzero(REVIEW >= 0):
        Review.objects.create(item=items[i], reviewer=manager, label=classes[int(REVIEW[i])])
    predictions_store(
        project=project,
        model="builtin",
        classes=["neg", "pos"],
        item_ids=np.array([item.pk for item in items]),
        probs=np.where(PREDICTED[:, None] == np.arange(2), 0.9, 0.1),
    )

    run = run_start(project=project, kind="slices", params={}, user=manager)
    done = wait_for(
        lambda: AnalysisRun.objects.filter(pk=run.pk, status__in=["succeeded", "failed"]).first(),
        timeout=60,
        what="the slices run to finish",
        on_timeout=celery_worker.log,
    )
    assert done.status == "succeeded", done.error
    rows = [r for r in done.result["rows"] if r["field"] == "source"]
    assert [r["value"] for r in rows] == ["b", "a"]
    b, a = rows
    assert b["potential_gain"] == pytest.approx(0.2)
    assert a["potential_gain"] == pytest.approx(0.1)
    assert (a["hlp"], a["model_accuracy"], a["share"]) == (0.75, 0.5, 0.4)
    assert done.result["model_name"] == "builtin" and done.result["model_note"] is None
    assert done.progress == 1.0
