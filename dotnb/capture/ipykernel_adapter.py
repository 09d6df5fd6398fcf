"""ipykernel internals the run line relies on, in one place.

A tracked cell ends with a run line (a ``display_data`` message).  ipykernel's
display publisher first flushes stdout and stderr, and a flush from the main
thread waits until the IOPub thread has sent what was buffered (two round trips
to that thread, 1-2 ms on a busy machine).  Order is all the run line needs: the
message is built, passed through the publisher's hooks (e.g. an output widget
capturing displays) and serialized here, then handed to the IOPub thread, which
flushes both streams and only then sends it, so the line still follows the
cell's own output, and nobody waits.

That takes three private names of ipykernel, checked against ipykernel
7.4.0 (:data:`CHECKED_WITH`; the publisher, streams and IOPub thread have had
these since ipykernel 6):

- ``ZMQDisplayPublisher._hooks``: the calling thread's message hooks;
- ``OutStream._flush``: sends what the stream buffered (run in the IOPub thread);
- ``IOPubThread._events``: the deque of callables the IOPub thread runs in order.

Each is looked up by the name below.  Without ``_events``, the callable goes
through the public ``IOPubThread.schedule`` (which also wakes the thread);
without ``_hooks`` or ``_flush``, or with anything other than ipykernel's own
streams and publisher, the run line takes the public path: IPython's
``display``, whose publisher flushes the streams (waiting) before it sends.
"""

from __future__ import annotations

import collections
import sys
import threading
from typing import Any

__all__ = ["CHECKED_WITH", "last_route", "publish_after_streams"]

CHECKED_WITH = "ipykernel 7.4.0"

PUBLISHER_HOOKS = "_hooks"
STREAM_FLUSH = "_flush"
THREAD_EVENTS = "_events"

# How the last run line went: "events" (queued straight onto the IOPub thread),
# "schedule" (through IOPubThread.schedule) or "display" (the public path).
last_route = ""

# (publisher, stdout, stderr, their IOPub thread or None): checked once per set of objects.
_checked: tuple[Any, Any, Any, Any] | None = None


def publish_after_streams(ip: Any, data: dict[str, Any]) -> None:
    """``display(data, raw=True)`` for a JSON-ready bundle, without ipykernel's wait
    for the IOPub thread (see the module's docstring)."""
    global last_route
    pub: Any = getattr(ip, "display_pub", None)
    streams: list[Any] = [sys.stdout, sys.stderr]
    io_thread = _iopub_thread(pub, streams)
    if (
        io_thread is None
        or not io_thread.thread.is_alive()
        or threading.get_ident() == io_thread.thread.ident
    ):
        from IPython.display import display

        last_route = "display"
        display(data, raw=True)
        return

    content = {"data": data, "metadata": {}, "transient": {}}
    msg: Any = pub.session.msg("display_data", content, parent=pub.parent_header)
    for hook in list(getattr(pub, PUBLISHER_HOOKS)):
        msg = hook(msg)
        if msg is None:
            return  # taken by the hook
    pub.session.send(_AfterStreams(io_thread, streams), msg, ident=pub.topic)


class _AfterStreams:
    """Where publish_after_streams has the session send the serialized message: to the
    IOPub thread, after it has flushed both streams (each flush queues its stream's
    message there)."""

    def __init__(self, io_thread: Any, streams: list[Any]) -> None:
        self.io_thread = io_thread
        self.streams = streams

    def send_multipart(self, parts: list[Any], **kwargs: Any) -> None:
        global last_route
        io_thread, streams = self.io_thread, self.streams

        def flush_then_send() -> None:  # in the IOPub thread
            for stream in streams:
                getattr(stream, STREAM_FLUSH)()
            io_thread.send_multipart(parts, **kwargs)  # queued after the streams'

        # Not woken for it: the kernel's own flush of stdout right after this
        # cell's hooks wakes the IOPub thread (and waits for it) anyway.
        events = getattr(io_thread, THREAD_EVENTS, None)
        if isinstance(events, collections.deque):
            last_route = "events"
            events.append(flush_then_send)
        else:
            last_route = "schedule"
            io_thread.schedule(flush_then_send)


def _iopub_thread(pub: Any, streams: list[Any]) -> Any:
    """ipykernel's IOPub thread when the publisher and both streams are ipykernel's
    own and send through it (what publish_after_streams relies on), else None."""
    global _checked
    checked = _checked
    if checked is not None and checked[0] is pub and checked[1] is streams[0] and checked[2] is streams[1]:
        return checked[3]
    io_thread: Any = getattr(getattr(pub, "pub_socket", None), "io_thread", None)
    usable = (
        io_thread is not None
        and hasattr(io_thread, "thread")
        and all(hasattr(pub, name) for name in (PUBLISHER_HOOKS, "parent_header", "session", "topic"))
        and all(getattr(s, "pub_thread", None) is io_thread and hasattr(s, STREAM_FLUSH) for s in streams)
    )
    _checked = (pub, streams[0], streams[1], io_thread if usable else None)
    return _checked[3]
