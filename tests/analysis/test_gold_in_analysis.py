"""Gold questions in analysis: their answers never count in agreement or consensus, Dawid-Skene
learns the annotators' confusion from them as known truths, exports give gold items their gold
label, and the agreement report carries each annotator's gold accuracy with a Wilson interval."""

import csv
import io

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene

from analysis import loaders
from analysis.exports.decisions import LabelSource, label_decisions
from analysis.exports.params import ExportParams
from analysis.metrics.consensus import dawid_skene_long, posterior_winner
from analysis.metrics.intervals import wilson_interval
from analysis.services.agreement import AgreementParams, agreement_run
from labeling.gold_scores import accuracy_interval
from labeling.models import Annotation, GoldLabel, Item
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = pytest.mark.django_db

CLASSES = ("negative", "positive")


def crowd_with_gold(manager, *, seed=7, n_regular=60, n_gold=20):
    """Five annotators of known accuracy label every regular and every gold item."""
    project = make_project(manager, labels=CLASSES, overlap=5)
    regular = make_items(project, n_regular)
    golds = make_items(project, n_gold, prefix="g")
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_regular + n_gold)
    accuracy = [0.95, 0.9, 0.8, 0.65, 0.55]
    people = [add_member(project, f"a{i}") for i in range(len(accuracy))]
    votes = []
    for n, item in enumerate(regular + golds):
        for person, acc in zip(people, accuracy, strict=True):
            label = truth[n] if rng.random() < acc else 1 - truth[n]
            votes.append((item, person, CLASSES[label]))
    make_annotations(project, votes)
    label_ids = dict(project.labels.values_list("name", "id"))
    GoldLabel.objects.bulk_create(
        GoldLabel(item=item, label_id=label_ids[CLASSES[truth[n_regular + i]]])
        for i, item in enumerate(golds)
    )
    Item.objects.filter(pk__in=[g.pk for g in golds]).update(is_gold=True)
    return project, regular, golds, people


def test_agreement_and_consensus_rows_leave_out_the_gold_items(manager):
    project, regular, golds, people = crowd_with_gold(manager)
    rows = loaders.annotation_rows(project=project)
    assert set(rows.item_ids.tolist()) == {item.pk for item in regular}
    assert len(rows.item_index) == len(regular) * len(people)
    params = AgreementParams.parse({}, project=project)
    result, _ = agreement_run(project=project, params=params, progress=lambda *args: None)
    assert result["n_items"] == len(regular)
    assert result["n_annotations"] == len(regular) * len(people)
    assert result["gold"]["n_gold_items"] == len(golds)
    assert result["gold"]["n_excluded"] == len(golds) * len(people)


def test_dawid_skene_with_gold_equals_bare_crowd_kit_given_the_true_labels(manager):
    project, regular, golds, people = crowd_with_gold(manager)
    rows, truths = loaders.annotation_rows_with_gold(project=project)
    posteriors, _ = dawid_skene_long(
        rows.item_index, rows.annotator_index, rows.label_index,
        n_items=rows.n_items, n_annotators=rows.n_annotators, n_classes=2,
        true_labels=truths,
    )  # fmt: skip
    ours, _ = posterior_winner(posteriors)

    # The same data read independently, by external id and username, into bare crowd-kit.
    frame = pd.DataFrame(
        Annotation.objects.filter(project=project).values_list(
            "item__external_id", "annotator__username", "label__name"
        ),
        columns=["task", "worker", "label"],
    )
    known = pd.Series(
        dict(GoldLabel.objects.filter(item__project=project).values_list(
            "item__external_id", "label__name"
        ))
    )  # fmt: skip
    bare = DawidSkene(n_iter=100).fit(frame, true_labels=known).probas_
    ids = dict(Item.objects.filter(project=project).values_list("pk", "external_id"))
    for position, item_id in enumerate(rows.item_ids.tolist()):
        expected = bare.loc[ids[item_id]].reindex(list(CLASSES)).to_numpy()
        assert posteriors[position] == pytest.approx(expected, abs=1e-6)
        assert CLASSES[ours[position]] == CLASSES[int(np.argmax(expected))]
    # The gold items' posteriors are their known classes.
    assert (ours[truths >= 0] == truths[truths >= 0]).all()


def test_the_gold_truths_change_what_dawid_skene_learns(manager):
    project, regular, golds, people = crowd_with_gold(manager, seed=11)
    rows, truths = loaders.annotation_rows_with_gold(project=project)
    args = (rows.item_index, rows.annotator_index, rows.label_index)
    sizes = {"n_items": rows.n_items, "n_annotators": rows.n_annotators, "n_classes": 2}
    with_gold, _ = dawid_skene_long(*args, **sizes, true_labels=truths)
    without, _ = dawid_skene_long(*args, **sizes)
    regular_rows = truths < 0
    assert not np.allclose(with_gold[regular_rows], without[regular_rows])


def test_an_export_gives_gold_items_their_gold_label_and_says_so(manager):
    project, regular, golds, people = crowd_with_gold(manager)
    for labels in ("majority", "dawid_skene"):
        decisions = label_decisions(
            project=project, params=ExportParams(format="csv", labels=labels)
        )
        gold_at = np.isin(decisions.item_ids, [g.pk for g in golds])
        assert (decisions.source[gold_at] == LabelSource.GOLD).all()
        assert (decisions.n_annotations[gold_at] == 0).all()  # their answers do not count
        names = dict(GoldLabel.objects.values_list("item_id", "label__name"))
        got = {
            int(i): decisions.class_names[c]
            for i, c in zip(decisions.item_ids[gold_at], decisions.label[gold_at], strict=True)
        }
        assert got == names
        assert (decisions.source[~gold_at] != LabelSource.GOLD).all()


def test_the_export_csv_marks_gold_rows(manager, api_client_for):
    project, regular, golds, people = crowd_with_gold(manager, n_regular=6, n_gold=2)
    response = api_client_for(manager).get(
        f"/api/v1/projects/{project.pk}/export/", {"format": "csv", "labels": "majority"}
    )
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    sources = {row["external_id"]: row["label_source"] for row in csv.DictReader(io.StringIO(body))}
    assert sources["g0"] == sources["g1"] == "gold"
    assert sources["e0"] == "majority"


def test_gold_accuracy_in_the_report_uses_the_wilson_interval_of_analysis(manager):
    project, regular, golds, people = crowd_with_gold(manager)
    params = AgreementParams.parse({}, project=project)
    result, _ = agreement_run(project=project, params=params, progress=lambda *args: None)
    rows = {row["annotator"]: row for row in result["gold"]["annotators"]}
    truth = dict(GoldLabel.objects.values_list("item_id", "label_id"))
    for person in people:
        answers = Annotation.objects.filter(annotator=person, item_id__in=list(truth))
        correct = sum(a.label_id == truth[a.item_id] for a in answers)
        row = rows[person.username]
        assert (row["n"], row["correct"]) == (len(golds), correct)
        assert row["accuracy"] == pytest.approx(correct / len(golds), abs=1e-4)
        low, high = wilson_interval(correct, len(golds))
        assert row["interval"] == pytest.approx([low, high], abs=1e-4)
        assert accuracy_interval(correct, len(golds)) == pytest.approx((low, high), abs=1e-12)


def seeded_crowd_with_gold(seed: int, n_regular=300, n_gold=30, n_classes=3):
    """Six annotators (accuracy 0.9 .. 0.4): three label each regular item, all six each gold
    item; a wrong answer is another class at random."""
    rng = np.random.default_rng(seed)
    n = n_regular + n_gold
    truth = rng.integers(0, n_classes, n)
    accuracy = np.array([0.9, 0.8, 0.7, 0.55, 0.45, 0.4])
    items, workers, labels = [], [], []
    for i in range(n):
        who = rng.choice(6, 3, replace=False) if i < n_regular else np.arange(6)
        for w in who:
            right = rng.random() < accuracy[w]
            label = truth[i] if right else (truth[i] + rng.integers(1, n_classes)) % n_classes
            items.append(i), workers.append(w), labels.append(label)
    truths = np.full(n, -1)
    truths[n_regular:] = truth[n_regular:]
    return np.array(items), np.array(workers), np.array(labels), truth, truths


def test_gold_truths_make_dawid_skene_more_accurate_on_a_seeded_crowd():
    """The figure in the README: 8 seeds, mean accuracy on the regular items."""
    gains = []
    for seed in range(8):
        items, workers, labels, truth, truths = seeded_crowd_with_gold(seed)
        regular = truths[items] < 0
        sizes = {"n_items": len(truth), "n_annotators": 6, "n_classes": 3}
        bare, _ = dawid_skene_long(items[regular], workers[regular], labels[regular], **sizes)
        learned, _ = dawid_skene_long(items, workers, labels, **sizes, true_labels=truths)
        scored = truths < 0
        before = (posterior_winner(bare)[0][scored] == truth[scored]).mean()
        after = (posterior_winner(learned)[0][scored] == truth[scored]).mean()
        gains.append(after - before)
    assert np.mean(gains) == pytest.approx(0.0179, abs=0.001)
    assert np.mean(np.array(gains) > 0) >= 0.6
