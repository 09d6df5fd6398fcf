"""Progress of a transfer (push, pull, fetch, ``fsck --remote``), counted from worker threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple


class TransferProgress(NamedTuple):
    phase: str  # "check", "upload", "download", "manifests"
    done: int
    total: int
    done_bytes: int
    total_bytes: int


ProgressFn = Callable[[TransferProgress], None]


class Meter:
    """Counts finished items and bytes from worker threads; reports each change to ``progress``."""

    def __init__(self, progress: ProgressFn | None, phase: str, total: int, total_bytes: int) -> None:
        self.progress = progress
        self.phase = phase
        self.total = total
        self.total_bytes = total_bytes
        self.done = 0
        self.done_bytes = 0
        self._lock = threading.Lock()
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(
                TransferProgress(self.phase, self.done, self.total, self.done_bytes, self.total_bytes)
            )

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.done_bytes += n
            self._report()

    def item(self) -> None:
        with self._lock:
            self.done += 1
            self._report()
