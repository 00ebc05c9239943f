"""The Baselines page's annotator chart: numbered dots that never overlap names, and a
sentence instead of empty axes when no annotator has a recorded time."""

import pytest
from django.test import Client

from analysis import figures
from analysis.models import AnalysisRun
from analysis.services.baselines import baselines_job
from analysis.services.run_recording import analysis_run
from labeling.models import Annotation, Item
from tests.factories import add_member, make_project

pytestmark = pytest.mark.django_db


def baselines_page(make_user, *, lead_time_ms):
    manager = make_user()
    project = make_project(manager, labels=("neg", "pos"))
    Item.objects.bulk_create(
        Item(project=project, external_id=f"i{n}", data={"text": f"t{n}"}) for n in range(12)
    )
    people = [add_member(project, name) for name in ("ann", "bob", "cyd")]
    neg, pos = project.labels.order_by("order", "id")
    guideline = project.current_guideline()
    Annotation.objects.bulk_create(
        Annotation(project=project, item=item, annotator=person, guideline=guideline,
                   label=neg if (n + k) % 4 else pos, lead_time_ms=lead_time_ms)
        for n, item in enumerate(project.items.order_by("id"))
        for k, person in enumerate(people)
    )  # fmt: skip
    run = AnalysisRun.objects.create(project=project, kind="baselines", params={})
    with analysis_run(run.pk) as recorder:
        baselines_job(recorder)
    client = Client()
    client.force_login(manager)
    return client.get(f"/projects/{project.pk}/baselines/")


def test_imported_annotations_without_times_get_a_sentence_not_empty_axes(make_user):
    response = baselines_page(make_user, lead_time_ms=None)
    html = response.content.decode()
    assert response.context["annotator_figure"] is None
    assert 'id="annotator-chart-empty"' in html
    assert "No dot to draw: no annotator has both an agreement figure and a recorded time" in html
    assert 'id="annotator-quality"' not in html


def test_dots_are_numbered_as_in_the_table_and_named_on_hover(make_user):
    response = baselines_page(make_user, lead_time_ms=3000)
    trace = response.context["annotator_figure"]["data"][0]
    rows = response.context["result"]["per_annotator"]
    assert trace["text"] == [str(r["number"]) for r in rows] == ["1", "2", "3"]
    assert [c[0] for c in trace["customdata"]] == [r["annotator"] for r in rows]
    assert trace["textposition"] == "middle center"
    html = response.content.decode()
    assert '<th class="num">#</th><th>Annotator</th>' in html
    assert f'<td class="num">1</td><td>{rows[0]["annotator"]}</td>' in html


def test_a_chart_needs_one_annotator_with_both_figures():
    assert figures.annotator_quality([{"annotator": "a", "hlp": 0.9, "n": 3,
                                       "seconds_per_item": None, "number": 1}]) is None  # fmt: skip
