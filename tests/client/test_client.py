"""The Python client against a live Concord (runserver + a real worker): every method once.

Scenarios: log in, find projects, push a DataFrame / dicts / a Hugging Face Dataset / a file
(at once and as a followed job), see a rejected file's row errors, bring annotations, gold and
predictions, run analyses (waiting, or with a handle), read issues and agreement as
DataFrames, export to a file, pandas and datasets, download versions by checksum.
"""

import csv
import os
import random
import stat

import datasets
import pandas as pd
import pytest
from concord_client import (
    AuthError,
    ChecksumMismatch,
    Concord,
    ConcordError,
    ConnectionFailed,
    ImportRejected,
    NotConfigured,
    NotFound,
    Run,
    RunFailed,
)
from concord_client.config import save_login

from tests.client.conftest import ADMIN, ADMIN_PASSWORD, ASYNC_BYTES
from tests.conftest import ROOT
from tests.factories import SENTIMENT_DATA

LABELS = ["negative", "positive"]
ANNOTATORS = {"ann-a": 0.95, "ann-b": 0.85, "ann-c": 0.7}  # accuracy of each simulated worker


def sentences(n: int) -> pd.DataFrame:
    """The first n UCI sentiment sentences (Amazon), with their true label and a source."""
    rows = list(csv.reader(open(SENTIMENT_DATA / "amazon.tsv"), delimiter="\t"))[:n]
    return pd.DataFrame(
        {
            "id": [f"s{i:04d}" for i in range(len(rows))],
            "review": [text for text, _ in rows],
            "truth": [LABELS[int(label)] for _, label in rows],
            "source": ["amazon" if i % 2 else "shop" for i in range(len(rows))],
        }
    )


def crowd_answers(frame: pd.DataFrame, seed: int = 3) -> list[dict]:
    """Each simulated annotator labels every sentence, right with its accuracy."""
    rng = random.Random(seed)
    answers = []
    for name, accuracy in ANNOTATORS.items():
        for ext, truth in zip(frame["id"], frame["truth"], strict=True):
            wrong = LABELS[1 - LABELS.index(truth)]
            label = truth if rng.random() < accuracy else wrong
            answers.append({"item": ext, "who": name, "answer": label})
    return answers


@pytest.fixture(scope="module")
def labeled(concord):
    """A project with 120 sentences, three annotators' labels and a model's probabilities."""
    project = concord.projects.create("client-labeled", labels=LABELS, overlap=3)
    frame = sentences(120)
    project.items.log(frame, mapping={"id": "external_id", "review": "text", "source": "metadata"})
    project.annotations.log(
        crowd_answers(frame), mapping={"item": "external_id", "who": "annotator", "answer": "label"}
    )
    return project, frame


# ---- connecting -----------------------------------------------------------------------------


def test_a_token_comes_from_a_username_and_password_and_a_wrong_password_is_an_auth_error(live):
    with Concord.login(live.url, ADMIN, ADMIN_PASSWORD, progress=False) as client:
        assert isinstance(client.projects.list(), list)  # the token is accepted
    with pytest.raises(AuthError) as wrong:
        Concord.login(live.url, ADMIN, "not-the-password")
    assert "credentials" in str(wrong.value).lower()
    with pytest.raises(AuthError) as no_token:
        Concord(live.url, token="", progress=False).projects.list()
    assert no_token.value.status == 401


def test_url_and_token_come_from_the_environment_or_else_the_saved_login(
    live, concord, monkeypatch, tmp_path
):
    token = concord.http.client.headers["Authorization"].split()[1]
    project = concord.projects.create("client-env", labels=LABELS)
    monkeypatch.setenv("CONCORD_CONFIG", str(tmp_path / "config.json"))
    monkeypatch.delenv("CONCORD_URL", raising=False)
    monkeypatch.delenv("CONCORD_TOKEN", raising=False)
    with pytest.raises(NotConfigured):
        Concord()
    monkeypatch.setenv("CONCORD_URL", live.url)
    monkeypatch.setenv("CONCORD_TOKEN", token)
    assert Concord(progress=False).projects.get(project.id).name == "client-env"
    monkeypatch.delenv("CONCORD_URL")
    monkeypatch.delenv("CONCORD_TOKEN")
    saved = save_login(url=live.url, token=token)
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    assert Concord(progress=False).projects.get(project.id).name == "client-env"
    # The saved token is only sent to the server it was saved for.
    other = Concord("http://127.0.0.1:9", progress=False)
    assert "Authorization" not in other.http.client.headers


def test_an_unreachable_server_is_a_connection_error_after_retrying_the_get():
    client = Concord("http://127.0.0.1:9", token="x", progress=False)
    with pytest.raises(ConnectionFailed) as failed:
        client.projects.list()
    assert "Cannot reach http://127.0.0.1:9" in str(failed.value)


# ---- projects -------------------------------------------------------------------------------


def test_projects_are_created_then_got_by_id_or_by_name_and_listed(concord):
    made = concord.projects.create(
        "client-projects", labels=["cat", {"name": "dog", "key": "d"}], overlap=2
    )
    assert made.labels == ["cat", "dog"] and made.data["overlap"] == 2
    assert concord.projects.get(made.id).name == "client-projects"
    assert concord.projects.get(str(made.id)).id == made.id
    assert concord.projects.get("client-projects").id == made.id
    assert made.id in [p.id for p in concord.projects.list()]
    assert made.refresh().data["role"] == "manager"
    with pytest.raises(NotFound):
        concord.projects.get("no-such-project")
    with pytest.raises(NotFound):
        concord.projects.get(10**8)


# ---- logging rows ---------------------------------------------------------------------------


def items_of(concord, project) -> dict[str, dict]:
    return {row["external_id"]: row for row in concord.paged(f"projects/{project.id}/items/")}


def test_a_dataframe_is_logged_with_a_mapping_to_concords_fields(concord, labeled):
    project, frame = labeled
    items = items_of(concord, project)
    assert len(items) == 120
    assert items["s0001"]["data"]["text"] == frame["review"][1]
    assert items["s0001"]["metadata"] == {"source": "amazon"}
    assert items["s0002"]["metadata"] == {"source": "shop"}


def test_dicts_and_a_hugging_face_dataset_are_logged_too(concord, new_project):
    project = new_project()
    done = project.items.log(
        [{"external_id": "r1", "text": "fine"}, {"external_id": "r2", "text": "bad"}]
    )
    assert (done.status, done.rows) == ("succeeded", 2)
    hf = datasets.Dataset.from_dict({"uid": ["h1", "h2", "h3"], "text": ["a", "b", "c"]})
    assert project.items.log(hf, mapping={"uid": "external_id"}).rows == 3
    assert sorted(items_of(concord, project)) == ["h1", "h2", "h3", "r1", "r2"]


def test_a_file_larger_than_the_inline_limit_runs_as_a_job_and_is_followed_to_the_end(
    concord, new_project, tmp_path
):
    project = new_project()
    path = tmp_path / "big.csv"
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["external_id", "text", "region"])
        for i in range(6000):
            writer.writerow([f"b{i}", f"sentence number {i} " + "x" * 40, "NESW"[i % 4]])
    assert path.stat().st_size > ASYNC_BYTES
    done = project.items.log(path, metadata=["region"])
    assert (done.status, done.rows) == ("succeeded", 6000)
    assert "6,000 rows" in done.message
    page = concord.http.json("GET", f"projects/{project.id}/items/", params={"meta_region": "S"})
    assert page["count"] == 1500


def test_a_rejected_file_raises_with_each_rows_error_and_imports_nothing(concord, new_project):
    project = new_project()
    rows = [{"external_id": "ok", "text": "fine"}, {"external_id": "ok", "text": "again"},
            {"external_id": "no-text"}]  # fmt: skip
    with pytest.raises(ImportRejected) as rejected:
        project.items.log(rows)
    reasons = {error["row"]: error["reason"] for error in rejected.value.errors}
    assert set(reasons) == {2, 3}
    assert "row 2:" in str(rejected.value) and "row 3:" in str(rejected.value)
    assert items_of(concord, project) == {}


def test_a_rejected_file_that_ran_as_a_job_raises_the_same_way(concord, new_project):
    project = new_project()
    big = pd.DataFrame(
        {"external_id": [f"d{i // 2}" for i in range(8000)], "text": ["y" * 30] * 8000}
    )
    with pytest.raises(ImportRejected) as rejected:
        project.items.log(big)
    first = rejected.value.errors[0]
    assert first == {"row": 3, "reason": "duplicate external_id 'd0' within the file"}
    assert str(rejected.value).startswith("rejected: nothing was imported (4,000 problems")
    assert items_of(concord, project) == {}


def test_an_unknown_mapping_target_is_refused_before_anything_is_sent(new_project):
    with pytest.raises(ValueError, match="unknown field 'txt'"):
        new_project().items.log([{"a": 1}], mapping={"a": "txt"})


def test_gold_answers_are_logged_for_items_already_there(concord, new_project):
    project = new_project()
    frame = sentences(30)
    project.items.log(frame[["id", "review"]], mapping={"id": "external_id", "review": "text"})
    gold = frame.head(20)[["id", "truth"]]
    done = project.gold.log(gold, mapping={"id": "external_id", "truth": "label"})
    assert done.rows == 20
    with pytest.raises(ImportRejected) as unknown:
        project.gold.log([{"external_id": "nowhere", "label": "positive"}])
    assert unknown.value.errors[0]["row"] == 1


def test_predictions_are_logged_as_a_csv_from_a_dataframe_or_as_json_rows(concord, labeled):
    project, frame = labeled
    rng = random.Random(5)
    positive = [
        min(max((t == "positive") * 0.8 + rng.uniform(0, 0.2), 0.0), 1.0) for t in frame["truth"]
    ]
    probabilities = pd.DataFrame(
        {"id": frame["id"], "negative": [1 - p for p in positive], "positive": positive}
    )
    stored = project.predictions.log(probabilities, model="toy", mapping={"id": "external_id"})
    assert stored == {"model": "toy", "classes": ["negative", "positive"], "rows": 120}
    as_json = project.predictions.log(
        [
            {"external_id": e, "probabilities": [1 - p, p]}
            for e, p in zip(frame["id"], positive, strict=True)
        ],
        model="toy-json",
        classes=["negative", "positive"],
    )
    assert as_json["rows"] == 120
    assert {m["model"] for m in project.predictions.list()} == {"toy", "toy-json"}
    with pytest.raises(ImportRejected) as bad:
        project.predictions.log(
            [{"external_id": "nope", "probabilities": [0.5, 0.5]}], model="bad", classes=LABELS
        )
    assert bad.value.errors[0]["row"] == 1


def test_annotations_by_name_become_the_crowd_the_agreement_run_measures(concord, labeled):
    project, _ = labeled
    result = project.run("agreement")
    assert result["n_items"] == 120 and result["n_annotations"] == 360
    assert 0.2 < result["alpha"] < 0.9
    frame = project.agreement()
    assert sorted(frame["annotator"]) == sorted(ANNOTATORS)
    best = frame.set_index("annotator")["agreement"]
    assert best["ann-a"] > best["ann-c"]
    assert frame.attrs["alpha"] == result["alpha"] and frame.attrs["n_items"] == 120


def test_a_run_handle_refreshes_and_waits(labeled):
    project, _ = labeled
    run = project.run("label_issues", wait=False, model="toy")
    assert isinstance(run, Run) and run.status in ("queued", "running", "succeeded")
    result = run.wait(timeout=120)
    assert run.refresh().status == "succeeded" and run.done
    assert result["n_items"] == 120 and result == run.result
    issues = project.issues()
    assert len(issues) == result["n_items"]
    assert list(issues["rank"]) == sorted(issues["rank"])
    top = project.issues(top=5)
    assert list(top["external_id"]) == list(issues["external_id"][:5])
    assert issues.attrs["run"]["id"] == run.id


def test_a_failed_run_raises_run_failed_with_the_servers_message(new_project):
    project = new_project()
    project.items.log([{"external_id": "u1", "text": "unlabeled"}])
    project.predictions.log(
        [{"external_id": "u1", "probabilities": [0.4, 0.6]}], model="m", classes=LABELS
    )
    with pytest.raises(RunFailed) as failed:
        project.run("label_issues", model="m")
    assert failed.value.run["status"] == "failed"
    assert "The project has no single-label annotations to check." in str(failed.value)


def test_a_refused_run_and_no_finished_run_are_typed_errors(new_project):
    project = new_project()
    with pytest.raises(ConcordError) as refused:
        project.run("agreement", bogus=1)
    assert "bogus" in str(refused.value) and refused.value.status == 400
    with pytest.raises(NotFound, match="no finished agreement run"):
        project.agreement()
    assert project.issues().empty


# ---- export ---------------------------------------------------------------------------------


def test_export_writes_a_file_that_reads_into_pandas_and_datasets(labeled, tmp_path):
    project, frame = labeled
    done = project.export(labels="dawid_skene", format="parquet", path=tmp_path / "clean.parquet")
    assert done.path == tmp_path / "clean.parquet" and done.version is not None
    table = done.to_pandas()
    assert len(table) == 120 and set(table["label_source"]) == {"dawid_skene"}
    truth = dict(zip(frame["id"], frame["truth"], strict=True))
    accuracy = (table["label"] == table["external_id"].map(truth)).mean()
    assert accuracy > 0.9
    assert done.to_datasets().num_rows == 120
    csv_export = project.export(labels="majority", format="csv", exclude=["unresolved"])
    assert len(csv_export.to_pandas()) <= 120
    csv_export.path.unlink()
    direct = project.to_pandas(labels="dawid_skene")
    assert list(direct["label"]) == list(table["label"])
    assert project.to_datasets(labels="majority", include="annotations").num_rows == 360


def test_versions_download_again_by_checksum_and_a_mismatch_deletes_the_file(labeled, tmp_path):
    project, _ = labeled
    project.export(labels="majority", format="jsonl", path=tmp_path / "first.jsonl")
    version = project.versions()[0]
    assert version.format == "jsonl" and version.row_count == 120 and version.sha256
    again = version.download(tmp_path / "again.jsonl")
    assert again.read_bytes() == (tmp_path / "first.jsonl").read_bytes()
    version.sha256 = "0" * 64
    with pytest.raises(ChecksumMismatch):
        version.download(tmp_path / "tampered.jsonl")
    assert not (tmp_path / "tampered.jsonl").exists()


def test_an_export_with_a_bad_parameter_names_it_and_leaves_files_alone(labeled, tmp_path):
    project, _ = labeled
    with pytest.raises(ConcordError) as bad:
        project.export(labels="nonsense", path=tmp_path / "x.parquet")
    assert bad.value.status == 400 and "nonsense" in str(bad.value)
    assert not (tmp_path / "x.parquet").exists()
    kept = tmp_path / "kept.parquet"
    kept.write_bytes(b"an earlier export")
    with pytest.raises(ConcordError):
        project.export(exclude=["everything"], path=kept)
    assert kept.read_bytes() == b"an earlier export"


# ---- the README ---------------------------------------------------------------------------


def readme_notebook() -> str:
    """The first python block of the README's "From Python" section."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## From Python") :]
    return section[
        section.index("```python\n") + 10 : section.index("\n```", section.index("```python"))
    ]


def test_the_readme_notebook_example_runs_as_written(live, concord, monkeypatch, tmp_path, capsys):
    token = concord.http.client.headers["Authorization"].split()[1]
    monkeypatch.setenv("CONCORD_URL", live.url)
    monkeypatch.setenv("CONCORD_TOKEN", token)
    monkeypatch.chdir(tmp_path)
    answers = [(ext, who, label) for ext, labels in
               {"r1": ["positive", "positive"], "r2": ["negative", "negative"],
                "r3": ["positive", "negative"]}.items()
               for who, label in zip(["ann-a", "ann-b"], labels, strict=True)]  # fmt: skip
    pd.DataFrame(answers, columns=["external_id", "annotator", "label"]).to_csv(
        "crowd_answers.csv", index=False
    )
    namespace: dict = {}
    exec(readme_notebook(), namespace)
    clean = namespace["clean"]
    assert list(clean["external_id"]) == ["r1", "r2", "r3"]
    assert list(clean["label"][:2]) == ["positive", "negative"]
    assert set(clean["label_source"]) == {"dawid_skene"}
    assert "ann-a" in capsys.readouterr().out
