"""The audit hook: Python-level opens, renames and SQLite connections, as they happen.

``sys.addaudithook`` sees ``open`` (builtin, pathlib, ``os.open``, numpy, pandas'
C parser), ``os.rename`` and ``sqlite3.connect`` synchronously, in the thread that
does them: the only moment at which a file's bytes can be saved before a Python
open truncates them.  This module turns those audit events into calls on one
listener (the file tracker of the running cell); what they mean for the cell is
the listener's business.

A hook cannot be removed: it is installed once, at the first :func:`listen`, and
stays for the process, idle while no listener is set (one global lookup per audit
event).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "READ",
    "RW",
    "TRUNC",
    "WRITE",
    "AuditListener",
    "cwd_is_current",
    "guard",
    "listen",
    "listening",
    "stop_listening",
]

# Open kinds, from the open's flags.
READ = 0  # read-only
RW = 1  # read-write without truncation (r+, O_RDWR): the content may be read first
WRITE = 2  # write-only or appending, no truncation (a, a+, x, O_WRONLY): writes arrive as events
TRUNC = 3  # truncating (w, w+, O_TRUNC): a write at the moment of the open

_O_ACCMODE = getattr(os, "O_ACCMODE", 3)  # not in every Python's os module
_O_CREAT_EXCL = os.O_CREAT | os.O_EXCL
# Flags of an open that may write or create: anything else is a plain read.
_NOT_A_READ = _O_ACCMODE | os.O_CREAT | os.O_TRUNC


class AuditListener(Protocol):
    """What the hook reports, in the thread doing the I/O (never re-entered: see ``guard``)."""

    def on_open(self, path: Any, kind: int, exclusive: bool) -> None: ...

    def on_rename(self, dst: Any) -> None: ...

    def on_sqlite_connect(self, path: str) -> None: ...


class _Guard(threading.local):
    busy = False


# Per-thread re-entrancy guard: set while the hook (or its listener) runs, and by
# threads whose opens are never the cell's (the file-event reader, a drain of the
# queue), so the tracker's own opens (snapshots, the ignore file) are not recorded
# and cannot recurse.
guard = _Guard()

# The listener whose cell is running, or None: the only thing the hook reads
# outside a tracked cell.
_listener: AuditListener | None = None
_installed = False
_install_lock = threading.Lock()


# Where read-only opens of a str path go instead of ``on_open``, as absolute paths,
# when the listener takes them so (see listen()): a loop over many files then costs
# the hook one call, not a trip through the listener.
_reads: Callable[[str], None] | None = None
# The working folder, for relative read-opens: os.getcwd() is a system call that
# would double the hook's cost per open (a cell may open a million files).  Forgotten
# at os.chdir and os.fchdir (their audit event comes before the change: the next
# relative open asks again) and at every listen(); a chdir by native code is not seen,
# which :func:`cwd_is_current` tells afterwards.
_cwd: str | None = None
_cwd_went_stale = False  # since the last listen(): see cwd_is_current()


def listen(listener: AuditListener, reads: Callable[[str], None] | None = None) -> None:
    """Report audit events to ``listener`` from now on (installing the hook the first
    time); with ``reads``, read-only opens of a ``str`` path (no O_CREAT) go to it, as
    an absolute path, instead of to ``listener.on_open``."""
    global _listener, _installed, _reads, _cwd, _cwd_went_stale
    if not _installed:
        with _install_lock:
            if not _installed:
                sys.addaudithook(_audit_hook)
                _installed = True
    _cwd = None
    _cwd_went_stale = False
    _reads = reads
    _listener = listener


def stop_listening(listener: AuditListener) -> None:
    """Stop reporting to ``listener`` (nothing changes if another one listens)."""
    global _listener, _reads
    if _listener is listener:
        _listener = None
        _reads = None


def listening() -> AuditListener | None:
    return _listener


def cwd_is_current() -> bool:
    """Whether the working folder the hook made relative read-opens absolute with (if
    any since the last :func:`listen`) is still the process's: False when native code
    changed it without Python's ``os.chdir``."""
    return not _cwd_went_stale and _cwd_matches()


def _cwd_matches() -> bool:
    cwd = _cwd
    if cwd is None:
        return True
    try:
        return os.getcwd() == cwd
    except OSError:
        return False


def open_kind(mode: object, flags: object) -> int:
    # The "open" event carries the OS flags for builtin open, io.FileIO and
    # os.open alike; the mode string (None for os.open) is only a fallback.
    if isinstance(flags, int) and not isinstance(flags, bool):
        acc = flags & _O_ACCMODE
        if acc == os.O_RDONLY:
            return READ
        if flags & os.O_TRUNC:
            return TRUNC
        if acc == os.O_RDWR and not flags & os.O_APPEND:
            return RW
        return WRITE
    m = mode if isinstance(mode, str) else "r"
    if "w" in m:
        return TRUNC
    if "a" in m or "x" in m:
        return WRITE
    return RW if "+" in m else READ


def _cache_cwd() -> str:
    global _cwd
    _cwd = os.getcwd()
    return _cwd


def _forget_cwd() -> None:
    global _cwd, _cwd_went_stale
    if not _cwd_matches():  # changed by native code before this os.chdir
        _cwd_went_stale = True
    _cwd = None


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    listener = _listener
    if listener is None:
        return
    if event == "open":
        reads = _reads
        if reads is not None and len(args) == 3:
            path, flags = args[0], args[2]
            if (
                path.__class__ is str
                and flags.__class__ is int
                and not flags & _NOT_A_READ
                and path
                and not guard.busy
            ):
                if path[0] != "/":
                    cwd = _cwd
                    if cwd is None:
                        try:
                            cwd = _cache_cwd()
                        except OSError:
                            return  # the working folder is gone: so is the file
                    path = f"{cwd}/{path}"
                reads(path)
                return
    elif event == "os.chdir":
        _forget_cwd()
        return
    elif event != "os.rename" and event != "sqlite3.connect":
        return
    if guard.busy:
        return
    guard.busy = True
    try:
        if event == "open":
            if len(args) < 3 or isinstance(args[0], int):
                return  # an fd: its file was opened (and seen) before
            flags = args[2]
            exclusive = isinstance(flags, int) and flags & _O_CREAT_EXCL == _O_CREAT_EXCL
            listener.on_open(args[0], open_kind(args[1], flags), exclusive)
        elif event == "os.rename":
            if len(args) >= 4 and (args[2] not in (None, -1) or args[3] not in (None, -1)):
                return  # relative to a directory fd; cannot be resolved here
            listener.on_rename(args[1])
        elif args:
            db = args[0]
            if isinstance(db, str | bytes | os.PathLike):
                name = os.fsdecode(os.fspath(db))
                if name and name != ":memory:" and not name.startswith("file:"):
                    listener.on_sqlite_connect(name)
    except Exception:
        pass  # the hook must never break the user's open()
    finally:
        guard.busy = False
