"""Where file events come from: one small interface, two sources.

- :class:`~dotnb.capture.watcher.TreeWatcher`: dotnb's own inotify reader (Linux),
  the faster one;
- :class:`~dotnb.capture.watchdog_events.WatchdogEvents`: the ``watchdog`` library:
  FSEvents on macOS, ReadDirectoryChangesW on Windows, inotify or polling on Linux.
  It is the source on every platform but Linux, and on Linux the fallback when
  the inotify reader cannot watch the whole tree (the watch limit is reached:
  :func:`fallback_for`, which the file tracker asks between cells).

``DOTNB_FILE_EVENTS`` chooses: ``auto`` (the default), ``inotify``, ``watchdog``
(watchdog's default observer for the platform), ``watchdog-polling`` or ``off``
(no stream: Python-level access only).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Protocol

from dotnb.capture.watcher import DirWatch, FileSink, ReadSink, TreeWatcher

__all__ = ["MODES", "FileEvents", "fallback_for", "file_events_mode", "open_file_events"]

MODES = ("auto", "inotify", "watchdog", "watchdog-polling", "off")


class FileEvents(Protocol):
    """What file capture needs of an event source (see :class:`TreeWatcher` for the
    meaning of each member)."""

    sink: FileSink | None
    # Reads in bulk, by folder (a source may give every read to ``sink`` instead).
    read_sink: ReadSink | None
    streaming: bool
    # Whether reads (read-only closes) come as events, native ones included: else
    # Python's reads are looked at as they are opened (the audit hook alone sees them).
    reports_reads: bool
    warnings: list[str]

    def start(self) -> None: ...

    def stop(self, wait: float = 2.0) -> None: ...

    def drain(self, timeout: float, then: Callable[[], None] | None = None) -> bool: ...

    def sync(self) -> None: ...

    def drain_timed_out(self) -> None: ...

    def drained_in_time(self) -> None: ...

    def watched(self, path: str, create: bool = True) -> DirWatch | None: ...


def file_events_mode() -> str:
    """The source ``DOTNB_FILE_EVENTS`` asks for (``auto`` when unset or unknown)."""
    mode = os.environ.get("DOTNB_FILE_EVENTS", "").strip().lower() or "auto"
    return mode if mode in MODES else "auto"


class NoEvents:
    """No event stream (``DOTNB_FILE_EVENTS=off``): the audit hook alone."""

    def __init__(self) -> None:
        self.sink: FileSink | None = None
        self.read_sink: ReadSink | None = None
        self.streaming = False
        self.reports_reads = False
        self.warnings: list[str] = []

    def start(self) -> None:
        self.warnings.append(
            "dotnb: file events are off (DOTNB_FILE_EVENTS=off); only Python-level file access is recorded"
        )

    def stop(self, wait: float = 2.0) -> None:
        pass

    def drain(self, timeout: float, then: Callable[[], None] | None = None) -> bool:
        return False

    def sync(self) -> None:
        pass

    def drain_timed_out(self) -> None:
        pass

    def drained_in_time(self) -> None:
        pass

    def watched(self, path: str, create: bool = True) -> DirWatch | None:
        return None


def fallback_for(source: FileEvents, mode: str | None = None) -> FileEvents | None:
    """A started watchdog polling source to use instead of ``source``, when ``source``
    is the inotify reader of the ``auto`` mode and ran into the inotify watch limit
    (some folders are not watched); None otherwise.  ``source`` is stopped then."""
    if (
        (mode or file_events_mode()) != "auto"
        or not isinstance(source, TreeWatcher)
        or not source.limit_reached
    ):
        return None
    from dotnb.capture.watchdog_events import WatchdogEvents

    source.stop()
    fallback = WatchdogEvents(source.root_real, source.on_lost, polling=True)
    fallback.start()
    fallback.warnings.insert(
        0,
        "dotnb: the inotify watch limit is reached (fs.inotify.max_user_watches); file events"
        " now come from looking at the folders several times a second (slower; reads by native"
        " code or subprocesses are not seen)",
    )
    return fallback


def open_file_events(root_real: str, on_lost: Callable[[], None], mode: str | None = None) -> FileEvents:
    """The event source for ``mode`` (default: :func:`file_events_mode`), not started."""
    mode = mode or file_events_mode()
    if mode == "off":
        return NoEvents()
    if mode == "inotify" or (mode == "auto" and sys.platform.startswith("linux")):
        return TreeWatcher(root_real, on_lost)
    from dotnb.capture.watchdog_events import WatchdogEvents

    return WatchdogEvents(root_real, on_lost, polling=mode == "watchdog-polling")
