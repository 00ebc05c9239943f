"""Exported rows (analysis/exports/rows.py): one row per annotation of the kept items."""

import csv
import io
import json

import pyarrow.parquet as pq
import pytest

from labeling.models import Annotation
from tests.analysis.exports.voted_project import get, make_voted_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(manager):
    return make_voted_project(manager)


def test_include_annotations_gives_one_row_per_annotation_of_kept_items(project):
    exported = get(project, format="csv", include="annotations", exclude="unresolved")
    body = b"".join(exported.streaming_content).decode("utf-8")
    lines = list(csv.DictReader(io.StringIO(body)))
    assert list(lines[0]) == [
        "external_id",
        "annotator",
        "label",
        "guideline_version",
        "created_at",
        "suggestion_label",
        "suggestion_model",
    ]
    assert {r["external_id"] for r in lines} == {"unanimous", "two-thirds", "reviewed"}
    assert len(lines) == 3 + 6 + 3
    assert sum(r["guideline_version"] == "2" for r in lines) == 3
    only_v2 = get(project, format="csv", include="annotations", guideline_version="2")
    assert b"".join(only_v2.streaming_content).decode().count("\n") == 1 + 3


def test_annotation_rows_carry_the_suggestion_each_annotator_was_shown_in_every_format(project):
    # ann0 was shown the model's "a" on every item, ann1 "b" on "tie" only, ann2 nothing.
    labels = project.labels_by_name
    ann0, ann1, _ = project.annotators
    Annotation.objects.filter(annotator=ann0).update(
        suggestion_model="bert", suggestion_label=labels["a"]
    )
    Annotation.objects.filter(annotator=ann1, item__external_id="tie").update(
        suggestion_model="bert", suggestion_label=labels["b"]
    )
    expected = {}
    for external_id, annotator, label, model in Annotation.objects.values_list(
        "item__external_id", "annotator__username", "suggestion_label__name", "suggestion_model"
    ):
        expected[(external_id, annotator)] = (label, model)
    assert Annotation.objects.filter(suggestion_model="bert").count() == 5 + 1 + 1  # v1, v2, tie

    def body(fmt):
        response = get(project, format=fmt, include="annotations")
        assert response.status_code == 200
        return b"".join(response.streaming_content)

    seen = {}
    for line in csv.DictReader(io.StringIO(body("csv").decode("utf-8"))):
        key = (line["external_id"], line["annotator"])
        seen.setdefault("csv", []).append(
            (key, (line["suggestion_label"] or None, line["suggestion_model"]))
        )
    for line in body("jsonl").decode("utf-8").splitlines():
        record = json.loads(line)
        key = (record["external_id"], record["annotator"])
        seen.setdefault("jsonl", []).append(
            (key, (record["suggestion_label"], record["suggestion_model"]))
        )
    table = pq.read_table(io.BytesIO(body("parquet"))).to_pylist()
    seen["parquet"] = [
        ((r["external_id"], r["annotator"]), (r["suggestion_label"], r["suggestion_model"]))
        for r in table
    ]
    for fmt, pairs in seen.items():
        assert len(pairs) == Annotation.objects.count(), fmt
        # A relabeled item has two rows per annotator, shown the same suggestion in this test.
        assert all(expected[key] == shown for key, shown in pairs), fmt
        assert sum(model == "bert" for _, (_, model) in pairs) == 7, fmt
