"""The file formats (analysis/exports/formats/): every format carries the same rows without
damage, Label Studio JSON round-trips, and a full export restores into an empty instance."""

import csv
import io
import json
from collections import Counter

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from labeling.importing.jobs import import_file
from labeling.models import Annotation, ImportBatch, Item, Membership, Project
from tests.factories import add_member, make_annotations, make_items, make_project, simulate_crowd

pytestmark = pytest.mark.django_db
User = get_user_model()

TRICKY = [
    'comma, "quoted" and\nnewline',
    "ünïcödé — 日本語テキスト 🙂",
    "plain",
    "trailing space \r\n and CR",
]


@pytest.fixture
def project(manager):
    project = make_project(manager, labels=("neg", "pos, maybe"))
    annotators = [add_member(project, f"ann{i}", Membership.Role.ANNOTATOR) for i in range(3)]
    items = make_items(
        project,
        [
            {"text": text, "score": i * 1.5, "rank": i, "flag": i % 2 == 0}
            for i, text in enumerate(TRICKY)
        ],
        prefix="item,",
        metadata=lambda i: {"source": ["amazon", "yelp"][i % 2], "tags": {"n": i}},
    )
    make_annotations(
        project,
        (
            (item, annotator, "pos, maybe" if (i + j) % 3 else "neg")
            for i, item in enumerate(items)
            for j, annotator in enumerate(annotators)
        ),
    )
    project.manager = manager
    return project


def export(project, **params) -> bytes:
    client = APIClient()
    client.force_authenticate(project.manager)
    response = client.get(f"/api/v1/projects/{project.pk}/export/", params)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def test_csv_survives_commas_quotes_newlines_and_non_ascii(project):
    body = export(project, format="csv").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    assert [r["text"] for r in rows] == TRICKY
    assert [r["external_id"] for r in rows] == [f"item,{i}" for i in range(4)]
    assert list(rows[0])[:7] == [
        "external_id",
        "label",
        "label_source",
        "agreement",
        "n_annotations",
        "quality",
        "issue",
    ]
    assert list(rows[0])[7:] == [
        "flag",
        "rank",
        "score",
        "text",
        "metadata.source",
        "metadata.tags",
    ]
    assert {r["label"] for r in rows} <= {"neg", "pos, maybe"}
    assert rows[1]["score"] == "1.5" and rows[1]["flag"] == "false"
    assert json.loads(rows[2]["metadata.tags"]) == {"n": 2}


def test_parquet_reads_back_in_pandas_with_the_right_dtypes(project):
    frame = pd.read_parquet(io.BytesIO(export(project, format="parquet")))
    assert len(frame) == 4
    assert frame["text"].tolist() == TRICKY
    assert frame["agreement"].dtype == "float64"
    assert frame["n_annotations"].dtype == "int64"
    assert frame["quality"].dtype == "float64"
    assert frame["issue"].dtype == "bool"
    assert frame["rank"].dtype == "int64" and frame["score"].dtype == "float64"
    assert frame["flag"].dtype == "bool"
    assert frame["n_annotations"].tolist() == [3, 3, 3, 3]
    assert frame["metadata.source"].tolist() == ["amazon", "yelp", "amazon", "yelp"]
    assert frame["score"].tolist() == [0.0, 1.5, 3.0, 4.5]


def test_parquet_annotations_have_timestamps_and_versions(project):
    table = pq.read_table(io.BytesIO(export(project, format="parquet", include="annotations")))
    frame = table.to_pandas()
    assert len(frame) == 12
    assert str(frame["created_at"].dtype).startswith("datetime64")
    assert frame["guideline_version"].dtype == "int64"
    assert set(frame["annotator"]) == {"ann0", "ann1", "ann2"}


def test_jsonl_rows_keep_types_and_nested_metadata(project):
    lines = export(project, format="jsonl").decode("utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["text"] for r in records] == TRICKY
    assert records[3]["rank"] == 3 and records[3]["flag"] is False
    assert records[1]["metadata.tags"] == {"n": 1}
    assert records[0]["n_annotations"] == 3


def test_labelstudio_export_reimports_into_a_new_project_with_nothing_lost(project):
    body = export(project, format="labelstudio")
    tasks = json.loads(body)
    assert len(tasks) == 4
    first = tasks[0]
    assert first["data"]["external_id"] == "item,0"
    assert first["annotations"][0]["result"][0]["value"]["choices"][0] in ("neg", "pos, maybe")
    assert first["annotations"][0]["completed_by"]["username"] == "ann0"

    target = make_project(project.manager, name="Copy", labels=("neg", "pos, maybe"))
    batch = import_file(
        project=target,
        fileobj=io.BytesIO(body),
        filename="export.json",
        format="labelstudio",
        kind="items",
        options={},
        user=project.manager,
    )
    assert batch.status == ImportBatch.Status.SUCCEEDED, batch.errors

    def snapshot(p):
        items = {e: (d, m) for e, d, m in p.items.values_list("external_id", "data", "metadata")}
        annotations = sorted(
            p.annotations.values_list("item__external_id", "annotator__username", "label__name")
        )
        return items, annotations

    assert snapshot(target) == snapshot(project)
    # and the re-imported project exports the same dataset, row for row
    target.manager = project.manager
    assert export(target, format="csv") == export(project, format="csv")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "labelstudio"])
def test_a_project_without_items_exports_an_empty_but_valid_file(manager, fmt):
    project = make_project(manager, labels=("neg", "pos"))
    project.manager = project.created_by
    body = export(project, format=fmt)
    if fmt == "csv":
        assert body.decode().splitlines() == [
            "external_id,label,label_source,agreement,n_annotations,quality,issue"
        ]
    elif fmt == "jsonl":
        assert body == b""
    elif fmt == "parquet":
        frame = pd.read_parquet(io.BytesIO(body))
        assert len(frame) == 0 and list(frame.columns)[:2] == ["external_id", "label"]
    else:
        assert json.loads(body) == []


# --- backup and restore through Label Studio JSON


def project_contents(project: Project) -> tuple[Counter, dict]:
    annotations = Counter(
        Annotation.objects.filter(project=project).values_list(
            "item__external_id", "annotator__username", "label__name"
        )
    )
    items = {
        external_id: (data, metadata)
        for external_id, data, metadata in Item.objects.filter(project=project).values_list(
            "external_id", "data", "metadata"
        )
    }
    return annotations, items


def test_a_crowd_project_exported_as_labelstudio_restores_into_an_empty_instance(
    manager, api_client_for
):
    labels = ("0", "1", "2", "3")
    source = make_project(manager, labels=labels, name="crowd")
    workers = {f"worker-{n}": 0.9 - 0.04 * n for n in range(15)}
    crowd = simulate_crowd(classes=labels, n_items=300, workers=workers, per_item=10, seed=51)
    items_csv = "external_id,text,breed_group\n" + "".join(
        f"{question},dog photo {question},g{n % 3}\n" for n, question in enumerate(crowd.truth)
    )
    import_file(
        project=source,
        fileobj=io.BytesIO(items_csv.encode()),
        filename="items.csv",
        format="csv",
        kind="items",
        options={"metadata_columns": "breed_group"},
        user=manager,
    )
    batch = import_file(
        project=source,
        fileobj=io.BytesIO(crowd.answers_csv()),
        filename="answers.csv",
        format="csv",
        kind="annotations",
        options={},
        user=manager,
    )
    assert batch.status == ImportBatch.Status.SUCCEEDED, batch.errors
    before_annotations, before_items = project_contents(source)
    assert before_annotations == Counter(crowd.answers)
    assert sum(before_annotations.values()) == 3000
    assert len(before_items) == 300

    client = api_client_for(manager)
    response = client.get(f"/api/v1/projects/{source.pk}/export/", {"format": "labelstudio"})
    assert response.status_code == 200
    backup = b"".join(response.streaming_content)

    # An empty instance: the project and every crowd account are gone.
    source.delete()
    User.objects.exclude(pk=manager.pk).delete()
    assert not Annotation.objects.exists()

    restored = make_project(manager, labels=labels, name="dog restored")
    batch = import_file(
        project=restored,
        fileobj=io.BytesIO(backup),
        filename="backup.json",
        format="labelstudio",
        kind="items",
        options={},
        user=manager,
    )
    assert batch.status == ImportBatch.Status.SUCCEEDED, batch.errors
    after_annotations, after_items = project_contents(restored)
    assert after_annotations == before_annotations
    assert {k: v[0]["text"] for k, v in after_items.items()} == {
        k: v[0]["text"] for k, v in before_items.items()
    }
    assert {k: v[1]["breed_group"] for k, v in after_items.items()} == {
        k: v[1]["breed_group"] for k, v in before_items.items()
    }
