"""What the built-in model learns from, and a plain reason wherever it cannot run.

Image items learn from an embedding, else from their numeric data fields (the annotator still
sees the image); when neither exists, or too few items are labeled, a label-issue run with
several annotators falls back to Dawid-Skene and says why, and one with a single label per
item fails saying why.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from analysis.loaders import item_features
from analysis.metrics.out_of_sample import CannotTrain, out_of_sample_probabilities
from analysis.models import AnalysisRun, PredictionSet
from analysis.services.label_issues import label_issues_job
from analysis.services.run_recording import analysis_run
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = pytest.mark.django_db

IMAGE = "data:image/png;base64,iVBORw0KGgo="


def image_project(manager, data_rows, labels=("a", "b")):
    project = make_project(manager, labels=labels, data_type="image")
    make_items(project, data_rows, prefix="i")
    return project


def item_ids(project) -> np.ndarray:
    return np.asarray(project.items.order_by("id").values_list("id", flat=True))


def annotate(project, votes_per_annotator: dict[str, list[str]]) -> None:
    """Each annotator labels the items in id order with the given label names."""
    ids = item_ids(project)
    users = {username: add_member(project, username) for username in votes_per_annotator}
    make_annotations(
        project,
        (
            (int(i), users[username], v)
            for username, votes in votes_per_annotator.items()
            for i, v in zip(ids, votes, strict=True)
        ),
    )


def run_label_issues(project, params=None) -> AnalysisRun:
    run = AnalysisRun.objects.create(project=project, kind="label_issues", params=params or {})
    with analysis_run(run.pk) as recorder:
        label_issues_job(recorder)
    run.refresh_from_db()
    return run


def test_image_items_learn_from_their_numeric_fields_only(manager):
    project = image_project(
        manager,
        [
            {"image": IMAGE, "width": 3, "brightness": "0.5", "caption": "a cat", "flag": True},
            {"image": IMAGE, "width": 4.5, "brightness": "12", "caption": "7", "flag": False},
            {"image": IMAGE, "brightness": "-1e-3", "caption": "a dog"},
        ],
    )
    features = item_features(project=project, item_ids=item_ids(project))
    assert features.kind == "tabular"
    frame = features.features
    # The image URL and the caption (text in one item at least) are left out; numbers given
    # as text (as a CSV import stores them) count; a field an item lacks is a gap to impute.
    assert sorted(frame.columns) == ["brightness", "flag", "width"]
    assert frame["brightness"].tolist() == [0.5, 12.0, -0.001]
    assert frame["flag"].tolist()[:2] == [1.0, 0.0] and np.isnan(frame["flag"].iloc[2])
    assert frame["width"].tolist()[:2] == [3.0, 4.5] and np.isnan(frame["width"].iloc[2])


def test_the_features_follow_the_order_of_the_ids_asked_for(manager):
    project = image_project(manager, [{"image": IMAGE, "size": n} for n in range(4)])
    ids = item_ids(project)[[2, 0, 3]]
    features = item_features(project=project, item_ids=ids)
    assert features.features["size"].tolist() == [2.0, 0.0, 3.0]


def test_an_embedding_wins_over_numeric_fields(manager):
    project = image_project(
        manager, [{"image": IMAGE, "size": n, "embedding": [n, 1.0]} for n in range(3)]
    )
    features = item_features(project=project, item_ids=item_ids(project))
    assert features.kind == "embedding"
    assert features.features.tolist() == [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]


def test_image_items_without_numbers_offer_nothing_and_say_why(manager):
    project = image_project(manager, [{"image": IMAGE, "caption": "x"}, {"image": IMAGE}])
    features = item_features(project=project, item_ids=item_ids(project))
    assert (features.kind, features.features) == (None, None)
    assert features.note == (
        "Image items carry no embedding and no numeric fields, so the built-in model has "
        "nothing to learn from"
    )


def test_cross_validation_refuses_too_few_labels_in_plain_words():
    labels = np.array([0, 0, 0, 1, 1, 2])
    with pytest.raises(CannotTrain) as refused:
        out_of_sample_probabilities(
            np.arange(12.0).reshape(6, 2), labels, n_classes=3, kind="embedding", folds=5
        )
    assert str(refused.value) == (
        "there are too few labeled items (5-fold cross-validation needs two classes with at "
        "least 5 labeled items each; labeled items per class: [3, 2, 1])"
    )


def test_digit_images_with_pixel_fields_run_the_builtin_model(manager):
    digits = load_digits()
    rng = np.random.default_rng(1)
    picked = rng.choice(len(digits.target), size=300, replace=False)
    project = image_project(
        manager,
        [
            {"image": IMAGE, **{f"p{k}": int(v) for k, v in enumerate(digits.data[i])}}
            for i in picked
        ],
        labels=[str(d) for d in range(10)],
    )
    annotate(project, {"ann": [str(digits.target[i]) for i in picked]})
    run = run_label_issues(project)
    assert run.status == "succeeded", run.error
    result = run.result
    assert (result["method"], result["model"], result["features"]) == (
        "confident_learning",
        "builtin",
        "tabular",
    )
    assert result["model_note"] is None and run.message == "done"
    # Logistic regression on 64 pixels, 5-fold CV on 300 clean labels: measured 0.943.
    assert 0.9 <= result["model_accuracy"] <= 0.97
    assert PredictionSet.objects.get(project=project, model="builtin").n_rows == 300


def test_image_project_without_numeric_fields_falls_back_to_dawid_skene_and_says_why(
    manager,
):
    project = image_project(manager, [{"image": IMAGE} for _ in range(12)])
    annotate(project, {"x": ["a", "b"] * 6, "y": ["a", "b"] * 6, "z": ["a", "a"] * 6})
    run = run_label_issues(project)
    assert run.status == "succeeded", run.error
    result = run.result
    assert (result["method"], result["model"]) == ("dawid_skene", "none")
    note = (
        "The built-in model did not run: Image items carry no embedding and no numeric fields, "
        "so the built-in model has nothing to learn from. Dawid-Skene weighed the annotators "
        "instead."
    )
    assert result["model_note"] == note
    assert run.message == f"done: {note}"
    assert not PredictionSet.objects.filter(project=project).exists()


def test_too_few_labeled_items_fall_back_to_dawid_skene_and_say_why(manager):
    project = image_project(manager, [{"image": IMAGE, "size": n} for n in range(6)])
    annotate(project, {"x": ["a", "a", "a", "b", "b", "b"], "y": ["a", "a", "b", "b", "b", "b"]})
    run = run_label_issues(project)
    assert run.status == "succeeded", run.error
    assert (run.result["method"], run.result["model"]) == ("dawid_skene", "none")
    assert run.result["model_note"].startswith(
        "The built-in model did not run: there are too few labeled items (5-fold "
        "cross-validation needs two classes with at least 5 labeled items each; labeled "
        "items per class: [2, 3])."
    )
    assert run.message.startswith("done: The built-in model did not run: there are too few")


def test_one_label_per_item_without_features_fails_saying_why(manager):
    project = image_project(manager, [{"image": IMAGE} for _ in range(10)])
    annotate(project, {"x": ["a", "b"] * 5})
    run = run_label_issues(project)
    assert run.status == "failed"
    assert run.error == (
        "ValueError: The built-in model cannot run: Image items carry no embedding and no "
        "numeric fields, so the built-in model has nothing to learn from. With one label per "
        "item there is nothing else to judge the labels by; upload predictions instead."
    )


def test_asking_for_no_model_says_so(manager):
    project = image_project(manager, [{"image": IMAGE, "size": n} for n in range(12)])
    annotate(project, {"x": ["a", "b"] * 6, "y": ["a", "b"] * 6})
    run = run_label_issues(project, {"model": "none"})
    assert run.status == "succeeded", run.error
    assert run.result["method"] == "dawid_skene"
    assert run.result["model_note"] == "No model, as asked: Dawid-Skene weighed the annotators."
