"""The review queue of likely span errors in Chromium at 1366x900, worked from the keyboard
only: the flagged tokens marked on the text with their given and suggested types, j/k to
move, a to accept (the suggestions become the item's Review), g to keep, m to send back, e
for a worked example, / to filter by entity type or slice. Screenshots go to the test's
temporary directory."""

import pytest
from playwright.sync_api import expect

from analysis.models import LabelIssue
from labeling.models import Membership, Project, Review, WorkedExample
from tests.conftest import log_in
from tests.factories import add_member, make_items, make_project, make_span_issue_run

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1366, 900
SENTENCES = {
    "n-1": "Ada Lovelace met Charles Babbage in London on 5 June 1833 .",
    "n-2": "Grace Hopper joined the Navy in New York in 1943 .",
    "n-3": "Shares of Acme Robotics rose after Alan Turing spoke in Lagos .",
    "n-4": "On 3 March , Globex opened an office in Osaka .",
    "n-5": "<script>window.pwned=1</script> Initech hired Radia Perlman in Quito .",
    "n-6": "Rain is expected in Tallinn until 9 May , forecasters said .",
}


def at(external_id: str, phrase: str) -> tuple[int, int]:
    start = SENTENCES[external_id].index(phrase)
    return start, start + len(phrase)


def tokens(external_id: str, phrase: str, given, suggested) -> list[tuple]:
    """Each token of `phrase` flagged with the same given and suggested type."""
    start, _ = at(external_id, phrase)
    out, offset = [], start
    for word in phrase.split(" "):
        out.append((offset, offset + len(word), given, suggested))
        offset += len(word) + 1
    return out


def span(external_id: str, phrase: str, kind: str) -> tuple:
    return (*at(external_id, phrase), kind)


@pytest.fixture
def news(manager) -> Project:
    project = make_project(
        manager, name="News entities", labels=("PER", "ORG", "LOC", "DATE"),
        task_type=Project.TaskType.SPANS,
    )  # fmt: skip
    items = make_items(
        project, SENTENCES, metadata=lambda n: {"desk": "world" if n % 3 else "business"}
    )
    ids = {item.external_id: item for item in items}
    make_span_issue_run(
        project,
        [
            {"item": ids["n-1"], "score": 0.08,  # type swap: Babbage given ORG
             "given": [span("n-1", "Ada Lovelace", "PER"), span("n-1", "Charles Babbage", "ORG"),
                       span("n-1", "London", "LOC"), span("n-1", "5 June 1833", "DATE")],
             "flagged": tokens("n-1", "Charles Babbage", "ORG", "PER")},
            {"item": ids["n-2"], "score": 0.15,  # boundary: "the Navy", and a miss: New York
             "given": [span("n-2", "Grace Hopper", "PER"), span("n-2", "the Navy", "ORG"),
                       span("n-2", "1943", "DATE")],
             "flagged": tokens("n-2", "the", "ORG", None) + tokens("n-2", "New York", None, "LOC")},
            {"item": ids["n-3"], "score": 0.22,  # a false span: "Shares"
             "given": [span("n-3", "Shares", "ORG"), span("n-3", "Acme Robotics", "ORG"),
                       span("n-3", "Alan Turing", "PER"), span("n-3", "Lagos", "LOC")],
             "flagged": tokens("n-3", "Shares", "ORG", None)},
            {"item": ids["n-4"], "score": 0.31,  # a missed date
             "given": [span("n-4", "Globex", "ORG"), span("n-4", "Osaka", "LOC")],
             "flagged": tokens("n-4", "3 March", None, "DATE")},
            {"item": ids["n-5"], "score": 0.40,  # hostile text; Quito given ORG
             "given": [span("n-5", "Initech", "ORG"), span("n-5", "Radia Perlman", "PER"),
                       span("n-5", "Quito", "ORG")],
             "flagged": tokens("n-5", "Quito", "ORG", "LOC")},
            {"item": ids["n-6"], "score": 0.97,
             "given": [span("n-6", "Tallinn", "LOC"), span("n-6", "9 May", "DATE")],
             "flagged": []},
        ],
        model="ner-tagger",  # uploaded token probabilities
    )  # fmt: skip
    add_member(project, "rev", Membership.Role.REVIEWER)
    return project


def stored(project, spans) -> list[list]:
    ids = dict(project.labels.values_list("name", "id"))
    return [[start, end, ids[kind]] for start, end, kind in spans]


def test_reviewer_walks_the_span_queue_from_the_keyboard(live_server, page, news, tmp_path):
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in(page, live_server, "rev")
    page.goto(f"{live_server.url}/projects/{news.pk}/issues/")
    expect(page.get_by_role("heading", name="Label issues")).to_be_visible()
    expect(page.locator("#issues-method")).to_have_text("token_confident_learning")
    expect(page.locator("#issues-flagged-tokens")).to_have_text("9")
    rows = page.locator("li.issue")
    expect(rows).to_have_count(5)  # open issues only; n-6 flags nothing
    first = rows.nth(0)
    expect(first).to_have_class("issue flagged current")
    expect(first.locator(".issue-head")).to_contain_text("n-1")
    # the spans judged, coloured by type; the flagged tokens outlined with given -> suggested
    marks = first.locator(".span-issue-text mark.span")
    expect(marks).to_have_count(4)
    expect(marks.nth(1)).to_have_attribute("data-label", "ORG")
    expect(marks.nth(1)).to_have_text("Charles Babbage")
    flagged = first.locator(".span-issue-text mark.flag")
    expect(flagged).to_have_text(["Charles", "Babbage"])
    expect(flagged.first).to_have_attribute("data-change", "ORG → PER")
    expect(first.locator(".flag-list li")).to_have_text(["Charles ORG → PER", "Babbage ORG → PER"])
    preview = first.locator(".accept-preview mark")
    expect(preview.nth(1)).to_have_attribute("data-label", "PER")
    second = rows.nth(1)
    expect(second.locator(".flag-list li")).to_have_text(
        ["the ORG → O (not an entity)", "New O → LOC", "York O → LOC"]
    )
    after = second.locator(".accept-preview mark")
    expect(after).to_have_text(["Grace Hopper", "Navy", "New York", "1943"])
    assert after.evaluate_all("ms => ms.map(m => m.dataset.label)") == ["PER", "ORG", "LOC", "DATE"]
    expect(first.locator(".badge.bad")).to_have_text("likely error")
    page.screenshot(path=str(tmp_path / "span-issue-queue.png"))
    page.evaluate("document.getElementById('issue-keys').scrollIntoView()")
    page.screenshot(path=str(tmp_path / "span-issue-queue-list.png"))

    page.keyboard.press("a")  # accept n-1: Babbage becomes a PER
    expect(first.locator(".badge.resolution")).to_have_text("Suggestion accepted")
    expect(second).to_have_class("issue flagged current")
    page.keyboard.press("a")  # accept n-2: "Navy" ORG, and New York LOC added
    expect(second.locator(".badge.resolution")).to_have_text("Suggestion accepted")
    expect(rows.nth(2)).to_have_class("issue flagged current")
    page.keyboard.press("g")  # keep n-3: "Shares" of ... stays, says the reviewer
    expect(rows.nth(2).locator(".badge.resolution")).to_have_text("Label kept")
    page.keyboard.press("k")  # up and down again
    expect(rows.nth(2)).to_have_class("issue flagged resolved current")
    page.keyboard.press("j")
    expect(rows.nth(3)).to_have_class("issue flagged current")
    page.keyboard.press("e")  # n-4: a worked example teaching DATE (preselected)
    example_form = rows.nth(3).locator(".example-form")
    expect(example_form.locator("select[name=label]")).to_be_focused()
    expect(example_form.locator("select[name=label]")).to_have_value("DATE")
    page.keyboard.press("Tab")
    expect(example_form.locator("textarea")).to_be_focused()
    page.keyboard.type("A day and month is one DATE span.")
    page.screenshot(path=str(tmp_path / "span-issue-example-form.png"))
    page.keyboard.press("Control+Enter")
    expect(rows.nth(3).locator(".badge.resolution")).to_have_text("Ambiguous")
    expect(rows.nth(4)).to_have_class("issue flagged current")
    page.keyboard.press("m")  # n-5: back to the annotators
    expect(rows.nth(4).locator(".badge.resolution")).to_have_text("Ambiguous")
    hostile = rows.nth(4).locator(".span-issue-text")
    expect(hostile).to_contain_text("<script>window.pwned=1</script> Initech")
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=str(tmp_path / "span-issue-after-keys.png"), full_page=True)

    names = dict(news.labels.values_list("name", "id"))
    reviews = {
        item: spans
        for item, spans in Review.objects.filter(item__project=news).values_list(
            "item__external_id", "spans"
        )
    }
    assert reviews == {
        "n-1": stored(news, [span("n-1", "Ada Lovelace", "PER"),
                             span("n-1", "Charles Babbage", "PER"), span("n-1", "London", "LOC"),
                             span("n-1", "5 June 1833", "DATE")]),
        "n-2": stored(news, [span("n-2", "Grace Hopper", "PER"), span("n-2", "Navy", "ORG"),
                             span("n-2", "New York", "LOC"), span("n-2", "1943", "DATE")]),
    }  # fmt: skip
    resolutions = dict(
        LabelIssue.objects.filter(run__project=news).values_list("item__external_id", "resolution")
    )
    assert resolutions == {
        "n-1": "accepted", "n-2": "accepted", "n-3": "kept", "n-4": "ambiguous",
        "n-5": "ambiguous", "n-6": "open",
    }  # fmt: skip
    example = WorkedExample.objects.get()
    assert (example.item.external_id, example.label_id) == ("n-4", names["DATE"])
    assert example.why.endswith(": “3” O → DATE, “March” O → DATE.")
    assert news.items.get(external_id="n-5").relabel_requested_at is not None

    # filters from the keyboard: / focuses them, Enter applies, Escape goes back to the list
    page.keyboard.press("/")
    entity_type = page.locator("#issues-filters select[name=entity_type]")
    expect(entity_type).to_be_focused()
    page.keyboard.press("Escape")
    expect(rows.nth(4)).to_be_focused()
    page.keyboard.press("/")
    page.keyboard.type("L")  # the menu's type-ahead: LOC
    expect(entity_type).to_have_value("LOC")
    page.keyboard.press("Tab")  # Slice
    page.keyboard.type("d")  # desk
    page.keyboard.press("Tab")  # is
    page.keyboard.type("world")
    page.keyboard.press("Tab")  # Score at most
    page.keyboard.press("Tab")  # Show
    page.keyboard.type("a")  # all decisions
    page.keyboard.press("Enter")
    expect(page).to_have_url(
        f"{live_server.url}/projects/{news.pk}/issues/?entity_type=LOC&meta_key=desk"
        "&meta_value=world&max_quality=&resolution="
    )
    # LOC flagged (given or suggested) in the world desk: n-2 (New York) and n-5 (Quito)
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".issue-head")).to_contain_text("n-2")
    expect(rows.nth(1).locator(".flag-list li")).to_have_text(["Quito ORG → LOC"])
    page.keyboard.press("j")
    page.keyboard.press("a")  # the reviewer accepts n-5 after all
    expect(rows.nth(1).locator(".badge.resolution")).to_have_text("Suggestion accepted")
    page.screenshot(path=str(tmp_path / "span-issue-filtered.png"))
    assert Review.objects.get(item__external_id="n-5").spans == stored(
        news,
        [span("n-5", "Initech", "ORG"), span("n-5", "Radia Perlman", "PER"),
         span("n-5", "Quito", "LOC")],
    )  # fmt: skip
