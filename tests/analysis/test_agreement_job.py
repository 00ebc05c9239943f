"""The agreement job on a simulated crowd and on real crowd data (their published alpha),
through the API and a real Celery worker."""

import krippendorff
import numpy as np
import pytest
from django.utils import timezone

from analysis.metrics.agreement import krippendorff_alpha
from analysis.models import AnalysisRun, AnnotatorScore, ItemDisagreement
from labeling.models import Annotation, Guideline, Item
from tests.conftest import wait_for
from tests.factories import (
    add_member,
    load_crowd_answers,
    make_annotations,
    make_items,
    make_project,
    simulated_crowd,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# ../shared/datasets/README.md: Krippendorff's alpha (nominal), krippendorff 0.9.0.
REFERENCE_ALPHA = {"duck": (("0", "1"), 0.125501), "dog": (("0", "1", "2", "3"), 0.519418)}
# Six noisy workers, four on each of 150 items.
WORKERS = {"w1": 0.9, "w2": 0.8, "w3": 0.75, "w4": 0.7, "w5": 0.6, "w6": 0.55}


@pytest.fixture
def reviewer_client(api_client_for):
    return lambda project: api_client_for(add_member(project, "reviewer-rae", "reviewer"))


def nominal_alpha(matrix: np.ndarray) -> float:
    """Krippendorff's alpha of an (items, workers) matrix by the krippendorff package."""
    return krippendorff.alpha(
        reliability_data=np.where(matrix >= 0, matrix, np.nan).T, level_of_measurement="nominal"
    )


def run_to_the_end(client, project, worker, params=None) -> dict:
    response = client.post(
        f"/api/v1/projects/{project.pk}/runs/",
        {"kind": "agreement", "params": params or {}},
        format="json",
    )
    assert response.status_code == 202, response.content
    run_id = response.json()["id"]

    def finished():
        body = client.get(f"/api/v1/runs/{run_id}/").json()
        return body if body["status"] in ("succeeded", "failed") else None

    return wait_for(finished, timeout=120, what=f"agreement run {run_id}", on_timeout=worker.log)


def test_a_crowd_gets_its_alpha_and_every_table_through_the_job_and_the_api(
    manager, reviewer_client, celery_worker
):
    labels = ("0", "1", "2")
    project = make_project(manager, labels=labels, name="crowd")
    crowd = simulated_crowd(project, n_items=150, workers=WORKERS, per_item=4, seed=11)
    client = reviewer_client(project)

    body = run_to_the_end(client, project, celery_worker)

    assert body["status"] == "succeeded", body["error"]
    assert body["progress"] == 1.0 and body["finished_at"]
    result = body["result"]
    assert result["alpha"] == pytest.approx(nominal_alpha(crowd.matrix()), abs=1e-6)
    low, high = result["alpha_ci"]
    assert low < result["alpha"] < high
    assert result["n_annotations"] == len(crowd.answers) == 600
    assert result["n_items"] == Item.objects.filter(project=project).count() == 150
    [version] = result["by_guideline_version"]
    assert version["version"] == 1 and version["alpha"] == result["alpha"]
    assert len(result["per_annotator"]) == len(WORKERS)
    assert {"annotator", "n", "agreement"} <= set(result["per_annotator"][0])
    assert [row["label"] for row in result["per_label"]] == list(labels)
    run = AnalysisRun.objects.get(pk=body["id"])
    assert AnnotatorScore.objects.filter(run=run).count() == len(WORKERS)
    assert ItemDisagreement.objects.filter(run=run).count() == result["n_items_used"]
    top = ItemDisagreement.objects.filter(run=run).first()
    assert top.entropy == max(
        ItemDisagreement.objects.filter(run=run).values_list("entropy", flat=True)
    )
    assert sum(top.label_counts.values()) == top.n_annotations


@pytest.mark.parametrize("name", ["duck", "dog"])
def test_crowd_answers_give_the_published_alpha_through_the_job_and_the_api(
    name, make_user, crowd_data, reviewer_client, celery_worker
):
    labels, expected = REFERENCE_ALPHA[name]
    project = make_project(make_user(), labels=labels, name=name)
    load_crowd_answers(project, crowd_data / name)
    client = reviewer_client(project)

    body = run_to_the_end(client, project, celery_worker)

    assert body["status"] == "succeeded", body["error"]
    assert body["progress"] == 1.0 and body["finished_at"]
    result = body["result"]
    assert result["alpha"] == pytest.approx(expected, abs=1e-6)
    low, high = result["alpha_ci"]
    assert low < result["alpha"] < high
    n_answers = Annotation.objects.filter(project=project).count()
    assert result["n_annotations"] == n_answers
    assert result["n_items"] == Item.objects.filter(project=project).count()
    [version] = result["by_guideline_version"]
    assert version["version"] == 1 and version["alpha"] == result["alpha"]
    n_workers = Annotation.objects.filter(project=project).values("annotator").distinct().count()
    assert len(result["per_annotator"]) == n_workers
    assert {"annotator", "n", "agreement"} <= set(result["per_annotator"][0])
    assert [row["label"] for row in result["per_label"]] == list(labels)
    run = AnalysisRun.objects.get(pk=body["id"])
    assert AnnotatorScore.objects.filter(run=run).count() == n_workers
    assert ItemDisagreement.objects.filter(run=run).count() == result["n_items_used"]
    top = ItemDisagreement.objects.filter(run=run).first()
    assert top.entropy == max(
        ItemDisagreement.objects.filter(run=run).values_list("entropy", flat=True)
    )
    assert sum(top.label_counts.values()) == top.n_annotations


def test_per_guideline_version_alpha_shows_whether_new_instructions_helped(
    manager, reviewer_client, celery_worker
):
    project = make_project(manager, labels=("0", "1"), name="crowd v2")
    crowd = simulated_crowd(project, n_items=108, workers=WORKERS, per_item=5, seed=12)
    v2 = Guideline.objects.create(
        project=project, version=2, published_at=timezone.now(), changelog="sharper"
    )
    # Under v2 three annotators agree on every item of the first 30.
    items = list(Item.objects.filter(project=project).order_by("pk")[:30])
    people = [add_member(project, f"expert-{i}") for i in range(3)]
    make_annotations(
        project, ((item, person, "1") for item in items for person in people), guideline=v2
    )
    client = reviewer_client(project)
    body = run_to_the_end(client, project, celery_worker)
    assert body["status"] == "succeeded", body["error"]
    by_version = {v["version"]: v for v in body["result"]["by_guideline_version"]}
    assert by_version[1]["alpha"] == pytest.approx(nominal_alpha(crowd.matrix()), abs=1e-6)
    assert by_version[2]["alpha"] is None  # unanimous under v2: no variation, said in words
    assert any("No variation" in note for note in by_version[2]["notes"])
    assert by_version[2]["n_annotations"] == 90


def test_a_failing_run_says_why_and_the_earlier_result_stays(
    manager, reviewer_client, celery_worker
):
    project = make_project(manager, labels=("0", "1"), name="crowd fail")
    simulated_crowd(project, n_items=108, workers=WORKERS, per_item=5, seed=13)
    client = reviewer_client(project)
    good = run_to_the_end(client, project, celery_worker)
    assert good["status"] == "succeeded"
    rows_before = ItemDisagreement.objects.filter(run_id=good["id"]).count()

    # Version 9 is a valid number, but no annotation was made under it.
    bad = run_to_the_end(client, project, celery_worker, params={"guideline_version": 9})

    assert bad["status"] == "failed"
    assert "guideline version 9" in bad["error"]
    assert bad["result"] is None
    assert not ItemDisagreement.objects.filter(run_id=bad["id"]).exists()
    again = client.get(f"/api/v1/runs/{good['id']}/").json()
    assert again["status"] == "succeeded" and again["result"] == good["result"]
    assert ItemDisagreement.objects.filter(run_id=good["id"]).count() == rows_before


def test_project_without_annotations_succeeds_and_answers_in_words(
    manager, reviewer_client, celery_worker
):
    project = make_project(manager, labels=("a", "b"), name="empty")
    body = run_to_the_end(reviewer_client(project), project, celery_worker)
    assert body["status"] == "succeeded", body["error"]
    result = body["result"]
    assert result["alpha"] is None and result["n_annotations"] == 0
    assert result["notes"]


def test_multi_label_project_gets_alpha_per_label_and_their_mean(
    manager, reviewer_client, celery_worker
):
    project = make_project(
        manager, labels=("red", "green", "blue"), name="colours", task_type="multi_label"
    )
    classes = ["red", "green", "blue"]
    people = [add_member(project, f"painter-{i}") for i in range(4)]
    rng = np.random.default_rng(4)
    truth = rng.random((60, 3)) < 0.5
    chosen = np.full((60, 4, 3), -1, dtype=np.int8)
    items = make_items(project, [f"colour {i}" for i in range(60)], prefix="c")
    rows = []
    for i, item in enumerate(items):
        for p, person in enumerate(people):
            if (i + p) % 5 == 0:
                continue  # some items miss an annotator
            picks = truth[i] ^ (rng.random(3) < 0.15)
            chosen[i, p] = picks
            rows.append((item, person, [c for c, on in zip(classes, picks, strict=True) if on]))
    make_annotations(project, rows)

    body = run_to_the_end(reviewer_client(project), project, celery_worker)

    assert body["status"] == "succeeded", body["error"]
    result = body["result"]
    expected = [krippendorff_alpha(chosen[:, :, c], 2) for c in range(3)]
    assert [r["label"] for r in result["per_label"]] == ["red", "green", "blue"]
    assert [r["alpha"] for r in result["per_label"]] == pytest.approx(expected, abs=1e-6)
    assert result["alpha"] == pytest.approx(np.mean(expected), abs=1e-6)
    assert result["multi_label"] is True
    assert result["n_annotations"] == len(rows)
