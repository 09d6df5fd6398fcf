"""watchdog's inotify observer (Linux), with each event handled in the emitter's thread.

watchdog hands an event through four threads: its inotify reader, the reader's
dispatcher (which resolves paths and groups moves), the emitter (which turns
each event into objects: a creation is a file event and a folder event) and the
observer (which dispatches them to handlers).  Each thread wakes for each event
and takes the interpreter from the cell to handle it, at every ``open()`` the
cell makes.  Here the emitter hands events to :class:`Receiver` itself (its
public ``queue_event`` is overridden, so the observer's thread and queue stay
idle), turns a plain creation, modification or read of a file into a path with
no event object, and after an event that ends a quiet spell lets events gather
for :data:`GATHER_S` before handling them, unless a drain is waiting.

Only public watchdog API is used: ``BaseObserver`` with an emitter class and
keyword arguments for it, ``InotifyEmitter``'s ``queue_events``,
``build_and_queue_event`` and ``queue_event``, and ``InotifyFD``'s
``add_callback`` (to leave hidden folders, the store's included, unwatched).  This module
imports watchdog's inotify modules, which load only on Linux.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from typing import Any, Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver, EventQueue, ObservedWatch
from watchdog.observers.inotify import InotifyEmitter
from watchdog.observers.inotify_c import (
    CallbackId,
    InotifyConstants,
    InotifyFD,
    Mask,
    WatchCallback,
    WatchDescriptor,
)
from watchdog.observers.inotify_move_event_grouper import GroupedInotifyEvent, PathedInotifyEvent

from dotnb.capture.audit_hook import guard

__all__ = ["GATHER_S", "DirectInotifyObserver", "Receiver"]

# After an event that ends a quiet spell, the emitter waits this long for more
# before handling them: woken for each one, it took the interpreter from a cell
# writing files at every open() and close() (as the inotify reader's thread did).
GATHER_S = 0.01

# A file's creation, modification or read-only close, alone in its event: handed on
# as (path, written) with no event object.  An attribute change is never handed on.
_CREATED = InotifyConstants.IN_CREATE
_MODIFIED = InotifyConstants.IN_MODIFY
_READ = InotifyConstants.IN_CLOSE_NOWRITE
_ATTRIB = InotifyConstants.IN_ATTRIB


class Receiver(Protocol):
    """Where the emitter hands events (the watchdog source)."""

    # Set while a drain waits for its marker: the emitter then does not gather.
    hurry: threading.Event

    def on_path(self, path: str, written: bool) -> bool:
        """A file's creation or modification (``written``), or read; True when it was a
        drain's marker."""

    def on_event(self, event: FileSystemEvent) -> None:
        """Any other event (moves, events lost), as watchdog builds it."""

    def watches(self, folder: str) -> bool:
        """Whether ``folder`` (absolute) is to be watched at all."""


class TreeInotifyFD(InotifyFD):
    """watchdog's inotify instance, refusing to watch the folders the receiver never
    watches (hidden ones such as the store's ``.dotnb``, caches, packages): their
    events would only be dropped, after going through every thread (the store
    writes there after each cell).  watchdog's recursive watch takes an OSError for
    a folder below the root as that folder not being watchable, and goes on."""

    def __init__(self, receiver: Receiver) -> None:
        super().__init__()
        self.receiver = receiver

    def add_callback(
        self, path: bytes, mask: Mask, callback: WatchCallback, id_: CallbackId
    ) -> WatchDescriptor:
        if not self.receiver.watches(os.fsdecode(path)):
            raise OSError(errno.EACCES, "not watched by dotnb", os.fsdecode(path))
        return super().add_callback(path, mask, callback, id_)


class DirectInotifyEmitter(InotifyEmitter):
    """watchdog's inotify emitter, handing events to ``receiver`` in its own thread."""

    def __init__(
        self, event_queue: EventQueue, watch: ObservedWatch, *, receiver: Receiver, **kwargs: Any
    ) -> None:
        super().__init__(event_queue, watch, **kwargs)
        self.receiver = receiver
        self.gathered_at = 0.0  # when the emitter last let events gather
        self.after_marker = False  # the event just handled was a drain's marker

    def run(self) -> None:
        guard.busy = True  # this thread's own opens are never the cell's
        super().run()

    def queue_events(self, timeout: float, *, full_events: bool = False) -> None:
        super().queue_events(timeout, full_events=full_events)  # waits for one event, handles it
        if self.after_marker:
            self.after_marker = False
        elif time.monotonic() - self.gathered_at > GATHER_S:
            # The first event after a quiet spell (or GATHER_S into a burst): let the
            # rest gather, then handle them without waking for each one.
            self.receiver.hurry.wait(GATHER_S)
            self.gathered_at = time.monotonic()

    def build_and_queue_event(self, event: GroupedInotifyEvent, *, full_events: bool = False) -> None:
        if type(event) is PathedInotifyEvent:  # not a pair of moves
            mask = event.ev.mask  # IN_ISDIR set for a folder: never equal below
            if mask in (_CREATED, _MODIFIED):
                # After a drain's marker, no gathering: the next drain's marker should
                # find this thread waiting for it (the next event still gathers).
                self.after_marker = self.receiver.on_path(os.fsdecode(event.path), True)
                return
            if mask == _READ:
                self.receiver.on_path(os.fsdecode(event.path), False)
                return
            if mask == _ATTRIB:
                return
        super().build_and_queue_event(event, full_events=full_events)

    def queue_event(self, event: FileSystemEvent) -> None:
        self.receiver.on_event(event)


class DirectInotifyObserver(BaseObserver):
    """An observer whose emitters are :class:`DirectInotifyEmitter`, over an inotify
    instance of its own (:class:`TreeInotifyFD`, stopped with the observer, as
    watchdog's own observer does)."""

    def __init__(self, receiver: Receiver) -> None:
        self.inotify_fd = TreeInotifyFD(receiver)
        self.inotify_fd.start()
        super().__init__(DirectInotifyEmitter, inotify_fd=self.inotify_fd, receiver=receiver)

    def watch_tree(self, path: str, event_filter: list[type[FileSystemEvent]]) -> None:
        # The handler is never called: the emitter hands events on itself.
        self.schedule(FileSystemEventHandler(), path, recursive=True, event_filter=event_filter)

    def on_thread_stop(self) -> None:
        super().on_thread_stop()
        self.inotify_fd.stop()
        if self.inotify_fd is not threading.current_thread():
            self.inotify_fd.join(timeout=2.0)
