"""On a team's first day the analysis pages say "too few items to judge" instead of a verdict,
and every verdict they do give carries its 95% interval."""

import numpy as np
import pytest
from django.test import Client

from analysis.metrics.baselines import MIN_COMPARED_ITEMS
from analysis.metrics.drift import MIN_BATCH_ITEMS
from analysis.metrics.slices import MIN_RELIABLE
from analysis.models import AnalysisRun
from analysis.services.baselines import baselines_job
from analysis.services.drift import drift_job
from analysis.services.predictions import predictions_store
from analysis.services.run_recording import analysis_run
from analysis.services.slices import slices_job
from labeling.models import ImportBatch
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = pytest.mark.django_db


def labeled_project(manager, n_items, *, disagree_every=10, source=None, batch=None):
    """Two annotators label every item (70% neg); they split on every `disagree_every`th item
    (a tie: no final label). Returns the project and the final label per item (-1 for a tie)."""
    project = make_project(manager, labels=("neg", "pos"), overlap=2)
    add_items(project, n_items, source=source, batch=batch)
    return project, annotate(project, project.items.order_by("id"), disagree_every)


def add_items(project, n_items, *, source=None, batch=None, start=0):
    make_items(
        project,
        {f"i{start + n}": f"item {n} " * (n % 7) for n in range(n_items)},
        metadata=lambda n: {"source": source(n) if source else "web"},
        batch=batch,
    )


def annotate(project, items, disagree_every):
    ann, bob = add_member(project, "ann"), add_member(project, "bob")
    final, rows = [], []
    for n, item in enumerate(items):
        label = "neg" if n % 10 < 7 else "pos"
        other = (
            ("pos" if label == "neg" else "neg")
            if n % disagree_every == disagree_every - 1
            else label
        )
        final.append(-1 if other != label else (0 if label == "neg" else 1))
        rows += [(item, ann, label), (item, bob, other)]
    make_annotations(project, rows, lead_time_ms=2000)
    return np.array(final)


def predict(project, probs_for, *, only=None):
    items = list(project.items.order_by("id"))
    chosen = items if only is None else items[:only]
    predictions_store(
        project=project,
        model="builtin",
        classes=["neg", "pos"],
        item_ids=np.array([i.pk for i in chosen]),
        probs=np.array([probs_for(n) for n in range(len(chosen))], dtype=float),
    )


def run(project, kind, job, params=None):
    record = AnalysisRun.objects.create(project=project, kind=kind, params=params or {})
    with analysis_run(record.pk) as recorder:
        job(recorder)
    record.refresh_from_db()
    assert record.status == "succeeded", record.error
    return record


def page(project, manager, name):
    client = Client()
    client.force_login(manager)
    response = client.get(f"/projects/{project.pk}/{name}/")
    assert response.status_code == 200
    return response.content.decode()


def test_baselines_on_25_items_say_too_few_instead_of_at_human_level(manager):
    project, _ = labeled_project(manager, 25, disagree_every=6)
    predict(project, lambda n: [0.8, 0.2], only=16)  # the model always answers "neg"

    result = run(project, "baselines", baselines_job).result

    verdict = result["verdict"]
    assert verdict["n"] < MIN_COMPARED_ITEMS
    assert verdict["reading"] == "too_few" and verdict["majority_reading"] == "too_few"
    low, high = verdict["gap_ci"]
    assert low < result["gap"] < high  # the interval is still given, and it is wide
    assert high - low > 0.25
    html = page(project, manager, "baselines")
    assert f"Too few items to judge (n={verdict['n']}; needs {MIN_COMPARED_ITEMS})" in html
    assert "at human level" not in html
    assert "too few items to judge (n=" in html.lower()


def test_baselines_verdicts_come_from_intervals(manager):
    project, final = labeled_project(manager, 200, disagree_every=10)
    predict(project, lambda n: [0.8, 0.2])  # majority class only: learned nothing

    result = run(project, "baselines", baselines_job).result

    verdict = result["verdict"]
    assert verdict["n"] >= MIN_COMPARED_ITEMS
    # HLP 0.9 (each annotator agrees with the other on 9 items in 10); the model is right on
    # the neg items among the 180 with a final label.
    assert result["hlp"] == pytest.approx(0.9)
    assert result["model"] == pytest.approx((final == 0).sum() / (final >= 0).sum())
    assert verdict["reading"] == "below" and verdict["gap_ci"][0] > 0
    assert verdict["majority_reading"] == "no_better"
    assert verdict["over_majority"] == 0.0 and verdict["over_majority_ci"] == [0.0, 0.0]
    html = page(project, manager, "baselines")
    assert "The model is below human level." in html
    assert "The model is no better than this baseline" in html
    low, high = verdict["gap_ci"]
    assert f"95% interval −{high * 100:.1f} pts to −{low * 100:.1f} pts" in html


def test_slices_too_small_to_judge_show_labeled_n_and_come_last(manager):
    small = MIN_RELIABLE - 20

    def source(n):
        return "tiny" if n < small else "big"

    project, final = labeled_project(manager, 160, disagree_every=10, source=source)
    predict(project, lambda n: [0.3, 0.7] if n % 3 == 0 else [0.7, 0.3])

    result = run(project, "slices", slices_job).result

    rows = [r for r in result["rows"] if r["field"] == "source"]
    tiny = next(r for r in rows if r["value"] == "tiny")
    big = next(r for r in rows if r["value"] == "big")
    assert tiny["n_labeled"] == (final[:small] >= 0).sum() < MIN_RELIABLE
    assert not tiny["reliable"] and tiny["gap_ci"] is None
    assert big["reliable"] and big["gap_ci"][0] <= big["gap"] <= big["gap_ci"][1]
    judged = [r["reliable"] for r in result["rows"]]
    assert judged == sorted(judged, reverse=True)  # every small slice after the judged ones
    html = page(project, manager, "slices")
    assert f"too few items to judge (n={tiny['n_labeled']})" in html
    assert f'{tiny["n_labeled"]}<br><small class="muted">of {tiny["n"]}</small>' in html
    assert "Labeled</th>" in html


def test_drift_with_ten_labeled_items_is_not_called_stable(manager):
    project = make_project(manager, labels=("neg", "pos"), overlap=2)
    first = ImportBatch.objects.create(project=project, filename="a.csv")
    second = ImportBatch.objects.create(project=project, filename="b.csv")
    add_items(project, 250, batch=first)
    add_items(project, 250, batch=second, start=250)
    items = list(project.items.order_by("id"))
    annotate(project, items[:250] + items[250:260], disagree_every=1000)  # B: 10 labeled

    result = run(project, "drift", drift_job, {"batch_a": first.pk, "batch_b": second.pk}).result

    checks = {c["name"]: c for c in result["checks"]}
    labels = checks["label distribution"]
    assert (labels["n_a"], labels["n_b"]) == (250, 10)
    assert labels["severity"] == "too_few" and not labels["drifted"]
    assert labels["verdict"] == (
        f"Too few items to judge labels (n = 250 in A, 10 in B; needs {MIN_BATCH_ITEMS} in each)."
    )
    # The metadata check has 250 items a side: judged, with the interval of its biggest move.
    source = checks["source"]
    assert source["severity"] == "none" and source["move"]["ci"][0] <= 0 <= source["move"]["ci"][1]
    assert "95% interval" in source["verdict"]
    assert result["n_too_few"] >= 1 and not result["drifted"]
    html = page(project, manager, "drift")
    summary = html.split('class="big-line">')[1].split("</p>")[0]
    assert "too few items" in summary and "stable" not in summary
