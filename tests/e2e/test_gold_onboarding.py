"""Gold onboarding in Chromium: a new annotator is served the gold questions, fails them, sees
the paused page (their mistakes next to the gold answers, and the worked examples), a manager
lets them continue from the members page, and they label regular items again. The manager's
dashboard shows the gold accuracy."""

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from labeling.importing.jobs import import_file
from labeling.models import Annotation, GoldLabel, Item, Membership
from labeling.services.guidelines import guideline_publish, worked_example_add
from tests.conftest import log_in
from tests.factories import add_member, make_annotations, make_items, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1366, 900

REGULAR = [
    "The battery lasts all day and charges fast.",
    "It broke after a week and support never answered.",
    "Decent sound for the price.",
]
GOLD = {
    "r3": ("Oh great, another update that deletes my files.", "negative"),
    "r4": ("Best headphones I have owned, worth every penny.", "positive"),
    "r5": ("I asked for a refund the same day.", "negative"),
}


@pytest.fixture
def gold_project(manager):
    project = make_project(
        manager, name="Reviews with gold", overlap=1, gold_onboarding=3, gold_pass_score=0.8
    )
    make_items(project, REGULAR, prefix="r")
    make_items(project, {key: text for key, (text, _) in GOLD.items()})
    rows = "external_id,label\n" + "".join(f"{k},{label}\n" for k, (_, label) in GOLD.items())
    batch = import_file(
        project=project,
        fileobj=SimpleUploadedFile("gold.csv", rows.encode()),
        filename="gold.csv",
        format="csv",
        kind="gold",
        options={},
        user=manager,
    )
    assert batch.status == "succeeded", batch.errors
    example = Item.objects.get(project=project, external_id="r1")
    worked_example_add(
        project=project,
        item=example,
        label="negative",
        why="A product that broke is a complaint, whatever the tone.",
        user=manager,
    )
    guideline_publish(project=project, user=manager, changelog="A worked example of a complaint")
    add_member(project, "newcomer")
    return project


def shown_item(page) -> Item:
    item_id = page.locator("#annotate-workspace").get_attribute("data-item")
    return Item.objects.get(pk=int(item_id))


def answer(page, label: str) -> None:
    before = page.locator("#annotate-workspace").get_attribute("data-item")
    page.locator(".label-btn", has_text=label).first.click()
    page.wait_for_function(
        """(before) => {
            const ws = document.querySelector('#annotate-workspace');
            return !ws || ws.getAttribute('data-item') !== before;
        }""",
        arg=before,
    )


def test_a_new_annotator_fails_onboarding_is_paused_and_a_manager_lets_them_continue(
    live_server, page, gold_project, artifacts
):
    project = gold_project
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in(page, live_server, "newcomer")
    page.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    page.screenshot(path=str(artifacts / "gold-onboarding-first-item.png"))

    # The three gold questions come first, looking like any other item; two answers are wrong.
    served = []
    for _ in range(3):
        item = shown_item(page)
        served.append(item.external_id)
        wrong = {"negative": "positive", "positive": "negative"}[GOLD[item.external_id][1]]
        right = GOLD[item.external_id][1]
        answer(page, right if item.external_id == "r4" else wrong)
    assert sorted(served) == sorted(GOLD)

    # Paused: the page says why, lists the mistakes beside the gold answers, and the examples.
    expect(page.get_by_role("heading", name="Labeling is paused for you")).to_be_visible()
    expect(page.locator("[data-paused]")).to_contain_text("1 of 3 gold questions right")
    mistakes = page.locator("[data-mistake]")
    expect(mistakes).to_have_count(2)
    expect(page.locator("[data-mistake='r3']")).to_contain_text("positive")
    expect(page.locator("[data-mistake='r3']")).to_contain_text("negative")
    expect(page.get_by_text("A product that broke is a complaint")).to_be_visible()
    page.screenshot(path=str(artifacts / "gold-paused-page.png"), full_page=True)
    page.reload()
    expect(page.get_by_role("heading", name="Labeling is paused for you")).to_be_visible()

    # The manager sees the pause on the members page and lets the newcomer continue.
    log_in(page, live_server, "manager")
    page.goto(f"{live_server.url}/projects/{project.pk}/members/")
    paused_row = page.locator("[data-paused-member='newcomer']")
    expect(paused_row).to_contain_text("1 of 3 gold questions right")
    page.screenshot(path=str(artifacts / "gold-members-paused.png"), full_page=True)
    page.get_by_role("button", name="Let newcomer continue").click()
    expect(page.get_by_text("newcomer may label again.")).to_be_visible()
    membership = Membership.objects.get(project=project, user__username="newcomer")
    assert membership.paused_at is None and membership.onboarded_at is not None

    # The dashboard shows the gold answers (too few to judge yet).
    page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
    gold_row = page.locator("[data-gold-annotator='newcomer']")
    expect(gold_row).to_contain_text("too few gold answers to judge")
    page.locator("[data-gold]").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "gold-dashboard.png"), full_page=True)

    # The newcomer labels regular items again.
    log_in(page, live_server, "newcomer")
    page.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    item = shown_item(page)
    assert item.external_id in {"r0", "r1", "r2"}
    answer(page, "positive")
    assert Annotation.objects.filter(
        item=item, annotator__username="newcomer", label__name="positive"
    ).exists()
    page.screenshot(path=str(artifacts / "gold-labeling-again.png"))


@pytest.mark.worker
def test_the_agreement_report_shows_gold_accuracy_apart_from_the_agreement(
    live_server, page, manager, celery_worker, artifacts
):
    """Two annotators label 30 items; one answered 12 gold items (judged), the other 4."""
    project = make_project(manager, name="Gold in the report", overlap=2)
    regular = make_items(project, 30, prefix="r")
    golds = make_items(project, 12, prefix="q")
    sure, new = add_member(project, "sure"), add_member(project, "new")
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 2, 42)
    names = ("negative", "positive")
    votes = [(item, who, names[truth[n]]) for n, item in enumerate(regular) for who in (sure, new)]
    votes += [(item, sure, names[truth[30 + n]]) for n, item in enumerate(golds[:-2])]
    votes += [(item, sure, names[1 - truth[30 + n]]) for n, item in enumerate(golds[-2:], 10)]
    votes += [(item, new, names[truth[30 + n]]) for n, item in enumerate(golds[:4])]
    make_annotations(project, votes)
    label_ids = dict(project.labels.values_list("name", "id"))
    GoldLabel.objects.bulk_create(
        GoldLabel(item=item, label_id=label_ids[names[truth[30 + n]]])
        for n, item in enumerate(golds)
    )
    Item.objects.filter(pk__in=[g.pk for g in golds]).update(is_gold=True)

    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in(page, live_server, "manager")
    page.goto(f"{live_server.url}/projects/{project.pk}/agreement/")
    page.get_by_role("button", name="Run agreement").click()
    expect(page.locator(".alpha-value")).to_be_visible(timeout=120_000)
    expect(page.locator(".agreement-headline")).to_contain_text("30 items · 60 annotations")
    gold = page.get_by_role("region", name="Gold questions")
    expect(gold).to_contain_text("Their 16 answers are left out")
    expect(gold.locator("[data-gold-annotator='sure']")).to_contain_text("0.833")  # 10 of 12
    expect(gold.locator("[data-gold-annotator='new']")).to_contain_text("too few gold answers")
    gold.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "gold-agreement-report.png"))
