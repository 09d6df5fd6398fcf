"""Files this kernel recorded whose folder has reported no change since: known
unchanged without a ``stat``, a stat-cache query or a read.

After a run is committed, each of its plain file entries (a path with the hash
and size of its stored bytes) is remembered with its folder's watch in the event
stream (:meth:`TreeWatcher.watched <dotnb.capture.watcher.TreeWatcher.watched>`)
and the count of changes that watch had seen *before* the file was looked at.
The next run that reads or writes the file takes its entry from here as long as
that watch is still the folder's, still live, and has counted no change since:
a re-run over a folder of 100,000 unchanged files then costs a dictionary lookup
per file, not a ``stat`` and a query.

What the stream does not show falls back to the stat cache
(:func:`dotnb.store.file_snapshots.snapshot_files`), which looks at every file:

- a folder with no watch: no inotify (macOS, Windows, a file system without
  events), the watch limit reached, or the folder first seen after the run;
- events lost: on a queue overflow the stream counts a change in every watched
  folder, so every folder is looked at again;
- a folder moved, deleted or replaced: its watch dies (``live`` False) and the
  folder at that path gets a new one, which matches no remembered entry;
- any creation, modification, deletion or rename in the folder, by any process:
  the whole folder is looked at again (a folder is the unit, not a file).

One case neither shows: a write through a shared memory map (``mmap``) raises no
inotify event, and may not change the file's mtime until it is written back. A
file changed only that way, by another process, keeps its remembered hash until
something else changes in its folder. Python's own writes and every ``write()``
by native code or a subprocess are seen.

An entry is only remembered once its run is committed: its object is then
referenced by a run, which ``dotnb gc`` never removes, so taking it from here needs
no ``ObjectStore.reuse`` to protect the object (runs are never deleted).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from dotnb.capture.watcher import DirWatch
from dotnb.store.trees import FolderRows

Watched = Callable[[str, bool], DirWatch | None]

# Plain entries only: an entry with flags (pre-write, missing, skipped…) says
# something about one run, not about the file.
_PLAIN = frozenset(("path", "hash", "size", "produced_by"))


class _Folder:
    __slots__ = ("block", "changes", "files", "watch")

    def __init__(self, watch: DirWatch, changes: int) -> None:
        self.watch = watch
        self.changes = changes
        self.files: dict[str, tuple[str, int]] = {}  # name -> (hash, size)
        # The last block given out (see KnownFiles.block): the names it holds, and it.
        self.block: tuple[frozenset[str], FolderRows] | None = None


class KnownFiles:
    """The remembered entries of one kernel, by folder (see the module docstring)."""

    def __init__(self, root_prefix: str, watched: Watched) -> None:
        self._root_prefix = root_prefix  # the root's real path and a slash
        self._watched = watched
        self._folders: dict[str, _Folder] = {}  # root-relative folder ("" for the root)

    def split(self, rels: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """The entries of the files among ``rels`` known unchanged, and the paths
        that must be looked at (in their order)."""
        known: list[dict[str, Any]] = []
        unknown: list[str] = []
        valid: dict[str, dict[str, tuple[str, int]] | None] = {}
        for rel in rels:
            folder, _, name = rel.rpartition("/")
            files = valid.get(folder, False)
            if files is False:
                files = valid[folder] = self._valid(folder)
            got = files.get(name) if files is not None else None  # type: ignore[union-attr]
            if got is None:
                unknown.append(rel)
            else:
                known.append({"path": rel, "hash": got[0], "size": got[1]})
        return known, unknown

    def unchanged(self, folder: str) -> Collection[str]:
        """The names of the files of root-relative ``folder`` known unchanged (regular
        files with the bytes remembered), or nothing."""
        files = self._valid(folder)
        return files.keys() if files is not None else ()

    def block(self, folder: str, names: set[str]) -> FolderRows | None:
        """The remembered files ``names`` of ``folder`` (all among :meth:`unchanged`) as
        one block of rows, or None when the folder is not remembered any more.  The
        same names as last time give the same block, with no work per file: a folder
        read whole, unchanged, run after run."""
        memo = self._folders.get(folder)
        if memo is None:
            return None
        last = memo.block
        if last is not None and last[0] == names:
            return last[1]
        files = memo.files
        try:
            rows = tuple(sorted([(name, *files[name]) for name in names]))
        except KeyError:
            return None
        block = FolderRows(rows, sum(row[2] for row in rows))
        memo.block = (frozenset(names), block)
        return block

    def _valid(self, folder: str) -> dict[str, tuple[str, int]] | None:
        memo = self._folders.get(folder)
        if memo is None:
            return None
        watch = memo.watch
        if watch.live and watch.changes == memo.changes and self._watch_of(folder, False) is watch:
            return memo.files
        del self._folders[folder]  # changed, or no longer the folder's watch
        return None

    def _watch_of(self, folder: str, create: bool) -> DirWatch | None:
        return self._watched(self._root_prefix + folder if folder else self._root_prefix.rstrip("/"), create)

    def before_looking(self, rels: Iterable[str]) -> dict[str, tuple[DirWatch, int]]:
        """Each folder's watch and its count of changes, taken before the files among
        ``rels`` are looked at: what :meth:`remember` stores them with (a change
        while they are looked at then shows as a difference next time)."""
        tokens: dict[str, tuple[DirWatch, int]] = {}
        seen: set[str] = set()
        for rel in rels:
            folder = rel.rpartition("/")[0]
            if folder in seen:
                continue
            seen.add(folder)
            watch = self._watch_of(folder, True)
            if watch is not None and watch.live:
                tokens[folder] = (watch, watch.changes)
        return tokens

    def remember(self, entries: Iterable[dict[str, Any]], tokens: dict[str, tuple[DirWatch, int]]) -> None:
        """Remember the plain entries of a committed run among ``entries``, each with
        its folder's token from :meth:`before_looking` (entries of folders without one
        are not remembered)."""
        for entry in entries:
            if "tree" in entry or not isinstance(entry.get("hash"), str) or not _PLAIN.issuperset(entry):
                continue
            folder, _, name = entry["path"].rpartition("/")
            token = tokens.get(folder)
            if token is None:
                continue
            memo = self._folders.get(folder)
            if memo is None or memo.watch is not token[0] or memo.changes != token[1]:
                memo = self._folders[folder] = _Folder(*token)
            memo.files[name] = (entry["hash"], entry["size"])

    def forget(self) -> None:
        self._folders.clear()
