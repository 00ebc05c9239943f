"""Model suggestions in Chromium: shown beside the item, or pre-selected and confirmed with one
key; a span project's editor starting from the model's spans; the anchoring section of the
agreement report."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from analysis.models import AnalysisRun
from analysis.services.agreement import AgreementParams, agreement_run
from analysis.services.predictions import predictions_upload, token_predictions_upload
from labeling.models import Annotation, Project
from labeling.spans import token_bounds
from tests.analysis.test_anchoring import simulate, store
from tests.conftest import log_in
from tests.factories import add_member, make_items, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1366, 900
REVIEWS = [
    "The battery lasts all day and the screen is sharp.",
    "It broke after a week; the seller never answered.",
    "Does what it says, nothing more.",
]
# The model's (negative, positive) probabilities per review: right, right, and a coin flip.
PROBABILITIES = [[0.08, 0.92], [0.81, 0.19], [0.45, 0.55]]


def suggested_project(manager, mode: str) -> Project:
    project = make_project(
        manager, name=f"Reviews ({mode})", overlap=1, suggestions=mode, suggestion_model="bert"
    )
    make_items(project, REVIEWS, prefix="r")
    predictions_upload(
        project=project, model="bert", classes=["negative", "positive"], user=None,
        rows=[{"external_id": f"r{n}", "probabilities": p} for n, p in enumerate(PROBABILITIES)],
    )  # fmt: skip
    add_member(project, "ann")
    return project


def shown_item(page) -> int:
    return int(page.locator("#annotate-workspace").get_attribute("data-item"))


def next_item(page, previous: int) -> None:
    page.wait_for_function(
        "prev => { const w = document.getElementById('annotate-workspace');"
        " return w && w.dataset.item !== String(prev); }",
        arg=previous,
    )


def stored(project) -> list[tuple]:
    return list(
        Annotation.objects.filter(project=project)
        .order_by("item__external_id")
        .values_list(
            "item__external_id", "label__name", "suggestion_model", "suggestion_label__name"
        )
    )


def test_show_mode_puts_the_suggestion_beside_the_item_and_the_keys_choose(
    live_server, page, manager, artifacts
):
    project = suggested_project(manager, "show")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in(page, live_server, "ann")
    page.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    hint = page.get_by_role("complementary", name="Model suggestion")
    expect(hint).to_contain_text("Model suggests positive 92%")
    expect(hint).to_contain_text("a hint, not a choice")
    expect(page.locator(".label-btn.chosen")).to_have_count(0)  # nothing pre-selected
    page.screenshot(path=str(artifacts / "annotate-suggestion-show.png"), full_page=True)

    page.keyboard.press("Enter")  # nothing chosen: Enter stores nothing
    page.wait_for_timeout(300)
    assert not Annotation.objects.exists()
    for key in ("2", "2", "1"):  # agrees, disagrees with "negative 81%", picks negative
        item = shown_item(page)
        page.keyboard.press(key)
        if key != "1":
            next_item(page, item)
    expect(page.get_by_role("heading", name="All done")).to_be_visible()
    assert stored(project) == [
        ("r0", "positive", "bert", "positive"),
        ("r1", "positive", "bert", "negative"),
        ("r2", "negative", "bert", "positive"),
    ]


def test_prefill_mode_preselects_the_suggestion_and_enter_confirms_it(
    live_server, page, manager, artifacts
):
    project = suggested_project(manager, "prefill")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in(page, live_server, "ann")
    page.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    expect(page.locator(".label-btn.chosen")).to_have_text("2 positive")
    expect(page.get_by_role("complementary", name="Model suggestion")).to_contain_text(
        "pre-selected: Enter confirms"
    )
    page.screenshot(path=str(artifacts / "annotate-suggestion-prefill.png"), full_page=True)

    item = shown_item(page)
    page.keyboard.press("Enter")  # one key confirms the suggestion
    next_item(page, item)
    expect(page.locator(".label-btn.chosen")).to_have_text("1 negative")
    item = shown_item(page)
    page.keyboard.press("2")  # another label's key changes it
    next_item(page, item)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="All done")).to_be_visible()
    assert stored(project) == [
        ("r0", "positive", "bert", "positive"),
        ("r1", "positive", "bert", "negative"),
        ("r2", "positive", "bert", "positive"),
    ]


def test_a_span_projects_editor_starts_from_the_models_spans(live_server, page, manager, artifacts):
    project = make_project(
        manager, name="People and places", labels=("PER", "LOC"), overlap=1,
        task_type=Project.TaskType.SPANS, suggestions="prefill", suggestion_model="ner",
    )  # fmt: skip
    text = "Ada Lovelace met Charles Babbage in London."
    make_items(project, [text])
    probabilities = [[0.9, 0.05, 0.05] for _ in token_bounds(text)]
    for token, type_column in ((0, 1), (1, 1), (6, 2)):  # Ada Lovelace: PER; London: LOC
        probabilities[token] = [0.1, 0.0, 0.0]
        probabilities[token][type_column] = 0.9
    token_predictions_upload(
        project=project, model="ner", classes=["O", "PER", "LOC"], user=None,
        rows=[{"external_id": "e0", "probabilities": probabilities}],
    )  # fmt: skip
    add_member(project, "ann")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in(page, live_server, "ann")
    page.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    expect(page.locator("#annotate-form .span-doc .tok.s-first")).to_have_count(2)
    expect(page.get_by_role("complementary", name="Model suggestion")).to_contain_text("2 spans")
    page.screenshot(path=str(artifacts / "annotate-suggestion-spans.png"), full_page=True)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="All done")).to_be_visible()
    ids = dict(project.labels.values_list("name", "id"))
    annotation = Annotation.objects.get()
    assert annotation.spans == [[0, 12, ids["PER"]], [36, 42, ids["LOC"]]]
    assert annotation.suggestion_spans == annotation.spans and annotation.suggestion_model == "ner"


def test_the_agreement_report_reads_out_anchoring(live_server, page, manager, artifacts):
    project = make_project(manager, labels=("a", "b", "c"), overlap=3, name="Anchored")
    store(project, simulate(600, seed=5))
    result, persist = agreement_run(
        project=project, params=AgreementParams.parse({}, project=project), progress=lambda *a: None
    )
    run = AnalysisRun.objects.create(
        project=project, kind="agreement", status="succeeded", progress=1.0, result=result,
        finished_at=timezone.now(),
    )  # fmt: skip
    persist(run)
    add_member(project, "rae", "reviewer")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in(page, live_server, "rae")
    page.goto(f"{live_server.url}/projects/{project.pk}/agreement/")
    section = page.get_by_role("region", name="Suggestions and anchoring")
    expect(section.locator(".anchoring-verdict")).to_contain_text(
        "Annotators followed a wrong suggestion in"
    )
    expect(section).to_contain_text("shown a suggestion")
    expect(section.locator("#anchoring-accuracy .main-svg").first).to_be_visible()
    section.scroll_into_view_if_needed()
    section.screenshot(path=str(artifacts / "agreement-anchoring.png"))
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH


def test_the_settings_page_says_how_many_items_have_a_suggestion(
    live_server, page, manager, artifacts
):
    project = suggested_project(manager, "show")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in(page, live_server, "manager")
    page.goto(f"{live_server.url}/projects/{project.pk}/edit/")
    note = page.locator("#suggestion-state")
    expect(note).to_contain_text("3 items have a suggestion from the model “bert”")
    page.locator("select[name=suggestions]").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "settings-suggestions.png"))
    page.locator("input[name=suggestion_model]").fill("gpt")
    page.get_by_role("button", name="Save").click()
    page.goto(f"{live_server.url}/projects/{project.pk}/edit/")
    expect(note).to_contain_text("No item has a suggestion from the model “gpt”")
