"""The label-issues review queue in Chromium: start a run, then work the queue by keyboard."""

import csv

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect

from analysis.metrics.out_of_sample import out_of_sample_probabilities
from analysis.models import AnalysisRun, LabelIssue
from analysis.services.predictions import predictions_store
from analysis.tasks import run_label_issues
from labeling.models import Item, Membership, Review
from tests.conftest import log_in
from tests.factories import PASSWORD, add_member, make_annotations, make_items, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sentiment_project(manager, sentiment_data, n=200):
    frame = pd.read_csv(
        sentiment_data / "yelp.tsv",
        sep="\t",
        header=None,
        names=["text", "label"],
        quoting=csv.QUOTE_NONE,
    ).iloc[:n]
    noisy = frame["label"].to_numpy().copy()
    flip = np.random.default_rng(0).choice(n, size=n // 10, replace=False)
    noisy[flip] = 1 - noisy[flip]
    project = make_project(manager, labels=("negative", "positive"), name="Yelp reviews")
    items = make_items(project, list(frame["text"]), prefix="y", metadata={"source": "yelp"})
    annotator = add_member(project, "annie", Membership.Role.ANNOTATOR)
    names = ("negative", "positive")
    make_annotations(
        project, ((item, annotator, names[v]) for item, v in zip(items, noisy, strict=True))
    )
    probs = out_of_sample_probabilities(
        frame["text"].tolist(), noisy, n_classes=2, kind="text"
    ).probabilities
    # Item y0 is made a sure label error, so its (hostile, see below) text is on the first page.
    probs[0] = [0.0, 1.0] if noisy[0] == 0 else [1.0, 0.0]
    predictions_store(
        project=project,
        model="yelp-cv",
        classes=list(names),
        item_ids=np.array([i.pk for i in items]),
        probs=probs,
    )
    return project


def test_reviewer_accepts_keeps_and_marks_by_keyboard(
    live_server, page, make_user, sentiment_data, artifacts
):
    project = sentiment_project(make_user(), sentiment_data)
    make_user("rita", password=PASSWORD)
    add_member(project, "rita", Membership.Role.REVIEWER)
    # A line a malicious importer could have slipped into an item stays text on the page.
    Item.objects.filter(project=project, external_id="y0").update(
        data={"text": "<script>window.pwned=1</script><b>bold?</b>"}
    )
    run = AnalysisRun.objects.create(
        project=project, kind="label_issues", params={"model": "yelp-cv"}
    )
    run_label_issues(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    ranked = list(
        LabelIssue.objects.filter(run=run, is_issue=True)
        .order_by("rank")
        .select_related("item", "suggested_label")
    )
    assert len(ranked) >= 4

    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/projects/{project.pk}/issues/")
    expect(page.get_by_role("heading", name="Label issues")).to_be_visible()
    expect(page.locator("#issues-method")).to_have_text("confident_learning")
    expect(page.locator("#issue-keys")).to_contain_text("accept suggestion")
    rows = page.locator("li.issue")
    expect(rows).to_have_count(min(len(ranked), 50))
    expect(rows.first).to_contain_text(ranked[0].item.external_id)
    expect(rows.first).to_have_class("issue flagged current")
    page.screenshot(path=str(artifacts / "issue-queue.png"), full_page=False)
    page.evaluate("document.getElementById('issue-keys').scrollIntoView()")
    page.screenshot(path=str(artifacts / "issue-queue-list.png"))

    page.keyboard.press("a")  # accept the top suggestion
    expect(rows.nth(0).locator(".badge.resolution")).to_have_text("Suggestion accepted")
    expect(rows.nth(1)).to_have_class("issue flagged current")
    page.keyboard.press("g")  # keep the second
    expect(rows.nth(1).locator(".badge.resolution")).to_have_text("Label kept")
    page.keyboard.press("k")  # back up, then down twice with the arrow key
    expect(rows.nth(1)).to_have_class("issue flagged resolved current")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("m")  # the third is ambiguous: back to the annotators
    expect(rows.nth(2).locator(".badge.resolution")).to_have_text("Ambiguous")
    page.keyboard.press("e")  # the fourth becomes a worked example, with the label chosen
    chosen = "negative" if ranked[3].suggested_label.name == "positive" else "positive"
    expect(page.locator("li.issue.current select[name=label]")).to_be_focused()
    page.locator("li.issue.current select[name=label]").select_option(chosen)
    page.locator("li.issue.current textarea").fill("Irony: praise words, negative meaning.")
    page.screenshot(path=str(artifacts / "issue-queue-example-form.png"), full_page=False)
    page.keyboard.press("Control+Enter")
    expect(rows.nth(3).locator(".badge.resolution")).to_have_text("Ambiguous")
    page.screenshot(path=str(artifacts / "issue-queue-after-keys.png"), full_page=False)

    review = Review.objects.get(item=ranked[0].item)
    assert review.label == ranked[0].suggested_label
    assert not Review.objects.filter(item=ranked[1].item).exists()
    resolutions = dict(LabelIssue.objects.filter(run=run).values_list("pk", "resolution"))
    assert [resolutions[i.pk] for i in ranked[:4]] == ["accepted", "kept", "ambiguous", "ambiguous"]
    ranked[2].item.refresh_from_db()
    assert ranked[2].item.relabel_requested_at is not None
    example = project.guidelines.get(published_at__isnull=True).examples.get()
    assert (example.item, example.label.name) == (ranked[3].item, chosen)
    assert page.evaluate("window.pwned") is None
    hostile = page.locator("li.issue", has_text="y0 ")
    expect(hostile.locator(".item-text")).to_have_text(
        "<script>window.pwned=1</script><b>bold?</b>"
    )

    page.goto(f"{live_server.url}/projects/{project.pk}/issues/")  # open ones only by default
    expect(page.locator("li.issue").first).not_to_contain_text(ranked[0].item.external_id + " ")


def test_find_label_issues_button_runs_the_job_with_progress(
    live_server, page, make_user, sentiment_data, artifacts, celery_worker
):
    project = sentiment_project(make_user(), sentiment_data, n=120)
    make_user("rita", password=PASSWORD)
    add_member(project, "rita", Membership.Role.REVIEWER)
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/projects/{project.pk}/issues/")
    expect(page.get_by_role("heading", name="No label-issue run yet")).to_be_visible()
    page.select_option("#issues-model", "yelp-cv")
    page.click("#run-issues")
    expect(page.locator("#run-status .run-status")).to_be_visible()
    # On success the status partial refreshes the page, which then lists the ranked rows.
    expect(page.locator("#issues-method")).to_have_text("confident_learning", timeout=120_000)
    expect(page.locator("li.issue").first).to_be_visible()
    page.screenshot(path=str(artifacts / "issue-queue-after-run.png"), full_page=False)
    run = AnalysisRun.objects.get(project=project)
    assert run.params == {"model": "yelp-cv"} and run.status == "succeeded"
