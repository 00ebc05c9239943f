"""HTTP underneath the client: one `httpx.Client`, three timeout policies, typed errors.

- `json()`: small JSON calls. Connect 5 s, read 30 s. GETs are idempotent, so a connection
  error, a read timeout or a 502/503/504 is retried (3 attempts, 0.5 s then 1 s apart);
  a POST is retried only when the connection was never made (nothing was sent).
- `upload()`: a multipart POST whose file part httpx streams from disk in 64 KiB chunks.
  Connect 10 s, write 5 min per chunk, read `transfer_timeout` (default 30 min, None: no
  limit): the server reads the whole file before it answers.
- `download()`: a streamed GET written to a file chunk by chunk; read `transfer_timeout`
  between chunks (an export may think before its first byte).
Jobs (imports that run on the worker, analysis runs) are never a long-held request: the
caller polls them with `json()`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import httpx

from concord_client import __version__
from concord_client.errors import AuthError, ConcordError, ConnectionFailed, NotFound

JSON_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
RETRY_STATUSES = (502, 503, 504)
RETRY_DELAYS = (0.5, 1.0)
DOWNLOAD_CHUNK = 1 << 20


def transfer_timeout(read: float | None) -> httpx.Timeout:
    return httpx.Timeout(connect=10.0, read=read, write=300.0, pool=10.0)


class Http:
    """The client's connection to one server, authenticated with one token."""

    def __init__(self, url: str, token: str | None, *, transfer_read: float | None = 1800.0):
        self.url = url.rstrip("/")
        self.transfer_read = transfer_read
        headers = {"Accept": "application/json", "User-Agent": f"concord-client/{__version__}"}
        if token:
            headers["Authorization"] = f"Token {token}"
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=JSON_TIMEOUT)

    def close(self) -> None:
        self.client.close()

    def path(self, path: str) -> str:
        """An absolute URL (a `next` link) or a path under /api/v1/."""
        if path.startswith(("http://", "https://")):
            return path
        return "/api/v1/" + path.lstrip("/")

    def json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: httpx.Timeout | None = None,
    ) -> Any:
        """Send a JSON request; the decoded answer (None for 204). timeout: a larger body's."""
        idempotent = method == "GET"
        for delay in (*RETRY_DELAYS, None):
            try:
                response = self.client.request(
                    method,
                    self.path(path),
                    params=params,
                    json=body,
                    timeout=timeout or JSON_TIMEOUT,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing reached the server: retrying is safe for any method.
                if delay is not None:
                    time.sleep(delay)
                    continue
                raise ConnectionFailed(f"Cannot reach {self.url}: {exc}") from exc
            except httpx.TransportError as exc:
                if idempotent and delay is not None:
                    time.sleep(delay)
                    continue
                raise ConnectionFailed(f"{method} {path} failed: {exc}") from exc
            if response.status_code in RETRY_STATUSES and idempotent and delay is not None:
                time.sleep(delay)
                continue
            return decoded(response)
        raise AssertionError("unreachable")

    def upload(
        self,
        path: str,
        *,
        fileobj: IO[bytes],
        filename: str,
        content_type: str,
        data: Mapping[str, str],
    ) -> Any:
        """POST a multipart form with `file` streamed from `fileobj`; the decoded answer."""
        try:
            response = self.client.post(
                self.path(path),
                data=dict(data),
                files={"file": (filename, fileobj, content_type)},
                timeout=transfer_timeout(self.transfer_read),
            )
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"Uploading {filename} failed: {exc}") from exc
        return decoded(response)

    def download(
        self,
        path: str,
        target: Path,
        *,
        params: Mapping[str, Any] | None = None,
        on_bytes: Callable[[int, int | None], None] | None = None,
    ) -> tuple[httpx.Headers, str]:
        """Stream a GET into `target`; (response headers, sha256 of the bytes written).

        A partial file is deleted when the transfer fails (a typed error is raised).
        """
        digest = hashlib.sha256()
        opened = False  # a file that was there before a refused request is left alone
        try:
            with self.client.stream(
                "GET",
                self.path(path),
                params=params,
                headers={"Accept": "*/*"},
                timeout=transfer_timeout(self.transfer_read),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    decoded(response)
                total = response.headers.get("Content-Length")
                done = 0
                with open(target, "wb") as out:
                    opened = True
                    for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if on_bytes:
                            on_bytes(done, int(total) if total else None)
                return response.headers, digest.hexdigest()
        except BaseException as exc:
            if opened:
                target.unlink(missing_ok=True)
            if isinstance(exc, httpx.TransportError):
                raise ConnectionFailed(f"Downloading {path} failed: {exc}") from exc
            raise


def decoded(response: httpx.Response) -> Any:
    """The JSON body of a successful answer; a typed error for a 4xx or 5xx."""
    body: Any
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.status_code < 400:
        return body
    detail = body.get("detail") if isinstance(body, dict) else None
    if detail is None:
        detail = f"HTTP {response.status_code}: {response.text[:200]}"
    status = response.status_code
    if status in (401, 403):
        raise AuthError(detail, status=status, body=body)
    if status == 404:
        raise NotFound(detail, status=status, body=body)
    if status >= 500:
        raise ConnectionFailed(detail, status=status, body=body)
    raise ConcordError(detail, status=status, body=body)
