"""The README's short tour, step by step, on the demo exactly as `make run` loads it.

`make run` starts as a subprocess on a free port with its embedded defaults (SQLite and the
filesystem broker with its real Celery worker, under a temporary CONCORD_VAR_DIR); Chromium
then follows the tour as annotator1 and admin and checks what each page shows.
"""

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ROOT, wait_for

pytestmark = pytest.mark.e2e

PROJECT = "Handwritten digits (demo)"
SPAN_PROJECT = "News entities (demo)"
VIEWPORT = {"width": 1366, "height": 900}
JOB_TIMEOUT_MS = 90_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def make_run_env(var_dir: Path) -> dict:
    """The environment of a fresh machine: no database or broker named, state in `var_dir`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(CONCORD_VAR_DIR=str(var_dir), DEBUG="1")
    return env


@pytest.fixture(scope="module")
def concord(tmp_path_factory):
    """`make run PORT=<free port>`: migrate, load the demo, start the worker and the server."""
    var_dir = tmp_path_factory.mktemp("tour-var")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = make_run_env(var_dir)
    log_path = var_dir / "make-run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: make, the worker, runserver
        )
    try:
        wait_for(
            lambda: healthy(url) or process.poll() is not None,
            timeout=180,
            interval=0.5,
            what="make run to answer /healthz",
            on_timeout=lambda: log_path.read_text(errors="replace")[-3000:],
        )
        assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
        yield url
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen) -> None:
    """Ctrl-C the whole process group, as a terminal does (the worker shuts down on its SIGINT,
    make's trap stops runserver), then make sure nothing of it is left."""
    group = process.pid
    try:
        os.killpg(group, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        process.poll()  # reap make itself: a zombie still counts as a member of the group
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(group, signal.SIGKILL)
    process.wait(timeout=10)
    raise AssertionError("make run was still running 30 s after Ctrl-C; killed it")


def test_make_run_on_a_port_in_use_says_so_and_starts_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            ["make", "run", f"PORT={port}"],
            cwd=ROOT,
            env=make_run_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert f"Port {port} is in use" in result.stdout
    assert list(tmp_path.iterdir()) == []  # nothing migrated, no worker's broker folder


@pytest.fixture
def shots(artifacts):
    def shot(page: Page, name: str, show=None) -> None:
        """A 1366x900 screenshot, scrolled to `show` (a locator) when given."""
        if show is not None:
            show.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / f"tour-{name}.png"))

    return shot


@pytest.fixture
def log_in(browser, concord):
    """A browser of its own per person, logged in on the login page."""
    contexts = []

    def log_in_as(username: str, password: str) -> Page:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{concord}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: "/accounts/login/" not in u)
        return page

    yield log_in_as
    for context in contexts:
        context.close()


def download(page: Page, link, path: Path) -> bytes:
    """Click a download link (a selector or a locator); the file's bytes, kept at `path`."""
    with page.expect_download() as started:
        page.click(link) if isinstance(link, str) else link.click()
    started.value.save_as(path)
    return path.read_bytes()


def number(text: str) -> float:
    return float(re.search(r"-?\d+(?:\.\d+)?", text).group())


def open_page(page: Page, name: str) -> None:
    """A link of the project navigation (Label, Agreement, Issues, ...)."""
    page.locator(".project-nav").get_by_role("link", name=name, exact=True).click()
    page.wait_for_load_state()


def run_from_page(page: Page, button: str, done_heading: str) -> None:
    """Press a page's run button; the worker runs the job, the page reloads with the result."""
    page.click(button)
    expect(page.locator(".run-status")).to_be_visible()
    expect(page.get_by_role("heading", name=done_heading)).to_be_visible(timeout=JOB_TIMEOUT_MS)


def test_the_short_tour_of_the_demo(concord, log_in, shots, artifacts):
    url = concord

    # 1. annotator1 labels from the keyboard beside the guideline; the progress moves.
    annotator = log_in("annotator1", "concord-demo")
    annotator.get_by_role("link", name=PROJECT).click()
    open_page(annotator, "Label")
    image = annotator.locator("#annotate-form .item-image img")
    expect(image).to_be_visible()
    assert image.get_attribute("src").startswith("data:image/svg+xml;base64,")
    panel = annotator.locator(".guideline-panel")
    expect(panel.locator(".badge")).to_have_text("v2")
    expect(panel).to_contain_text("1 or 7?")
    expect(panel.locator(".examples li")).to_have_count(2)
    expect(panel.locator(".examples")).to_contain_text("a 1, not a 7")
    expect(panel.locator(".examples img")).to_have_count(2)  # the digits, not their data: URLs
    assert "data:" not in panel.inner_text()
    expect(annotator.locator(".guideline-banner")).to_have_count(0)  # no banner on a first visit
    # The annotator's own queue: what they labeled under v2 and what is still theirs to label.
    progress = annotator.locator(".annotate-progress")
    expect(progress.locator("[data-done]")).to_have_text("0")
    expect(progress.locator("[data-available]")).to_have_text("40")
    expect(progress).to_contain_text("labeled by you under v2")
    annotator.keyboard.press("?")
    help_dialog = annotator.locator("dialog[open]")
    expect(help_dialog).to_contain_text("undo")
    shots(annotator, "01-label-shortcuts")
    annotator.keyboard.press("Escape")
    expect(help_dialog).to_have_count(0)
    seen = []
    for key in ("1", "7", "4"):
        item = annotator.locator("#annotate-workspace").get_attribute("data-item")
        seen.append(item)
        annotator.keyboard.press(key)
        annotator.wait_for_function(
            "prev => document.getElementById('annotate-workspace').dataset.item !== prev",
            arg=item,
        )
    assert len(set(seen)) == 3
    expect(progress.locator("[data-done]")).to_have_text("3")
    expect(progress.locator("[data-available]")).to_have_text("37")
    shots(annotator, "01-label-progress")

    # 2. admin runs agreement on the worker: alpha per guideline version, v2 above v1.
    admin = log_in("admin", "concord-admin")
    admin.get_by_role("link", name=PROJECT).click()
    open_page(admin, "Agreement")
    run_from_page(admin, "#run-agreement", "Alpha per guideline version")
    versions = admin.locator("section[aria-label='Alpha per guideline version'] tbody tr")
    expect(versions).to_have_count(2)
    v1, v2 = (versions.nth(i).locator("td") for i in range(2))
    expect(v1.first).to_have_text("v1")
    expect(v2.first).to_have_text("v2")
    alpha_v1, alpha_v2 = number(v1.nth(1).inner_text()), number(v2.nth(1).inner_text())
    # measured 0.617 and 0.711
    assert 0.60 <= alpha_v1 <= 0.64 and 0.69 <= alpha_v2 <= 0.73, (alpha_v1, alpha_v2)
    assert alpha_v2 - alpha_v1 >= 0.06
    assert number(v1.nth(3).inner_text()) == 600  # items labeled under v1
    assert number(v2.nth(3).inner_text()) == 363  # the crowd's 360 and annotator1's 3
    expect(admin.locator(".chart#alpha-by-version .main-svg").first).to_be_attached()
    kappa = admin.locator('section[aria-label="Cohen\'s kappa per annotator pair"] tbody tr')
    pairs = {
        tuple(cells[:2]): (int(cells[2]), number(cells[3]))
        for cells in (row.locator("td").all_inner_texts() for row in kappa.all())
    }
    assert set(pairs) == {
        ("crowd-ann", "crowd-bob"),
        ("crowd-ann", "crowd-cyd"),
        ("crowd-bob", "crowd-cyd"),
    }
    assert all(n == 960 and 0.5 <= k <= 0.85 for n, k in pairs.values()), pairs
    # The digits v1 left unexplained are the ones annotators agree on least...
    per_label = admin.locator("section[aria-label='Per label'] tbody tr")
    label_alpha = {
        cells[0]: number(cells[2])
        for cells in (row.locator("td").all_inner_texts() for row in per_label.all())
    }
    assert set(sorted(label_alpha, key=label_alpha.get)[:4]) == {"1", "4", "7", "9"}, label_alpha
    shots(admin, "02-agreement")
    shots(admin, "02-agreement-versions", show=versions.first)
    # ...and the least careful worker's confusion shows which way they mix them up.
    admin.select_option("select[name=annotator]", "crowd-cyd")
    confusion = admin.locator("section[aria-label='Confusion with the others'] tbody tr")
    expect(confusion.first.locator("th")).to_have_text("0")
    expect(admin.locator("section[aria-label='Confusion with the others'] thead")).to_contain_text(
        "crowd-cyd"
    )
    matrix = [[int(n) for n in row.locator("td").all_inner_texts()] for row in confusion.all()]
    off_diagonal = sorted(
        (
            (matrix[given][other], (given, other))
            for given in range(10)
            for other in range(10)
            if given != other
        ),
        reverse=True,
    )
    assert {cell for _, cell in off_diagonal[:4]} == {(1, 7), (7, 1), (4, 9), (9, 4)}, matrix
    shots(admin, "02-agreement-confusion", show=confusion.first)

    admin.get_by_role("link", name="Review the items annotators disagree on →").click()
    expect(admin.get_by_role("heading", name="Disagreements")).to_be_visible()
    rows = admin.locator("table.disagreements tbody tr")
    assert rows.count() >= 20
    first = rows.first
    expect(first.locator("ul.given li")).to_have_count(3)
    assert number(first.locator("td.num").inner_text()) > 0  # entropy of a split vote
    expect(first.locator("img.item-thumb")).to_have_count(1)
    assert "data:" not in admin.locator("table.disagreements").inner_text()
    shots(admin, "02-disagreements")

    # 3. Find label issues with the built-in model: CROWDLAB ranks likely wrong labels.
    open_page(admin, "Issues")
    expect(admin.locator("#issues-model")).to_have_value("builtin")
    run_from_page(admin, "#run-issues", "Annotator quality")
    expect(admin.locator("#issues-method")).to_have_text("crowdlab")
    summary = admin.locator(".issues-summary")
    expect(summary).to_contain_text("builtin (5-fold CV, tabular)")
    accuracy = summary.locator("dt", has_text="Model accuracy").locator("xpath=../dd")
    assert 0.85 <= number(accuracy.inner_text()) <= 0.92  # measured 0.884
    n_issues = int(number(admin.locator("#issues-count").inner_text()))
    assert 20 <= n_issues <= 40  # measured 29
    issue_rows = admin.locator("#issue-list li.issue")
    expect(issue_rows).to_have_count(n_issues)
    ranks = [int(number(t)) for t in issue_rows.locator(".rank").all_inner_texts()]
    assert ranks == sorted(set(ranks))  # flagged rows, least trustworthy first
    scores = [float(t) for t in issue_rows.locator(".score .num").all_inner_texts()]
    assert scores == sorted(scores)
    top = issue_rows.first
    expect(top.locator(".badge.bad")).to_have_text("likely error")
    expect(top.locator("img.item-thumb")).to_have_count(1)
    assert "data:" not in admin.locator("#issue-list").inner_text()
    shots(admin, "03-issues", show=top)
    top_id = top.locator(".issue-head strong").inner_text()
    suggested = top.locator(".suggested").inner_text()
    assert re.fullmatch(r"\d", suggested) and suggested != top.locator(".given").inner_text()
    top.focus()
    admin.keyboard.press("a")
    expect(top).to_have_attribute("data-resolution", "accepted")
    expect(admin.locator("#issue-feedback")).to_have_text(f"{top_id}: Suggestion accepted.")
    second = issue_rows.nth(1)
    expect(second).to_have_class(re.compile(r"\bcurrent\b"))
    admin.keyboard.press("g")
    expect(second).to_have_attribute("data-resolution", "kept")
    shots(admin, "03-issues-decided", show=top)

    # 4. Guidelines: edit the draft with a live preview, add a worked example, publish v3.
    open_page(admin, "Guidelines")
    expect(admin.locator(".page-head")).to_contain_text("version 2")
    body = admin.locator("#id_body")
    expect(body).to_have_value(re.compile("1 or 7\\?"))
    body.press("Control+End")
    body.press_sequentially("- **Crossed 7s:** a 7 may have a short bar through its middle.\n")
    preview = admin.locator("#guideline-preview")
    expect(preview.locator("strong", has_text="Crossed 7s:")).to_be_visible()
    shots(admin, "04-guidelines-preview", show=preview.locator("strong", has_text="Crossed 7s:"))
    admin.fill("#id_draft_changelog", "Crossed 7s.")
    admin.get_by_role("button", name="Save draft").click()
    admin.fill("input[name=external_id]", top_id)
    admin.select_option("select[name=label]", suggested)
    admin.fill("textarea[name=why]", "Found by label issues: the crowd got this one wrong.")
    admin.get_by_role("button", name="Add example").click()
    examples = admin.locator("table.examples tbody tr")
    expect(examples.filter(has_text=top_id)).to_have_count(1)
    expect(examples.filter(has_text=top_id).locator("img")).to_have_count(1)
    assert "data:" not in admin.locator("table.examples").inner_text()
    shots(admin, "04-guidelines-draft", show=examples.first)
    admin.fill("#id_publish_changelog", "Crossed 7s, and one more worked example.")
    admin.get_by_role("button", name="Publish as version 3").click()
    expect(admin.locator(".page-head")).to_contain_text("version 3")
    expect(admin.locator("table.versions tbody tr")).to_have_count(3)
    shots(admin, "04-guidelines-published")

    annotator.reload()
    banner = annotator.locator(".guideline-banner")
    expect(banner).to_contain_text("Guidelines updated to v3.")
    expect(banner).to_contain_text("Crossed 7s, and one more worked example.")
    expect(annotator.locator(".guideline-panel .badge")).to_have_text("v3")
    expect(annotator.locator(".guideline-panel .examples li")).to_have_count(3)
    shots(annotator, "04-banner")
    annotator.reload()
    expect(annotator.locator("#annotate-form")).to_be_visible()
    expect(annotator.locator(".guideline-banner")).to_have_count(0)  # once

    # 5. Baselines and slices with the built-in model; drift between the two batches.
    open_page(admin, "Baselines")
    expect(admin.locator("select[name=model]")).to_have_value("builtin")
    run_from_page(admin, "#run-baselines", "Model vs human-level performance")
    cards = admin.locator(".headline-cards")
    hlp, model, majority = (
        number(
            cards.locator(".metric")
            .filter(has=admin.get_by_role("heading", name=name, exact=True))
            .locator(".big")
            .inner_text()
        )
        for name in ("HLP", "Model", "Majority class")
    )
    assert 0.6 <= hlp <= 0.8 and 0.75 <= model <= 0.9 and majority < 0.2, (hlp, model, majority)
    expect(cards).to_contain_text("builtin")
    shots(admin, "05-baselines")

    open_page(admin, "Slices")
    run_from_page(admin, "#run-slices", "All slices by potential gain")
    table = admin.locator("table.slices-table tbody tr")
    by_stroke = {}
    for i in range(table.count()):
        cells = table.nth(i).locator("td").all_inner_texts()
        if cells[0] == "stroke":
            by_stroke[cells[1].split()[0]] = {"model": number(cells[4]), "hlp": number(cells[5])}
    assert set(by_stroke) == {"light", "medium", "dense"}
    # Faint digits are harder for the crowd: human-level performance differs by slice.
    assert by_stroke["dense"]["hlp"] - by_stroke["light"]["hlp"] >= 0.15, by_stroke
    assert all(0.7 <= s["model"] <= 0.9 for s in by_stroke.values()), by_stroke
    shots(admin, "05-slices", show=table.first)

    open_page(admin, "Drift")
    batches = {"a": "digits-batch-1.jsonl · 600 items", "b": "digits-batch-2.jsonl · 400 items"}
    for side, batch in batches.items():
        select = admin.locator(f"select[name=batch_{side}]")
        select.select_option(select.locator("option", has_text=batch).get_attribute("value"))
    admin.click("#run-drift")
    summary = admin.locator(".drift-summary")
    expect(summary).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(summary).to_contain_text(re.compile(r"A: #\d+ digits-batch-1\.jsonl \(600 items\)"))
    expect(summary).to_contain_text(re.compile(r"B: #\d+ digits-batch-2\.jsonl \(400 items\)"))
    expect(summary).to_contain_text("drift 1 of 4 checks moved")
    expect(summary).not_to_contain_text(re.compile("too few", re.I))  # every check judged
    ink = summary.locator("tbody tr", has_text="ink")
    expect(ink.locator(".badge")).to_have_text("drift")
    shots(admin, "05-drift")

    # 6. Export: preview, download CSV, and find it recorded as a dataset version that
    # downloads again byte for byte; a Dawid-Skene export is version 2, diffed against 1.
    open_page(admin, "Export")
    admin.select_option("select[name=labels]", "majority")
    admin.get_by_role("button", name="Preview").click()
    expect(admin.locator("#preview tbody tr")).to_have_count(20)
    exported = admin.locator("#excluded tr", has_text="Items exported").locator("strong")
    n_rows = int(number(exported.inner_text()))
    assert n_rows == 1000
    first_csv = download(admin, "#download", artifacts / "tour-export-majority.csv")
    lines = first_csv.decode().splitlines()
    assert lines[0].startswith("external_id,label,label_source,agreement,n_annotations")
    assert {"p0_0", "p7_7", "metadata.stroke"} <= set(lines[0].split(","))
    assert len(lines) == 1 + n_rows
    admin.reload()
    version = admin.locator("#versions tbody tr").first
    expect(version.locator("td").nth(3)).to_have_text("csv")
    expect(version.locator("td.num")).to_have_text(str(n_rows))
    expect(version.locator("code[title]")).to_have_attribute("title", re.compile("^[0-9a-f]{64}$"))
    expect(version).to_contain_text("v3")
    again_link = version.get_by_role("link", name="Download")
    again = download(admin, again_link, artifacts / "tour-export-again.csv")
    assert again == first_csv
    admin.select_option("select[name=labels]", "dawid_skene")
    admin.get_by_role("button", name="Preview").click()
    download(admin, "#download", artifacts / "tour-export-dawid-skene.csv")
    admin.reload()
    newest = admin.locator("#versions tbody tr").first
    expect(newest.locator("code").first).to_have_text("dawid_skene")
    shots(admin, "06-export", show=newest)
    newest.get_by_role("link", name=re.compile(r"Diff vs #\d+")).click()
    n_changed = int(admin.locator("#n-changed").inner_text())
    assert n_changed > 0
    expect(admin.locator("#n-added")).to_have_text("0")
    expect(admin.locator("#n-removed")).to_have_text("0")
    changed = admin.locator("table#changed tbody tr").first.locator("td")
    assert changed.nth(2).inner_text() != changed.nth(3).inner_text()
    expect(changed.nth(1).locator("img")).to_have_count(1)
    assert "data:" not in admin.locator("table#changed").inner_text()
    shots(admin, "06-dataset-diff")
    diff = admin.context.request.get(
        url + admin.get_by_role("link", name="As JSON").get_attribute("href")
    ).json()
    assert (diff["count"], diff["added"], diff["removed"]) == (n_changed, 0, 0), diff

    # 7. The span demo: annotator1 marks a sentence from the keyboard; admin measures span
    # agreement, sees the annotators' spans stacked, and exports CoNLL from the token majority.
    annotator.goto(f"{url}/")
    annotator.get_by_role("link", name=SPAN_PROJECT).click()
    open_page(annotator, "Label")
    document = annotator.locator("#annotate-form .span-doc.span-tokens")
    expect(document).to_have_count(1)
    expect(annotator.locator("#annotate-form .tok.cur")).to_have_count(1)  # the cursor is on
    item_id = annotator.locator("#annotate-workspace").get_attribute("data-item")
    annotator.keyboard.press("Shift+ArrowRight")  # the first two tokens
    expect(annotator.locator("#annotate-form .tok.sel")).to_have_count(2)
    annotator.keyboard.press("p")  # PER
    expect(annotator.locator("#annotate-form .tok.span")).to_have_count(2)  # one span
    expect(annotator.locator("#annotate-form .tok.s-last[data-label=PER]")).to_have_count(1)
    shots(annotator, "07-span-editor")
    annotator.keyboard.press("Enter")
    annotator.wait_for_function(
        "prev => document.getElementById('annotate-workspace')?.dataset.item !== prev",
        arg=item_id,
    )

    admin.goto(f"{url}/")
    admin.get_by_role("link", name=SPAN_PROJECT).click()
    open_page(admin, "Agreement")
    run_from_page(admin, "#run-agreement", "Per guideline version")
    exact = number(admin.locator("#span-f1").inner_text())
    partial = number(admin.locator("#span-f1-partial").inner_text())
    assert 0.5 < exact < partial < 1.0  # the boundary shifter costs exact matches only
    shots(admin, "07-span-agreement")
    open_page(admin, "Disagreements")
    first = admin.locator("table.disagreements tbody tr").first
    expect(first.locator(".span-stack-row:not(.span-final-edit)")).to_have_count(3)
    shots(admin, "07-span-disagreements", show=first)
    # The built-in CRF scores every token out of fold; cleanlab flags the doubtful ones.
    open_page(admin, "Issues")
    run_from_page(admin, "#run-issues", "Annotator quality")
    expect(admin.locator("#issues-method")).to_have_text("token_confident_learning")
    span_rows = admin.locator("#issue-list li.issue")
    assert 10 <= span_rows.count() <= 60  # measured 34 of 560 sentences
    top = span_rows.first
    expect(top.locator("mark.flag").first).to_have_attribute(
        "data-change", re.compile(r"^(O|PER|ORG|LOC|DATE) → (O|PER|ORG|LOC|DATE)$")
    )
    expect(top.locator(".accept-preview")).to_contain_text("Accept stores:")
    shots(admin, "07-span-issues", show=top)
    top.focus()
    admin.keyboard.press("a")
    expect(top).to_have_attribute("data-resolution", "accepted")
    open_page(admin, "Baselines")
    run_from_page(admin, "#run-baselines", "Model vs human-level performance")
    hlp = number(admin.locator("#hlp").inner_text())
    model_f1 = number(admin.locator("#model-f1").inner_text())
    assert 0.6 < hlp < 0.75 and 0.85 < model_f1 < 0.97  # measured 0.664 and 0.919
    shots(admin, "07-span-baselines")
    open_page(admin, "Export")
    admin.select_option("select[name=format]", "conll")
    conll = download(admin, "#download", artifacts / "tour-export-spans.conll").decode()
    assert conll.startswith("# id = ")
    assert re.search(r"\tB-(PER|ORG|LOC|DATE)\n", conll)

    # 8. Model in the loop: admin orders the digits queue by ActiveLab and shows the built-in
    # model's suggestions; the worker refreshes the model, the Dashboard draws its accuracy,
    # and annotator1 sees the model's label beside the next digit (not pre-selected).
    admin.goto(f"{url}/")
    admin.get_by_role("link", name=PROJECT).click()
    open_page(admin, "Settings")
    admin.select_option("select[name=queue_order]", "activelab")
    admin.select_option("select[name=suggestions]", "show")
    admin.get_by_role("button", name="Save").click()
    expect(admin.get_by_text("Project saved.")).to_be_visible()
    open_page(admin, "Dashboard")
    refreshes = admin.locator("table.model-refreshes tbody tr")
    for _ in range(JOB_TIMEOUT_MS // 3000):  # the refresh runs on the worker
        if refreshes.count():
            break
        admin.wait_for_timeout(3000)
        admin.reload()
        admin.wait_for_load_state("networkidle")
    expect(refreshes).to_have_count(1)
    accuracy = number(refreshes.first.locator("td").nth(2).inner_text())
    assert 0.8 < accuracy < 1.0, accuracy  # the built-in model on the crowd's majority
    shots(admin, "08-model-curve", show=admin.locator("section.model-curve"))
    annotator.goto(f"{url}/")
    annotator.get_by_role("link", name=PROJECT).click()
    open_page(annotator, "Label")
    suggestion = annotator.locator("aside.suggestion")
    expect(suggestion).to_contain_text("Model suggests")
    expect(suggestion).not_to_have_class(re.compile("prefilled"))
    shots(annotator, "08-suggestion")

    # 9. The API is documented by an offline Swagger UI.
    admin.goto(f"{url}/api/docs/")
    expect(admin.get_by_text("Concord API").first).to_be_visible(timeout=15_000)
    expect(admin.get_by_text("/api/v1/projects/{project_id}/export/").first).to_be_visible()
    shots(admin, "09-api-docs")

    # 10. Webhooks: a URL on this machine is refused (request forgery) with the setting named.
    admin.goto(f"{url}/")
    admin.get_by_role("link", name=PROJECT).click()
    open_page(admin, "Webhooks")
    expect(admin.get_by_role("heading", name="No webhooks yet")).to_be_visible()
    admin.fill("input[name=url]", "http://127.0.0.1:9000/hook")
    admin.get_by_role("button", name="Add webhook").click()
    expect(admin.locator(".errorlist")).to_contain_text("CONCORD_WEBHOOKS_ALLOW_PRIVATE=1")
    expect(admin.get_by_role("heading", name="No webhooks yet")).to_be_visible()
    shots(admin, "10-webhook-refused")
