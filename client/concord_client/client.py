"""`Concord`, its projects, and what a project does: log rows, run analyses, export.

Every call goes over HTTP to Concord's REST API (`/api/v1/`); the timeout policy is in
`concord_client._http`. pandas (and pyarrow for Parquet) are needed only by the methods that
return DataFrames, `datasets` only by `to_datasets` and Hugging Face inputs.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from concord_client._http import Http
from concord_client._progress import Progress, byte_message
from concord_client._tables import format_of, is_dataframe, is_hf_dataset, temporary_file
from concord_client.config import saved_login
from concord_client.errors import (
    AuthError,
    ChecksumMismatch,
    ConcordError,
    ImportRejected,
    NotConfigured,
    NotFound,
    RunFailed,
)

if TYPE_CHECKING:
    import datasets
    import pandas

PAGE_SIZE = 1000  # the largest page the server gives
POLL_FIRST, POLL_MAX = 0.25, 2.0
# `mapping` targets: Concord's field -> the import option naming the file's column for it.
MAPPING_OPTIONS = {
    "external_id": "id_column",
    "text": "text_column",
    "image": "image_column",
    "annotator": "annotator_column",
    "label": "label_column",
}
ISSUE_COLUMNS = [
    "id", "item", "external_id", "given_label", "suggested_label", "quality", "is_issue",
    "rank", "votes", "flagged_tokens", "given_spans", "resolution",
]  # fmt: skip
EXPORT_SUFFIXES = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet", "labelstudio": "json"}


# pandas and datasets are optional extras: imported by the calls that need them, so the
# bare client (httpx only) starts in 32 MB peak RSS (test_large_transfers) and works without them.
def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError(
            'This needs pandas and pyarrow: pip install "concord-client[pandas]"'
        ) from None
    return pandas


def _datasets():
    try:
        import datasets
    except ImportError:
        raise ImportError(
            'This needs Hugging Face datasets: pip install "concord-client[datasets]"'
        ) from None
    return datasets


def token_for(url: str, username: str, password: str) -> str:
    """Exchange a username and password for an API token (`POST /api/v1/auth/token/`)."""
    http = Http(url, None)
    try:
        answer = http.json("POST", "auth/token/", body={"username": username, "password": password})
    except ConcordError as exc:
        if exc.status == 400:  # DRF answers wrong credentials with a 400
            raise AuthError(exc.detail, status=exc.status, body=exc.body) from None
        raise
    finally:
        http.close()
    return answer["token"]


class Concord:
    """A connection to one Concord server.

    url, token: given, else `CONCORD_URL` / `CONCORD_TOKEN`, else the login `concord login`
    saved (its token only for its own URL). progress: draw progress bars on stderr (None:
    when stderr is a terminal). transfer_timeout: seconds an upload or export may wait for
    the server between chunks (None: no limit).
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        progress: bool | None = None,
        transfer_timeout: float | None = 1800.0,
    ):
        saved = saved_login()
        url = url or os.environ.get("CONCORD_URL") or saved.get("url")
        if not url:
            raise NotConfigured(
                "No server given: pass url=, set CONCORD_URL, or run `concord login`."
            )
        if token is None:
            token = os.environ.get("CONCORD_TOKEN")
        if token is None and saved.get("url", "").rstrip("/") == url.rstrip("/"):
            token = saved.get("token")
        self.url = url.rstrip("/")
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.http = Http(self.url, token, transfer_read=transfer_timeout)
        self.projects = Projects(self)

    @classmethod
    def login(cls, url: str, username: str, password: str, **kwargs: Any) -> Concord:
        """A client authenticated with the token of `username` (see `token_for`)."""
        return cls(url, token_for(url, username, password), **kwargs)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Concord:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def paged(
        self, path: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> Iterator[dict]:
        """Every row of a paged list (`{count, next, results}`), PAGE_SIZE rows per request."""
        page = self.http.json("GET", path, params={"page_size": PAGE_SIZE, **(params or {})})
        seen = 0
        while True:
            for row in page["results"]:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield row
            if not page.get("next"):
                return
            page = self.http.json("GET", page["next"])

    def bar(self, label: str) -> Progress:
        return Progress(label, enabled=self.progress)

    def download(
        self, label: str, path: str, target: Path, params: dict | None = None
    ) -> tuple[httpx.Headers, str]:
        """Stream `path` to `target` with a progress bar; (response headers, sha256 of the
        bytes written)."""
        bar = self.bar(label)
        headers, sha256 = self.http.download(
            path,
            target,
            params=params,
            on_bytes=lambda done, total: bar.update(
                done / total if total else None, byte_message(done, total)
            ),
        )
        bar.close(f"{target.stat().st_size / 1e6:,.1f} MB")
        return headers, sha256


class Projects:
    """`concord.projects`: create, get (by id or name) and list projects."""

    def __init__(self, concord: Concord):
        self._concord = concord

    def create(
        self,
        name: str,
        *,
        labels: Sequence[str | Mapping[str, str]],
        data_type: str = "text",
        task_type: str = "single_label",
        overlap: int = 1,
        ordered: bool = False,
        description: str = "",
    ) -> Project:
        """A new project (you become its manager). labels: names, or `{name, key}` dicts."""
        body = {
            "name": name,
            "description": description,
            "data_type": data_type,
            "task_type": task_type,
            "overlap": overlap,
            "ordered": ordered,
            "labels": [{"name": label} if isinstance(label, str) else label for label in labels],
        }
        return Project(self._concord, self._concord.http.json("POST", "projects/", body=body))

    def get(self, project: int | str) -> Project:
        """A project by id (an int, or a string of digits) or by its exact name."""
        if isinstance(project, int) or str(project).isdigit():
            return Project(self._concord, self._concord.http.json("GET", f"projects/{project}/"))
        matches = [p for p in self._concord.paged("projects/") if p["name"] == project]
        if not matches:
            raise NotFound(f"No project named {project!r} among yours.")
        if len(matches) > 1:
            ids = ", ".join(str(p["id"]) for p in matches)
            raise ConcordError(f"{len(matches)} projects are named {project!r} (ids {ids}).")
        return Project(self._concord, matches[0])

    def list(self) -> list[Project]:
        """The projects you are a member of, newest first."""
        return [Project(self._concord, data) for data in self._concord.paged("projects/")]


class Project:
    """One project. `data` is the server's JSON of it; `items`, `annotations`, `gold` and
    `predictions` upload rows; `run`, `issues`, `agreement`, `export`, `versions` read."""

    def __init__(self, concord: Concord, data: dict):
        self._concord = concord
        self.data = data
        self.items = Rows(self, "items")
        self.annotations = Rows(self, "annotations")
        self.gold = Rows(self, "gold")
        self.predictions = Predictions(self)

    @property
    def id(self) -> int:
        return self.data["id"]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def labels(self) -> list[str]:
        return [label["name"] for label in self.data.get("labels", [])]

    def __repr__(self) -> str:
        return f"<Project {self.id} {self.name!r}>"

    def refresh(self) -> Project:
        self.data = self._concord.http.json("GET", f"projects/{self.id}/")
        return self

    # ---- runs ------------------------------------------------------------------------

    def run(
        self, kind: str, *, wait: bool = True, timeout: float | None = None, **params: Any
    ) -> dict | Run:
        """Start an analysis run (`agreement`, `label_issues`, `baselines`, `slices`, ...).

        wait=True: poll it (with a progress bar) and return its `result` dict, or raise
        RunFailed with the server's message. wait=False: return the `Run` handle at once.
        """
        started = self._concord.http.json(
            "POST", f"projects/{self.id}/runs/", body={"kind": kind, "params": params}
        )
        run = Run(self._concord, {**started, "kind": kind, "project": self.id})
        return run.wait(timeout=timeout) if wait else run

    def issues(self, top: int | None = None) -> pandas.DataFrame:
        """The newest label-issue run's rows, ranked (`external_id, given_label,
        suggested_label, quality, is_issue, rank, ...`); `top`: the first n only.
        `attrs["run"]` is `{id, method}` of the run read (None when there is none)."""
        pd = _pandas()
        path = f"projects/{self.id}/issues/"
        head = self._concord.http.json("GET", path, params={"page_size": 1})
        rows = list(self._concord.paged(path, limit=top)) if head["count"] else []
        frame = pd.DataFrame(rows, columns=None if rows else ISSUE_COLUMNS)
        frame.attrs["run"] = head.get("run")
        return frame

    def agreement(self) -> pandas.DataFrame:
        """The newest succeeded agreement run: one row per annotator (`annotator, n,
        agreement`, or `span_f1` on span projects); the overall figures (`alpha`,
        `alpha_ci`, `percent_agreement`, `fleiss_kappa`, `n_items`, ...) and `run` (its id)
        are in `attrs`. Raises NotFound when no agreement run has finished."""
        pd = _pandas()
        runs = self._concord.http.json(
            "GET",
            f"projects/{self.id}/runs/",
            params={"kind": "agreement", "status": "succeeded", "page_size": 1},
        )
        if not runs["results"]:
            raise NotFound(
                f"Project {self.id} has no finished agreement run: run project.run('agreement')."
            )
        run = self._concord.http.json("GET", f"runs/{runs['results'][0]['id']}/")
        result = dict(run["result"] or {})
        frame = pd.DataFrame(result.pop("per_annotator", []))
        frame.attrs.update(result)
        frame.attrs["run"] = run["id"]
        return frame

    # ---- export ----------------------------------------------------------------------

    def export(
        self,
        labels: str | None = "dawid_skene",
        *,
        exclude: Iterable[str] = (),
        format: str = "parquet",
        include: str | None = None,
        min_agreement: float | None = None,
        guideline_version: int | None = None,
        path: str | os.PathLike | None = None,
    ) -> Export:
        """Stream the cleaned dataset to `path` (None: a temporary file, yours to delete).

        labels: majority, dawid_skene, crowdlab or reviewed (None: the project's default);
        exclude: open_issues, ambiguous, unresolved; include="annotations": one row per
        annotation. The export is recorded on the server as a dataset version.
        """
        params: dict[str, Any] = {"format": format}
        for name, value in (
            ("labels", labels),
            ("include", include),
            ("min_agreement", min_agreement),
            ("guideline_version", guideline_version),
        ):
            if value is not None:
                params[name] = value
        exclude = [exclude] if isinstance(exclude, str) else list(exclude)
        if exclude:
            params["exclude"] = ",".join(exclude)
        target = Path(path) if path is not None else _temp_path(format)
        headers, sha256 = self._concord.download(
            f"export {self.name}", f"projects/{self.id}/export/", target, params=params
        )
        version = headers.get("X-Concord-Dataset-Version")
        return Export(target, format, int(version) if version else None, sha256)

    def to_pandas(self, labels: str | None = "dawid_skene", **export: Any) -> pandas.DataFrame:
        """`export(...)` read into a DataFrame (through a temporary Parquet file)."""
        done = self.export(labels, **{"format": "parquet", **export, "path": None})
        try:
            return done.to_pandas()
        finally:
            done.path.unlink(missing_ok=True)

    def to_datasets(self, labels: str | None = "dawid_skene", **export: Any) -> datasets.Dataset:
        """`export(...)` as a Hugging Face Dataset (through a temporary Parquet file)."""
        done = self.export(labels, **{"format": "parquet", **export, "path": None})
        try:
            return done.to_datasets()
        finally:
            done.path.unlink(missing_ok=True)

    def versions(self) -> list[DatasetVersion]:
        """The project's recorded dataset versions (every export), newest first."""
        return [
            DatasetVersion(self, data)
            for data in self._concord.paged(f"projects/{self.id}/datasets/")
        ]


def _temp_path(format: str) -> Path:
    handle, name = tempfile.mkstemp(
        prefix="concord-export-", suffix="." + EXPORT_SUFFIXES.get(format, format)
    )
    os.close(handle)
    return Path(name)


class _Reading:
    """A binary file whose reads move a progress bar (httpx streams it in 64 KiB reads)."""

    def __init__(self, raw: IO[bytes], size: int, bar: Progress):
        self.raw, self.size, self.bar, self.done = raw, size, bar, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.raw.read(n)
        self.done += len(chunk)
        self.bar.update(
            self.done / self.size if self.size else 1.0, byte_message(self.done, self.size)
        )
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) == (0, 0):  # httpx rewinds before sending
            self.done = 0
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def fileno(self) -> int:
        return self.raw.fileno()


class ImportResult:
    """A finished import: `id`, `status` ("succeeded"), `rows`, `message`."""

    def __init__(self, data: dict):
        self.data = data
        self.id: int = data["id"]
        self.status: str = data["status"]
        self.rows: int = data.get("rows") or 0
        self.message: str = data.get("message") or ""

    def __repr__(self) -> str:
        return f"<ImportResult {self.id} {self.status} rows={self.rows}>"


class Rows:
    """`project.items`, `project.annotations`, `project.gold`: `log(...)` uploads rows."""

    def __init__(self, project: Project, kind: str):
        self._project = project
        self.kind = kind

    def log(
        self,
        data: Any,
        *,
        mapping: Mapping[str, str] | None = None,
        format: str | None = None,
        metadata: Iterable[str] = (),
        timeout: float | None = None,
        **options: Any,
    ) -> ImportResult:
        """Upload rows and wait until they are imported.

        data: a pandas DataFrame, a list (or iterator) of dicts, a Hugging Face Dataset, or
        a path to a CSV / JSON Lines / Label Studio / CoNLL file. In-memory rows are written
        to a temporary file in chunks; the file is streamed to the server.
        mapping: `{your column: Concord's field}`, fields `external_id`, `text`, `image`,
        `annotator`, `label`, or `metadata` (a slice attribute). Nothing is renamed: each
        becomes the import option naming that column (`{"review": "text"}` sends
        `text_column=review`), so it works for files on disk too.
        metadata: more metadata column names. format: csv, jsonl, labelstudio or conll
        (default: from the file's suffix; for in-memory rows csv when every value is a
        scalar, else jsonl). options: other import options (`on_duplicate="skip"`,
        `delimiter`, `first_row_is_data`, `annotator`). timeout: seconds to follow an import
        that runs as a job (None: until it ends).
        Raises ImportRejected (with `.errors`, row and reason each) when the file is refused.
        """
        fields = dict(options)
        metadata_columns = list(metadata)
        for column, target in (mapping or {}).items():
            if target == "metadata":
                metadata_columns.append(column)
            elif target in MAPPING_OPTIONS:
                fields[MAPPING_OPTIONS[target]] = column
            else:
                allowed = ", ".join([*MAPPING_OPTIONS, "metadata"])
                raise ValueError(
                    f"mapping: unknown field {target!r} for {column!r}; use {allowed}."
                )
        if metadata_columns:
            fields["metadata_columns"] = ",".join(metadata_columns)
        if isinstance(data, str | os.PathLike):
            path = Path(data)
            return self._send(path, format or format_of(path), fields, timeout)
        if not (is_dataframe(data) or is_hf_dataset(data) or isinstance(data, Iterable)):
            raise TypeError(
                f"Cannot log a {type(data).__name__}: give a DataFrame, dicts or a path."
            )
        with temporary_file(data, format=format) as (path, fmt):
            return self._send(path, fmt, fields, timeout)

    def _send(self, path: Path, fmt: str, fields: dict, timeout: float | None) -> ImportResult:
        concord, project = self._project._concord, self._project
        form = {"format": fmt, "kind": self.kind}
        for name, value in fields.items():
            form[name] = str(value).lower() if isinstance(value, bool) else str(value)
        bar = concord.bar(f"upload {path.name}")
        size = path.stat().st_size
        try:
            with open(path, "rb") as raw:
                body = concord.http.upload(
                    f"projects/{project.id}/imports/",
                    fileobj=_Reading(raw, size, bar),  # type: ignore[arg-type]
                    filename=path.name,
                    content_type="text/csv" if fmt == "csv" else "application/octet-stream",
                    data=form,
                )
        except ConcordError as exc:
            raise _as_rejected(exc) from None
        bar.close("sent")
        if body["status"] == "succeeded":
            return ImportResult(body)
        return self._follow(body["id"], timeout)

    def _follow(self, import_id: int, timeout: float | None) -> ImportResult:
        """Poll an import running as a job until it ends."""
        concord = self._project._concord
        bar = concord.bar(f"import {import_id}")
        path = f"projects/{self._project.id}/imports/{import_id}/"
        for state in _polled(
            lambda: concord.http.json("GET", path), timeout, f"import {import_id}"
        ):
            bar.update(state.get("progress"), state.get("message") or state["status"])
            if state["status"] == "succeeded":
                bar.close(state.get("message") or "imported")
                return ImportResult(state)
            if state["status"] == "failed":
                bar.close("failed")
                raise ImportRejected(
                    state.get("message") or "The import failed; nothing was imported.",
                    errors=state.get("errors") or [],
                )
        raise AssertionError("unreachable")


def _as_rejected(exc: ConcordError) -> ConcordError:
    """A refusal that lists bad rows (`errors`) as ImportRejected; any other error as it is."""
    if isinstance(exc.body, dict) and isinstance(exc.body.get("errors"), list):
        return ImportRejected(
            exc.detail, errors=exc.body["errors"], status=exc.status, body=exc.body
        )
    return exc


def _polled(fetch, timeout: float | None, what: str):
    """fetch() again and again, 0.25 s apart at first then up to 2 s, until the caller stops."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = POLL_FIRST
    while True:
        yield fetch()
        if deadline is not None and time.monotonic() > deadline:
            raise ConcordError(f"Gave up waiting for {what} after {timeout:g} s (it goes on).")
        time.sleep(delay)
        delay = min(delay * 1.5, POLL_MAX)


class Predictions:
    """`project.predictions.log(...)`: a model's class probabilities per item."""

    def __init__(self, project: Project):
        self._project = project

    def log(
        self,
        data: Any,
        *,
        model: str,
        classes: Sequence[str] | None = None,
        mapping: Mapping[str, str] | None = None,
    ) -> dict:
        """Upload predictions; returns `{model, classes, rows}`.

        data: a DataFrame (or CSV path) with `external_id` and one column per label name,
        streamed as a CSV file; or a list of `{"external_id", "probabilities": [...]}` with
        `classes` (the label names in the order of the probabilities), sent as JSON (span
        projects: one list per token, classes `["O", ...]`). mapping renames columns of a
        DataFrame or the keys of dicts (`{"id": "external_id"}`; the server has no column
        options for predictions). Re-uploading a model name replaces it.
        Raises ImportRejected listing bad rows.
        """
        concord, project = self._project._concord, self._project
        path = f"projects/{project.id}/predictions/"
        try:
            if isinstance(data, str | os.PathLike) or is_dataframe(data):
                if mapping and not is_dataframe(data):
                    raise ValueError("mapping renames columns in memory; rename a file's header.")
                if is_dataframe(data):
                    with temporary_file(data, format="csv", renames=mapping) as (csv_path, _):
                        return self._upload(csv_path, model)
                return self._upload(Path(data), model)
            if classes is None:
                raise ValueError("Give classes= (label names in the order of the probabilities).")
            renames = mapping or {}
            rows = [{renames.get(k, k): v for k, v in row.items()} for row in data]
            return concord.http.json(
                "POST",
                path,
                body={"model": model, "classes": list(classes), "rows": rows},
                timeout=httpx.Timeout(concord.http.transfer_read, connect=10.0),
            )
        except ConcordError as exc:
            raise _as_rejected(exc) from None

    def _upload(self, path: Path, model: str) -> dict:
        concord = self._project._concord
        with open(path, "rb") as raw:
            return concord.http.upload(
                f"projects/{self._project.id}/predictions/",
                fileobj=raw,
                filename=path.name,
                content_type="text/csv",
                data={"model": model},
            )

    def list(self) -> list[dict]:
        """The project's stored models: `{model, classes, rows, created_at}` each."""
        return self._project._concord.http.json("GET", f"projects/{self._project.id}/predictions/")


class Run:
    """An analysis run: `id`, `kind`, `status` (queued, running, succeeded, failed),
    `progress` (0..1), `message`, `result` (when succeeded), `error`."""

    def __init__(self, concord: Concord, data: dict):
        self._concord = concord
        self.data = data

    @property
    def id(self) -> int:
        return self.data["id"]

    @property
    def status(self) -> str:
        return self.data["status"]

    @property
    def progress(self) -> float:
        return self.data.get("progress") or 0.0

    @property
    def message(self) -> str:
        return self.data.get("message") or ""

    @property
    def result(self) -> dict | None:
        return self.data.get("result")

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed")

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.data.get('kind')} {self.status}>"

    def refresh(self) -> Run:
        """Fetch the run's current state (`GET /api/v1/runs/{id}/`)."""
        self.data = self._concord.http.json("GET", f"runs/{self.id}/")
        return self

    def wait(self, timeout: float | None = None) -> dict:
        """Poll until the run ends; its `result`, or RunFailed with the server's message."""
        bar = self._concord.bar(f"{self.data.get('kind', 'run')} {self.id}")
        for _ in _polled(self.refresh, timeout, f"run {self.id}"):
            bar.update(self.progress, self.message or self.status)
            if self.status == "succeeded":
                bar.close(self.message or "succeeded")
                return self.result or {}
            if self.status == "failed":
                bar.close("failed")
                reason = self.data.get("error") or self.message or "no reason given"
                raise RunFailed(
                    f"Run {self.id} ({self.data.get('kind')}) failed: {reason}", run=self.data
                )
        raise AssertionError("unreachable")


class Export:
    """An exported file: `path`, `format`, `version` (the dataset version the server
    recorded), `sha256` (of the bytes received)."""

    def __init__(self, path: Path, format: str, version: int | None, sha256: str):
        self.path, self.format, self.version, self.sha256 = path, format, version, sha256

    def __repr__(self) -> str:
        return f"<Export {self.path} version={self.version}>"

    def to_pandas(self) -> pandas.DataFrame:
        pd = _pandas()
        if self.format == "parquet":
            return pd.read_parquet(self.path)
        if self.format == "csv":
            return pd.read_csv(self.path, keep_default_na=False, na_values=[""])
        if self.format == "jsonl":
            return pd.read_json(self.path, lines=True, dtype=False)
        if self.format == "labelstudio":
            return pd.read_json(self.path, dtype=False)
        raise ValueError(f"A {self.format} export has no DataFrame reading; use its file.")

    def to_datasets(self) -> datasets.Dataset:
        ds = _datasets()
        if self.format == "parquet":
            return ds.Dataset.from_parquet(str(self.path))
        if self.format == "csv":
            return ds.Dataset.from_csv(str(self.path))
        if self.format == "jsonl":
            return ds.Dataset.from_json(str(self.path))
        return ds.Dataset.from_pandas(self.to_pandas(), preserve_index=False)


class DatasetVersion:
    """A recorded export: `id`, `format`, `params`, `row_count`, `sha256`, `created_at`."""

    def __init__(self, project: Project, data: dict):
        self._project = project
        self.data = data
        self.id: int = data["id"]
        self.format: str = data["format"]
        self.params: dict = data.get("params") or {}
        self.row_count: int | None = data.get("row_count")
        self.sha256: str | None = data.get("sha256") or None
        self.created_at: str | None = data.get("created_at")

    def __repr__(self) -> str:
        return f"<DatasetVersion {self.id} {self.format} rows={self.row_count}>"

    def download(self, path: str | os.PathLike) -> Path:
        """Download the version again, checking its sha256 (the listed one and the
        `X-Concord-Sha256` header); on a mismatch the file is deleted and ChecksumMismatch
        raised. A version whose export never finished has no checksum to check."""
        target = Path(path)
        concord = self._project._concord
        headers, sha256 = concord.download(
            f"version {self.id}", f"projects/{self._project.id}/datasets/{self.id}/", target
        )
        expected = {value for value in (self.sha256, headers.get("X-Concord-Sha256")) if value}
        if any(value != sha256 for value in expected):
            target.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"Dataset version {self.id}: the download's sha256 {sha256} is not the "
                f"recorded {', '.join(sorted(expected))}; the file was deleted."
            )
        return target
