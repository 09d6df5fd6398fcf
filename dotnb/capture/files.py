"""Which files a tracked cell read and wrote.

Two sources, merged into one story per path (:mod:`dotnb.capture.cell_record`):

* **the event stream** (:mod:`dotnb.capture.watcher`: inotify over the root's
  folders) reports reads, creations, modifications and renames by any code in
  any process, in the order they happened, with no pid or mode;
* **the audit hook** (:mod:`dotnb.capture.audit_hook`) sees Python-level opens,
  renames and SQLite connections synchronously, in the thread that does them.
  It is the only source for reads outside the root, and the only moment at which
  a file's bytes can be saved before a Python open truncates them.

Order is judged in the event stream.  The hook writes nothing into a path's
story on its own except at one point: just before the cell's first Python
write-open (or rename onto, or SQLite connect to) an existing file, it brings
the stream up to date (see ``_before_change``), then records what only it knows
(that Python read the file earlier, and that a snapshot now holds the bytes the
cell is about to change).

Cell boundaries need no marker: the kernel queues an inotify event within the
system call that causes it, so whatever is in the queue when ``begin()`` runs
happened before the cell, and everything the cell caused is in the queue when
``end()`` runs.  Both read the queue dry themselves (``TreeWatcher.drain``) and
switch collecting on or off under the same lock; the reader thread handles
events as they come in between, so the queue never overflows.  No thread
hand-off, no waiting: an empty cell costs two ``read()`` calls.  Events outside
a begin/end pair (the caller hashing outputs between cells, other processes)
are dropped.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from dotnb.capture import audit_hook
from dotnb.capture.audit_hook import READ, RW
from dotnb.capture.cell_record import CellRecord, FileActivity, PreWrite
from dotnb.capture.file_events import FileEvents, fallback_for, open_file_events
from dotnb.capture.ignore import IgnoreRules
from dotnb.capture.locate import OUTSIDE, PathLocator
from dotnb.capture.watcher import DirWatch

# DirWatch, FileActivity and PreWrite are re-exported: callers import them from here.
__all__ = ["DirWatch", "FileActivity", "FileTracker", "PreWrite"]

_NO_NAMES: frozenset[str] = frozenset()
END_TIMEOUT = 2.0  # seconds begin()/end() wait for the reader thread to let go of the queue
# Python read-opens pending when the stream hands reads over: from this many on, they
# are matched with the stream's reads there and then (see FileTracker._match_some).
MATCH_WHILE_RUNNING = 4096
# ...except the newest this many: the cell runs ahead of the stream's hand-overs, so
# the reads of its latest opens have seldom come through yet (matched next time).
MATCH_LEAVE_NEWEST = 1024


class FileTracker:
    """Records the files each tracked cell reads and writes.

    One instance per kernel; one cell at a time (``begin()`` … ``end()``).
    ``snapshot(abs_path)`` saves a file's current bytes and is called from the
    audit hook just before a Python open or rename would change a file the cell
    has read.  ``warnings`` holds messages about the cell last begun: lasting
    degradations (no inotify) plus anything specific to that cell.

    ``watcher`` is the event stream (also for folders outside the capture: see
    :meth:`TreeWatcher.watched`), from the source ``DOTNB_FILE_EVENTS`` chooses
    (:mod:`dotnb.capture.file_events`); it starts with the first cell.
    """

    def __init__(
        self,
        root: Path,
        ignore: IgnoreRules,
        snapshot: Callable[[Path], PreWrite | None],
    ) -> None:
        self.root = Path(root)
        self.ignore = ignore
        self._snapshot = snapshot
        self.warnings: list[str] = []
        locator = PathLocator(os.path.realpath(os.fspath(root)), ignore)
        self._locator = locator
        self._root_prefix = locator.root_prefix
        # Bound once: both run for every file the cell touches.
        self._locate = locator.locate
        self._excluded = locator.excluded

        # One lock for all cell state; the reader thread, hook threads and end()
        # share it.  Never held while doing I/O or waiting on others.
        self._cond = threading.Condition(threading.Lock())
        # Held while Python's pending reads are looked at, and through a cell's finish.
        self._pending_lock = threading.RLock()
        self._gen = 0
        self._cell: CellRecord | None = None  # set by begin(), cleared by end()
        self._collecting: CellRecord | None = None  # the cell the event stream is inside
        self.watcher: FileEvents = open_file_events(locator.root_real, self._events_lost)
        self._stream_tried = False
        self._closed = False

    # -- public API ------------------------------------------------------------

    def begin(self) -> None:
        """A tracked cell starts.  An unfinished previous cell is abandoned."""
        if self._closed:
            raise RuntimeError("FileTracker is closed")
        if not self._stream_tried:
            self._stream_tried = True
            self.watcher.start()
        # Between cells: the inotify reader ran into the watch limit (at its start, or
        # with folders made since), so another source takes over.
        fallback = fallback_for(self.watcher)
        if fallback is not None:
            self.watcher = fallback
        watcher = self.watcher
        audit_hook.stop_listening(self)
        self.warnings = list(watcher.warnings)
        self._locator.new_cell()
        self._gen += 1
        cell = CellRecord(self._gen)
        with self._cond:
            self._cell = cell
            self._collecting = None
            watcher.sink = None
            watcher.read_sink = None

        def start_collecting() -> None:
            with self._cond:
                self._collecting = cell
                watcher.sink = self.on_file_event
                watcher.read_sink = self.on_file_reads
            cell.begun = True

        # Whatever is queued happened before the cell: handled (new folders are
        # watched) but not collected.  The cell's own events follow in the queue.
        if watcher.streaming and not watcher.drain(END_TIMEOUT, start_collecting):
            self._reader_stuck(cell, "when this cell started")
        # Read-only opens go straight to the cell's pending list while the stream
        # reports reads (see on_open).
        audit_hook.listen(self, cell.pending.append if watcher.streaming and watcher.reports_reads else None)

    def end(self, unchanged: Callable[[str], Collection[str]] | None = None) -> FileActivity:
        """The cell finished: handle its events still queued, then classify what it touched.

        ``unchanged(folder)``, when given, names the files of a root-relative folder
        known to be regular files unchanged since before the cell (see
        :meth:`CellRecord.finish`)."""
        audit_hook.stop_listening(self)
        cell = self._cell
        if cell is None:
            return FileActivity()
        complete = cell.begun  # the event stream covered the whole cell
        watcher = self.watcher

        def stop_collecting() -> None:
            with self._cond:
                self._collecting = None
                watcher.sink = None
                watcher.read_sink = None

        if cell.begun:
            # Every event of the cell is in the queue by now (inotify queues an
            # event within the system call that causes it): reading the queue
            # dry is all the waiting there is.
            if not watcher.streaming or not watcher.drain(END_TIMEOUT, stop_collecting):
                complete = False
                if watcher.streaming:
                    self._reader_stuck(cell, f"within {END_TIMEOUT:g} s")
            else:
                watcher.drained_in_time()
                if cell.lost:
                    complete = False
                    cell.warnings.append(
                        "dotnb: file events of this cell were lost (inotify queue overflow);"
                        " only Python-level file access was recorded"
                    )
        with self._cond:
            self._cell = None
            self._collecting = None
            watcher.sink = None
            watcher.read_sink = None
        if not audit_hook.cwd_is_current():
            cell.warnings.append(
                "dotnb: the working folder was changed by native code during this cell;"
                " files Python opened by relative paths after that may be misattributed"
            )
        self.warnings.extend(cell.warnings)
        # The cell's Python reads, now that every read the stream reported is in.  The
        # locks are held through the finish: another thread's hook that took the cell
        # before it ended (a SQLite connect in a background thread) waits.
        with self._pending_lock:
            self._take_pending(cell)
            with self._cond:
                return cell.finish(self._root_prefix, complete, self._locator.excluded_names, unchanged)

    def add_input(self, path: str | os.PathLike[str]) -> None:
        """Declare ``path`` (relative to the CWD, or absolute) an input of the running cell."""
        found = self._declared(path)
        if found is None:
            return
        cell, where, p = found
        if where == OUTSIDE:
            cell.note_external(p)
            return
        with self._cond:
            ps = cell.state(p)
            ps.declared_in = True
            # Lets a later Python overwrite snapshot it without a flush.
            ps.py_read = True

    def add_output(self, path: str | os.PathLike[str]) -> None:
        """Declare ``path`` an output of the running cell (must be under the root)."""
        found = self._declared(path)
        if found is None:
            return
        cell, where, p = found
        if where == OUTSIDE:
            cell.warnings.append(f"dotnb: declared output {p} is outside the project; not recorded")
            return
        with self._cond:
            cell.state(p).declared_out = True

    def _declared(self, path: str | os.PathLike[str]) -> tuple[CellRecord, int, str] | None:
        """The running cell and where a declared path lies; None outside a cell or for
        a path capture ignores."""
        cell = self._cell
        if cell is None:
            return None
        loc = self._locator.declared(path)
        if loc is None:
            return None
        return cell, loc[0], loc[1]

    def close(self) -> None:
        """Stop watching; the tracker cannot begin again."""
        audit_hook.stop_listening(self)
        self._closed = True
        self.watcher.streaming = False
        with self._cond:
            self._cell = None
            self._collecting = None
            self.watcher.sink = None
            self.watcher.read_sink = None
        self.watcher.stop()

    # -- the event stream (reader thread, or whoever drains it) --------------------------

    def on_file_reads(self, folder: str, names: set[str]) -> None:
        """Reads (read-only closes) by anyone of ``names`` in ``folder``, handed over in
        bulk, in stream order with the events before and after them."""
        cell = self._collecting
        if cell is None:
            return
        with self._cond:
            if self._collecting is not cell:
                return
            cell.reads(folder, names)
        if len(cell.pending) >= MATCH_WHILE_RUNNING:
            self._match_some(cell)

    def on_file_event(self, rel: str, written: bool) -> None:
        """A read (``written`` False) or a write of ``rel`` by anyone, in stream order."""
        cell = self._collecting
        if cell is None or self._excluded(rel):
            return
        with self._cond:
            if self._collecting is not cell:
                return
            ps = cell.state(rel)
            if written:  # created, modified (an O_TRUNC open too), moved onto
                ps.write()
            else:
                # A read by anyone (the tracker's own snapshot reads only files
                # already read, so they change nothing).
                if ps.open_reads:
                    ps.open_reads -= 1
                ps.read()

    def _events_lost(self) -> None:
        cell = self._collecting
        if cell is not None:
            cell.lost = True

    def _reader_stuck(self, cell: CellRecord, when: str) -> None:
        """The reader thread held the queue too long (a huge burst, or a hung handler)."""
        cell.warnings.append(
            f"dotnb: file events of this cell did not arrive {when}; files read or written"
            " by native code or subprocesses may be missing"
        )
        self.watcher.drain_timed_out()

    # -- the audit hook (user threads) ---------------------------------------------------

    def on_open(self, path: Any, kind: int, exclusive: bool) -> None:
        cell = self._cell
        if cell is None:
            return
        if kind == READ and self.watcher.streaming and self.watcher.reports_reads:
            # Looked at later, in bulk (_take_pending): the stream reports the read
            # itself, so nothing about it has to be known before the next open.
            raw = path if path.__class__ is str else _as_str(path)
            cell.pending.append(raw if raw[:1] == "/" else os.path.join(os.getcwd(), raw))
            return
        # Python reads pending still need no looking at: only a change of a file read
        # before depends on them, and it goes through _before_change, which takes them.
        self._on_open(cell, path, kind, sqlite=False, exclusive=exclusive)

    def _take_pending(self, cell: CellRecord) -> None:
        """Look at the Python read-opens not looked at yet, a folder at a time.

        A name the stream reported read in the folder the open named is that
        regular file, read (no ``lstat``, no ignore check here: the read is in the
        story already); only the py_read mark is left to give.  Any other open (a
        symlink, a file outside the root, one whose close has not come yet, a
        failed open) is looked at one by one, as an open was before.
        """
        # Any thread's hook may get here (a write-open, a SQLite connect): one at a time,
        # and after the stream's thread has matched what it took (_match_some).
        with self._pending_lock:
            taken = [*cell.unmatched, *cell.unmatched_once, *cell.take_pending()]
            if taken:
                cell.unmatched, cell.unmatched_once = [], []
                self._look_at_reads(cell, taken)

    def _match_some(self, cell: CellRecord) -> None:
        """While the cell runs (the stream handing reads over): match the pending opens
        (but the newest) with the reads handed over so far, so that the cell's end has
        only the last ones left.  An open not matched yet (its close not handed over
        yet, or its folder's reads coming next in the same hand-over) is tried once
        more at the next call, then left for the end, where it is looked at as before:
        each open is tried at most twice here, whatever the cell does."""
        if not self._pending_lock.acquire(blocking=False):
            return  # another thread is taking them: it has them all
        try:
            taken = cell.take_pending(leave=MATCH_LEAVE_NEWEST)
            retry, cell.unmatched_once = cell.unmatched_once, []
            try:
                if retry:
                    cell.unmatched += self._look_at_reads(cell, retry, later=True)
                cell.unmatched_once = self._look_at_reads(cell, taken, later=True)
            except Exception:
                # Nothing is lost: the end looks at them all, as without this.
                cell.unmatched += [*retry, *taken]
                raise
        finally:
            self._pending_lock.release()

    def _look_at_reads(self, cell: CellRecord, taken: list[str], later: bool = False) -> list[str]:
        """Give the opens of ``taken`` that the stream reported read their py_read mark;
        look at the others one by one, or with ``later`` return them instead."""
        left: list[str] = []
        by_folder: dict[str, list[str]] = {}
        last = None
        names: list[str] = []
        for raw in taken:
            folder, _, name = raw.rpartition("/")
            if folder != last:  # a loop over a folder opens its files one after another
                last = folder
                got = by_folder.get(folder)
                names = by_folder[folder] = [] if got is None else got
            names.append(name)
        for folder, names in by_folder.items():
            rel_folder = self._locator.root_folder(folder)
            if rel_folder is None:
                one_by_one = names
            else:
                wanted = set(names)
                # Under the lock: the event stream's hand-overs add to these sets.
                with self._cond:
                    # Set operations over the folder's names (a loop over many files
                    # opens thousands a folder): those the stream reported read, and
                    # those with a story of their own, which had their read placed
                    # there (the read-only close came before another event of it).
                    matched = wanted & cell.read_by_stream(rel_folder)
                    stated = wanted.intersection(cell.stated.get(rel_folder) or _NO_NAMES)
                    if matched or stated:
                        marked = cell.py_read_names.get(rel_folder)
                        if marked is None:
                            cell.py_read_names[rel_folder] = matched
                        else:
                            marked |= matched
                        prefix = f"{rel_folder}/" if rel_folder else ""
                        for name in stated:
                            cell.paths[prefix + name].py_read = True
                unmatched = wanted - matched
                if stated:
                    unmatched -= stated
                # In the order opened, repeats kept: each open is looked at.
                one_by_one = [name for name in names if name in unmatched] if unmatched else []
            if later:
                left.extend([f"{folder}/{name}" for name in one_by_one])
                continue
            for name in one_by_one:
                self._on_open(cell, f"{folder}/{name}", READ, sqlite=False, exclusive=False)
        return left

    def on_sqlite_connect(self, path: str) -> None:
        cell = self._cell
        if cell is not None:
            # SQLite reads the file natively and may write it; its writes show up
            # as modify events.  Without inotify, only the read is known.
            kind = RW if self.watcher.streaming else READ
            self._on_open(cell, path, kind, sqlite=True, exclusive=False)

    def _on_open(self, cell: CellRecord, path: Any, kind: int, *, sqlite: bool, exclusive: bool) -> None:
        loc = self._locate(_as_str(path))
        if loc is None:
            return
        where, p = loc
        full = p if where == OUTSIDE else self._root_prefix + p
        try:
            st: os.stat_result | None = os.stat(full)
        except OSError:
            st = None
        if st is not None and (exclusive or not stat.S_ISREG(st.st_mode)):
            return  # directories, devices, fifos; O_EXCL on an existing file fails
        if where == OUTSIDE:
            if st is not None and kind in (READ, RW):
                cell.note_external(p, st)
            return
        streaming = self.watcher.streaming
        if st is None:
            if kind in (READ, RW) and not sqlite:
                return  # the open will fail
            with self._cond:
                ps = cell.state(p)
                ps.py_written = True  # nothing to save before later opens of it
                if not streaming:
                    ps.write()  # creates it (inotify would report the creation)
            return
        if kind == READ:
            with self._cond:
                ps = cell.state(p)
                ps.py_read = True
                if streaming and self.watcher.reports_reads:
                    ps.open_reads += 1  # the read itself is placed by its close event
                elif not (streaming and (ps.py_written or st.st_mtime_ns > cell.started_ns)):
                    # A file Python created or overwrote in this cell, or one modified
                    # since it began (a subprocess's output), reads back bytes written
                    # during the cell: their write event may simply not have come yet
                    # (a polling observer's next look, FSEvents' latency).
                    ps.read()
            return
        # r+ and SQLite read the content they may then change.
        self._before_change(cell, p, full, reads=kind == RW, snapshot=not sqlite)
        if not self.watcher.streaming and not sqlite:
            with self._cond:
                cell.state(p).write()

    def on_rename(self, dst: Any) -> None:
        """A Python rename onto ``dst`` (the atomic-save pattern) replaces its content."""
        cell = self._cell
        if cell is None:
            return
        loc = self._locate(_as_str(dst))
        if loc is None or loc[0] == OUTSIDE:
            return
        rel = loc[1]
        full = self._root_prefix + rel
        try:
            exists = stat.S_ISREG(os.stat(full).st_mode)
        except OSError:
            exists = False
        if exists:
            self._before_change(cell, rel, full, reads=False, snapshot=True)
        if not self.watcher.streaming:
            with self._cond:
                cell.state(rel).write()

    def _before_change(self, cell: CellRecord, rel: str, full: str, *, reads: bool, snapshot: bool) -> None:
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
        if self.watcher.streaming:
            # Native reads (pyarrow, a subprocess) and native writes may still be
            # queued: handle them first (a read of the queue, no thread hand-off).
            self.watcher.sync()
            self._take_pending(cell)  # Python's reads of it, now matched with the stream's
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


def _as_str(path: Any) -> str:
    if isinstance(path, str):
        return path
    return os.fsdecode(os.fspath(path))
