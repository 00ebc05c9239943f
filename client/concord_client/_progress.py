"""A one-line progress bar on stderr, with no dependency: `label [#####.....]  52% message`."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class Progress:
    """Redraws at most 10 times a second; `close()` ends the line. Disabled: does nothing."""

    def __init__(self, label: str, *, enabled: bool, stream: TextIO | None = None):
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._drawn = 0.0

    def update(self, fraction: float | None, message: str = "", *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        if fraction is None:
            bar, percent = "?" * WIDTH, "   "
        else:
            fraction = min(max(fraction, 0.0), 1.0)
            filled = int(round(fraction * WIDTH))
            bar, percent = "#" * filled + "." * (WIDTH - filled), f"{fraction:4.0%}"
        self.stream.write(f"\r{self.label} [{bar}] {percent} {message[:60]:<60}")
        self.stream.flush()

    def close(self, message: str = "done") -> None:
        if self.enabled:
            self.update(1.0, message, force=True)
            self.stream.write("\n")
            self.stream.flush()


def byte_message(done: int, total: int | None) -> str:
    if total:
        return f"{done / 1e6:,.1f} of {total / 1e6:,.1f} MB"
    return f"{done / 1e6:,.1f} MB"
