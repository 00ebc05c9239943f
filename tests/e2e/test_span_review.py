"""A reviewer resolves span disagreements in Chromium at 1366x900: each annotator's spans one
above the other on the same text, the final spans edited in the span editor (started from the
token majority or from one annotator), saved as the item's review; sent back to relabel or
made a worked example as for classification; annotators are kept out."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from analysis.models import AnalysisRun, ItemDisagreement
from labeling.models import Project, Review, WorkedExample
from tests.conftest import log_in
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1366, 900
ADA = "Ada Lovelace met Charles Babbage in London, 1833."
HOPPER = "Grace Hopper joined the Navy in New York."


@pytest.fixture
def ner(manager) -> Project:
    """Three annotators who disagree on both sentences; an agreement run ranks them."""
    project = make_project(
        manager, name="People and places", labels=("PER", "ORG", "LOC", "DATE"),
        task_type=Project.TaskType.SPANS, overlap=3,
    )  # fmt: skip
    ada, hopper = make_items(project, {"ada": ADA, "hopper": HOPPER})
    ann, bob, cyd = (add_member(project, name) for name in ("ann", "bob", "cyd"))
    add_member(project, "rev", role="reviewer")
    make_annotations(
        project,
        [
            (ada, ann, [(0, 12, "PER"), (17, 32, "PER"), (36, 42, "LOC")]),
            (ada, bob, [(0, 12, "PER"), (17, 32, "ORG"), (36, 42, "LOC"), (44, 48, "DATE")]),
            (ada, cyd, [(4, 12, "PER"), (17, 32, "PER"), (36, 42, "ORG")]),
            (hopper, ann, [(0, 12, "PER"), (24, 28, "ORG")]),
            (hopper, bob, [(0, 12, "PER"), (32, 40, "LOC")]),
            (hopper, cyd, [(0, 5, "PER"), (24, 28, "ORG"), (32, 40, "LOC")]),
        ],
    )
    run = AnalysisRun.objects.create(
        project=project, kind=AnalysisRun.Kind.AGREEMENT, status=AnalysisRun.Status.SUCCEEDED,
        finished_at=timezone.now(), result={},
    )  # fmt: skip
    ItemDisagreement.objects.create(run=run, item=ada, score=0.42, n_annotations=3)
    ItemDisagreement.objects.create(run=run, item=hopper, score=0.31, n_annotations=3)
    return project


def open_disagreements(page, live_server, project, user="rev") -> None:
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in(page, live_server, user)
    page.goto(f"{live_server.url}/projects/{project.pk}/disagreements/")


def row(page, item) -> object:
    return page.locator(f"#item-{item.pk}")


def final_marked(locator) -> list[list[str]]:
    return locator.evaluate(
        """(row) => {
            const out = [];
            let words = [];
            for (const el of row.querySelectorAll(".span-doc .tok")) {
                if (!el.classList.contains("span")) continue;
                if (el.classList.contains("s-first")) words = [];
                words.push(el.textContent);
                if (el.classList.contains("s-last")) out.push([words.join(" "), el.dataset.label]);
            }
            return out;
        }"""
    )


def test_reviewer_sees_the_annotators_stacked_and_saves_final_spans_with_the_editor(
    live_server, page, ner, artifacts
):
    ada = ner.items.get(external_id="ada")
    hopper = ner.items.get(external_id="hopper")
    open_disagreements(page, live_server, ner)
    first = row(page, ada)
    # ranked by disagreement; each annotator's spans one above the other on the same text
    expect(page.locator("table.disagreements tbody tr").first).to_have_id(f"item-{ada.pk}")
    stack = first.locator(".span-stack .span-stack-row")
    expect(stack).to_have_count(3)
    expect(stack.nth(0)).to_contain_text("ann")
    expect(stack.nth(1).locator("mark[data-label=DATE]")).to_have_text("1833")
    expect(stack.nth(2).locator("mark[data-label=ORG]")).to_have_text("London")
    expect(stack.nth(2).locator("mark[data-label=PER]").first).to_have_text("Lovelace")
    # the editor starts from the token majority: PER PER LOC (1833 only bob's)
    assert final_marked(first) == [
        ["Ada Lovelace", "PER"], ["Charles Babbage", "PER"], ["London", "LOC"],
    ]  # fmt: skip
    page.screenshot(path=str(artifacts / "span-review-stacked.png"), full_page=True)

    # start from bob's spans instead, then fix them with the keyboard: Babbage is a PER
    first.locator(".span-start", has_text="bob").click()
    assert final_marked(first)[1] == ["Charles Babbage", "ORG"]
    first.locator(".span-doc .tok", has_text="Babbage").click()
    expect(first.locator(".span-menu")).to_be_visible()
    page.keyboard.press("1")  # relabel the span under the cursor
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Backspace")  # 1833 is not an entity here, says the reviewer
    assert final_marked(first) == [
        ["Ada Lovelace", "PER"], ["Charles Babbage", "PER"], ["London", "LOC"],
    ]  # fmt: skip
    first.locator("input[name=note]").fill("Babbage is a person")
    first.locator(".span-doc .tok", has_text="met").click()  # back in the editor
    page.screenshot(path=str(artifacts / "span-review-editing.png"), full_page=True)
    page.keyboard.press("Enter")  # Enter in the editor resolves
    expect(first.locator(".message.success")).to_contain_text("resolved: 3 final span(s)")
    expect(first.locator(".span-stack-row.final mark")).to_have_count(3)

    names = dict(ner.labels.values_list("name", "id"))
    review = Review.objects.get(item=ada)
    assert review.spans == [[0, 12, names["PER"]], [17, 32, names["PER"]], [36, 42, names["LOC"]]]
    assert review.note == "Babbage is a person"
    assert review.reviewer.username == "rev"

    # the second item: resolved straight from cyd's spans with the Resolve button
    second = row(page, hopper)
    second.locator(".span-start", has_text="cyd").click()
    second.get_by_role("button", name="Resolve").click()
    expect(second.locator(".message.success")).to_be_visible()
    assert Review.objects.get(item=hopper).spans == [
        [0, 5, names["PER"]], [24, 28, names["ORG"]], [32, 40, names["LOC"]],
    ]  # fmt: skip
    page.screenshot(path=str(artifacts / "span-review-resolved.png"), full_page=True)

    # the item page shows each annotation's spans and the review's
    page.goto(f"{live_server.url}/projects/{ner.pk}/items/{ada.pk}/")
    expect(page.locator(".item-review-spans mark")).to_have_count(3)
    expect(page.locator(".item-spans .span-stack-row")).to_have_count(3)
    page.screenshot(path=str(artifacts / "span-item-page.png"), full_page=True)


def test_a_refused_final_span_set_says_why_and_keeps_the_reviewers_spans(live_server, page, ner):
    ada = ner.items.get(external_id="ada")
    open_disagreements(page, live_server, ner)
    first = row(page, ada)
    first.locator(".span-start", has_text="bob").click()
    ner.labels.filter(name="DATE").delete()  # meanwhile
    first.get_by_role("button", name="Resolve").click()
    expect(first.locator(".message.error")).to_contain_text("unknown label 'DATE'")
    expect(first.locator(".span-doc.span-tokens")).to_have_count(1)
    # bob's other spans are still in the editor
    assert final_marked(row(page, ada)) == [
        ["Ada Lovelace", "PER"], ["Charles Babbage", "ORG"], ["London", "LOC"],
    ]  # fmt: skip
    assert not Review.objects.exists()


def test_send_to_relabel_and_worked_example_work_for_span_items(live_server, page, ner):
    ada = ner.items.get(external_id="ada")
    hopper = ner.items.get(external_id="hopper")
    open_disagreements(page, live_server, ner, user="manager")
    row(page, hopper).get_by_role("button", name="Send to relabel").click()
    expect(row(page, hopper).locator(".message.success")).to_contain_text("sent back")
    hopper.refresh_from_db()
    assert hopper.relabel_requested_at is not None

    first = row(page, ada)
    first.locator("summary", has_text="Add as worked example").click()
    first.locator("select[name=label]").select_option("PER")
    first.locator("textarea[name=why]").fill("A full name is one PER span.")
    first.get_by_role("button", name="Add to guideline draft").click()
    expect(first.locator(".message.success")).to_contain_text("worked example")
    example = WorkedExample.objects.get()
    assert example.label.name == "PER" and example.item_id == ada.pk
    assert example.why == (
        "A full name is one PER span.\n\nCorrect spans: “Ada Lovelace” PER, "
        "“Charles Babbage” PER, “London” LOC."
    )


def test_an_annotator_cannot_open_the_span_disagreements(live_server, page, ner):
    open_disagreements(page, live_server, ner, user="ann")
    assert "Ada Lovelace" not in page.content()
    response = page.request.get(f"{live_server.url}/projects/{ner.pk}/disagreements/")
    assert response.status == 403
