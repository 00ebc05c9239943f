"""Reviewing likely span errors: accepting applies the flagged tokens' suggestions to the spans
judged and stores them as the item's Review; keep; ambiguous relabels or teaches an entity
type; the queue filters by entity type and slice; only reviewers and managers get in."""

import random

import pytest
from django.core.exceptions import ValidationError

from analysis.models import LabelIssue
from analysis.selectors import label_issue_rows
from analysis.services.label_issues import issue_resolve
from labeling.models import Membership, Project, Review, WorkedExample
from labeling.spans import spans_after_suggestions, spans_clean, token_bounds, token_spans
from tests.factories import add_member, make_items, make_project, make_span_issue_run

pytestmark = pytest.mark.django_db

ADA = "Ada Lovelace met Charles Babbage in London, 1833."
# tokens: Ada 0-3, Lovelace 4-12, met 13-16, Charles 17-24, Babbage 25-32, in 33-35,
# London 36-42, "," 42-43, 1833 44-48, "." 48-49
HOPPER = "Grace Hopper joined the Navy in New York."
# tokens: Grace 0-5, Hopper 6-12, joined 13-19, the 20-23, Navy 24-28, in 29-31, New 32-35,
# York 36-40, "." 40-41
PER, ORG, LOC, DATE = 1, 2, 3, 4  # label ids of the pure scenarios


def after(text, given, flagged):
    return spans_after_suggestions(given, flagged, token_bounds(text))


# --- the spans accepting stores (labeling.spans.spans_after_suggestions, pure) ------------


def test_a_type_swap_retypes_the_span():
    given = [[0, 12, PER], [17, 32, ORG], [36, 42, LOC]]
    flagged = [[17, 24, ORG, PER], [25, 32, ORG, PER]]
    assert after(ADA, given, flagged) == [[0, 12, PER], [17, 32, PER], [36, 42, LOC]]


def test_retyping_one_token_of_a_span_splits_it():
    flagged = [[25, 32, ORG, PER]]
    assert after(ADA, [[17, 32, ORG]], flagged) == [[17, 24, ORG], [25, 32, PER]]


def test_a_boundary_shift_left_extends_the_span_it_touches():
    flagged = [[0, 5, None, PER]]  # Grace: O -> PER, next to Hopper PER
    assert after(HOPPER, [[6, 12, PER], [24, 28, ORG]], flagged) == [[0, 12, PER], [24, 28, ORG]]


def test_a_boundary_shift_right_shrinks_the_span():
    flagged = [[29, 31, LOC, None]]  # "in New York" LOC -> "New York"
    assert after(HOPPER, [[24, 28, ORG], [29, 40, LOC]], flagged) == [[24, 28, ORG], [32, 40, LOC]]


def test_a_miss_becomes_one_new_span_over_adjacent_tokens():
    flagged = [[32, 35, None, LOC], [36, 40, None, LOC]]
    assert after(HOPPER, [[0, 12, PER]], flagged) == [[0, 12, PER], [32, 40, LOC]]


def test_a_false_span_is_removed():
    given = [[0, 12, PER], [36, 42, LOC], [44, 48, DATE]]
    assert after(ADA, given, [[44, 48, DATE, None]]) == [[0, 12, PER], [36, 42, LOC]]


def test_a_token_suggested_O_inside_a_span_splits_it_in_two():
    assert after(ADA, [[0, 16, PER]], [[4, 12, PER, None]]) == [[0, 3, PER], [13, 16, PER]]


def test_a_token_between_two_spans_of_its_new_type_joins_them():
    given = [[0, 3, PER], [13, 16, PER]]
    assert after(ADA, given, [[4, 12, None, PER]]) == [[0, 16, PER]]


def test_adjacent_spans_of_one_type_stay_apart_unless_a_change_touches_their_border():
    given = [[0, 3, PER], [4, 12, PER]]
    assert after(ADA, given, [[36, 42, None, LOC]]) == [*given, [36, 42, LOC]]
    assert after(ADA, given, [[4, 12, PER, PER]]) == given  # no change: nothing merges
    assert after(ADA, [[0, 3, PER], [4, 12, ORG]], [[4, 12, ORG, PER]]) == [[0, 12, PER]]


def test_no_flagged_token_leaves_the_spans_as_given():
    assert after(ADA, [[0, 12, PER]], []) == [[0, 12, PER]]
    assert after(ADA, [], []) == []


def test_a_token_or_span_off_the_text_is_refused():
    with pytest.raises(ValueError, match=r"flagged token \[4, 8\)"):
        after(ADA, [[0, 12, PER]], [[4, 8, PER, None]])
    with pytest.raises(ValueError, match=r"given span \[0, 5\)"):
        after(ADA, [[0, 5, PER]], [])
    with pytest.raises(ValueError, match=r"given span \[4, 12\)"):
        after(ADA, [[0, 12, PER], [4, 12, ORG]], [])  # overlapping


def test_random_suggestions_give_valid_spans_with_the_suggested_type_per_token():
    """Checked against the token-level meaning: every token ends with its suggested type (or
    its given one when not flagged), the spans pass the contract's check, and two adjacent
    spans of one type are only left apart where two untouched given spans met."""
    text = "The quick brown fox , of Acme Corp . , jumps over the lazy dog in New York City ."
    bounds = token_bounds(text)
    n = len(bounds)
    rng = random.Random(7)
    for _ in range(300):
        tags, given, t = [None] * n, [], 0
        while t < n:
            width = rng.randint(1, 3)
            if rng.random() < 0.5:
                kind = rng.choice([PER, ORG, LOC])
                end = min(t + width, n)
                given.append([bounds[t][0], bounds[end - 1][1], kind])
                tags[t:end] = [kind] * (end - t)
            t += width
        picked = rng.sample(range(n), rng.randint(0, 6))
        flagged = [[*bounds[i], tags[i], rng.choice([None, PER, ORG, LOC])] for i in picked]
        spans = spans_after_suggestions(given, flagged, bounds)
        expected = list(tags)
        for i, (*_, suggested) in zip(picked, flagged, strict=True):
            expected[i] = suggested
        got = [None] * n
        for a, b, kind in token_spans(bounds, spans):
            got[a:b] = [kind] * (b - a)
        assert got == expected
        ids = {"PER": PER, "ORG": ORG, "LOC": LOC}
        assert spans_clean(text, spans, labels=ids) == spans
        changed = {i for i, (*_, s) in zip(picked, flagged, strict=True) if s != tags[i]}
        given_starts = {start for start, _, _ in given}
        first = {start: i for i, (start, _) in enumerate(bounds)}
        last = {end: i for i, (_, end) in enumerate(bounds)}
        for left, right in zip(spans, spans[1:], strict=False):
            i = first[right[0]]
            if left[2] == right[2] and last[left[1]] == i - 1:  # same type, adjacent tokens
                assert right[0] in given_starts and not {i - 1, i} & changed


# --- the review queue in the database ------------------------------------------------------


@pytest.fixture
def ner(manager) -> Project:
    """Four items, each with one kind of span error the run flagged, and one it did not."""
    project = make_project(
        manager, name="People and places", labels=("PER", "ORG", "LOC", "DATE"),
        task_type=Project.TaskType.SPANS,
    )  # fmt: skip
    swap, shift, miss, false, clean = make_items(
        project,
        {"swap": ADA, "shift": HOPPER, "miss": HOPPER, "false": ADA, "clean": ADA},
        metadata=lambda n: {"source": "wiki" if n % 2 else "news"},
    )
    make_span_issue_run(
        project,
        [
            {"item": swap, "score": 0.10,
             "given": [(0, 12, "PER"), (17, 32, "ORG"), (36, 42, "LOC")],
             "flagged": [(17, 24, "ORG", "PER"), (25, 32, "ORG", "PER")]},
            {"item": shift, "score": 0.20, "given": [(6, 12, "PER"), (29, 40, "LOC")],
             "flagged": [(0, 5, None, "PER"), (29, 31, "LOC", None)]},
            {"item": miss, "score": 0.30, "given": [(0, 12, "PER"), (24, 28, "ORG")],
             "flagged": [(32, 35, None, "LOC"), (36, 40, None, "LOC")]},
            {"item": false, "score": 0.40,
             "given": [(0, 12, "PER"), (36, 42, "LOC"), (44, 48, "DATE")],
             "flagged": [(44, 48, "DATE", None)]},
            {"item": clean, "score": 0.95, "given": [(0, 12, "PER")], "flagged": []},
        ],
    )  # fmt: skip
    return project


@pytest.fixture
def rev(ner):
    return add_member(ner, "rev", Membership.Role.REVIEWER)


def issue_of(project, external_id) -> LabelIssue:
    return LabelIssue.objects.select_related("item").get(
        run__project=project, item__external_id=external_id
    )


def resolve(client, project, issue, **body):
    return client.post(
        f"/api/v1/projects/{project.pk}/issues/{issue.pk}/resolve/", body, format="json"
    )


def stored(project, spans) -> list[list]:
    ids = dict(project.labels.values_list("name", "id"))
    return [[start, end, ids[name]] for start, end, name in spans]


@pytest.mark.parametrize(
    ("external_id", "expected"),
    [
        ("swap", [(0, 12, "PER"), (17, 32, "PER"), (36, 42, "LOC")]),
        ("shift", [(0, 12, "PER"), (32, 40, "LOC")]),
        ("miss", [(0, 12, "PER"), (24, 28, "ORG"), (32, 40, "LOC")]),
        ("false", [(0, 12, "PER"), (36, 42, "LOC")]),
    ],
)
def test_accept_stores_the_given_spans_with_the_suggestions_applied_as_the_review(
    ner, rev, api_client_for, external_id, expected
):
    issue = issue_of(ner, external_id)
    response = resolve(api_client_for(rev), ner, issue, action="accept")
    assert response.status_code == 200, response.json()
    assert response.json()["resolution"] == "accepted"
    review = Review.objects.get(item=issue.item)
    assert review.spans == stored(ner, expected)
    assert (review.reviewer, review.label, review.labels) == (rev, None, [])
    assert review.note == f"Accepted the suggestion of label-issue run #{issue.run_id}."
    issue.refresh_from_db()
    assert (issue.resolution, issue.resolved_by) == ("accepted", rev)


def test_accept_replaces_an_earlier_review_and_keeps_the_reviewers_note(ner, rev):
    issue = issue_of(ner, "false")
    Review.objects.create(item=issue.item, reviewer=rev, spans=[], note="old")
    issue_resolve(issue=issue, action="accept", user=rev, why="1833 is a year, not a date")
    review = Review.objects.get(item=issue.item)
    assert review.spans == stored(ner, [(0, 12, "PER"), (36, 42, "LOC")])
    assert review.note == "1833 is a year, not a date"


def test_a_row_that_flags_nothing_cannot_be_accepted(ner, rev, api_client_for):
    issue = issue_of(ner, "clean")
    response = resolve(api_client_for(rev), ner, issue, action="accept")
    assert response.status_code == 400
    assert "flags no token" in response.json()["action"][0]
    assert not Review.objects.exists()
    assert issue_of(ner, "clean").resolution == "open"


def test_a_row_that_no_longer_fits_the_text_is_refused_and_nothing_is_stored(ner, rev):
    issue = issue_of(ner, "swap")
    issue.item.data = {"text": "Ada Lovelace met someone."}
    issue.item.save()
    with pytest.raises(ValidationError, match="text changed"):
        issue_resolve(issue=issue, action="accept", user=rev)
    assert not Review.objects.exists()


def test_keep_closes_the_issue_and_stores_nothing(ner, rev, api_client_for):
    client = api_client_for(rev)
    issue = issue_of(ner, "swap")
    assert resolve(client, ner, issue, action="keep").json()["resolution"] == "kept"
    assert not Review.objects.exists()
    listed = client.get(f"/api/v1/projects/{ner.pk}/issues/?resolution=open&is_issue=true")
    assert [r["external_id"] for r in listed.json()["results"]] == ["shift", "miss", "false"]


def test_ambiguous_sends_the_item_back_to_the_annotators(ner, rev, api_client_for):
    issue = issue_of(ner, "miss")
    assert resolve(api_client_for(rev), ner, issue, action="ambiguous").status_code == 200
    issue.item.refresh_from_db()
    assert issue.item.relabel_requested_at is not None
    assert not WorkedExample.objects.exists() and not Review.objects.exists()


def test_a_span_worked_example_teaches_the_suggested_type_and_names_the_flagged_tokens(
    ner, rev, api_client_for
):
    issue = issue_of(ner, "swap")
    response = resolve(
        api_client_for(rev), ner, issue, action="ambiguous", relabel=False, add_example=True,
        why="A person's full name is a PER span.",
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    example = WorkedExample.objects.get()
    assert (example.item, example.label.name, example.text) == (issue.item, "PER", ADA)
    assert example.why == (
        "A person's full name is a PER span.\n\nFlagged by label-issue run "
        f"#{issue.run_id}: “Charles” ORG → PER, “Babbage” ORG → PER."
    )
    assert example.guideline.published_at is None
    issue.item.refresh_from_db()
    assert issue.item.relabel_requested_at is None


def test_a_false_span_example_teaches_the_type_it_was_given_unless_the_reviewer_chooses(ner, rev):
    issue_resolve(
        issue=issue_of(ner, "false"), action="ambiguous", user=rev, add_example=True,
        why="Bare years are not dates here.",
    )  # fmt: skip
    example = WorkedExample.objects.get()
    assert example.label.name == "DATE"
    assert example.why.endswith(": “1833” DATE → O (not an entity).")
    issue_resolve(
        issue=issue_of(ner, "miss"), action="ambiguous", user=rev, add_example=True,
        label="ORG", why="The city council, not the city.", relabel=True,
    )  # fmt: skip
    chosen = WorkedExample.objects.get(item__external_id="miss")
    assert chosen.label.name == "ORG"
    assert chosen.why.endswith(": “New” O → LOC, “York” O → LOC.")
    assert issue_of(ner, "miss").item.relabel_requested_at is not None


def test_a_span_example_needs_a_reason_and_nothing_changes_without_it(ner, rev, client):
    client.force_login(rev)
    issue = issue_of(ner, "swap")
    response = client.post(
        f"/projects/{ner.pk}/issues/{issue.pk}/example/",
        {"label": "PER", "why": "", "relabel": "1"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400 and "why" in response.json()
    assert not WorkedExample.objects.exists()
    issue = issue_of(ner, "swap")
    assert issue.resolution == "open" and issue.item.relabel_requested_at is None


# --- filters ------------------------------------------------------------------------------


def listed(client, project, query="") -> list[str]:
    response = client.get(f"/api/v1/projects/{project.pk}/issues/?{query}")
    assert response.status_code == 200, response.json()
    return [row["external_id"] for row in response.json()["results"]]


def test_filter_by_entity_type_matches_a_flagged_token_given_or_suggested_it(
    ner, rev, api_client_for
):
    client = api_client_for(rev)
    assert listed(client, ner) == ["swap", "shift", "miss", "false", "clean"]
    assert listed(client, ner, "entity_type=PER") == ["swap", "shift"]  # suggested
    assert listed(client, ner, "entity_type=ORG") == ["swap"]  # given (miss only has ORG spans)
    assert listed(client, ner, "entity_type=LOC") == ["shift", "miss"]  # given, suggested
    assert listed(client, ner, "entity_type=DATE") == ["false"]
    assert listed(client, ner, "entity_type=NOPE") == []
    run = LabelIssue.objects.filter(run__project=ner).first().run
    rows = label_issue_rows(run=run, filters={"entity_type": "LOC", "is_issue": "true"})
    assert [row.item.external_id for row in rows] == ["shift", "miss"]


def test_filter_by_slice_and_type_together(ner, rev, api_client_for):
    client = api_client_for(rev)
    # items in order swap, shift, miss, false, clean: news, wiki, news, wiki, news
    assert listed(client, ner, "meta_source=news") == ["swap", "miss", "clean"]
    assert listed(client, ner, "meta_source=wiki&entity_type=LOC") == ["shift"]
    assert listed(client, ner, "meta_source=wiki&entity_type=PER&resolution=open") == ["shift"]


def test_the_api_rows_name_the_flagged_tokens_types(ner, rev, api_client_for):
    rows = api_client_for(rev).get(f"/api/v1/projects/{ner.pk}/issues/").json()["results"]
    by_id = {row["external_id"]: row for row in rows}
    assert by_id["shift"]["flagged_tokens"] == [
        {"start": 0, "end": 5, "given": None, "suggested": "PER"},
        {"start": 29, "end": 31, "given": "LOC", "suggested": None},
    ]
    assert by_id["clean"]["flagged_tokens"] == []
    assert (by_id["swap"]["given_label"], by_id["swap"]["rank"]) == (None, 1)


# --- the page ---------------------------------------------------------------------------


def test_the_page_marks_the_flagged_tokens_with_given_and_suggested_types(ner, rev, client):
    issue = issue_of(ner, "false")
    issue.item.data = {"text": "<b>Ada</b> Lovelace met Charles Babbage in London, 1833."}
    issue.item.save()
    ids = dict(ner.labels.values_list("name", "id"))
    LabelIssue.objects.filter(pk=issue.pk).update(
        given_spans=[[3, 6, ids["PER"]], [51, 55, ids["DATE"]]],
        flagged_tokens=[[51, 55, ids["DATE"], None]],
    )  # the spans moved with the markup: "Ada" is 3-6, "1833" 51-55
    client.force_login(rev)
    page = client.get(f"/projects/{ner.pk}/issues/").content.decode()
    assert page.count('class="issue flagged') == 4  # open issues only, by default
    assert (
        '<q>Charles</q> <span class="given">ORG</span> → <span class="suggested">PER</span>' in page
    )
    assert '<q>Grace</q> <span class="given">O</span> → <span class="suggested">PER</span>' in page
    not_an_entity = '<span class="suggested">O (not an entity)</span>'
    assert f'<q>1833</q> <span class="given">DATE</span> → {not_an_entity}' in page
    assert 'data-change="ORG → PER"' in page and 'data-change="O → LOC"' in page
    assert "&lt;b&gt;" in page and "<b>Ada" not in page  # item text stays text
    assert 'mark class="span span-c0" data-label="PER" title="PER">Ada</mark>' in page
    assert "Accept stores:" in page and "Flagged tokens" in page
    assert 'id="issues-filters"' in page and 'name="entity_type"' in page


def test_the_page_says_when_a_filter_leaves_nothing(ner, rev, client):
    client.force_login(rev)
    page = client.get(
        f"/projects/{ner.pk}/issues/?entity_type=DATE&meta_key=source&meta_value=news"
    )
    assert "Nothing to review here" in page.content.decode()


def test_the_item_page_counts_the_spans_judged_and_the_tokens_flagged(ner, rev, client):
    client.force_login(rev)
    item = issue_of(ner, "shift").item
    page = client.get(f"/projects/{ner.pk}/items/{item.pk}/").content.decode()
    assert "<td>2 spans</td>" in page and "<td>2 tokens flagged</td>" in page
    assert "(tie)" not in page


# --- roles ------------------------------------------------------------------------------


def test_annotators_and_outsiders_are_kept_out(ner, rev, make_user, api_client_for, client):
    annotator = add_member(ner, "ann", Membership.Role.ANNOTATOR)
    issue = issue_of(ner, "swap")
    ann = api_client_for(annotator)
    assert resolve(ann, ner, issue, action="accept").status_code == 403
    assert ann.get(f"/api/v1/projects/{ner.pk}/issues/").status_code == 403
    outsider = api_client_for(make_user("outsider"))
    assert resolve(outsider, ner, issue, action="accept").status_code == 404
    client.force_login(annotator)
    assert client.get(f"/projects/{ner.pk}/issues/").status_code == 403
    example = client.post(f"/projects/{ner.pk}/issues/{issue.pk}/example/", {"why": "x"})
    assert example.status_code == 403
    assert not Review.objects.exists() and not WorkedExample.objects.exists()
    assert issue_of(ner, "swap").resolution == "open"
