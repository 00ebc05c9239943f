"""The Baselines page's annotator chart: numbered dots that never overlap names, and a
sentence instead of empty axes when no annotator has a recorded time."""

import pytest

from analysis import figures
from analysis.models import AnalysisRun
from analysis.services.baselines import baselines_job
from analysis.services.run_recording import analysis_run
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def baselines_page(manager, client):
    """baselines_page(lead_time_ms=...): the Baselines page of 12 items labeled by three."""

    def page(*, lead_time_ms):
        project = make_project(manager, labels=("neg", "pos"))
        items = make_items(project, [f"t{n}" for n in range(12)], prefix="i")
        people = [add_member(project, name) for name in ("ann", "bob", "cyd")]
        make_annotations(
            project,
            (
                (item, person, "neg" if (n + k) % 4 else "pos")
                for n, item in enumerate(items)
                for k, person in enumerate(people)
            ),
            lead_time_ms=lead_time_ms,
        )
        run = AnalysisRun.objects.create(project=project, kind="baselines", params={})
        with analysis_run(run.pk) as recorder:
            baselines_job(recorder)
        client.force_login(manager)
        return client.get(f"/projects/{project.pk}/baselines/")

    return page


def test_imported_annotations_without_times_get_a_sentence_not_empty_axes(baselines_page):
    response = baselines_page(lead_time_ms=None)
    html = response.content.decode()
    assert response.context["annotator_figure"] is None
    assert 'id="annotator-chart-empty"' in html
    assert "No dot to draw: no annotator has both an agreement figure and a recorded time" in html
    assert 'id="annotator-quality"' not in html


def test_dots_are_numbered_as_in_the_table_and_named_on_hover(baselines_page):
    response = baselines_page(lead_time_ms=3000)
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
