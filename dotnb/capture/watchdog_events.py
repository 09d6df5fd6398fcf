"""File events through the ``watchdog`` library (macOS, Windows, and Linux's fallback).

watchdog runs an observer (FSEvents on macOS, ReadDirectoryChangesW on Windows,
inotify or polling on Linux) whose threads hand each event to a handler; here
the handler passes file events under the root to :attr:`WatchdogEvents.sink` as
``(rel, written)``, like the inotify reader does.  What each observer reports
differs (see the README's table): reads (a read-only close) only on Linux's
inotify; creations, modifications and renames everywhere; a polling observer
only what changed between two looks.

**Draining.** The inotify reader knows an event is in its queue by the time the
system call that caused it returns.  watchdog's threads do not say how far they
are, so :meth:`WatchdogEvents.drain` writes a marker file in the store's tmp
folder and waits until the marker's own event has come through: the events
before it have then been handled (each observer delivers in order).  A polling
observer sees the marker at its next look, so a drain waits up to one interval.

Hidden folders (``.dotnb``, ``.git``, ``.venv``), ``__pycache__`` and package
folders are watched by watchdog too (it watches the tree) but their events are
dropped here, as the inotify reader never watches them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from dotnb.capture.audit_hook import guard
from dotnb.capture.locate import unwatched
from dotnb.capture.watcher import EVENTS_STOPPED, DirWatch, FileSink, ReadSink, cannot_watch

# How often a polling observer looks (seconds): a drain waits up to this long.
POLL_INTERVAL = 0.2
MAX_TIMEOUTS = 2  # consecutive drains timed out after which the stream is abandoned
MARKER_DIR = os.path.join(".dotnb", "tmp")


class WatchdogEvents:
    """A watchdog observer over one root, with the interface of the inotify reader."""

    def __init__(self, root_real: str, on_lost: Callable[[], None], polling: bool = False) -> None:
        self.root_real = root_real
        self.root_prefix = root_real.rstrip(os.sep) + os.sep
        self.on_lost = on_lost
        self.polling = polling
        self.sink: FileSink | None = None
        self.read_sink: ReadSink | None = None  # unused: every read goes to ``sink``
        self.streaming = False
        self.warnings: list[str] = []
        # Held while an event is handed on, and while a drain's ``then`` runs.
        self.read_lock = threading.Lock()
        self._observer: Any = None
        self._marker_seen = threading.Condition(threading.Lock())
        self._markers: set[str] = set()  # names whose event has come through
        self._marker_count = 0
        self._timeouts = 0
        self._marker_dir = os.path.join(root_real, MARKER_DIR)

    # -- life ------------------------------------------------------------------------

    def start(self) -> None:
        try:
            from watchdog.events import (
                DirMovedEvent,
                FileClosedNoWriteEvent,
                FileCreatedEvent,
                FileModifiedEvent,
                FileMovedEvent,
                FileSystemEventHandler,
            )

            if self.polling:
                from watchdog.observers.polling import PollingObserver

                observer: Any = PollingObserver(timeout=POLL_INTERVAL)
            else:
                from watchdog.observers import Observer

                observer = Observer()
            events = self

            class Handler(FileSystemEventHandler):
                def on_any_event(self, event: Any) -> None:
                    events._on_event(event)

            os.makedirs(self._marker_dir, exist_ok=True)
            observer.schedule(
                Handler(),
                self.root_real,
                recursive=True,
                event_filter=[
                    FileCreatedEvent,
                    FileModifiedEvent,
                    FileMovedEvent,
                    DirMovedEvent,
                    # Not FileClosedEvent: a file opened for writing and closed unwritten
                    # (SQLite) is not written; modifications say what was.
                    FileClosedNoWriteEvent,
                ],
            )
            observer.start()
            self._observer = observer
            self.streaming = True
        except Exception as exc:
            self.streaming = False
            self.stop()
            self.warnings.append(cannot_watch(self.root_real, exc))

    def stop(self, wait: float = 2.0) -> None:
        self.streaming = False
        observer, self._observer = self._observer, None
        if observer is not None:
            with contextlib.suppress(Exception):
                observer.stop()
                if observer is not threading.current_thread():
                    observer.join(timeout=wait)

    # -- events ----------------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        """One watchdog event (an observer thread)."""
        busy = guard.busy
        guard.busy = True  # this thread's own opens are never the cell's
        try:
            kind = event.event_type
            path = os.fsdecode(event.dest_path if kind == "moved" else event.src_path)
            if path.startswith(self._marker_dir + os.sep):
                self._seen_marker(os.path.basename(path))
                return
            if event.is_directory or not path.startswith(self.root_prefix):
                return
            rel = path[len(self.root_prefix) :].replace(os.sep, "/")
            if any(unwatched(part) for part in rel.split("/")[:-1]):
                return
            written = kind != "closed_no_write"
            with self.read_lock:
                sink = self.sink
                if sink is not None:
                    sink(rel, written)
        except Exception:
            pass  # a bad event must not stop the stream
        finally:
            guard.busy = busy

    def _seen_marker(self, name: str) -> None:
        with self._marker_seen:
            self._markers.add(name)
            self._marker_seen.notify_all()

    # -- draining --------------------------------------------------------------------

    def drain(self, timeout: float, then: Callable[[], None] | None = None) -> bool:
        """Handle every event that happened before now, then run ``then`` with the
        events held; False when the marker did not come through within ``timeout``."""
        if not self.streaming:
            return False
        self._marker_count += 1
        name = f"drain-{os.getpid()}-{self._marker_count}"
        marker = os.path.join(self._marker_dir, name)
        busy = guard.busy
        guard.busy = True  # the marker is not the cell's
        try:
            with open(marker, "wb") as f:
                f.write(b"x")
        except OSError:
            return False
        finally:
            guard.busy = busy
        # A polling observer sees the marker at its next look, whatever the timeout.
        deadline = time.monotonic() + (max(timeout, 2 * POLL_INTERVAL) if self.polling else timeout)
        try:
            with self._marker_seen:
                while name not in self._markers:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._marker_seen.wait(left)
                self._markers.discard(name)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(marker)
        with self.read_lock:
            if then is not None:
                then()
        return True

    def sync(self) -> None:
        self.drain(0.5)

    def drain_timed_out(self) -> None:
        self._timeouts += 1
        if self._timeouts >= MAX_TIMEOUTS:
            self.warnings.append(EVENTS_STOPPED)
            self.stop(wait=0.2)

    def drained_in_time(self) -> None:
        self._timeouts = 0

    def watched(self, path: str, create: bool = True) -> DirWatch | None:
        """No per-folder change counts from watchdog: owners stat instead."""
        return None
