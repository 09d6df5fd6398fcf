"""Writing recorded runs to disk off the cell's path: one background thread per kernel.

A committed run is safe and readable as soon as it is recorded (its write-ahead
record, see :mod:`dotnb.store.repo`); its manifest object and ref (file creations
and fsyncs, about a millisecond of CPU per run) are written later by this thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["FLUSH_IDLE_S", "FLUSH_MAX_DELAY_S", "RunFlusher"]

# The flush waits until no cell has run for FLUSH_IDLE_S, so that it takes no CPU
# from cells, and runs of cells executed in quick succession are written together;
# but no run waits longer than FLUSH_MAX_DELAY_S.
FLUSH_IDLE_S = 0.1
FLUSH_MAX_DELAY_S = 1.0


class RunFlusher:
    """Flushes a store's pending runs when the kernel is idle.

    The session stamps ``cell_started``/``cell_ended`` (``time.monotonic()``) in its
    hooks for every cell, tracked or not; ``warn(key, message)`` reports a failed
    flush (once per key).
    """

    def __init__(self, warn: Callable[[str, str], None]) -> None:
        self.cell_started = self.cell_ended = 0.0
        self._warn = warn
        self._thread: threading.Thread | None = None
        self._due: float | None = None  # time.monotonic() by which to flush
        self._closing = False

    def later(self, store: Any) -> None:
        """Have the runs recorded in ``store`` written off the cell's critical path
        (one thread per kernel).  The thread is not woken: it would compete with the
        cell for the GIL right away; it looks for work every FLUSH_IDLE_S instead."""
        if self._due is None:
            self._due = time.monotonic() + FLUSH_MAX_DELAY_S
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, args=(store,), name="dotnb-flush", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """The thread stops; the caller flushes the last runs itself."""
        self._closing = True

    def _loop(self, store: Any) -> None:
        while not self._closing:
            time.sleep(FLUSH_IDLE_S)
            if self._closing or not store.has_pending_sync():
                continue
            now = time.monotonic()
            due = self._due or now
            running = self.cell_started > self.cell_ended
            idle = 0.0 if running else now - self.cell_ended
            if idle < FLUSH_IDLE_S and now < due:
                continue  # a cell runs, or just did: later
            self._due = None
            # Runs recorded while this thread was syncing are picked up by the next pass.
            while store.has_pending_sync():
                try:
                    store.flush()
                except Exception as exc:
                    # The runs stay recorded in the index (write-ahead records) and
                    # are written by the next flush or the next opening of the store.
                    self._warn("flush", f"dotnb: could not write the store to disk ({exc})")
                    time.sleep(1.0)  # retried later (disk full, read-only store)
                    break
