"""Exported rows (analysis/exports/rows.py): one row per annotation of the kept items."""

import csv
import io

import pytest

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
    ]
    assert {r["external_id"] for r in lines} == {"unanimous", "two-thirds", "reviewed"}
    assert len(lines) == 3 + 6 + 3
    assert sum(r["guideline_version"] == "2" for r in lines) == 3
    only_v2 = get(project, format="csv", include="annotations", guideline_version="2")
    assert b"".join(only_v2.streaming_content).decode().count("\n") == 1 + 3
