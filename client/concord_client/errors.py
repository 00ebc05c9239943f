"""Typed errors. Each carries the server's `detail` and the HTTP status when there was one."""

from __future__ import annotations

from typing import Any


class ConcordError(Exception):
    """Any failure talking to Concord: `detail` is the server's message, `status` its code."""

    def __init__(self, detail: Any, *, status: int | None = None, body: Any = None):
        self.detail = detail
        self.status = status
        self.body = body
        super().__init__(_text(detail, body))


class NotConfigured(ConcordError):
    """No server URL was given (argument, CONCORD_URL, or a saved login)."""


class ConnectionFailed(ConcordError):
    """The server could not be reached, or it answered with a server error (5xx)."""


class AuthError(ConcordError):
    """No token, a wrong token or password (401), or a role too low for the action (403)."""


class NotFound(ConcordError):
    """The project, run or version does not exist, or you are not a member of its project."""


class ImportRejected(ConcordError):
    """An import was refused; `errors` lists `{"row", "reason"}` (row numbers from the file)."""

    def __init__(self, detail: Any, *, errors: list[dict], status: int | None = None, body=None):
        self.errors = errors
        super().__init__(detail, status=status, body=body)

    def __str__(self) -> str:
        lines = [str(self.detail)]
        for error in self.errors[:20]:
            row = error.get("row")
            where = f"row {row}" if row is not None else "file"
            lines.append(f"  {where}: {error.get('reason')}")
        if len(self.errors) > 20:
            lines.append(f"  ... and {len(self.errors) - 20} more")
        return "\n".join(lines)


class RunFailed(ConcordError):
    """An analysis run ended `failed`; `run` is its last state as the server reported it."""

    def __init__(self, detail: Any, *, run: dict):
        self.run = run
        super().__init__(detail)


class ChecksumMismatch(ConcordError):
    """A downloaded dataset version's bytes do not match its recorded sha256."""


def _text(detail: Any, body: Any) -> str:
    """A one-paragraph message: the detail, then field errors (`field: message`)."""
    parts = [detail if isinstance(detail, str) else str(detail)]
    if isinstance(body, dict):
        for field, value in body.items():
            if field in ("detail", "errors", "id", "status", "rows"):
                continue
            messages = value if isinstance(value, list) else [value]
            parts.append(f"{field}: {' '.join(str(m) for m in messages)}")
    return " ".join(parts)
