"""Drift: a batch whose label balance moved is flagged; two random halves of one are not."""

import csv

import numpy as np
import pandas as pd
import pytest

from analysis.metrics.drift import drift_report, label_drift, psi
from analysis.models import AnalysisRun
from analysis.services.drift import DriftParams, drift_job
from analysis.services.run_recording import analysis_run
from labeling.models import ImportBatch
from tests.factories import add_member, make_annotations, make_items, make_project

CLASSES = ["negative", "positive"]


def sentences(sentiment_data, source):
    with open(sentiment_data / f"{source}.tsv", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r[0] for r in rows], np.array([int(r[1]) for r in rows])


def frame(n, source):
    return pd.DataFrame({"source": [source] * n}, dtype=object)


def test_two_random_halves_of_one_batch_do_not_drift(sentiment_data):
    texts, labels = sentences(sentiment_data, "yelp")
    order = np.random.default_rng(11).permutation(len(texts))
    a, b = order[:500], order[500:]
    lengths = np.array([len(t) for t in texts], dtype=float)
    report = drift_report(
        class_names=CLASSES,
        labels_a=labels[a],
        labels_b=labels[b],
        metadata_a=frame(500, "yelp"),
        metadata_b=frame(500, "yelp"),
        text_length_a=lengths[a],
        text_length_b=lengths[b],
    )
    verdicts = {c["name"]: (c["drifted"], c["verdict"]) for c in report["checks"]}
    print(verdicts)
    assert report["n_drifted"] == 0, verdicts
    assert set(verdicts) == {"label distribution", "source", "text length"}
    label_check = report["checks"][0]
    assert label_check["p_value"] > 0.01 and label_check["js_distance"] < 0.05


def test_batch_whose_label_balance_moved_is_flagged(sentiment_data):
    texts, labels = sentences(sentiment_data, "amazon")
    rng = np.random.default_rng(12)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    a = np.concatenate([positives[:250], negatives[:250]])  # 50% positive
    b = np.concatenate([positives[250:475], negatives[250:325]])  # 75% positive
    rng.shuffle(b)
    check = label_drift(labels[a], labels[b], CLASSES)
    print(check["verdict"], check["p_value"], check["js_distance"])
    assert check["drifted"] and check["severity"] == "major"
    assert check["p_value"] < 1e-6
    # By hand: M = (.375, .625); KL(A||M) = 0.046557, KL(B||M) = 0.051031 bits;
    # JS distance = sqrt((0.046557 + 0.051031) / 2) = 0.22090.
    assert check["js_distance"] == pytest.approx(0.22090, abs=1e-4)
    assert check["histogram"]["b"] == [0.25, 0.75]
    assert "positive" in check["verdict"] or "negative" in check["verdict"]


def test_psi_of_a_50_50_to_70_30_shift_is_0_1695():
    # Two bins 50/50 -> 70/30: (0.2 ln(7/5) + (-0.2) ln(3/5)) = 0.1695
    assert psi(np.array([0.5, 0.5]), np.array([0.7, 0.3])) == pytest.approx(0.16946, abs=1e-4)


def test_new_source_and_longer_texts_are_flagged_but_equal_ones_are_not():
    rng = np.random.default_rng(3)
    report = drift_report(
        class_names=CLASSES,
        labels_a=rng.integers(0, 2, 400),
        labels_b=rng.integers(0, 2, 400),
        metadata_a=pd.DataFrame({"source": rng.choice(["web", "app"], 400)}, dtype=object),
        metadata_b=pd.DataFrame({"source": rng.choice(["web", "app", "kiosk"], 400)}, dtype=object),
        text_length_a=rng.normal(80, 20, 400),
        text_length_b=rng.normal(120, 20, 400),
        confidence_a=rng.uniform(0.5, 1, 400),
        confidence_b=rng.uniform(0.5, 1, 400),
    )
    drifted = {c["name"]: c["drifted"] for c in report["checks"]}
    assert drifted == {
        "label distribution": False,
        "source": True,
        "text length": True,
        "model confidence": False,
    }


@pytest.mark.django_db
def test_drift_job_compares_two_import_batches(manager, sentiment_data):
    project = make_project(manager, labels=CLASSES)
    annotator = add_member(project, "ann")
    texts, labels = sentences(sentiment_data, "imdb")
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    batch_a = ImportBatch.objects.create(project=project, filename="january.csv")
    batch_b = ImportBatch.objects.create(project=project, filename="february.csv")
    # January is balanced; February is 80% positive.
    chosen = {
        batch_a: np.concatenate([positives[:200], negatives[:200]]),
        batch_b: np.concatenate([positives[200:440], negatives[200:260]]),
    }
    for batch, indices in chosen.items():
        items = make_items(
            project,
            {f"imdb-{i}": texts[i] for i in indices},
            metadata={"source": "imdb"},
            batch=batch,
        )
        make_annotations(
            project,
            ((item, annotator, CLASSES[labels[i]]) for item, i in zip(items, indices, strict=True)),
        )

    run = AnalysisRun.objects.create(
        project=project, kind="drift", params={"batch_a": batch_a.pk, "batch_b": batch_b.pk}
    )
    with analysis_run(run.pk) as recorder:
        drift_job(recorder)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    checks = {c["name"]: c for c in run.result["checks"]}
    assert checks["label distribution"]["drifted"]
    assert checks["label distribution"]["histogram"]["b"] == [0.2, 0.8]
    assert checks["label distribution"]["n_a"] == 400 and checks["label distribution"]["n_b"] == 300
    assert not checks["source"]["drifted"]
    assert run.result["model_note"]  # no model yet: said, not failed
    assert run.result["a"] == f"#{batch_a.pk} january.csv"


@pytest.mark.django_db
def test_drift_parameters_are_checked(manager, make_user):
    project = make_project(manager)
    other = make_project(make_user())
    foreign = ImportBatch.objects.create(project=other)
    own = ImportBatch.objects.create(project=project)
    make_items(project, {"x1": "x"}, batch=own)
    for params, field in [
        ({}, "batch_a"),
        ({"batch_a": own.pk, "batch_b": foreign.pk}, "batch_b"),
        ({"batch_a": "x", "batch_b": own.pk}, "batch_a"),
        ({"batch_a": own.pk, "batch_b": own.pk}, "batch_b"),
        ({"from_a": "2026-13-01", "to_a": "", "from_b": "2026-01-01"}, "from_a"),
        ({"from_a": "2026-02-01", "to_a": "2026-01-01", "from_b": "2026-01-01"}, "to_a"),
    ]:
        checked = DriftParams(data=params, context={"project": project})
        assert not checked.is_valid()
        assert field in checked.errors, (params, checked.errors)
    ok = DriftParams.parse(
        {"from_a": "2026-01-01", "to_a": "2026-01-31", "from_b": "2026-02-01"}, project=project
    )
    assert ok.a.end.isoformat() == "2026-02-01T00:00:00+00:00"  # the whole of Jan 31
    assert ok.b.end is None


@pytest.mark.django_db
def test_failed_empty_imports_are_not_offered_and_identical_dates_are_refused(manager, client):
    project = make_project(manager)
    kept = ImportBatch.objects.create(project=project, filename="ok.csv", status="succeeded")
    make_items(project, {"a": "a"}, batch=kept)
    failed = ImportBatch.objects.create(project=project, filename="broken.csv", status="failed")
    client.force_login(manager)
    url = f"/projects/{project.pk}/drift/"

    html = client.get(url).content.decode()
    assert "ok.csv" in html and "broken.csv" not in html
    answer = client.post(
        url, {"batch_a": kept.pk, "batch_b": failed.pk}, headers={"HX-Request": "true"}
    )
    assert "holds no items (a failed or empty import)" in answer.content.decode()
    same = {
        "from_a": "2026-01-01",
        "to_a": "2026-01-31",
        "from_b": "2026-01-01",
        "to_b": "2026-01-31",
    }
    answer = client.post(url, same, headers={"HX-Request": "true"})
    assert "Batch A and batch B cover the same dates: choose two different periods." in (
        answer.content.decode()
    )
    assert not AnalysisRun.objects.filter(project=project).exists()
