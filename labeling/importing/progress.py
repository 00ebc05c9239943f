"""A batch's progress, visible to the page while the write transaction is still open."""

import logging
import threading
import time

from django.db import DatabaseError, connection

from labeling.models import ImportBatch

logger = logging.getLogger(__name__)


def batch_update(batch_id: int, **fields) -> None:
    ImportBatch.objects.filter(pk=batch_id).update(**fields)


class Progress:
    """Writes a batch's progress at most every 0.5 s.

    Inside the write transaction the update goes through a short-lived thread, which has its
    own database connection, so pollers see it before the commit (PostgreSQL only: SQLite
    would wait on the writer's lock).
    """

    def __init__(self, batch_id: int, size: int, enabled: bool):
        self.batch_id, self.size, self.enabled = batch_id, size, enabled
        self.last = 0.0

    def report(self, fraction: float, message: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        fraction = min(max(float(fraction), 0.0), 1.0)
        if not connection.in_atomic_block:
            batch_update(self.batch_id, progress=fraction, message=message[:255])
        elif connection.vendor == "postgresql":
            thread = threading.Thread(
                target=_report_from_own_connection, args=(self.batch_id, fraction, message)
            )
            thread.start()
            thread.join(timeout=5)

    def read_share(self, source) -> float:
        """The share of the file read so far."""
        return source.read_bytes / max(self.size, 1)


def _report_from_own_connection(batch_id: int, fraction: float, message: str) -> None:
    """Runs in its own thread, where `connection` is that thread's own connection."""
    try:
        batch_update(batch_id, progress=fraction, message=message[:255])
    except DatabaseError:
        logger.warning("could not record the progress of import %s", batch_id)
    finally:
        connection.close()
