"""The `concord` command as a script runs it: a real subprocess against the live server,
reading its `--json` stdout and its exit code (0 ok, 2 usage, 3 auth, 4 not found,
5 refused or failed, 6 server unreachable)."""

import json
import os
import stat
import subprocess

import pandas as pd
import pytest

from tests.client.conftest import ADMIN, ADMIN_PASSWORD
from tests.client.test_client import crowd_answers, sentences


@pytest.fixture
def run_concord(concord_command, tmp_path):
    """run_concord(*args, stdin=None, env=None) -> (exit code, parsed JSON stdout, stderr)."""
    config = tmp_path / "concord-config.json"

    def run(*args, stdin=None, env=None):
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CONCORD_")},
            "CONCORD_CONFIG": str(config),
            **(env or {}),
        }
        done = subprocess.run(
            [concord_command, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
        )
        output = json.loads(done.stdout) if done.stdout.strip().startswith(("{", "[")) else None
        return done.returncode, output, done.stderr

    run.config = config
    return run


@pytest.fixture
def logged_in(run_concord, live):
    code, out, err = run_concord(
        "login", "--url", live.url, "--username", ADMIN, "--json", stdin=ADMIN_PASSWORD + "\n"
    )
    assert code == 0, err
    return run_concord


def test_help_lists_every_command_and_the_exit_codes(concord_command):
    done = subprocess.run([concord_command, "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for command in ("login", "projects", "import", "run", "export", "issues", "agreement"):
        assert f"    {command}" in done.stdout
    assert "Exit codes: 0 ok, 2 usage, 3 auth/permission, 4 not found" in done.stdout


def test_login_saves_the_token_readable_by_you_only_and_a_wrong_password_exits_3(run_concord, live):
    code, out, _ = run_concord(
        "login", "--url", live.url, "--username", ADMIN, "--json", stdin=ADMIN_PASSWORD + "\n"
    )
    assert code == 0 and out["url"] == live.url and out["username"] == ADMIN
    saved = json.loads(run_concord.config.read_text())
    assert saved["url"] == live.url and len(saved["token"]) >= 20
    assert saved["token"] not in json.dumps(out)  # never printed
    assert stat.S_IMODE(os.stat(run_concord.config).st_mode) == 0o600
    code, out, err = run_concord(
        "login", "--url", live.url, "--username", ADMIN, "--json", stdin="wrong\n"
    )
    assert code == 3 and out["error"]["type"] == "AuthError" and "credentials" in err.lower()
    code, _, _ = run_concord("login", "--url", live.url, "--token", saved["token"])
    assert code == 0


def test_import_run_issues_export_on_a_project_named_on_the_command_line(
    logged_in, concord, tmp_path
):
    project = concord.projects.create("cli-project", labels=["negative", "positive"], overlap=3)
    frame = sentences(60)
    items = tmp_path / "items.csv"
    frame.rename(columns={"id": "external_id", "review": "text"}).to_csv(items, index=False)
    code, out, err = logged_in(
        "import", "cli-project", str(items), "--metadata", "source", "--json"
    )
    assert code == 0, err
    assert out["status"] == "succeeded" and out["rows"] == 60
    answers = tmp_path / "answers.jsonl"
    answers.write_text("\n".join(json.dumps(a) for a in crowd_answers(frame)) + "\n")
    code, out, err = logged_in(
        "import", str(project.id), str(answers), "--kind", "annotations", "--json",
        "--map", "item=external_id", "--map", "who=annotator", "--map", "answer=label",
    )  # fmt: skip
    assert code == 0, err
    assert out["rows"] == 180

    code, out, err = logged_in("run", "cli-project", "agreement", "--json")
    assert code == 0, err
    assert out["status"] == "succeeded" and out["result"]["n_items"] == 60
    code, out, _ = logged_in("agreement", "cli-project", "--json")
    assert {row["annotator"] for row in out["per_annotator"]} == {"ann-a", "ann-b", "ann-c"}

    code, out, err = logged_in(
        "run", "cli-project", "label_issues", "--param", "folds=3", "--json", "--progress"
    )
    assert code == 0, err
    assert "label_issues" in err  # the progress bar, forced on although stderr is a pipe
    code, out, _ = logged_in("issues", "cli-project", "--top", "7", "--json")
    assert (
        code == 0 and len(out) == 7 and [r["rank"] for r in out] == sorted(r["rank"] for r in out)
    )

    target = tmp_path / "clean.parquet"
    code, out, err = logged_in(
        "export", "cli-project", "--labels", "dawid_skene", "--exclude", "unresolved",
        "-o", str(target), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert out["path"] == str(target) and out["bytes"] == target.stat().st_size
    clean = pd.read_parquet(target)
    assert 0 < len(clean) <= 60 and set(clean["label_source"]) <= {"dawid_skene", "review"}

    code, versions, _ = logged_in("versions", "cli-project", "--json")
    assert versions[0]["id"] == out["version"] and versions[0]["sha256"] == out["sha256"]
    again = tmp_path / "again.parquet"
    code, got, _ = logged_in("download", "cli-project", str(out["version"]), "-o", str(again))
    assert code == 0 and again.read_bytes() == target.read_bytes()


def test_a_rejected_import_exits_5_with_the_row_errors_in_the_json(logged_in, concord, tmp_path):
    project = concord.projects.create("cli-rejected", labels=["a", "b"])
    bad = tmp_path / "bad.csv"
    bad.write_text("external_id,text\nx1,fine\nx1,again\n")
    code, out, err = logged_in("import", str(project.id), str(bad), "--json")
    assert code == 5
    assert out["error"]["type"] == "ImportRejected"
    assert out["error"]["errors"] == [
        {"row": 3, "reason": "duplicate external_id 'x1' within the file"}
    ]
    assert "row 3" in err


def test_a_failed_run_exits_5(logged_in, concord):
    project = concord.projects.create("cli-failed-run", labels=["a", "b"])
    code, out, _ = logged_in("run", str(project.id), "label_issues", "--json")
    assert code == 5 and out["error"]["type"] == "RunFailed"


def test_a_missing_project_exits_4_and_bad_arguments_exit_2(logged_in):
    code, out, _ = logged_in("issues", "no-such-project", "--json")
    assert code == 4 and out["error"]["type"] == "NotFound"
    code, _, _ = logged_in("run", "x", "agreement", "--param", "novalue")
    assert code == 2
    code, _, err = logged_in("export", "x", "--labels", "nonsense", "-o", "x.parquet")
    assert code == 2 and "invalid choice" in err


def test_no_server_exits_2_and_an_unreachable_one_exits_6(run_concord):
    code, out, _ = run_concord("projects", "--json")
    assert code == 2 and out["error"]["type"] == "NotConfigured"
    code, out, _ = run_concord("projects", "--json", "--url", "http://127.0.0.1:9", "--token", "t")
    assert code == 6 and out["error"]["type"] == "ConnectionFailed"


def test_a_reader_that_stops_early_ends_the_command_quietly_with_0(logged_in, concord_command):
    # `concord ... --json | head`: the pipe's reader is gone before the answer is written.
    process = subprocess.Popen(
        [concord_command, "projects", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "CONCORD_CONFIG": str(logged_in.config)},
    )
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_a_bad_token_exits_3(run_concord, live):
    code, out, _ = run_concord("projects", "--json", "--url", live.url, "--token", "not-a-token")
    assert code == 3 and out["error"]["status"] == 401
