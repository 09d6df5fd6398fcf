"""Which files a tracked cell read and wrote.

Two sources, merged into one story per path:

* **inotify** (one watchdog observer over the root, kept for the kernel's life)
  reports, in the order they happened, read-only closes (a read), creations,
  modifications (including an ``O_TRUNC`` open) and renames, by any code in any
  process: Python, pyarrow's C++, SQLite, subprocesses.  It is asynchronous and
  carries no pid or mode.
* **The audit hook** (``sys.addaudithook``) sees Python-level ``open`` (builtin,
  pathlib, ``os.open``, numpy, pandas' C parser), ``os.rename`` and
  ``sqlite3.connect`` synchronously, in the thread that does them.  It is the
  only source for reads outside the root, and the only moment at which a file's
  bytes can be saved before a Python open truncates them.

Order is judged in the event stream.  The hook writes nothing into a path's
story on its own except at one point: just before the cell's first Python
write-open (or rename onto, or SQLite connect to) an existing file, it flushes
the stream (see ``_sync``) so the story is current, then records what only it
knows (that Python read the file earlier, and that a snapshot now holds the
bytes the cell is about to change).  Each ``FileOpenedEvent`` is deliberately
not watched: it doubled the cost of every open() under the root, even between
cells, and closes carry what we need.

Cell boundaries in the stream are marked by renaming one marker file in
``.dotnb/tmp/``: ``…b<gen>`` at ``begin()``, ``…e<gen>`` at ``end()``, which
waits for its own marker so every earlier event has been handled, and
``…s<n>`` for a flush.  Events outside a begin/end pair (the caller hashing
outputs between cells, other processes) are dropped.

Roles: a path is an *output* if the cell created, truncated, modified or renamed
onto it and it is a regular file at the end; an *input* if it was read before
the cell first wrote it.  A file read and then changed by Python keeps the bytes
saved just before the change (``PreWrite``); when the writer is native there is
no such moment and the input is reported as ``changed``.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import sysconfig
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotnb.capture.ignore import IgnoreRules

__all__ = ["FileActivity", "FileTracker", "PreWrite"]


@dataclass
class PreWrite:
    """Content of a file captured before the cell truncated or overwrote it."""

    hash: str
    size: int


@dataclass
class FileActivity:
    """What one tracked cell read and wrote (paths are POSIX, relative to the root's realpath)."""

    # rel path -> pre-write content if it was snapshotted before an overwrite, else
    # None (the caller hashes the current file).
    inputs: dict[str, PreWrite | None] = field(default_factory=dict)
    # written/created by the cell and still a regular file at the end
    outputs: list[str] = field(default_factory=list)
    # reads outside the root: {"path": abs str, "size": int | None, "mtime_ns": int | None}
    external: list[dict[str, Any]] = field(default_factory=list)
    # read (before any write) but gone at the end, content unknown
    missing: list[str] = field(default_factory=list)
    # read, then modified with no pre-write snapshot: the current content is after the change
    changed: list[str] = field(default_factory=list)


# Open kinds, from the open's flags.
_READ = 0  # read-only
_RW = 1  # read-write without truncation (r+, O_RDWR): the content may be read first
_WRITE = 2  # write-only or appending, no truncation (a, a+, x, O_WRONLY): writes arrive as events
_TRUNC = 3  # truncating (w, w+, O_TRUNC): a write at the moment of the open

_O_ACCMODE = getattr(os, "O_ACCMODE", 3)  # not in every Python's os module

MAX_EXTERNAL = 100
END_TIMEOUT = 2.0  # seconds end() waits for the cell's events
MAX_TIMEOUTS = 2  # consecutive end() timeouts after which inotify is abandoned
SYNC_TIMEOUT = 0.5  # seconds a mid-cell flush waits

# Fixed system trees whose reads are never external inputs (/tmp deliberately is not one).
_SYSTEM_DIRS = ("/proc", "/sys", "/dev", "/usr", "/etc", "/lib", "/lib64", "/bin", "/sbin", "/run")
_PACKAGE_DIRS = frozenset({"site-packages", "dist-packages"})

# The tracker whose cell is running, or None.  The hook reads only this global
# outside a tracked cell, so it costs one global lookup per audit event.
_active: FileTracker | None = None
_hook_installed = False
_hook_install_lock = threading.Lock()
# Per-thread re-entrancy guard: set while the hook (or the tracker acting for it)
# runs, so the tracker's own opens (snapshots, the ignore file, markers) are not
# recorded and cannot recurse.
_guard = threading.local()


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    tracker = _active
    if tracker is None:
        return
    if event != "open" and event != "os.rename" and event != "sqlite3.connect":
        return
    if getattr(_guard, "busy", False):
        return
    _guard.busy = True
    try:
        tracker._on_audit(event, args)
    except Exception:
        pass  # the hook must never break the user's open()
    finally:
        _guard.busy = False


def _install_hook() -> None:
    global _hook_installed
    with _hook_install_lock:
        if not _hook_installed:
            # Hooks cannot be removed: it stays for the process and idles via _active.
            sys.addaudithook(_audit_hook)
            _hook_installed = True


def _open_kind(mode: object, flags: object) -> int:
    # The "open" event carries the OS flags for builtin open, io.FileIO and
    # os.open alike; the mode string (None for os.open) is only a fallback.
    if isinstance(flags, int) and not isinstance(flags, bool):
        acc = flags & _O_ACCMODE
        if acc == os.O_RDONLY:
            return _READ
        if flags & os.O_TRUNC:
            return _TRUNC
        if acc == os.O_RDWR and not flags & os.O_APPEND:
            return _RW
        return _WRITE
    m = mode if isinstance(mode, str) else "r"
    if "w" in m:
        return _TRUNC
    if "a" in m or "x" in m:
        return _WRITE
    return _RW if "+" in m else _READ


class _PathState:
    """Everything known about one root-relative path during one cell."""

    __slots__ = (
        "armed",
        "declared_in",
        "declared_out",
        "open_reads",
        "prewrite_ok",
        "py_read",
        "py_written",
        "read_first",
        "snap",
        "snap_taken",
        "written",
    )

    def __init__(self) -> None:
        self.read_first = False  # read before the cell first wrote it
        self.written = False  # created / truncated / modified / renamed onto
        # `snap` was taken while the story had no write yet: if the next write
        # is the first, `snap` is the content from before the cell changed it.
        self.armed = False
        self.prewrite_ok = False
        self.snap_taken = False
        self.snap: PreWrite | None = None
        # What the hook saw, in real time rather than stream order.
        self.py_read = False
        self.py_written = False  # the cell's first write-capable Python open is behind us
        self.open_reads = 0  # Python read-only opens whose close has not been seen
        self.declared_in = False
        self.declared_out = False

    def read(self) -> None:
        if not self.written:
            self.read_first = True

    def write(self) -> None:
        if not self.written:
            self.written = True
            self.prewrite_ok = self.armed


class _Cell:
    __slots__ = ("begun", "external", "gen", "paths", "warnings")

    def __init__(self, gen: int) -> None:
        self.gen = gen
        self.paths: dict[str, _PathState] = {}
        self.external: dict[str, dict[str, Any]] = {}
        self.begun = False  # the begin marker came through the event stream
        self.warnings: list[str] = []

    def state(self, rel: str) -> _PathState:
        ps = self.paths.get(rel)
        if ps is None:
            ps = self.paths[rel] = _PathState()
        return ps


# What _locate() found for a path: under the root (rel path) or outside it (real path).
_IN_ROOT = 0
_OUTSIDE = 1
_MISS = object()


class FileTracker:
    """Records the files each tracked cell reads and writes.

    One instance per kernel; one cell at a time (``begin()`` … ``end()``).
    ``snapshot(abs_path)`` saves a file's current bytes and is called from the
    audit hook just before a Python open or rename would change a file the cell
    has read.  ``warnings`` holds messages about the cell last begun: lasting
    degradations (no inotify) plus anything specific to that cell.
    """

    def __init__(
        self,
        root: Path,
        ignore: IgnoreRules,
        snapshot: Callable[[Path], PreWrite | None],
    ) -> None:
        self.root = Path(root)
        self._root_real = os.path.realpath(os.fspath(root))
        self._root_prefix = self._root_real.rstrip("/") + "/"
        self._ignore = ignore
        self._snapshot = snapshot
        self.warnings: list[str] = []
        self._lasting_warnings: list[str] = []

        # One lock for all cell state; the handler thread, hook threads and
        # end() share it.  Never held while doing I/O or waiting on others.
        self._cond = threading.Condition(threading.Lock())
        self._gen = 0
        self._cell: _Cell | None = None  # set by begin(), cleared by end()
        self._collecting: _Cell | None = None  # the cell the event stream is inside
        self._ended_gen = 0  # highest end marker seen
        self._synced = 0  # highest flush marker seen
        self._sync_n = 0

        self._observer: Any = None
        self._observer_tried = False
        self._timeouts = 0  # consecutive end() timeouts
        self._streaming = False  # observer running and marker file in place
        self._closed = False
        self._marker_lock = threading.Lock()
        self._marker_dir = os.path.join(self._root_real, ".dotnb", "tmp")
        self._marker_prefix = os.path.join(self._marker_dir, f"capture-{os.getpid()}-{id(self):x}.")
        self._marker_path = ""

        self._skip_prefixes = _system_prefixes(self._root_real)
        # Per-cell memos (cleared at begin, so ignore-rule edits apply from the next cell).
        self._loc_memo: dict[str, tuple[int, str] | None] = {}
        self._excl_memo: dict[str, bool] = {}

    # -- public API ------------------------------------------------------------

    def begin(self) -> None:
        """A tracked cell starts.  An unfinished previous cell is abandoned."""
        global _active
        if self._closed:
            raise RuntimeError("FileTracker is closed")
        _install_hook()
        if not self._observer_tried:
            self._start_observer()
        if self._streaming:
            _silence_watchdog_races()
        if _active is self:
            _active = None
        self.warnings = list(self._lasting_warnings)
        self._loc_memo.clear()
        self._excl_memo.clear()
        self._gen += 1
        cell = _Cell(self._gen)
        with self._cond:
            self._cell = cell
            self._collecting = None
        if self._streaming:
            # Not waited for: the handler starts collecting when it meets this
            # marker, which precedes every event of the cell in the stream.
            self._move_marker(f"b{cell.gen}")
        _active = self

    def end(self) -> FileActivity:
        """The cell finished: wait for its events, then classify what it touched."""
        global _active
        if _active is self:
            _active = None
        cell = self._cell
        if cell is None:
            return FileActivity()
        complete = True  # the event stream covered the whole cell
        if self._streaming:
            self._move_marker(f"e{cell.gen}")
            with self._cond:
                arrived = self._cond.wait_for(lambda: self._ended_gen >= cell.gen, END_TIMEOUT)
            complete = arrived and cell.begun
            if not arrived:
                cell.warnings.append(
                    f"dotnb: file events of this cell did not arrive within {END_TIMEOUT:g} s;"
                    " files read or written by native code or subprocesses may be missing"
                )
                self._timeouts += 1
                if self._timeouts >= MAX_TIMEOUTS:
                    # The observer is dead or hopelessly behind: stop paying the
                    # timeout on every cell and fall back to the hook alone.
                    self._give_up_streaming()
            else:
                self._timeouts = 0
                if not cell.begun:
                    cell.warnings.append(
                        "dotnb: file events of this cell were lost (inotify queue overflow?);"
                        " only Python-level file access was recorded"
                    )
        with self._cond:
            self._cell = None
            self._collecting = None
        for ps in cell.paths.values():
            # Python reads whose close never came through (a file left open, or
            # one in a folder created a moment before its watch): the open is evidence.
            if ps.open_reads:
                ps.read()
            # Without the stream, a Python write-open is the only evidence of a write.
            if not complete and ps.py_written:
                ps.write()
        self.warnings.extend(cell.warnings)
        return self._classify(cell)

    def add_input(self, path: str | os.PathLike[str]) -> None:
        """Declare ``path`` (relative to the CWD, or absolute) an input of the running cell."""
        cell = self._cell
        if cell is None:
            return
        loc = self._declared_location(path)
        if loc is None:
            return
        where, p = loc
        if where == _OUTSIDE:
            self._note_external(cell, p)
            return
        with self._cond:
            ps = cell.state(p)
            ps.declared_in = True
            # Lets a later Python overwrite snapshot it without a flush.
            ps.py_read = True

    def add_output(self, path: str | os.PathLike[str]) -> None:
        """Declare ``path`` an output of the running cell (must be under the root)."""
        cell = self._cell
        if cell is None:
            return
        loc = self._declared_location(path)
        if loc is None:
            return
        where, p = loc
        if where == _OUTSIDE:
            cell.warnings.append(f"dotnb: declared output {p} is outside the project; not recorded")
            return
        with self._cond:
            cell.state(p).declared_out = True

    def close(self) -> None:
        """Stop the observer; the tracker cannot begin again."""
        global _active
        if _active is self:
            _active = None
        self._closed = True
        self._streaming = False
        with self._cond:
            self._cell = None
            self._collecting = None
        observer, self._observer = self._observer, None
        if observer is not None:
            with contextlib.suppress(Exception):  # best effort at shutdown
                observer.stop()
                observer.join(timeout=2)
        if self._marker_path:
            with contextlib.suppress(OSError):
                os.unlink(self._marker_path)

    # -- observer and markers ---------------------------------------------------

    def _start_observer(self) -> None:
        self._observer_tried = True
        observer: Any = None
        try:
            from watchdog.events import (
                FileClosedNoWriteEvent,
                FileCreatedEvent,
                FileModifiedEvent,
                FileMovedEvent,
            )
            from watchdog.observers.inotify import InotifyObserver

            _shorten_rename_pairing()
            os.makedirs(self._marker_dir, exist_ok=True)
            self._marker_path = self._marker_prefix + "0"
            os.close(os.open(self._marker_path, os.O_WRONLY | os.O_CREAT, 0o600))
            observer = InotifyObserver()
            observer.schedule(
                _make_handler(self),
                self._root_real,
                recursive=True,
                # No FileOpenedEvent: see the module docstring.
                event_filter=[
                    FileClosedNoWriteEvent,
                    FileModifiedEvent,
                    FileCreatedEvent,
                    FileMovedEvent,
                ],
            )
            observer.start()
        except Exception as exc:
            if observer is not None:
                with contextlib.suppress(Exception):
                    observer.stop()
            self._lasting_warnings.append(
                f"dotnb: cannot watch {self._root_real} for file events ({exc}); only"
                " Python-level file access is recorded (not pyarrow, SQLite or subprocesses)"
            )
            return
        self._observer = observer
        self._streaming = True

    def _give_up_streaming(self) -> None:
        self._streaming = False
        self._lasting_warnings.append(
            "dotnb: file events stopped arriving; only Python-level file access is recorded"
            " from now on (not pyarrow, SQLite or subprocesses)"
        )
        observer, self._observer = self._observer, None
        if observer is not None:
            with contextlib.suppress(Exception):
                observer.stop()

    def _move_marker(self, suffix: str) -> None:
        """Put a marker with ``suffix`` into the event stream (one rename, no wait)."""
        new = self._marker_prefix + suffix
        busy = getattr(_guard, "busy", False)
        _guard.busy = True  # the rename and any re-creation are the tracker's own
        try:
            with self._marker_lock:
                try:
                    os.rename(self._marker_path, new)
                except OSError:
                    # Someone removed .dotnb/tmp: creating the file sends an event too.
                    try:
                        os.makedirs(self._marker_dir, exist_ok=True)
                        os.close(os.open(new, os.O_WRONLY | os.O_CREAT, 0o600))
                    except OSError:
                        return
                self._marker_path = new
        finally:
            _guard.busy = busy

    def _sync(self) -> None:
        """Wait until the handler has seen every event that happened before now."""
        with self._cond:
            self._sync_n += 1
            n = self._sync_n
        self._move_marker(f"s{n}")
        with self._cond:
            self._cond.wait_for(lambda: self._synced >= n, SYNC_TIMEOUT)

    def _on_marker(self, suffix: str) -> None:
        try:
            kind, n = suffix[0], int(suffix[1:])
        except (IndexError, ValueError):
            return
        with self._cond:
            cell = self._cell
            if kind == "b":
                if cell is not None and cell.gen == n:
                    cell.begun = True
                    self._collecting = cell
            elif kind == "e":
                self._ended_gen = max(self._ended_gen, n)
                # A late end marker (after a timeout) must not stop the next cell.
                if self._collecting is not None and self._collecting.gen == n:
                    self._collecting = None
            elif kind == "s":
                self._synced = max(self._synced, n)
            self._cond.notify_all()

    # -- inotify events (observer thread) ----------------------------------------

    def _on_fs_event(self, event: Any) -> None:
        moved = event.event_type == "moved"
        path = event.dest_path if moved else event.src_path
        if not isinstance(path, str):
            path = os.fsdecode(path)
        if path.startswith(self._marker_prefix):
            self._on_marker(path[len(self._marker_prefix) :])
            return
        cell = self._collecting
        if cell is None or not path.startswith(self._root_prefix):
            return
        rel = path[len(self._root_prefix) :]
        if self._excluded(rel):
            return
        with self._cond:
            if self._collecting is not cell:
                return
            ps = cell.state(rel)
            if event.event_type == "closed_no_write":
                # A read by anyone (the tracker's own snapshot reads only files
                # already read, so they change nothing).
                if ps.open_reads:
                    ps.open_reads -= 1
                ps.read()
            else:  # created, modified (an O_TRUNC open too), moved onto
                ps.write()

    # -- audit hook (user threads) -------------------------------------------------

    def _on_audit(self, event: str, args: tuple[Any, ...]) -> None:
        cell = self._cell
        if cell is None:
            return
        if event == "open":
            if len(args) < 3 or isinstance(args[0], int):
                return  # an fd: its file was opened (and seen) before
            flags = args[2]
            exclusive = isinstance(flags, int) and flags & (os.O_CREAT | os.O_EXCL) == (
                os.O_CREAT | os.O_EXCL
            )
            kind = _open_kind(args[1], flags)
            self._on_open(cell, args[0], kind, sqlite=False, exclusive=bool(exclusive))
        elif event == "os.rename":
            if len(args) >= 4 and (args[2] not in (None, -1) or args[3] not in (None, -1)):
                return  # relative to a directory fd; cannot be resolved here
            self._on_rename(cell, args[1])
        elif event == "sqlite3.connect" and args:
            db = args[0]
            if isinstance(db, str | bytes | os.PathLike):
                name = os.fsdecode(os.fspath(db))
                if name and name != ":memory:" and not name.startswith("file:"):
                    # SQLite reads the file natively and may write it; its writes
                    # show up as modify events.  Without inotify, only the read is known.
                    kind = _RW if self._streaming else _READ
                    self._on_open(cell, name, kind, sqlite=True, exclusive=False)

    def _on_open(self, cell: _Cell, path: Any, kind: int, *, sqlite: bool, exclusive: bool) -> None:
        loc = self._locate(_as_str(path))
        if loc is None:
            return
        where, p = loc
        full = p if where == _OUTSIDE else self._root_prefix + p
        try:
            st: os.stat_result | None = os.stat(full)
        except OSError:
            st = None
        if st is not None and (exclusive or not stat.S_ISREG(st.st_mode)):
            return  # directories, devices, fifos; O_EXCL on an existing file fails
        if where == _OUTSIDE:
            if st is not None and kind in (_READ, _RW):
                self._note_external(cell, p, st)
            return
        if st is None:
            if kind in (_READ, _RW) and not sqlite:
                return  # the open will fail
            with self._cond:
                ps = cell.state(p)
                ps.py_written = True  # nothing to save before later opens of it
                if not self._streaming:
                    ps.write()  # creates it (inotify would report the creation)
            return
        if kind == _READ:
            with self._cond:
                ps = cell.state(p)
                ps.py_read = True
                if self._streaming:
                    ps.open_reads += 1  # the read itself is placed by its close event
                else:
                    ps.read()
            return
        # r+ and SQLite read the content they may then change.
        self._before_change(cell, p, full, reads=kind == _RW, snapshot=not sqlite)
        if not self._streaming and not sqlite:
            with self._cond:
                cell.state(p).write()

    def _on_rename(self, cell: _Cell, dst: Any) -> None:
        """A Python rename onto ``dst`` (the atomic-save pattern) replaces its content."""
        loc = self._locate(_as_str(dst))
        if loc is None or loc[0] != _IN_ROOT:
            return
        rel = loc[1]
        full = self._root_prefix + rel
        try:
            exists = stat.S_ISREG(os.stat(full).st_mode)
        except OSError:
            exists = False
        if exists:
            self._before_change(cell, rel, full, reads=False, snapshot=True)
        if not self._streaming:
            with self._cond:
                cell.state(rel).write()

    def _before_change(self, cell: _Cell, rel: str, full: str, *, reads: bool, snapshot: bool) -> None:
        """Runs once per path and cell, just before Python may first change an existing file.

        Brings the event stream up to date, so that ``read_first``/``written``
        describe everything that happened before this moment, then adds what
        only the hook knows: Python read the file (earlier, or with this very
        open), and, if the cell read it before changing it, a snapshot of its
        current bytes taken before the open can truncate them.
        """
        with self._cond:
            ps = cell.state(rel)
            if ps.py_written:
                return  # the content is already the cell's own, or already saved
            ps.py_written = True
        if self._streaming:
            # Native reads (pyarrow, a subprocess) and native writes may still be
            # in flight; this costs one marker round trip (~0.3 ms).
            self._sync()
        with self._cond:
            if ps.py_read or ps.declared_in or reads:
                ps.read()
            take = snapshot and ps.read_first and not ps.written and not ps.snap_taken
            if take:
                ps.snap_taken = True
        if not take:
            return
        try:
            snap = self._snapshot(Path(full))
        except Exception:
            snap = None
        with self._cond:
            ps.snap = snap
            if not ps.written:
                ps.armed = True  # the next write to rel is this cell's first

    # -- paths -----------------------------------------------------------------------

    def _locate(self, raw: str) -> tuple[int, str] | None:
        """Classify an opened path: (_IN_ROOT, rel), (_OUTSIDE, realpath) or None (skip)."""
        if not os.path.isabs(raw):
            raw = os.path.join(os.getcwd(), raw)
        found = self._loc_memo.get(raw, _MISS)
        if found is not _MISS:
            return found  # type: ignore[return-value]
        result: tuple[int, str] | None
        lexical = os.path.normpath(raw)
        if lexical.startswith(self._skip_prefixes) and not lexical.startswith(self._root_prefix):
            result = None  # interpreter and system files: no syscalls spent on them
        else:
            real = os.path.realpath(raw)
            if real.startswith(self._root_prefix):
                rel = real[len(self._root_prefix) :]
                result = None if self._excluded(rel) else (_IN_ROOT, rel)
            elif real == self._root_real or _is_system_path(real, self._skip_prefixes):
                result = None
            else:
                result = (_OUTSIDE, real)
        self._loc_memo[raw] = result
        return result

    def _excluded(self, rel: str) -> bool:
        found = self._excl_memo.get(rel)
        if found is None:
            found = (
                self._ignore.is_ignored(rel)
                or not _PACKAGE_DIRS.isdisjoint(rel.split("/"))
                or (self._root_prefix + rel).startswith(self._skip_prefixes)
            )
            self._excl_memo[rel] = found
        return found

    def _declared_location(self, path: str | os.PathLike[str]) -> tuple[int, str] | None:
        # Declarations bypass the ignore rules (the user asked for the file),
        # but never reach into the store.
        real = os.path.realpath(os.path.abspath(os.fspath(path)))
        if real.startswith(self._root_prefix):
            rel = real[len(self._root_prefix) :]
            return None if rel.split("/", 1)[0] == ".dotnb" else (_IN_ROOT, rel)
        return (_OUTSIDE, real)

    def _note_external(self, cell: _Cell, real: str, st: os.stat_result | None = None) -> None:
        if real in cell.external or len(cell.external) >= MAX_EXTERNAL:
            return
        if st is None:
            try:
                st = os.stat(real)
            except OSError:
                st = None
        cell.external[real] = {
            "path": real,
            "size": st.st_size if st is not None else None,
            "mtime_ns": st.st_mtime_ns if st is not None else None,
        }

    # -- classification ----------------------------------------------------------------

    def _classify(self, cell: _Cell) -> FileActivity:
        act = FileActivity(external=list(cell.external.values()))
        for rel in sorted(cell.paths):
            ps = cell.paths[rel]
            is_input = ps.read_first or ps.declared_in
            is_output = ps.written or ps.declared_out
            if not (is_input or is_output):
                continue
            try:
                exists = stat.S_ISREG(os.lstat(self._root_prefix + rel).st_mode)
            except OSError:
                exists = False
            if is_output and exists:
                act.outputs.append(rel)
            if not is_input:
                continue
            pre = ps.snap if ps.prewrite_ok else None
            if pre is not None:
                act.inputs[rel] = pre
            elif exists:
                act.inputs[rel] = None
                if ps.written:
                    act.changed.append(rel)
            else:
                act.missing.append(rel)
        return act


def _make_handler(tracker: FileTracker) -> Any:
    # watchdog is imported on the first begin(), not when the kernel imports dotnb.
    from watchdog.events import FileSystemEvent, FileSystemEventHandler

    class _Handler(FileSystemEventHandler):
        """Forwards every event to the tracker; never raises into the observer thread."""

        def dispatch(self, event: FileSystemEvent) -> None:
            # A bad event must not kill the observer thread.
            with contextlib.suppress(Exception):
                tracker._on_fs_event(event)

    return _Handler()


# watchdog 7 warns from its reader thread when a directory created during a
# recursive scan is registered twice (a harmless race).  Under warnings-as-errors
# that kills the thread and every later event; otherwise it prints into the cell.
_WATCHDOG_RACE = r"Callback with id '.*' (already exists|does not exist) for watch"


def _silence_watchdog_races() -> None:
    # Kept at the front (where filterwarnings puts it), but only re-inserted when
    # something else went in front: every insertion resets "shown once" state.
    first = warnings.filters[0] if warnings.filters else None
    if first is None or first[1] is None or first[1].pattern != _WATCHDOG_RACE:
        warnings.filterwarnings("ignore", message=_WATCHDOG_RACE, category=RuntimeWarning)


def _as_str(path: Any) -> str:
    if isinstance(path, str):
        return path
    return os.fsdecode(os.fspath(path))


def _system_prefixes(root_real: str) -> tuple[str, ...]:
    """Trees holding the interpreter and the OS, as "/dir/" prefixes.

    A prefix that contains the root is dropped (a project under /usr/local
    with Python in /usr/local must still be watched); the interpreter's own
    library directories are kept even then.
    """
    dirs = set(_SYSTEM_DIRS)
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        dirs.add(p)
    for name, p in sysconfig.get_paths().items():
        if name != "data":
            dirs.add(p)
    prefixes: set[str] = set()
    for d in dirs:
        for variant in (d, os.path.realpath(d)):
            pre = variant.rstrip("/") + "/"
            if pre == "/" or (root_real + "/").startswith(pre):
                continue
            prefixes.add(pre)
    return tuple(sorted(prefixes))


# watchdog holds the first half of every rename (IN_MOVED_FROM) for 0.5 s to pair
# it with the second, and its queue sleeps out that delay even once the pair is
# found, so every later event (our cell markers included) waits behind a rename.
# Both halves come from one inotify read, so a few milliseconds pair them.
RENAME_PAIRING_S = 0.002


def _shorten_rename_pairing() -> None:
    try:
        from watchdog.observers import inotify_move_event_grouper as grouper

        grouper.InotifyMoveEventGrouper.delay = RENAME_PAIRING_S
    except (ImportError, AttributeError):  # another watchdog layout: keep its default
        pass


_MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd", ".pth")


def _is_system_path(real: str, skip_prefixes: tuple[str, ...]) -> bool:
    if real.startswith(skip_prefixes):
        return True
    parts = real.split("/")
    if any(p.startswith(".") for p in parts if p) or not _PACKAGE_DIRS.isdisjoint(parts):
        return True
    # Importing a module from an editable install or PYTHONPATH is code loading, not a data input.
    return real.endswith(_MODULE_SUFFIXES) and any(
        entry and real.startswith(os.path.realpath(entry).rstrip("/") + "/") for entry in sys.path
    )
