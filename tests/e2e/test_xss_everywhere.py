"""XSS payloads in every user-supplied string stay inert on every page, checked in Chromium.

Payloads go into the project name, label names, item text, metadata keys and values, guideline
markdown and changelog, a worked example's "why", annotation comments and a review note. The
analysis runs are made by the real worker, so their pages show those strings too. Then a
manager, a reviewer and an annotator open every page they can reach: no dialog may open, no
script error may happen, and no payload may become an element or an event handler.
"""

import csv

import pandas as pd
import pytest
from rest_framework.test import APIClient

from analysis.models import AnalysisRun
from labeling.models import Membership
from labeling.services.annotating import annotation_submit
from labeling.services.guidelines import (
    guideline_draft_update,
    guideline_publish,
    worked_example_add,
)
from labeling.services.reviewing import review_set
from tests.conftest import log_in, wait_for
from tests.factories import PASSWORD, add_member, make_items, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
SVG = '"><svg onload=alert(1)>'
JS_LINK = "javascript:alert(1)"
PAYLOADS = [SCRIPT, IMG, SVG, f"[click]({JS_LINK})", f'<a href="{JS_LINK}">click</a>']
ALL = " ".join(PAYLOADS)
LABELS = (IMG, SVG)
N_ITEMS = 60

PAGES = [
    "/",
    "/projects/{p}/",
    "/projects/{p}/edit/",
    "/projects/{p}/members/",
    "/projects/{p}/guidelines/",
    "/projects/{p}/guidelines/v2/",
    "/projects/{p}/items/",
    "/projects/{p}/imports/",
    "/projects/{p}/annotate/",
    "/projects/{p}/dashboard/",
    "/projects/{p}/export/",
    "/projects/{p}/agreement/",
    "/projects/{p}/disagreements/",
    "/projects/{p}/issues/",
    "/projects/{p}/baselines/",
    "/projects/{p}/slices/",
    "/projects/{p}/drift/",
    "/runs/{run}/status/",
]
# what each role must be able to open (the rest answer 403 and are checked all the same)
ANNOTATOR_PAGES = {"/", "/projects/{p}/", "/projects/{p}/guidelines/"}
ANNOTATOR_PAGES |= {"/projects/{p}/guidelines/v2/", "/projects/{p}/annotate/"}
MANAGER_ONLY = {"/projects/{p}/edit/", "/projects/{p}/members/", "/projects/{p}/imports/"}

# Elements and attributes a payload would have become had it been parsed as markup.
INJECTED = """() => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const value = attr.value.replace(/\\s/g, '').toLowerCase();
      // the templates' own handlers are fine; one carrying the payload is not
      if (attr.name.startsWith('on') && value.includes('alert(1)'))
        found.push(el.tagName + ' ' + attr.name);
      const isUrl = ['href', 'src', 'action', 'formaction', 'xlink:href'].includes(attr.name);
      if (isUrl && value.startsWith('javascript:')) found.push(el.tagName + ' ' + attr.name);
    }
  }
  // sanitized guideline markdown may keep a plain <img>; never an svg, iframe or handler
  for (const el of document.querySelectorAll('svg[onload], iframe, object, embed'))
    found.push('element ' + el.tagName);
  for (const el of document.querySelectorAll('script'))
    // data scripts (chart JSON) may carry the text; the payload's own element may not exist
    if (el.textContent.trim() === 'alert(1)') found.push('the payload script element');
  return found;
}"""


def sentences(sentiment_data) -> list[str]:
    frame = pd.read_csv(
        sentiment_data / "amazon.tsv",
        sep="\t",
        header=None,
        names=["text", "label"],
        quoting=csv.QUOTE_NONE,
    ).iloc[:N_ITEMS]
    return list(zip(frame["text"], frame["label"], strict=True))


@pytest.fixture
def poisoned(make_user, sentiment_data, celery_worker):
    manager = make_user("mia", password=PASSWORD)
    project = make_project(manager, name=f"Reviews {SCRIPT}{IMG}", labels=LABELS, overlap=3)
    rows = sentences(sentiment_data)
    items = make_items(
        project,
        {
            f"x-{i}{SVG}" if i == 0 else f"x-{i}": (
                f"{text} {ALL}" if i % 10 == 0 or i >= N_ITEMS - 5 else text
            )
            for i, (text, _label) in enumerate(rows)
        },
        metadata=lambda i: {IMG: SVG if i % 2 else JS_LINK, "source": SCRIPT if i % 3 else "web"},
    )
    people = [add_member(project, f"ann{k}", Membership.Role.ANNOTATOR) for k in range(3)]
    add_member(project, "rae", Membership.Role.REVIEWER)
    for i, (item, (_text, truth)) in enumerate(zip(items[:-5], rows, strict=False)):
        for k, person in enumerate(people):
            label = LABELS[truth if (i + k) % 6 else 1 - truth]
            annotation_submit(
                item=item, annotator=person, label=label, comment=ALL if i % 7 == 0 else ""
            )
    review_set(item=items[0], reviewer=manager, label=LABELS[0], note=ALL)
    guideline_draft_update(
        project=project, body="# Rules\n\n" + "\n\n".join(PAYLOADS), changelog=ALL, user=manager
    )
    worked_example_add(project=project, item=items[0], label=LABELS[1], why=ALL, user=manager)
    guideline_publish(project=project, user=manager)
    guideline_draft_update(project=project, body="# Draft\n\n" + ALL, user=manager)

    client = APIClient()
    client.force_authenticate(manager)
    run_ids = []
    for kind in ("agreement", "label_issues", "baselines", "slices"):
        answer = client.post(f"/api/v1/projects/{project.pk}/runs/", {"kind": kind}, format="json")
        assert answer.status_code == 202, answer.json()
        run_ids.append(answer.json()["id"])

    def all_ended():
        runs = AnalysisRun.objects.filter(pk__in=run_ids)
        return all(run.status in ("succeeded", "failed") for run in runs) and runs

    runs = wait_for(all_ended, timeout=300, what="the analysis runs", on_timeout=celery_worker.log)
    assert {run.kind: run.status for run in runs} == dict.fromkeys(
        ("agreement", "label_issues", "baselines", "slices"), "succeeded"
    ), [(run.kind, run.error) for run in runs]
    return project, run_ids[0]


def test_payloads_stay_inert_on_every_page_for_every_role(live_server, page, poisoned, artifacts):
    project, run_id = poisoned
    dialogs, errors = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: errors.append(str(error)))

    opened = {}
    for username, role in (("mia", "manager"), ("rae", "reviewer"), ("ann0", "annotator")):
        log_in(page, live_server, username)
        for template in PAGES:
            path = template.format(p=project.pk, run=run_id)
            response = page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(250)  # time for an image's onerror to fire
            opened[(role, template)] = response.status
            injected = page.evaluate(INJECTED)
            assert injected == [], (role, path, injected)
            assert dialogs == [] and errors == [], (role, path, dialogs, errors)
            if response.status == 200 and template in (
                "/projects/{p}/issues/",
                "/projects/{p}/annotate/",
            ):
                name = template.strip("/").split("/")[-1]
                page.screenshot(path=str(artifacts / f"xss-{role}-{name}.png"), full_page=True)

    for template in PAGES:
        assert opened[("manager", template)] == 200, template
        reviewer_may = template not in MANAGER_ONLY
        assert (opened[("reviewer", template)] == 200) == reviewer_may, template
        assert (opened[("annotator", template)] == 200) == (template in ANNOTATOR_PAGES), template
