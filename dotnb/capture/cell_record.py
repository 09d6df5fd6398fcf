"""What one tracked cell did to each file, and the roles that follow from it.

Each root-relative path the cell touched has a story (:class:`PathState`): read
before the cell first wrote it, written, snapshotted just before a Python write.
At the cell's end the stories become :class:`FileActivity`:

a path is an *output* if the cell created, truncated, modified or renamed onto
it and it is a regular file at the end; an *input* if it was read before the
cell first wrote it.  A file read and then changed by Python keeps the bytes
saved just before the change (``PreWrite``); when the writer is native there is
no such moment and the input is reported as ``changed``.

Reads are the bulk of what a cell does to files (a loop over a folder of
100,000), so a path that is only read gets no story of its own: reads the event
stream reported are kept as sets of names per folder (``stream_reads``), and
Python read-opens as raw paths (``pending``) until something needs them.  A path
gets a :class:`PathState` only when it has more to tell (a write, a declaration,
a snapshot); the reads recorded for it before then are applied to it first, in
:meth:`CellRecord.state`, so its story stays in stream order.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Collection, Set
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_EXTERNAL", "CellRecord", "FileActivity", "PathState", "PreWrite"]

MAX_EXTERNAL = 100  # reads outside the root recorded per cell
_NONE: frozenset[str] = frozenset()


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
    # folder -> names only read, of files the caller vouched for as unchanged since
    # before the cell (``unchanged`` of CellRecord.finish): inputs whose content the
    # caller knows, not listed in ``inputs``
    known_reads: dict[str, set[str]] = field(default_factory=dict)


class PathState:
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


def file_clock_ns() -> int:
    """Now, by the clock a file's modification time is taken from: Linux stamps it
    with the coarse clock, which may lag the precise one by a tick (a file written
    after a precise ``now`` could look older than it)."""
    coarse = getattr(time, "CLOCK_REALTIME_COARSE", None)
    return time.clock_gettime_ns(coarse) if coarse is not None else time.time_ns()


class CellRecord:
    """The stories of one cell's paths, and what it read outside the root."""

    __slots__ = (
        "begun",
        "external",
        "gen",
        "lost",
        "paths",
        "pending",
        "py_read_names",
        "started_ns",
        "stated",
        "stream_reads",
        "unmatched",
        "unmatched_once",
        "warnings",
    )

    def __init__(self, gen: int) -> None:
        self.gen = gen
        self.paths: dict[str, PathState] = {}
        self.external: dict[str, dict[str, Any]] = {}
        self.begun = False  # the event stream was collecting from the cell's start
        # When the cell began, by the clock file times are taken from (a file modified
        # later holds bytes written during the cell).
        self.started_ns = file_clock_ns()
        self.lost = False  # events of the cell were dropped (inotify queue overflow)
        self.warnings: list[str] = []
        # Absolute paths Python opened read-only, not looked at yet (appended by the
        # audit hook in any thread; taken in order by FileTracker).
        self.pending: list[str] = []
        # Pending opens taken while the cell ran and not matched with a read of the
        # stream: tried once more (``unmatched_once``), then left for the cell's end
        # (``unmatched``).  Both are the tracker's, under its pending lock.
        self.unmatched_once: list[str] = []
        self.unmatched: list[str] = []
        # folder -> names the event stream reported read (a read-only close), for
        # paths with no story of their own when the read was handed over.
        self.stream_reads: dict[str, set[str]] = {}
        # folder -> names Python opened read-only whose read the stream reported:
        # what PathState.py_read says for paths with a story.
        self.py_read_names: dict[str, set[str]] = {}
        # folder -> names that have a PathState (in ``paths``)
        self.stated: dict[str, set[str]] = {}

    def state(self, rel: str) -> PathState:
        ps = self.paths.get(rel)
        if ps is None:
            ps = self.paths[rel] = PathState()
            folder, _, name = rel.rpartition("/")
            stated = self.stated.get(folder)
            if stated is None:
                self.stated[folder] = {name}
            else:
                stated.add(name)
            # Reads handed over in bulk before the path had a story happened before
            # whatever gives it one now.
            read = self.stream_reads.get(folder)
            if read is not None and name in read:
                ps.read()
            py = self.py_read_names.get(folder)
            if py is not None and name in py:
                ps.py_read = True
        return ps

    def take_pending(self, leave: int = 0) -> list[str]:
        """The Python read-opens appended so far but the newest ``leave``, taken out of
        :attr:`pending` in order."""
        pending = self.pending
        n = len(pending) - leave
        if n <= 0:
            return []
        taken = pending[:n]
        del pending[:n]  # one step under the GIL: opens appended meanwhile stay
        return taken

    def reads(self, folder: str, names: set[str]) -> None:
        """The event stream reported these names of ``folder`` read, in bulk (in
        stream order with the paths' other events)."""
        stated = self.stated.get(folder)
        if stated is not None:
            for name in names & stated:
                self.paths[f"{folder}/{name}" if folder else name].read()
        known = self.stream_reads.get(folder)
        if known is None:
            self.stream_reads[folder] = names
        else:
            known |= names

    def read_by_stream(self, folder: str) -> Set[str]:
        """The names of ``folder`` the stream reported read in bulk so far."""
        return self.stream_reads.get(folder, _NONE)

    def note_external(self, real: str, st: os.stat_result | None = None) -> None:
        if real in self.external or len(self.external) >= MAX_EXTERNAL:
            return
        if st is None:
            try:
                st = os.stat(real)
            except OSError:
                st = None
        self.external[real] = {
            "path": real,
            "size": st.st_size if st is not None else None,
            "mtime_ns": st.st_mtime_ns if st is not None else None,
        }

    def finish(
        self,
        root_prefix: str,
        complete: bool,
        excluded_names: Callable[[str, set[str]], Collection[str]],
        unchanged: Callable[[str], Collection[str]] | None = None,
    ) -> FileActivity:
        """The cell's roles; ``complete``: the event stream covered the whole cell.

        ``excluded_names(folder, names)`` says which names of a folder capture never
        records; ``unchanged(folder)`` names files of a folder known to be regular
        files, unchanged since before the cell (no ``lstat`` needed for them)."""
        for ps in self.paths.values():
            # Python reads whose close never came through (a file left open): the
            # open is evidence.
            if ps.open_reads:
                ps.read()
            # Without the stream, a Python write-open is the only evidence of a write.
            if not complete and ps.py_written:
                ps.write()
        act = FileActivity(external=list(self.external.values()))
        for rel in sorted(self.paths):
            ps = self.paths[rel]
            is_input = ps.read_first or ps.declared_in
            is_output = ps.written or ps.declared_out
            if not (is_input or is_output):
                continue
            try:
                exists = stat.S_ISREG(os.lstat(root_prefix + rel).st_mode)
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
        self._bulk_inputs(act, root_prefix, excluded_names, unchanged)
        return act

    def _bulk_inputs(
        self,
        act: FileActivity,
        root_prefix: str,
        excluded_names: Callable[[str, set[str]], Collection[str]],
        unchanged: Callable[[str], Collection[str]] | None,
    ) -> None:
        """Inputs from the reads handed over in bulk: paths read and nothing else.

        A read reported by the stream is of a regular file under the root (a read
        through a symlink is reported at its target).  When its folder is known
        unchanged since before the cell it is still there, with content the caller
        knows (``known_reads``); otherwise one ``lstat`` tells."""
        found: list[str] = []
        for folder in sorted(self.stream_reads):
            names = self.stream_reads[folder]
            stated = self.stated.get(folder)
            pure = names - stated if stated else set(names)
            if not pure:
                continue
            gone = excluded_names(folder, pure)
            if gone:
                pure.difference_update(gone)
            prefix = f"{folder}/" if folder else ""
            known = unchanged(folder) if unchanged is not None else ()
            if known:
                vouched = pure.intersection(known)
                if vouched:
                    act.known_reads[folder] = vouched
                    pure -= vouched
            look = sorted(pure)
            if look:
                for name in look:
                    try:
                        regular = stat.S_ISREG(os.lstat(root_prefix + prefix + name).st_mode)
                    except OSError:
                        regular = False
                    if not regular:
                        act.missing.append(prefix + name)
                        pure.discard(name)
            found.extend([prefix + name for name in pure])
        if found:
            found.sort()
            act.inputs.update(dict.fromkeys(found))
