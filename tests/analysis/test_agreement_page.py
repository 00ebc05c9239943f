"""The agreement report's defaults and scales: the confusion opens on the annotator compared
most, count colour scales start at 0, and the alpha axis holds every interval."""

import numpy as np
import pytest

from analysis import figures
from analysis.models import AnalysisRun
from analysis.tasks import run_agreement
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def report(manager, client):
    """'aaron' labels 6 items nobody else does; 'bea' and 'cy' share 30 and mostly disagree
    (alpha below 0, so its interval reaches below 0)."""
    project = make_project(manager, labels=("a", "b", "c"))
    items = make_items(project, [f"t{n}" for n in range(36)], prefix="i")
    labels = ["a", "b", "c"]
    aaron, bea, cy = (add_member(project, name) for name in ("aaron", "bea", "cy"))
    rng = np.random.default_rng(1)
    rows = [(item, aaron, labels[0]) for item in items[30:]]
    for n, item in enumerate(items[:30]):
        first = int(rng.integers(0, 3))
        second = first if n % 6 == 0 else (first + 1) % 3
        rows += [(item, bea, labels[first]), (item, cy, labels[second])]
    make_annotations(project, rows)
    run = AnalysisRun.objects.create(project=project, kind="agreement", params={})
    run_agreement(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    client.force_login(manager)
    return project, run, client.get(f"/projects/{project.pk}/agreement/")


def test_confusion_opens_on_the_annotator_compared_with_the_others_most(report):
    _, run, response = report
    compared = {row["annotator"]: row["n"] for row in run.result["per_annotator"]}
    assert compared["aaron"] == 0 and compared["bea"] == compared["cy"] == 30
    assert run.result["confusion"]["annotators"][0]["annotator"] == "aaron"  # listed first
    assert response.context["confusion_annotator"] == "bea"  # most compared, then by name
    assert 'value="bea" selected' in response.content.decode()


def test_count_colour_scales_start_at_zero(report):
    _, _, response = report
    trace = response.context["confusion_figure"]["data"][0]
    assert trace["zmin"] == 0 and trace["zmax"] == max(map(max, trace["z"]))
    heatmap = figures.confusion_heatmap(
        ["x", "y"], [[5, 9], [7, 6]], title="t", rows="r", columns="c"
    )["data"][0]
    assert (heatmap["zmin"], heatmap["zmax"]) == (0, 9)


def test_alpha_axis_holds_every_interval(report):
    _, run, response = report
    versions = run.result["by_guideline_version"]
    lows = [v["alpha_ci"][0] for v in versions]
    highs = [v["alpha_ci"][1] for v in versions]
    assert min(lows) < -0.1  # the case that used to be clipped
    low, high = response.context["version_figure"]["layout"]["yaxis"]["range"]
    assert low < min(lows) and high > max([1.0, *highs])


@pytest.mark.parametrize(
    ("alpha", "interval", "caveat"),
    [
        (0.805, [0.767, 0.844], "reaches down to 0.767, which reads “tentative”"),
        (0.700, [0.650, 0.760], "reaches down to 0.650, which reads “not reliable”"),
        (0.830, [0.810, 0.850], None),
    ],
)
def test_a_reading_says_when_its_interval_reaches_a_step_lower(report, client, alpha, interval,
                                                                caveat):  # fmt: skip
    project, run, _ = report
    run.result = {**run.result, "alpha": alpha, "alpha_ci": interval}
    run.result["reading"] = "reliable" if alpha >= 0.8 else "tentative"
    run.save(update_fields=["result"])
    page = client.get(f"/projects/{project.pk}/agreement/").content.decode()
    if caveat is None:
        assert 'id="interval-caveat"' not in page
    else:
        assert caveat in page
