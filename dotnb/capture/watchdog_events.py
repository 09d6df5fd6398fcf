"""File events through the ``watchdog`` library (macOS, Windows, and Linux's fallback).

watchdog runs an observer (FSEvents on macOS, ReadDirectoryChangesW on Windows,
inotify or polling on Linux) whose threads hand each event on; here file events
under the root go to :attr:`WatchdogEvents.sink` as ``(rel, written)``, like the
inotify reader does.  What each observer reports differs (see the README's
table): reads (a read-only close) only on Linux's inotify; creations,
modifications and renames everywhere; a polling observer only what changed
between two looks.

On Linux, watchdog's inotify emitter hands events on in its own thread
(:mod:`dotnb.capture.watchdog_direct`): no observer thread, no event objects
for a plain creation, modification or read, and events handled in batches
during a burst.  Elsewhere (and when polling) a handler receives them from the
observer's thread.

**Draining.** The inotify reader knows an event is in its queue by the time the
system call that caused it returns.  watchdog's threads do not say how far they
are, so :meth:`WatchdogEvents.drain` creates an empty marker file in
``.dotnb/events`` (one creation event; nothing is written, and neither the
close nor the deletion is watched) and waits until its event has come through:
the events before it have then been handled (each observer delivers in order).
A cell's start waits too, though nobody collects the events before it: a folder
made just before the cell is watched only once its creation has come through
(see :meth:`WatchdogEvents.drain`).  A polling observer sees the marker at its
next look, so a drain waits up to one interval.  On Linux, watchdog's reader
gathers reads that come within a millisecond of the one before, so a drain soon
after another (a cell's end after a short cell's start) waits about a
millisecond more.

Hidden folders (``.dotnb``, ``.git``, ``.venv``), ``__pycache__`` and package
folders are never watched on Linux (but the marker folder is), as the inotify
reader never watches them; elsewhere watchdog watches the whole tree and their
events are dropped here.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from dotnb.capture.audit_hook import guard
from dotnb.capture.locate import unwatched
from dotnb.capture.watcher import EVENTS_STOPPED, DirWatch, FileSink, ReadSink, cannot_watch
from dotnb.store.strays import process_alive

# How often a polling observer looks (seconds): a drain waits up to this long.
POLL_INTERVAL = 0.2
MAX_TIMEOUTS = 2  # consecutive drains timed out after which the stream is abandoned
# The markers' own folder: in the store's tmp folder, its writers' renames out of it
# would each hold watchdog's emitter back for half a second (an unpaired move).
MARKER_DIR = os.path.join(".dotnb", "events")
# Folders whose verdict (see _folder) is remembered; past this, the memory starts over.
MAX_FOLDERS = 65536
# Verdicts of _folder that are not a folder's name (no folder has these names).
_MARKERS = "\0markers"  # the marker folder
_UNKNOWN = "\0unknown"  # not looked at yet
_MARKER_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


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
        # Reads come as events only from inotify (Linux, not polling): watchdog's
        # other observers report changes alone.
        self.reports_reads = False
        self.warnings: list[str] = []
        # Held while an event is handed on, and while a drain's ``then`` runs.
        self.read_lock = threading.Lock()
        # Set while a drain waits: watchdog_direct's emitter then hands events on at once.
        self.hurry = threading.Event()
        self._draining = 0
        self._draining_lock = threading.Lock()
        self._observer: Any = None
        self._marker_seen = threading.Condition(threading.Lock())
        self._awaited: set[str] = set()  # markers drains are waiting for
        self._markers: set[str] = set()  # awaited markers whose event has come through
        self._marker_count = 0
        self._marker_prefix = f"drain-{os.getpid()}-"
        # libc, to make and remove markers without letting go of the interpreter (Linux's
        # inotify; see _held_libc); None: through os.
        self._libc: Any = None
        self._timeouts = 0
        self._marker_dir = os.path.join(root_real, MARKER_DIR)
        # folder (absolute) -> root-relative folder, None (not ours), or _MARKERS
        self._folders: dict[str, str | None] = {}

    # -- life ------------------------------------------------------------------------

    def start(self) -> None:
        try:
            from watchdog.events import (
                DirMovedEvent,
                EventsLostEvent,
                FileClosedNoWriteEvent,
                FileCreatedEvent,
                FileModifiedEvent,
                FileMovedEvent,
                FileSystemEventHandler,
            )

            event_filter: list[Any] = [
                FileCreatedEvent,
                FileModifiedEvent,
                FileMovedEvent,
                DirMovedEvent,
                # Not FileClosedEvent: a file opened for writing and closed unwritten
                # (SQLite, a drain's marker) is not written; modifications say what was.
                FileClosedNoWriteEvent,
                EventsLostEvent,
            ]
            os.makedirs(self._marker_dir, exist_ok=True)
            self._remove_stale_markers()
            direct = _direct_observer(self) if not self.polling else None
            if direct is not None:
                self._observer = direct
                self._libc = _held_libc()
                direct.watch_tree(self.root_real, event_filter)
            else:
                if self.polling:
                    from watchdog.observers.polling import PollingObserver

                    observer: Any = PollingObserver(timeout=POLL_INTERVAL)
                else:
                    from watchdog.observers import Observer

                    observer = Observer()
                events = self

                class Handler(FileSystemEventHandler):
                    def on_any_event(self, event: Any) -> None:
                        busy = guard.busy
                        guard.busy = True  # this thread's own opens are never the cell's
                        try:
                            events.on_event(event)
                        finally:
                            guard.busy = busy

                self._observer = observer
                observer.schedule(Handler(), self.root_real, recursive=True, event_filter=event_filter)
            self._observer.start()
            self.reports_reads = not self.polling and sys.platform.startswith("linux")
            self.streaming = True
        except Exception as exc:
            self.streaming = False
            self.stop()
            self.warnings.append(cannot_watch(self.root_real, exc))

    def _remove_stale_markers(self) -> None:
        """Remove the markers of kernels that are gone (one killed during a drain
        leaves its marker behind); a live kernel's are its own business."""
        try:
            names = os.listdir(self._marker_dir)
        except OSError:
            return
        for name in names:
            kind, pid_text, number = [*name.split("-"), "", ""][:3]
            if kind != "drain" or not (pid_text.isdigit() and number.isdigit()):
                continue
            if process_alive(int(pid_text)):
                continue
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self._marker_dir, name))

    def stop(self, wait: float = 2.0) -> None:
        self.streaming = False
        observer, self._observer = self._observer, None
        if observer is not None:
            with contextlib.suppress(Exception):
                observer.stop()
                if observer is not threading.current_thread() and observer.is_alive():
                    observer.join(timeout=wait)

    # -- events (watchdog's threads) ----------------------------------------------------

    def on_path(self, path: str, written: bool) -> bool:
        """A file created or modified (``written``), or read (a read-only close); True
        when it was a drain's marker."""
        folder, _, name = path.rpartition(os.sep)
        rel_folder = self._folders.get(folder, _UNKNOWN)
        if rel_folder is _UNKNOWN:
            rel_folder = self._folder(folder)
        if rel_folder is None:
            return False
        if rel_folder is _MARKERS:
            self._seen_marker(name)
            return True
        if self.sink is None:
            return False  # nobody collects (the drain's ``then`` sets it under read_lock)
        rel = f"{rel_folder}/{name}" if rel_folder else name
        try:
            with self.read_lock:
                sink = self.sink
                if sink is not None:
                    sink(rel, written)
        except Exception:
            pass  # a bad event must not stop the stream
        return False

    def on_event(self, event: Any) -> None:
        """Any other watchdog event (a move, events lost, or every event off Linux)."""
        try:
            kind = event.event_type
            if kind == "events_lost":
                with self.read_lock:
                    self.on_lost()
                return
            if event.is_directory or kind not in _FILE_KINDS:
                return
            self.on_path(
                os.fsdecode(event.dest_path if kind == "moved" else event.src_path), kind != "closed_no_write"
            )
        except Exception:
            pass  # a bad event must not stop the stream

    def watches(self, folder: str) -> bool:
        """Whether watchdog_direct's observer watches ``folder``: the root, folders
        below it but not in hidden ones, caches or packages, and the marker folder."""
        verdict = self._folders.get(folder, _UNKNOWN)
        return (self._folder(folder) if verdict is _UNKNOWN else verdict) is not None

    def _folder(self, folder: str) -> str | None:
        """Absolute ``folder``'s root-relative name, remembered; None when outside the
        root or in a folder never watched (hidden, caches, packages); _MARKERS for the
        marker folder."""
        if folder == self._marker_dir:
            rel: str | None = _MARKERS
        elif folder == self.root_real:
            rel = ""
        elif not folder.startswith(self.root_prefix):
            rel = None
        else:
            rel = folder[len(self.root_prefix) :].replace(os.sep, "/")
            if any(unwatched(part) for part in rel.split("/")):
                rel = None
        if len(self._folders) >= MAX_FOLDERS:
            self._folders = {}
        self._folders[folder] = rel
        return rel

    def _seen_marker(self, name: str) -> None:
        prefix = self._marker_prefix
        if not name.startswith(prefix):
            return  # another kernel's, in the same project
        with self._marker_seen:
            if name in self._awaited:
                self._markers.add(name)
                self._marker_seen.notify_all()

    # -- draining --------------------------------------------------------------------

    def drain(self, timeout: float, then: Callable[[], None] | None = None) -> bool:
        """Handle every event that happened before now, then run ``then`` with the
        events held; False when the marker did not come through within ``timeout``.

        A cell's start waits for its marker too, though nobody collects the events
        before it: folders created or moved in since the last drain are watched only
        once watchdog has handled their events, and a cell writing into them at once
        would otherwise go unseen.
        """
        if not self.streaming:
            return False
        with self._draining_lock:
            self._draining += 1
            self.hurry.set()
        try:
            return self._wait_drain(timeout, then)
        finally:
            with self._draining_lock:
                self._draining -= 1
                if not self._draining:
                    self.hurry.clear()

    def _wait_drain(self, timeout: float, then: Callable[[], None] | None) -> bool:
        number = self._next_marker()
        name = self._marker_prefix + str(number)
        with self._marker_seen:
            self._awaited.add(name)
        try:
            if not self._make_marker(number):
                return False
            # A polling observer sees the marker at its next look, whatever the timeout.
            deadline = time.monotonic() + (max(timeout, 2 * POLL_INTERVAL) if self.polling else timeout)
            try:
                with self._marker_seen:
                    while name not in self._markers:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False
                        self._marker_seen.wait(left)
            finally:
                self._remove_marker(number)
        finally:
            with self._marker_seen:
                self._awaited.discard(name)
                self._markers.discard(name)
        with self.read_lock:
            if then is not None:
                then()
        return True

    def _next_marker(self) -> int:
        with self._draining_lock:
            self._marker_count += 1
            return self._marker_count

    def _make_marker(self, number: int) -> bool:
        path = self._marker_dir + os.sep + self._marker_prefix + str(number)
        busy = guard.busy
        guard.busy = True  # the marker is not the cell's
        try:
            # Created empty and closed: one creation event (no write, and neither a
            # write-close nor a deletion is watched).
            libc = self._libc
            if libc is None:
                os.close(os.open(path, _MARKER_FLAGS, 0o600))
                return True
            fd = libc.open(os.fsencode(path), _MARKER_FLAGS, 0o600)
            if fd < 0:
                return False
            libc.close(fd)
            return True
        except OSError:
            return False
        finally:
            guard.busy = busy

    def _remove_marker(self, number: int) -> None:
        path = self._marker_dir + os.sep + self._marker_prefix + str(number)
        busy = guard.busy
        guard.busy = True
        try:
            if self._libc is not None:
                self._libc.unlink(os.fsencode(path))
            else:
                os.unlink(path)
        except OSError:
            pass
        finally:
            guard.busy = busy

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


# Event kinds handed on as a file's (moved: its destination's).
_FILE_KINDS = frozenset({"created", "modified", "moved", "closed_no_write"})


def _direct_observer(receiver: WatchdogEvents) -> Any:
    """watchdog's inotify observer with events handled in the emitter's thread
    (:mod:`dotnb.capture.watchdog_direct`); None off Linux, or when watchdog's
    inotify modules do not load (then its default observer is used)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        from dotnb.capture.watchdog_direct import DirectInotifyObserver
    except Exception:
        return None
    return DirectInotifyObserver(receiver)


def _held_libc() -> Any:
    """libc, its calls made without letting go of the interpreter (``ctypes.PyDLL``),
    for the markers' creation and removal; None when it cannot be loaded.

    Through ``os``, the call lets go of the interpreter, and watchdog's reader
    thread, woken by the marker's event within the call, takes it from the
    drain; it then reads that marker alone, and a drain's marker read within a
    millisecond of the one before waits a millisecond more in watchdog's reader
    (which gathers bursts).  Held, the reader gets to the marker when the
    interpreter is next let go (a drain's wait, the cell's own I/O), reading it
    with whatever came after it.
    """
    import ctypes

    try:
        libc: Any = ctypes.PyDLL(None, use_errno=True)
        libc.open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
        libc.open.restype = ctypes.c_int
        libc.close.argtypes = [ctypes.c_int]
        libc.unlink.argtypes = [ctypes.c_char_p]
    except (OSError, AttributeError):
        return None
    return libc
