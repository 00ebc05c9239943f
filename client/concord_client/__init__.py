"""concord_client: Concord from Python, over HTTP only (no Django).

    from concord_client import Concord
    concord = Concord("http://127.0.0.1:8000", token="...")  # or CONCORD_URL / CONCORD_TOKEN
    project = concord.projects.get("reviews")
    project.items.log(df, mapping={"review": "text", "id": "external_id"})
    result = project.run("agreement")
    labels = project.to_pandas(labels="dawid_skene")

Timeouts (see `_http`): small JSON calls time out fast (connect 5 s, read 30 s) and GETs are
retried on connection errors; uploads and exports stream with a connect timeout and a long
read timeout between chunks (`transfer_timeout`, default 30 min); jobs are polled, never
waited on in one request.
"""

__version__ = "0.1.0"

from concord_client.client import (  # noqa: E402
    Concord,
    DatasetVersion,
    Export,
    ImportResult,
    Project,
    Run,
)
from concord_client.errors import (  # noqa: E402
    AuthError,
    ChecksumMismatch,
    ConcordError,
    ConnectionFailed,
    ImportRejected,
    NotConfigured,
    NotFound,
    RunFailed,
)

__all__ = [
    "AuthError",
    "ChecksumMismatch",
    "Concord",
    "ConcordError",
    "ConnectionFailed",
    "DatasetVersion",
    "Export",
    "ImportRejected",
    "ImportResult",
    "NotConfigured",
    "NotFound",
    "Project",
    "Run",
    "RunFailed",
]
