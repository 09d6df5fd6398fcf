"""Which files a tracked cell read and wrote.

Two sources, merged into one story per path:

* **inotify** (one instance over the root's folders, kept for the kernel's life;
  :mod:`dotnb.capture.inotify`) reports, in the order they happened, read-only
  closes (a read), creations, modifications (including an ``O_TRUNC`` open) and
  renames, by any code in any process: Python, pyarrow's C++, SQLite,
  subprocesses.  It carries no pid or mode.
* **The audit hook** (``sys.addaudithook``) sees Python-level ``open`` (builtin,
  pathlib, ``os.open``, numpy, pandas' C parser), ``os.rename`` and
  ``sqlite3.connect`` synchronously, in the thread that does them.  It is the
  only source for reads outside the root, and the only moment at which a file's
  bytes can be saved before a Python open truncates them.

Order is judged in the event stream.  The hook writes nothing into a path's
story on its own except at one point: just before the cell's first Python
write-open (or rename onto, or SQLite connect to) an existing file, it brings
the stream up to date (see ``_sync``), then records what only it knows (that
Python read the file earlier, and that a snapshot now holds the bytes the cell
is about to change).  ``IN_OPEN`` is deliberately not watched: it doubled the
cost of every open() under the root, even between cells, and closes carry what
we need.

Cell boundaries need no marker: the kernel queues an inotify event within the
system call that causes it, so whatever is in the queue when ``begin()`` runs
happened before the cell, and everything the cell caused is in the queue when
``end()`` runs.  Both read the queue dry themselves (``_drain_now``) and switch
collecting on or off under the same lock; a reader thread handles events as they
come in between (folders to watch, and the cell's events while it runs) so the
queue never overflows.  No thread hand-off, no waiting: an empty cell costs two
``read()`` calls.  Events outside a begin/end pair (the caller hashing outputs
between cells, other processes) are dropped.  Hidden folders (``.dotnb``,
``.git``, ``.venv``), ``__pycache__`` and package folders are not watched at all:
capture ignores them anyway, and the store's own writes then cost nothing here.

Roles: a path is an *output* if the cell created, truncated, modified or renamed
onto it and it is a regular file at the end; an *input* if it was read before
the cell first wrote it.  A file read and then changed by Python keeps the bytes
saved just before the change (``PreWrite``); when the writer is native there is
no such moment and the input is reported as ``changed``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotnb.capture.ignore import IgnoreRules
from dotnb.capture.inotify import (
    IN_CLOSE_NOWRITE,
    IN_CREATE,
    IN_DELETE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_ISDIR,
    IN_MASK_ADD,
    IN_MODIFY,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
)
from dotnb.capture.inotify import parse as parse_events
from dotnb.capture.pid import current_pid

__all__ = ["DirWatch", "FileActivity", "FileTracker", "PreWrite"]


@dataclass
class PreWrite:
    """Content of a file captured before the cell truncated or overwrote it."""

    hash: str
    size: int


class DirWatch:
    """Changes in one folder that file capture does not cover (the environment's
    ``site-packages``, a git directory), reported by the tracker's event stream so
    that its owner need not stat the folder on every run.

    ``changes`` grows with every event in the folder (and when events were lost), by
    the time ``end()`` has drained the stream; ``live`` turns False for good when the
    watch or the stream is gone, and the owner then stats as it would without one.
    """

    __slots__ = ("changes", "live")

    def __init__(self) -> None:
        self.changes = 0
        self.live = True


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
END_TIMEOUT = 2.0  # seconds begin()/end() wait for the reader thread to let go of the queue
MAX_TIMEOUTS = 2  # consecutive such timeouts after which inotify is abandoned
SYNC_TIMEOUT = 0.5  # seconds a mid-cell flush waits
# The reader thread, woken by an event, waits this long for more before reading the
# queue: far less than the queue takes to fill (16,384 events), many events a read.
READER_BATCH_MS = 10
WALK_READ_EVERY = 256  # folders a walk of the whole tree watches between reads of the queue
MAX_WALKS = 3  # walks of the whole tree in a row, when the queue overflows during one

# Reads (a read-only close), writes (modify: an O_TRUNC open too), creations and
# renames, of files and of folders (watched as they appear).  Not IN_OPEN: it
# doubled the cost of every open() under the root, and closes carry what we need.
# IN_MASK_ADD: a folder watched for both (see watch_dir) keeps both masks.
_WATCH_MASK = (
    IN_CLOSE_NOWRITE | IN_MODIFY | IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MASK_ADD
)
# Folders outside the capture (watch_dir): an entry created, deleted, renamed or its
# content changed, or the folder itself gone.  Not closes or attribute changes: the
# folder may be one the capture watches too (the notebook's), where they would add
# an event per file a cell writes.
_DIR_WATCH_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY
_DIR_WATCH_MASK |= IN_DELETE_SELF | IN_MOVE_SELF | IN_MASK_ADD

# Fixed system trees whose reads are never external inputs (/tmp deliberately is not one).
_SYSTEM_DIRS = ("/proc", "/sys", "/dev", "/usr", "/etc", "/lib", "/lib64", "/bin", "/sbin", "/run")
_PACKAGE_DIRS = frozenset({"site-packages", "dist-packages"})

# The tracker whose cell is running, or None.  The hook reads only this global
# outside a tracked cell, so it costs one global lookup per audit event.
_active: FileTracker | None = None
_hook_installed = False
_hook_install_lock = threading.Lock()
# Per-thread re-entrancy guard: set while the hook (or the tracker acting for it)
# runs, so the tracker's own opens (snapshots, the ignore file) are not
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
    __slots__ = ("begun", "external", "gen", "lost", "paths", "warnings")

    def __init__(self, gen: int) -> None:
        self.gen = gen
        self.paths: dict[str, _PathState] = {}
        self.external: dict[str, dict[str, Any]] = {}
        self.begun = False  # the event stream was collecting from the cell's start
        self.lost = False  # events of the cell were dropped (inotify queue overflow)
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


class _FsEvent:
    """One file event under the root, as the tracker handles it (absolute paths)."""

    __slots__ = ("dest_path", "event_type", "src_path")

    def __init__(self, event_type: str, src_path: str, dest_path: str = "") -> None:
        self.event_type = event_type  # "closed_no_write", "created", "modified" or "moved"
        self.src_path = src_path
        self.dest_path = dest_path


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

        # One lock for all cell state; the reader thread, hook threads and end()
        # share it.  Never held while doing I/O or waiting on others.
        self._cond = threading.Condition(threading.Lock())
        self._gen = 0
        self._cell: _Cell | None = None  # set by begin(), cleared by end()
        self._collecting: _Cell | None = None  # the cell the event stream is inside

        # The event stream: one inotify instance over the root's folders.  Events
        # are read and handled under _read_lock, by the reader thread (between and
        # during cells) or by begin(), end() and _sync() themselves.
        self._inotify: Any = None
        self._stream_tried = False
        self._streaming = False  # inotify watching and the reader thread running
        self._timeouts = 0  # consecutive times the reader held the queue too long
        self._closed = False
        self._read_lock = threading.Lock()
        self._waiting = 0  # threads waiting for _read_lock (the reader then yields it)
        self._waiting_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None  # pipe that stops the reader
        self._wd_path: dict[int, str] = {}  # watch descriptor -> folder ("" = the root)
        self._dir_watches: dict[int, DirWatch] = {}  # watch descriptor -> watch_dir's watch
        self._watch_by_path: dict[str, DirWatch] = {}  # see watched()
        self._unwatchable: set[str] = set()
        self._path_wd: dict[str, int] = {}
        # cookie -> (name, watches below it) of a folder moved away, until the other half
        self._moved_from: dict[int, tuple[str, list[tuple[str, int]]]] = {}
        self._drain_cap = 4 * _max_queued_events()
        # A walk of the whole tree is under way; an overflow meanwhile asks for another.
        self._walking_all = False
        self._walk_again = False
        self._pid = current_pid()

        self._skip_prefixes = _system_prefixes(self._root_real)
        # Per-cell memos (cleared at begin, so ignore-rule edits apply from the next cell).
        self._loc_memo: dict[str, tuple[int, str] | None] = {}
        self._folder_memo: dict[str, str] = {}  # folder -> its realpath
        self._excl_memo: dict[str, bool] = {}

    # -- public API ------------------------------------------------------------

    def begin(self) -> None:
        """A tracked cell starts.  An unfinished previous cell is abandoned."""
        global _active
        if self._closed:
            raise RuntimeError("FileTracker is closed")
        _install_hook()
        if not self._stream_tried:
            self._start_stream()
        if _active is self:
            _active = None
        self.warnings = list(self._lasting_warnings)
        self._loc_memo.clear()
        self._folder_memo.clear()
        self._excl_memo.clear()
        self._gen += 1
        cell = _Cell(self._gen)
        with self._cond:
            self._cell = cell
            self._collecting = None

        def start_collecting() -> None:
            with self._cond:
                self._collecting = cell
            cell.begun = True

        # Whatever is queued happened before the cell: handled (new folders are
        # watched) but not collected.  The cell's own events follow in the queue.
        if self._streaming and not self._drain_now(END_TIMEOUT, start_collecting):
            self._reader_stuck(cell, "when this cell started")
        _active = self

    def end(self) -> FileActivity:
        """The cell finished: handle its events still queued, then classify what it touched."""
        global _active
        if _active is self:
            _active = None
        cell = self._cell
        if cell is None:
            return FileActivity()
        complete = cell.begun  # the event stream covered the whole cell

        def stop_collecting() -> None:
            with self._cond:
                self._collecting = None

        if cell.begun:
            # Every event of the cell is in the queue by now (inotify queues an
            # event within the system call that causes it): reading the queue
            # dry is all the waiting there is.
            if not self._streaming or not self._drain_now(END_TIMEOUT, stop_collecting):
                complete = False
                if self._streaming:
                    self._reader_stuck(cell, f"within {END_TIMEOUT:g} s")
            else:
                self._timeouts = 0
                if cell.lost:
                    complete = False
                    cell.warnings.append(
                        "dotnb: file events of this cell were lost (inotify queue overflow);"
                        " only Python-level file access was recorded"
                    )
        with self._cond:
            self._cell = None
            self._collecting = None
        for ps in cell.paths.values():
            # Python reads whose close never came through (a file left open): the
            # open is evidence.
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

    def watch_dir(self, path: str) -> DirWatch | None:
        """Report changes in folder ``path`` (anywhere) through the event stream; None
        when there is no stream or the folder cannot be watched."""
        if not self._streaming or not self._read_lock.acquire(timeout=END_TIMEOUT):
            return None
        try:
            ino = self._inotify
            if ino is None:
                return None
            try:
                wd = ino.add_watch(os.path.realpath(path), _DIR_WATCH_MASK)
            except OSError:
                return None
            watch = self._dir_watches.get(wd)
            if watch is None or not watch.live:
                watch = self._dir_watches[wd] = DirWatch()
            return watch
        finally:
            self._read_lock.release()

    def watched(self, path: str, create: bool = True) -> DirWatch | None:
        """:meth:`watch_dir` once per folder: the same watch while it is live, a new one
        (with ``create``) once it is not; None when there is none (its owner stats
        instead), and from then on for a folder that exists but could not be watched."""
        watch = self._watch_by_path.get(path)
        if watch is not None and watch.live:
            return watch
        if not create or path in self._unwatchable:
            return None
        watch = self.watch_dir(path)
        if watch is None:
            if self._streaming and os.path.isdir(path):
                self._unwatchable.add(path)  # e.g. the watch limit: not tried every run
            return None
        self._watch_by_path[path] = watch
        return watch

    def _dir_watches_lost(self) -> None:
        for watch in self._dir_watches.values():
            watch.live = False
        self._dir_watches = {}

    def close(self) -> None:
        """Stop watching; the tracker cannot begin again."""
        global _active
        if _active is self:
            _active = None
        self._closed = True
        self._streaming = False
        with self._cond:
            self._cell = None
            self._collecting = None
        self._stop_stream()

    # -- the event stream ---------------------------------------------------------

    def _start_stream(self) -> None:
        self._stream_tried = True
        try:
            from dotnb.capture import inotify

            self._inotify = inotify.Inotify()
            self._watch_all()  # raises if the root itself cannot be watched
            self._wake = os.pipe()
            self._reader = threading.Thread(
                target=self._read_loop,
                args=(self._inotify.fd, self._wake[0]),
                name="dotnb-files",
                daemon=True,
            )
            self._streaming = True
            self._reader.start()
        except Exception as exc:
            self._streaming = False
            self._stop_stream()
            self._lasting_warnings.append(
                f"dotnb: cannot watch {self._root_real} for file events ({exc}); only"
                " Python-level file access is recorded (not pyarrow, SQLite or subprocesses)"
            )

    def _stop_stream(self, wait: float = 2.0) -> None:
        self._dir_watches_lost()
        wake, self._wake = self._wake, None
        reader, self._reader = self._reader, None
        if wake is not None:
            with contextlib.suppress(OSError):
                os.write(wake[1], b"x")
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=wait)
        # Close under the read lock; if a hung handler holds it, the reader closes it.
        if self._read_lock.acquire(timeout=wait / 2):
            try:
                ino, self._inotify = self._inotify, None
                if ino is not None:
                    ino.close()
            finally:
                self._read_lock.release()
        if wake is not None:
            for fd in wake:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _reader_stuck(self, cell: _Cell, when: str) -> None:
        """The reader thread held the queue too long (a huge burst, or a hung handler)."""
        cell.warnings.append(
            f"dotnb: file events of this cell did not arrive {when}; files read or written"
            " by native code or subprocesses may be missing"
        )
        self._timeouts += 1
        if self._timeouts >= MAX_TIMEOUTS:
            # Stop paying the timeout on every cell: fall back to the hook alone.
            self._streaming = False
            self._lasting_warnings.append(
                "dotnb: file events stopped arriving; only Python-level file access is recorded"
                " from now on (not pyarrow, SQLite or subprocesses)"
            )
            self._stop_stream(wait=0.2)

    def _read_loop(self, fd: int, wake: int) -> None:
        """The reader thread: handles events as they come, so the queue never overflows
        and begin()/end() find little left to read."""
        _guard.busy = True  # this thread's own opens are never the cell's
        try:
            self._read_events(fd, wake)
        finally:
            if not self._streaming:  # given up while this thread was busy: close up
                with self._read_lock:
                    ino, self._inotify = self._inotify, None
                    if ino is not None:
                        ino.close()

    def _read_events(self, fd: int, wake: int) -> None:
        import select

        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(wake, select.POLLIN)
        wake_only = select.poll()
        wake_only.register(wake, select.POLLIN)
        while self._streaming:
            try:
                ready = poller.poll()
            except InterruptedError:
                continue
            except OSError:
                return
            if not self._streaming or any(r == wake for r, _ in ready):
                return
            # Let events gather: woken for each one, this thread would take the GIL
            # from a cell opening files at every open() and close() (10x slower).
            if wake_only.poll(READER_BATCH_MS):
                return
            # One buffer at a time, so begin() and end() wait for one buffer at most.
            while self._streaming:
                with self._read_lock:
                    if self._inotify is None:
                        return
                    try:
                        buf = self._inotify.read()
                        if buf:
                            self._process(buf)
                        else:
                            self._finish_moves()
                    except Exception:
                        buf = b""  # a bad event must not stop the stream
                if not buf:
                    break
                if self._waiting:
                    time.sleep(0.0005)  # let begin()/end()/_sync() take the queue

    def _drain_now(self, timeout: float, then: Callable[[], None] | None = None) -> bool:
        """Handle every event queued before now, then run ``then`` under the same lock.

        False when the reader thread held the queue for more than ``timeout``.
        """
        if current_pid() != self._pid:
            # A forked child (multiprocessing) shares the parent's inotify queue:
            # reading it here would take the parent's events away.
            return True
        with self._waiting_lock:
            self._waiting += 1
        try:
            got = self._read_lock.acquire(timeout=timeout)
        finally:
            with self._waiting_lock:
                self._waiting -= 1
        if not got:
            return False
        busy = getattr(_guard, "busy", False)
        _guard.busy = True  # the tracker's own opens (the ignore file) are not the cell's
        try:
            ino = self._inotify
            if ino is None:
                return False
            read = 0
            while True:
                buf = ino.read()
                if not buf:
                    self._finish_moves()
                    break
                read += self._process(buf)
                if read > self._drain_cap:
                    # Events keep coming faster than they are handled: stop here, and
                    # say the cell's record may be incomplete.
                    cell = self._collecting
                    if cell is not None:
                        cell.lost = True
                    break
            if then is not None:
                then()
            return True
        except OSError:
            return False
        finally:
            _guard.busy = busy
            self._read_lock.release()

    def _sync(self) -> None:
        """Handle every event that happened before now (best effort within SYNC_TIMEOUT)."""
        self._drain_now(SYNC_TIMEOUT)

    def _process(self, buf: bytes) -> int:
        """Handle a buffer of events (under _read_lock); returns how many it held."""
        cell = self._collecting
        prefix = self._root_prefix
        count = 0
        previous = None
        for event in parse_events(buf):
            count += 1
            if event == previous:
                continue  # a repeat (e.g. write after write) says nothing new
            previous = event
            wd, mask, cookie, raw = event
            if mask & IN_Q_OVERFLOW:
                self._on_overflow()
                continue
            if self._dir_watches:
                watch = self._dir_watches.get(wd)
                # Only changes count (the folder may be watched for the capture as well,
                # whose read events arrive on the same watch).
                if watch is not None and mask & (_DIR_WATCH_MASK | IN_IGNORED) & ~IN_MASK_ADD:
                    watch.changes += 1
                    if mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
                        # The folder is gone from its path (a watch follows the folder,
                        # not the path): the owner watches the path again, or stats.
                        watch.live = False
                        self._dir_watches.pop(wd, None)  # (the stream may be stopping meanwhile)
                        if not mask & IN_IGNORED and wd not in self._wd_path:
                            self._inotify.rm_watch(wd)
            folder = self._wd_path.get(wd)
            if mask & IN_IGNORED:  # the watch is gone (folder deleted, or unwatched)
                if folder is not None and self._path_wd.get(folder) == wd:
                    del self._path_wd[folder]
                self._wd_path.pop(wd, None)
                continue
            if folder is None or not raw:
                continue
            name = os.fsdecode(raw)
            rel = f"{folder}/{name}" if folder else name
            if mask & IN_ISDIR:
                if mask & IN_MOVED_FROM:
                    self._moved_from[cookie] = (rel, self._detach_tree(rel))
                elif mask & (IN_CREATE | IN_MOVED_TO):
                    moved = self._moved_from.pop(cookie, None) if mask & IN_MOVED_TO else None
                    if moved is not None:
                        self._reattach_tree(*moved, None if _unwatched(name) else rel)
                    if not _unwatched(name):
                        # Its files may predate the watch: with a cell running, each
                        # one found is reported as created (moved in counts as written).
                        self._watch_tree(rel, self._collecting)
                continue
            if cell is None:
                continue
            if mask & IN_CLOSE_NOWRITE:
                self._on_fs_event(_FsEvent("closed_no_write", prefix + rel))
            elif mask & IN_MOVED_TO:
                self._on_fs_event(_FsEvent("moved", "", prefix + rel))
            elif mask & (IN_MODIFY | IN_CREATE):
                self._on_fs_event(_FsEvent("modified" if mask & IN_MODIFY else "created", prefix + rel))
        return count

    def _finish_moves(self) -> None:
        # A folder moved away whose other half never came was moved out of the root.
        for old, watches in self._moved_from.values():
            self._reattach_tree(old, watches, None)
        self._moved_from.clear()

    def _on_overflow(self) -> None:
        cell = self._collecting
        if cell is not None:
            cell.lost = True
        for watch in self._dir_watches.values():
            watch.changes += 1  # its events may be among those lost
        self._moved_from.clear()
        # Folders created meanwhile went unseen: watch whatever is not watched yet.
        if self._walking_all:
            self._walk_again = True  # the walk under way starts over when it ends
            return
        with contextlib.suppress(OSError):
            self._watch_all()

    def _watch_all(self) -> None:
        """Watch every folder of the tree not watched yet (the first cell, an overflow).

        Reading a folder queues two events (its own close and its parent's), so the
        walk reads the queue as it goes: a tree of more folders than the queue holds
        would otherwise overflow it, and an overflow sends the tree to be walked
        again, every cell.
        """
        self._walking_all = True
        try:
            for _ in range(MAX_WALKS):
                self._walk_again = False
                self._watch_tree("", None)
                if not self._walk_again:
                    break
        finally:
            self._walking_all = False

    def _read_walk_events(self) -> None:
        """Handle what is queued, in the middle of a walk of the whole tree."""
        ino = self._inotify
        while ino is not None:
            buf = ino.read()
            if not buf:
                break
            self._process(buf)

    def _watch_tree(self, rel: str, cell: _Cell | None) -> None:
        """Watch folder ``rel`` and the folders below it (not hidden ones, caches or
        package folders; never through a symlink).  With ``cell``, each file found is
        reported as created: the cell made or moved in the folder."""
        ino = self._inotify
        stack = [rel]
        walked = 0
        while stack:
            folder = stack.pop()
            walked += 1
            if self._walking_all and walked % WALK_READ_EVERY == 0:
                self._read_walk_events()
            full = self._root_prefix + folder if folder else self._root_real
            try:
                wd = ino.add_watch(full, _WATCH_MASK)
            except OSError as exc:
                if not folder:
                    raise  # the root
                if exc.errno == errno.ENOSPC and not any("watch limit" in w for w in self._lasting_warnings):
                    self._lasting_warnings.append(
                        f"dotnb: some folders under {self._root_real} are not watched ({exc.strerror});"
                        " native reads and writes in them are not seen"
                    )
                continue
            old = self._wd_path.get(wd)
            if old is not None and old != folder and self._path_wd.get(old) == wd:
                del self._path_wd[old]
            self._wd_path[wd] = folder
            self._path_wd[folder] = wd
            try:
                entries = list(os.scandir(full))
            except OSError:
                continue
            for entry in entries:
                child = f"{folder}/{entry.name}" if folder else entry.name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    if not _unwatched(entry.name):
                        stack.append(child)
                elif cell is not None:
                    self._on_fs_event(_FsEvent("created", self._root_prefix + child))

    def _detach_tree(self, rel: str) -> list[tuple[str, int]]:
        """Folder ``rel`` was moved away: its watches, no longer known by that name."""
        below = rel + "/"
        found = [(f, wd) for f, wd in self._path_wd.items() if f == rel or f.startswith(below)]
        for folder, _ in found:
            del self._path_wd[folder]
        return found

    def _reattach_tree(self, old: str, watches: list[tuple[str, int]], new: str | None) -> None:
        """The folder moved away from ``old`` is now ``new`` (its watches follow it), or
        out of the watched tree (``None``: its watches are removed)."""
        for folder, wd in watches:
            if self._wd_path.get(wd) != folder:
                continue  # the watch went away or was reused meanwhile
            if new is None:
                del self._wd_path[wd]
                with contextlib.suppress(OSError):
                    self._inotify.rm_watch(wd)
            else:
                moved = new + folder[len(old) :]
                self._wd_path[wd] = moved
                self._path_wd[moved] = wd

    def _on_fs_event(self, event: Any) -> None:
        moved = event.event_type == "moved"
        path = event.dest_path if moved else event.src_path
        if not isinstance(path, str):
            path = os.fsdecode(path)
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
            # queued: handle them first (a read of the queue, no thread hand-off).
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
            real = self._realpath(lexical) if "/../" not in raw and not raw.endswith("/..") else None
            if real is None:
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

    def _realpath(self, lexical: str) -> str | None:
        """``os.path.realpath`` of a normalized absolute path without ``..``, with its
        folder resolved once per cell: one ``lstat`` (of the last component) instead of
        one per component.  None when that component is a symlink (resolve it fully)."""
        folder, name = os.path.split(lexical)
        real_folder = self._folder_memo.get(folder)
        if real_folder is None:
            real_folder = self._folder_memo[folder] = os.path.realpath(folder)
        candidate = os.path.join(real_folder, name)
        try:
            if stat.S_ISLNK(os.lstat(candidate).st_mode):
                return None
        except OSError:
            pass  # no such file (yet): nothing to follow
        return candidate

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


def _unwatched(name: str) -> bool:
    """Folders never watched: hidden ones (``.dotnb``, ``.git``, ``.venv`` …), caches and
    installed packages; capture ignores every path in them anyway (see ``_excluded``)."""
    return name.startswith(".") or name == "__pycache__" or name in _PACKAGE_DIRS


def _max_queued_events() -> int:
    try:
        with open("/proc/sys/fs/inotify/max_queued_events") as f:
            return max(int(f.read()), 1024)
    except (OSError, ValueError):
        return 16384


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
