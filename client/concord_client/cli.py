"""`concord`: the command line. Every command takes `--json` (one JSON document on stdout);
progress bars go to stderr when it is a terminal, or with `--progress`.

Exit codes (scripts can rely on them): 0 done; 2 usage (bad arguments, no server or login
given); 3 authentication or permission; 4 not found (project, version, or no finished run);
5 refused or failed (a rejected import with its row errors, a failed run, a request the
server refused with a 4xx, a checksum mismatch); 6 the server could not be reached, timed
out, or answered with a server error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from concord_client import __version__
from concord_client.client import Concord, Project, token_for
from concord_client.config import save_login, saved_login
from concord_client.errors import (
    AuthError,
    ConcordError,
    ConnectionFailed,
    ImportRejected,
    NotConfigured,
    NotFound,
)

EXIT_OK, EXIT_USAGE, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_SERVER = 0, 2, 3, 4, 5, 6
EXIT_INTERRUPTED = 130
KINDS = ("items", "annotations", "gold", "predictions")
FORMATS = ("csv", "jsonl", "labelstudio", "conll")
EXPORT_FORMATS = ("parquet", "csv", "jsonl", "labelstudio", "conll")
LABELS = ("majority", "dawid_skene", "crowdlab", "reviewed")
EXCLUDES = ("open_issues", "ambiguous", "unresolved")


class UsageError(Exception):
    """Arguments that parse but do not make sense together (exit 2)."""


def _pairs(values: list[str] | None, what: str) -> dict[str, Any]:
    """`k=v` strings -> a dict; values that read as JSON (numbers, true, null) are decoded."""
    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {item!r}: write it as name=value.")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _client(args) -> Concord:
    return Concord(args.url, args.token, progress=args.progress)


def _project(args) -> Project:
    return _client(args).projects.get(args.project)


# ---- commands: each returns (JSON-able result, the human text) -----------------------------


def cmd_login(args):
    url = args.url or os.environ.get("CONCORD_URL") or saved_login().get("url")
    if not url:
        raise UsageError("Give the server: concord login --url http://host:8000")
    if args.token:
        token = args.token
        Concord(url, token, progress=False).projects.list()  # checks the token
        who = None
    else:
        who = args.username or input("Username: ")
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
        else:  # a script pipes the password in
            password = sys.stdin.readline().rstrip("\n")
        token = token_for(url, who, password)
    path = save_login(url=url, token=token)
    result = {"url": url.rstrip("/"), "username": who, "config": str(path)}
    return result, f"Logged in to {url}; saved to {path}"


def cmd_projects(args):
    rows = [
        {k: p.data.get(k) for k in ("id", "name", "data_type", "task_type", "role")}
        for p in _client(args).projects.list()
    ]
    text = "\n".join(f"{r['id']:>6}  {r['name']}  ({r['task_type']}, {r['role']})" for r in rows)
    return rows, text or "No projects."


def cmd_import(args):
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"No such file: {path}")
    if args.kind == "predictions" and not args.model:
        raise UsageError("--kind predictions needs --model NAME")
    options = _pairs(args.option, "--option")
    mapping = dict(_pairs(args.map, "--map"))
    project = _project(args)
    if args.kind == "predictions":
        result = project.predictions.log(path, model=args.model)
        return result, f"Stored {result['rows']:,} predictions of model {result['model']}"
    done = getattr(project, args.kind).log(
        path, format=args.format, mapping=mapping, metadata=args.metadata or (), **options
    )
    result = {"id": done.id, "status": done.status, "rows": done.rows, "message": done.message}
    return result, f"Import {done.id}: {done.message or done.status} ({done.rows:,} rows)"


def cmd_run(args):
    params = _pairs(args.param, "--param")
    project = _project(args)
    run = project.run(args.kind, wait=False, **params)
    if args.no_wait:
        return {"id": run.id, "kind": args.kind, "status": run.status}, f"Run {run.id} started"
    result = run.wait()
    text = [f"Run {run.id} ({args.kind}) succeeded"]
    text += [f"  {k}: {v}" for k, v in result.items() if not isinstance(v, list | dict)]
    return {"id": run.id, "kind": args.kind, "status": run.status, "result": result}, "\n".join(
        text
    )


def cmd_export(args):
    project = _project(args)
    done = project.export(
        args.labels,
        exclude=args.exclude or (),
        format=args.format,
        include=args.include,
        path=args.output,
    )
    size = done.path.stat().st_size
    result = {
        "path": str(done.path),
        "format": done.format,
        "version": done.version,
        "sha256": done.sha256,
        "bytes": size,
    }
    return result, f"Wrote {done.path} ({size:,} bytes, dataset version {done.version})"


def cmd_issues(args):
    frame = _project(args).issues(top=args.top)
    rows = json.loads(frame.to_json(orient="records")) if len(frame) else []
    lines = [
        f"{r['rank']:>5}  {r['external_id']}  {r['given_label']} -> {r['suggested_label']}  "
        f"quality {r['quality']:.3f}"
        for r in rows
    ]
    return rows, "\n".join(lines) or "No label issues (run: concord run PROJECT label_issues)."


def cmd_agreement(args):
    frame = _project(args).agreement()
    result = {**frame.attrs, "per_annotator": json.loads(frame.to_json(orient="records"))}
    text = [f"{k}: {v}" for k, v in frame.attrs.items() if not isinstance(v, list | dict)]
    return result, "\n".join(text + ["", frame.to_string(index=False)])


def cmd_versions(args):
    rows = [v.data for v in _project(args).versions()]
    text = "\n".join(
        f"{r['id']:>6}  {r['format']:<11} {r['row_count'] or 0:>10,} rows  {r['created_at']}"
        for r in rows
    )
    return rows, text or "No dataset versions yet."


def cmd_download(args):
    project = _project(args)
    wanted = [v for v in project.versions() if v.id == args.version]
    if not wanted:
        raise NotFound(f"Dataset version {args.version} not found in project {project.id}.")
    path = wanted[0].download(args.output)
    return {"path": str(path), "sha256": wanted[0].sha256}, f"Wrote {path} (sha256 checked)"


# ---- the parser ---------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="server URL (default: CONCORD_URL, then your login)")
    common.add_argument("--token", help="API token (default: CONCORD_TOKEN, then your login)")
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    common.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: when stderr is a terminal)",
    )
    main = argparse.ArgumentParser(
        prog="concord",
        description="Concord from the command line: import, run analyses, export.",
        epilog="Exit codes: 0 ok, 2 usage, 3 auth/permission, 4 not found, "
        "5 refused or failed (import, run, checksum), 6 server unreachable or server error.",
    )
    main.add_argument("--version", action="version", version=f"concord-client {__version__}")
    sub = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, help):
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = command("login", cmd_login, "save a token for a server (mode 0600 file; CONCORD_CONFIG)")
    p.add_argument("--username", help="prompted for when missing; the password always is")
    command("projects", cmd_projects, "list your projects")

    p = command("import", cmd_import, "upload a file of items, annotations, gold or predictions")
    p.add_argument("project", help="project id or name")
    p.add_argument("file")
    p.add_argument("--kind", choices=KINDS, default="items")
    p.add_argument("--format", choices=FORMATS, help="default: from the file's suffix")
    p.add_argument("--model", help="--kind predictions: the model's name")
    p.add_argument("--map", action="append", metavar="COLUMN=FIELD",
                   help="your column for Concord's field (external_id, text, image, "
                        "annotator, label, metadata); repeatable")  # fmt: skip
    p.add_argument("--metadata", action="append", metavar="COLUMN", help="a metadata column")
    p.add_argument("--option", action="append", metavar="NAME=VALUE",
                   help="another import option, e.g. on_duplicate=skip")  # fmt: skip

    p = command("run", cmd_run, "run an analysis and print its result")
    p.add_argument("project", help="project id or name")
    p.add_argument("kind", help="agreement, label_issues, baselines, slices, drift, ...")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="a run parameter")
    p.add_argument("--no-wait", action="store_true", help="print the run's id and return")

    p = command("export", cmd_export, "download the cleaned dataset")
    p.add_argument("project", help="project id or name")
    p.add_argument("--labels", choices=LABELS, help="default: the project's strategy")
    p.add_argument("--exclude", action="append", choices=EXCLUDES, help="repeatable")
    p.add_argument("--include", choices=("annotations",), help="one row per annotation")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="parquet")
    p.add_argument("-o", "--output", required=True, help="the file to write")

    p = command("issues", cmd_issues, "the likely label errors of the newest label-issue run")
    p.add_argument("project", help="project id or name")
    p.add_argument("--top", type=int, help="only the first N")

    p = command("agreement", cmd_agreement, "the newest agreement run's figures")
    p.add_argument("project", help="project id or name")

    p = command("versions", cmd_versions, "the recorded dataset versions")
    p.add_argument("project", help="project id or name")

    p = command("download", cmd_download, "download a dataset version, checking its sha256")
    p.add_argument("project", help="project id or name")
    p.add_argument("version", type=int)
    p.add_argument("-o", "--output", required=True)
    return main


def _exit_code(exc: ConcordError) -> int:
    if isinstance(exc, AuthError):
        return EXIT_AUTH
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, ConnectionFailed):
        return EXIT_SERVER
    if isinstance(exc, NotConfigured):
        return EXIT_USAGE
    return EXIT_REFUSED


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result, text = args.func(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except UsageError as exc:
        return _fail(args, EXIT_USAGE, "usage", str(exc))
    except ConcordError as exc:
        extra = {"status": exc.status}
        if isinstance(exc, ImportRejected):
            extra["errors"] = exc.errors
        return _fail(args, _exit_code(exc), type(exc).__name__, str(exc), **extra)
    except (ValueError, OSError) as exc:
        return _fail(args, EXIT_USAGE, type(exc).__name__, str(exc))
    _write(json.dumps(result, indent=2, default=str) if args.json else text)
    return EXIT_OK


def _write(text: str) -> None:
    """Print to stdout; a reader that stopped early (`| head`) is not the command's failure."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at nothing so that flush is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _fail(args, code: int, kind: str, message: str, **extra) -> int:
    print(f"concord: {message}", file=sys.stderr)
    if args.json:
        _write(json.dumps({"error": {"type": kind, "detail": message, "exit": code, **extra}}))
    return code


if __name__ == "__main__":
    sys.exit(main())
