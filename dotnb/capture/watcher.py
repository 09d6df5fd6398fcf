"""The file-event stream: one inotify instance over the project root's folders, kept
for the kernel's life, and the thread that reads it.

inotify (:mod:`dotnb.capture.inotify`) reports, in the order they happened,
read-only closes (a read), creations, modifications (including an ``O_TRUNC``
open) and renames, by any code in any process: Python, pyarrow's C++, SQLite,
subprocesses.  It carries no pid or mode.  ``IN_OPEN`` is deliberately not
watched: it doubled the cost of every open() under the root, even between cells,
and closes carry what capture needs.

Every folder of the tree is watched (new ones as they appear), except hidden
folders (``.dotnb``, ``.git``, ``.venv``), ``__pycache__`` and package folders:
capture ignores them anyway, and the store's own writes then cost nothing here.

Events are read and handled under :attr:`TreeWatcher.read_lock`, by the reader
thread (between and during cells, so the queue never overflows) or by whoever
needs the queue read dry right now (:meth:`TreeWatcher.drain`).  File events
under the root go to :attr:`TreeWatcher.sink` as ``(rel, written)`` while it is
set; with no sink they are dropped.  Other folders (the environment's
``site-packages``, a git directory) can be watched for changes too
(:meth:`TreeWatcher.watched`), so that their owners need not stat them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
import time
from collections.abc import Callable, KeysView
from typing import Any

from dotnb.capture.audit_hook import guard
from dotnb.capture.inotify import (
    EVENT_HEADER,
    IN_CLOSE_NOWRITE,
    IN_CLOSE_WRITE,
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
from dotnb.capture.locate import unwatched
from dotnb.capture.pid import current_pid

__all__ = [
    "EVENTS_STOPPED",
    "DirWatch",
    "FileSink",
    "ReadSink",
    "TreeWatcher",
    "cannot_watch",
    "max_queued_events",
]

# A file event under the root: (root-relative path, written).  written is False for
# a read (a read-only close), True for a creation, a modification or a rename onto it.
FileSink = Callable[[str, bool], None]
# Reads handed over in bulk: (root-relative folder, names read there).
ReadSink = Callable[[str, set[str]], None]

LOCK_TIMEOUT = 2.0  # seconds watch_dir() waits for the reader thread to let go of the queue
MAX_TIMEOUTS = 2  # consecutive drains timed out after which inotify is abandoned
SYNC_TIMEOUT = 0.5  # seconds a mid-cell sync() waits
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
# Folders watched for changes (watch_dir): an entry created, deleted, renamed or its
# content changed, or the folder itself gone; and a file closed after an open for
# writing, which is all a write through a memory map shows (it raises no modify
# event).  Not read closes or attribute changes: the folder may be one the capture
# watches too, where they would add an event per file a cell reads.
_DIR_WATCH_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE
_DIR_WATCH_MASK |= IN_DELETE_SELF | IN_MOVE_SELF | IN_MASK_ADD


_HEADER_SIZE = EVENT_HEADER.size
_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()

# Events after which a watch descriptor may name another folder, or none: gathered
# reads are handed over before them (IN_ISDIR only with a creation or a move).
_REMAPS = IN_ISDIR | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW
_DIR_MOVES = IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO


# What a kernel says when its file events stop (any source, dotnb.capture.file_events).
EVENTS_STOPPED = (
    "dotnb: file events stopped arriving; only Python-level file access is recorded"
    " from now on (not pyarrow, SQLite or subprocesses)"
)


def cannot_watch(root: str, exc: BaseException) -> str:
    """What a kernel says when no event source can watch ``root``."""
    return (
        f"dotnb: cannot watch {root} for file events ({exc}); only"
        " Python-level file access is recorded (not pyarrow, SQLite or subprocesses)"
    )


class DirWatch:
    """Changes in one folder that file capture does not cover (the environment's
    ``site-packages``, a git directory), reported by the event stream so that its
    owner need not stat the folder on every run.

    ``changes`` grows with every event in the folder (and when events were lost), by
    the time the stream has been drained; ``live`` turns False for good when the
    watch or the stream is gone, and the owner then stats as it would without one.
    """

    __slots__ = ("changes", "live")

    def __init__(self) -> None:
        self.changes = 0
        self.live = True


class TreeWatcher:
    """The watches over one root's folders, and the thread reading their events.

    ``on_lost`` is called (under the read lock) when events may have been lost:
    the queue overflowed, or events came faster than a drain could handle them.
    ``warnings`` holds lasting degradations (no stream, unwatched folders).
    """

    def __init__(self, root_real: str, on_lost: Callable[[], None]) -> None:
        self.root_real = root_real
        self.root_prefix = root_real.rstrip("/") + "/"
        self.on_lost = on_lost
        # Where file events under the root go; None: nobody collects, they are dropped.
        # Read once per buffer of events: the sink re-checks, under its own lock, that
        # it still collects (it stops collecting in a drain's `then`, or on its own
        # when the reader was abandoned).
        self.sink: FileSink | None = None
        # Set with ``sink``: reads (read-only closes of files) are gathered per watch
        # and handed over here in bulk when the queue has been read dry, instead of one
        # call of ``sink`` per file (a cell reading a folder of 100,000 files).  A read
        # of a name that has another event meanwhile goes to ``sink`` first, so each
        # path's events keep their order.
        self.read_sink: ReadSink | None = None
        self._reads: dict[int, set[bytes]] = {}  # watch descriptor -> names read
        self.warnings: list[str] = []
        self.inotify: Any = None
        self.streaming = False  # inotify watching and the reader thread running
        self.reports_reads = True  # read-only closes, by any process
        # Held while the queue is read and its events handled: whoever holds it has
        # the queue to itself.
        self.read_lock = threading.Lock()
        self._timeouts = 0  # consecutive drains that found the queue held too long
        self._waiting = 0  # threads waiting for read_lock (the reader then yields it)
        self._waiting_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None  # pipe that stops the reader
        self._wd_path: dict[int, str] = {}  # watch descriptor -> folder ("" = the root)
        self._path_wd: dict[str, int] = {}
        self._dir_watches: dict[int, DirWatch] = {}  # watch descriptor -> watch_dir's watch
        self._watch_by_path: dict[str, DirWatch] = {}  # see watched()
        self._unwatchable: set[str] = set()
        # cookie -> (name, watches below it) of a folder moved away, until the other half
        self._moved_from: dict[int, tuple[str, list[tuple[str, int]]]] = {}
        self._drain_cap = 4 * max_queued_events()
        # A walk of the whole tree is under way; an overflow meanwhile asks for another.
        self._walking_all = False
        self._walk_again = False
        self._pid = current_pid()
        # Some folder could not be watched: the inotify watch limit was reached.
        self.limit_reached = False
        # Tests simulate a low watch limit (fs.inotify.max_user_watches is machine-wide).
        limit = os.environ.get("DOTNB_INOTIFY_WATCH_LIMIT", "")
        self._watch_limit = int(limit) if limit.isdigit() else None

    # -- life ------------------------------------------------------------------------

    def start(self) -> None:
        """Watch the tree and start the reader thread; on failure, say so in ``warnings``."""
        try:
            from dotnb.capture import inotify

            self.inotify = inotify.Inotify()
            self._watch_all()  # raises if the root itself cannot be watched
            self._wake = os.pipe()
            self._reader = threading.Thread(
                target=self._read_loop,
                args=(self.inotify.fd, self._wake[0]),
                name="dotnb-files",
                daemon=True,
            )
            self.streaming = True
            self._reader.start()
        except Exception as exc:
            self.streaming = False
            self.stop()
            self.warnings.append(cannot_watch(self.root_real, exc))

    def stop(self, wait: float = 2.0) -> None:
        """Stop the reader thread and close the instance (every DirWatch dies)."""
        self._dir_watches_lost()
        wake, self._wake = self._wake, None
        reader, self._reader = self._reader, None
        if wake is not None:
            with contextlib.suppress(OSError):
                os.write(wake[1], b"x")
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=wait)
        # Close under the read lock; if a hung handler holds it, the reader closes it.
        if self.read_lock.acquire(timeout=wait / 2):
            try:
                ino, self.inotify = self.inotify, None
                if ino is not None:
                    ino.close()
            finally:
                self.read_lock.release()
        if wake is not None:
            for fd in wake:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def drain_timed_out(self) -> None:
        """A drain found the queue held too long (a huge burst, or a hung handler)."""
        self._timeouts += 1
        if self._timeouts >= MAX_TIMEOUTS:
            # Stop paying the timeout on every cell: fall back to the hook alone.
            self.streaming = False
            self.warnings.append(EVENTS_STOPPED)
            self.stop(wait=0.2)

    def drained_in_time(self) -> None:
        self._timeouts = 0

    def folders(self) -> KeysView[str]:
        """The root-relative folders watched ("" is the root)."""
        return self._path_wd.keys()

    # -- reading the queue -------------------------------------------------------------

    def drain(self, timeout: float, then: Callable[[], None] | None = None) -> bool:
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
            got = self.read_lock.acquire(timeout=timeout)
        finally:
            with self._waiting_lock:
                self._waiting -= 1
        if not got:
            return False
        busy = guard.busy
        guard.busy = True  # the tracker's own opens (the ignore file) are not the cell's
        try:
            ino = self.inotify
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
                    self.on_lost()
                    break
            self._hand_over_reads()
            if then is not None:
                then()
            return True
        except OSError:
            return False
        finally:
            guard.busy = busy
            self.read_lock.release()

    def sync(self) -> None:
        """Handle every event that happened before now (best effort within SYNC_TIMEOUT)."""
        self.drain(SYNC_TIMEOUT)

    def _read_loop(self, fd: int, wake: int) -> None:
        """The reader thread: handles events as they come, so the queue never overflows
        and drains find little left to read."""
        guard.busy = True  # this thread's own opens are never the cell's
        try:
            self._read_events(fd, wake)
        finally:
            if not self.streaming:  # given up while this thread was busy: close up
                with self.read_lock:
                    ino, self.inotify = self.inotify, None
                    if ino is not None:
                        ino.close()

    def _read_events(self, fd: int, wake: int) -> None:
        import select

        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(wake, select.POLLIN)
        wake_only = select.poll()
        wake_only.register(wake, select.POLLIN)
        while self.streaming:
            try:
                ready = poller.poll()
            except InterruptedError:
                continue
            except OSError:
                return
            if not self.streaming or any(r == wake for r, _ in ready):
                return
            # Let events gather: woken for each one, this thread would take the GIL
            # from a cell opening files at every open() and close() (10x slower).
            if wake_only.poll(READER_BATCH_MS):
                return
            # One buffer at a time, so drains wait for one buffer at most.
            while self.streaming:
                with self.read_lock:
                    if self.inotify is None:
                        return
                    try:
                        buf = self.inotify.read()
                        if buf:
                            self._process(buf)
                            # Handed over now, while the cell runs (its opens and reads
                            # leave the interpreter to this thread), rather than all at
                            # the cell's end: a million reads are decoded meanwhile.
                            self._hand_over_reads()
                        else:
                            self._finish_moves()
                    except Exception:
                        buf = b""  # a bad event must not stop the stream
                if not buf:
                    break
                if self._waiting:
                    time.sleep(0.0005)  # let a drain take the queue

    def _hand_over_reads(self) -> None:
        """Give the reads gathered since the last hand-over to ``read_sink`` (under
        read_lock), or drop them when nobody collects."""
        reads = self._reads
        if not reads:
            return
        read_sink = self.read_sink
        if read_sink is not None:
            wd_path = self._wd_path
            for wd, raws in reads.items():
                folder = wd_path.get(wd)
                if folder is not None and raws:
                    # os.fsdecode, without its checks per name
                    read_sink(folder, {raw.decode(_FS_ENCODING, _FS_ERRORS) for raw in raws})
        reads.clear()  # the same dict: _process may hold it

    def _process(self, buf: bytes) -> int:
        """Handle a buffer of events (under read_lock); returns how many it held."""
        sink = self.sink
        reads = self._reads if sink is not None and self.read_sink is not None else None
        count = 0
        previous = None
        # parse_events, inline: a cell reading 100,000 files queues as many events,
        # and this thread takes the interpreter from the cell while it handles them.
        unpack = EVENT_HEADER.unpack_from
        header, read_close = _HEADER_SIZE, IN_CLOSE_NOWRITE  # locals: looked up per event
        # The set the last read was gathered in, and its watch: a loop reads a folder's
        # files in a row.  Forgotten at each hand-over (the sets go to the cell).
        gathered_wd, gathered = -1, None
        i, end = 0, len(buf)
        while i + header <= end:
            wd, mask, cookie, length = unpack(buf, i)
            start = i + header
            i = start + length
            count += 1
            raw = buf[start:i].rstrip(b"\0")
            if mask == read_close and reads is not None and raw:
                # A file read: gathered (most events of a cell reading many files).
                if wd != gathered_wd or gathered is None:
                    gathered_wd, gathered = wd, reads.get(wd)
                    if gathered is None:
                        gathered = reads[wd] = set()
                gathered.add(raw)
                previous = None
                continue
            event = (wd, mask, cookie, raw)
            if event == previous:
                continue  # a repeat (e.g. write after write) says nothing new
            previous = event
            if reads and mask & _REMAPS and (mask & _REMAPS != IN_ISDIR or mask & _DIR_MOVES):
                # Folders are about to be renamed, moved or forgotten: the reads
                # gathered so far are handed over under the names they had.
                self._hand_over_reads()
                gathered_wd, gathered = -1, None
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
                            self.inotify.rm_watch(wd)
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
                        self._reattach_tree(*moved, None if unwatched(name) else rel)
                    if not unwatched(name):
                        # Its files may predate the watch: with a sink, each one found
                        # is reported as written (moved in counts as written).
                        self.watch_tree(rel, self.sink)
                continue
            if sink is None:
                continue
            if reads is not None:
                got = reads.get(wd)
                if got is not None and raw in got:
                    got.discard(raw)
                    sink(rel, False)  # its gathered read came first
            if mask & IN_CLOSE_NOWRITE:
                sink(rel, False)  # a read by anyone
            elif mask & (IN_MOVED_TO | IN_MODIFY | IN_CREATE):
                sink(rel, True)  # moved onto, modified (an O_TRUNC open too), created
        return count

    def _finish_moves(self) -> None:
        # A folder moved away whose other half never came was moved out of the root.
        for old, watches in self._moved_from.values():
            self._reattach_tree(old, watches, None)
        self._moved_from.clear()

    def _on_overflow(self) -> None:
        self.on_lost()
        for watch in self._dir_watches.values():
            watch.changes += 1  # its events may be among those lost
        self._moved_from.clear()
        # Folders created meanwhile went unseen: watch whatever is not watched yet.
        if self._walking_all:
            self._walk_again = True  # the walk under way starts over when it ends
            return
        with contextlib.suppress(OSError):
            self._watch_all()

    # -- the tree of watches -----------------------------------------------------------

    def _watch_all(self) -> None:
        """Watch every folder of the tree not watched yet (the start, an overflow).

        Reading a folder queues two events (its own close and its parent's), so the
        walk reads the queue as it goes: a tree of more folders than the queue holds
        would otherwise overflow it, and an overflow sends the tree to be walked
        again, every cell.
        """
        self._walking_all = True
        try:
            for _ in range(MAX_WALKS):
                self._walk_again = False
                self.watch_tree("", None)
                if not self._walk_again:
                    break
        finally:
            self._walking_all = False

    def _read_walk_events(self) -> None:
        """Handle what is queued, in the middle of a walk of the whole tree."""
        ino = self.inotify
        while ino is not None:
            buf = ino.read()
            if not buf:
                break
            self._process(buf)

    def watch_tree(self, rel: str, sink: FileSink | None) -> None:
        """Watch folder ``rel`` ("" is the root) and the folders below it (not hidden
        ones, caches or package folders; never through a symlink).  With ``sink``, each
        file found is reported to it as written: the cell made or moved in the folder.
        Under read_lock (or before the reader thread starts)."""
        ino = self.inotify
        stack = [rel]
        walked = 0
        while stack:
            folder = stack.pop()
            walked += 1
            if self._walking_all and walked % WALK_READ_EVERY == 0:
                self._read_walk_events()
            full = self.root_prefix + folder if folder else self.root_real
            try:
                limit = self._watch_limit
                if limit is not None and len(self._wd_path) >= limit and folder not in self._path_wd:
                    raise OSError(errno.ENOSPC, "No space left on device (simulated watch limit)")
                wd = ino.add_watch(full, _WATCH_MASK)
            except OSError as exc:
                if not folder:
                    raise  # the root
                if exc.errno == errno.ENOSPC:
                    self.limit_reached = True
                if exc.errno == errno.ENOSPC and not any("watch limit" in w for w in self.warnings):
                    self.warnings.append(
                        f"dotnb: some folders under {self.root_real} are not watched ({exc.strerror});"
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
                    if not unwatched(entry.name):
                        stack.append(child)
                elif sink is not None:
                    sink(child, True)

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
                    self.inotify.rm_watch(wd)
            else:
                moved = new + folder[len(old) :]
                self._wd_path[wd] = moved
                self._path_wd[moved] = wd

    # -- folders outside the capture -----------------------------------------------------

    def watch_dir(self, path: str) -> DirWatch | None:
        """Report changes in folder ``path`` (anywhere) through the event stream; None
        when there is no stream or the folder cannot be watched."""
        if not self.streaming or not self.read_lock.acquire(timeout=LOCK_TIMEOUT):
            return None
        try:
            ino = self.inotify
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
            self.read_lock.release()

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
            if self.streaming and os.path.isdir(path):
                self._unwatchable.add(path)  # e.g. the watch limit: not tried every run
            return None
        self._watch_by_path[path] = watch
        return watch

    def _dir_watches_lost(self) -> None:
        for watch in self._dir_watches.values():
            watch.live = False
        self._dir_watches = {}


def max_queued_events() -> int:
    """How many events the kernel queues per inotify instance before dropping some."""
    try:
        with open("/proc/sys/fs/inotify/max_queued_events") as f:
            return max(int(f.read()), 1024)
    except (OSError, ValueError):
        return 16384
