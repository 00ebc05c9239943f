"""The Dashboard's "model accuracy per refresh" panel: the queue model's accuracy at each
refresh of the project's real history, drawn from the model_refresh runs."""

import re

import pytest
from django.urls import reverse

from analysis.models import AnalysisRun
from tests.factories import make_model_refresh_runs

pytestmark = pytest.mark.django_db


def curve(client, user, project):
    client.force_login(user)
    return client.get(reverse("analysis:model_curve", args=[project.pk]))


def test_a_reviewer_sees_one_point_per_refresh_with_its_interval_in_annotation_order(
    client, project, reviewer
):
    make_model_refresh_runs(
        project, [(400, 0.74, (0.70, 0.78)), (200, 0.61, (0.55, 0.67)), (600, 0.81, (0.77, 0.85))]
    )
    response = curve(client, reviewer, project)
    assert response.status_code == 200
    html = response.content.decode()
    # The table lists the refreshes by annotations, with accuracy and interval.
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td>builtin</td><td class="num">([\d.]+)</td>'
                      r'<td class="num">([\d.]+)–([\d.]+)</td>', html)  # fmt: skip
    assert rows == [
        ("200", "0.610", "0.550", "0.670"),
        ("400", "0.740", "0.700", "0.780"),
        ("600", "0.810", "0.770", "0.850"),
    ]
    # The SVG: one line through three points, a band, and the numbers in each point's title.
    assert html.count("<circle") == 3 and html.count("<polygon") == 1
    assert "builtin: 200 annotations, accuracy 0.610 (0.550-0.670)" in html
    assert "builtin: 600 annotations, accuracy 0.810 (0.770-0.850)" in html


def test_failed_runs_and_other_kinds_are_not_drawn(client, project, reviewer):
    make_model_refresh_runs(project, [(200, 0.6, (0.5, 0.7))])
    AnalysisRun.objects.create(
        project=project, kind="model_refresh", status=AnalysisRun.Status.FAILED, result=None
    )
    AnalysisRun.objects.create(
        project=project,
        kind=AnalysisRun.Kind.AGREEMENT,
        status=AnalysisRun.Status.SUCCEEDED,
        result={"n_annotations": 999, "accuracy": 0.1},
    )
    html = curve(client, reviewer, project).content.decode()
    assert html.count("<circle") == 1 and "999" not in html


def test_each_model_gets_its_own_line(client, project, reviewer):
    make_model_refresh_runs(project, [(200, 0.6, (0.5, 0.7)), (400, 0.7, (0.6, 0.8))])
    make_model_refresh_runs(project, [(300, 0.8, None)], model="bert-v2", order="uncertainty")
    html = curve(client, reviewer, project).content.decode()
    assert html.count("<polyline") == 1  # builtin has two points; bert-v2 one
    assert html.count("<circle") == 3
    assert "bert-v2: 300 annotations, accuracy 0.800</title>" in html  # no interval stored


def test_with_no_refresh_the_panel_says_so_in_plain_words(client, project, reviewer):
    html = curve(client, reviewer, project).content.decode()
    assert "No model refresh yet: when the queue is ordered by uncertainty or ActiveLab" in html
    assert "after every 200 new annotations" in html and "<svg" not in html


def test_refreshes_without_a_measured_accuracy_are_listed_as_such(client, project, reviewer):
    make_model_refresh_runs(project, [(200, None, None), (400, None, None)])
    html = curve(client, reviewer, project).content.decode()
    assert "The model has been refreshed 2 times, but none of the refreshes" in html
    assert "<svg" not in html


def test_annotators_cannot_see_the_curve_and_strangers_do_not_find_the_project(
    client, project, annotator, make_user
):
    assert curve(client, annotator, project).status_code == 403
    assert curve(client, make_user("stranger"), project).status_code == 404


def test_a_model_name_is_text_not_markup(client, project, reviewer):
    make_model_refresh_runs(project, [(200, 0.6, (0.5, 0.7))], model="<script>alert(1)</script>")
    html = curve(client, reviewer, project).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_dashboard_loads_the_panel_by_its_url(client, project, manager):
    client.force_login(manager)
    html = client.get(reverse("labeling:dashboard", args=[project.pk])).content.decode()
    url = reverse("analysis:model_curve", args=[project.pk])
    assert f'hx-get="{url}"' in html and 'hx-trigger="load"' in html
