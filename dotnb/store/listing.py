"""Listing runs: the one query behind ``Store.list_runs`` (``GET runs``, ``dotnb log``),
and a read-only view of the index that runs it without opening the store.

``dotnb log`` is a short-lived process: importing and opening :class:`~dotnb.store.repo.Store`
(pathlib, the object store, the index's writers) costs several times the query itself.
When the index is current, :func:`open_current_index` reads ``index.sqlite`` directly.
"Current" is decided by the same checks with which opening the store decides it has
nothing to bring up to date (:meth:`Store.reconcile <dotnb.store.repo.Store.reconcile>`):

- the store's format is one this dotnb reads;
- the index has this dotnb's schema version (else the store rebuilds it);
- no write-ahead records are pending (else the store completes them);
- the ``runs/`` folder's mtime is the one recorded when runs were last indexed
  (else some ref has no index row yet and the store indexes it).

When any of them fails, the caller opens the store instead.  Either way the rows
come from :meth:`RunListing.list_run_texts`, so both give the same output.

This module is on the start-up path of ``dotnb log`` (see :mod:`dotnb.cli.entry`): it
imports only os, ``_sqlite3`` and import-light modules of this package (no json, re,
pathlib, typing, sqlite3.dbapi2).  :func:`indent_summaries` (from
:mod:`dotnb.store.summary_indent`, imported on first use) prints the index's
summaries as ``dotnb log --json`` does without decoding them.
"""

from __future__ import annotations

import os

# The C module itself, not the sqlite3 package: sqlite3.dbapi2 imports datetime (and
# time) to register its date adapters and converters, milliseconds of every dotnb log.
# The index is read here with plain types only (TEXT and INTEGER columns, no
# detect_types), where both behave the same.
try:
    import _sqlite3 as sqlite
except ImportError:  # pragma: no cover - an interpreter that names it otherwise
    import sqlite3 as sqlite  # type: ignore[no-redef]

from dotnb.store.errors import PathOutsideRoot, StoreFormatError
from dotnb.store.layout import FORMAT_FILE, INDEX_FILE, STORE_DIR, find_root_dir, read_format_file, runs_mtime
from dotnb.store.paths import path_candidates
from dotnb.store.versions import INDEX_SCHEMA, check_format

# Importing typing costs milliseconds of every CLI start; mypy reads any name
# TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    from dotnb.store.query import MetricCondition
    from dotnb.store.summary_indent import indent_summaries as indent_summaries


class RunListing:
    """The one query behind ``Store.list_runs``, ``GET runs`` and ``dotnb log``:
    :class:`~dotnb.store.repo.Store` and :class:`IndexReader` both list through it,
    each supplying ``root``, :meth:`_run_rows` and :meth:`close`."""

    root: Any  # the project root (a Path in the Store, a str in the IndexReader)

    def _run_rows(self, sql: str, args: tuple[Any, ...]) -> Iterable[Sequence[Any]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def list_runs(self, **filters: Any) -> list[dict[str, Any]]:
        """Run summaries, newest first, filtered as :meth:`list_run_texts` is."""
        import json

        return [json.loads(t) for t in self.list_run_texts(**filters)]

    def list_run_texts(
        self,
        notebook: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        text: str | None = None,
        author: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        metrics: Iterable[MetricCondition] = (),
        tags: Iterable[str] = (),
    ) -> list[str]:
        """Run summaries, newest first, as the index holds each: its JSON text (see
        :func:`indent_summaries`; :meth:`list_runs` decodes them).  ``before`` is an
        id cursor for paging."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("notebook", notebook), ("kind", kind), ("status", status)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if author is not None:
            # The author column holds "user@host": match either form.
            where.append("(author=? OR substr(author, 1, instr(author, '@') - 1)=?)")
            args.extend([author, author])
        if text:
            where.append("instr(search, ?) > 0")
            args.append(text.lower())
        if before:
            where.append("id < ?")
            args.append(before)
        for condition in metrics:
            sub, sub_args = condition.sql()
            where.append(f"id IN ({sub})")
            args.extend(sub_args)
        for tag in tags:
            where.append("id IN (SELECT run_id FROM run_tags WHERE tag=?)")
            args.append(tag)
        # Tags and notes (dotnb.store.annotations) are not in the recorded summary.
        sql = "SELECT summary, a.tags, a.note FROM runs LEFT JOIN run_annotations a ON a.run_id = runs.id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [with_annotations(r[0], r[1], r[2]) for r in self._run_rows(sql, tuple(args))]

    def notebook_arg(self, text: str | None) -> str | None:
        """The root-relative POSIX path the store uses for a ``--notebook`` argument
        (None for None): its first reading (relative to the working folder, then to
        the root) that names runs, else one that exists, else the first."""
        if text is None:
            return None
        candidates = path_candidates(self.root, text)
        if not candidates:
            raise PathOutsideRoot(f"notebook {text!r} is outside the project root {self.root}")
        for rel in candidates:
            if self.list_run_texts(notebook=rel, limit=1):
                return rel
        for rel in candidates:
            if os.path.exists(os.path.join(self.root, rel)):
                return rel
        return candidates[0]


def with_annotations(summary: str, tags: str | None, note: str | None) -> str:
    """A summary's JSON text with its run's ``note`` and ``tags`` (JSON texts as the
    index caches them, None: none) added as its last keys."""
    return f'{summary[:-1]}, "note": {note or "null"}, "tags": {tags or "[]"}}}'


class IndexReader(RunListing):
    """A store's index opened for reading only, to list runs (see :func:`open_current_index`)."""

    def __init__(
        self, root: str, db: sqlite3.Connection, fallback: Callable[[], RunListing] | None = None
    ) -> None:
        self.root = root
        self._db = db
        # What lists instead when a read finds the file damaged (the checks that found
        # it current read only its first pages): the store, which sets it aside.
        self._fallback = fallback
        self._replacement: RunListing | None = None

    def _run_rows(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        if self._replacement is None:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite.DatabaseError as exc:
                # Busy, locked and the like are subclasses, and not damage.
                if type(exc) is not sqlite.DatabaseError or self._fallback is None:
                    raise
            self._db.close()
            self._replacement = self._fallback()
        return list(self._replacement._run_rows(sql, args))

    def close(self) -> None:
        if self._replacement is not None:
            self._replacement.close()
        self._db.close()


def open_current_index(
    root: str | None, cwd: str, fallback: Callable[[], RunListing] | None = None
) -> IndexReader | None:
    """The index of the store at ``root`` (else the one found from ``cwd``), opened to
    read, when opening the store would change nothing in it; otherwise None, and the
    caller opens the :class:`~dotnb.store.repo.Store`, which also reports any error
    (no store, a newer format, a damaged index) in its own words.  A damaged page that
    only the listing meets makes the reader list through ``fallback()`` (the store),
    else fail."""
    found = os.path.realpath(root) if root else find_root_dir(cwd)
    if found is None:
        return None
    store_dir = os.path.join(found, STORE_DIR)
    try:
        check_format(read_format_file(os.path.join(store_dir, FORMAT_FILE)), "this store")
    except (OSError, ValueError, KeyError, TypeError, StoreFormatError):
        return None
    try:
        # mode=rw: never create the file.  Read-write rather than read-only because the
        # last connection to close then checkpoints and removes the WAL, as the store's
        # own does; a read-only one would leave -wal and -shm files behind.  Nothing here
        # writes a row.
        uri = _file_uri(os.path.join(store_dir, INDEX_FILE)) + "?mode=rw"
        db = sqlite.connect(uri, uri=True, timeout=60.0, isolation_level=None)
    except sqlite.Error:
        return None
    try:
        current = (
            _meta(db, "index_schema") == INDEX_SCHEMA
            and db.execute("SELECT 1 FROM pending_manifests LIMIT 1").fetchone() is None
            and _meta(db, "runs_mtime") == str(runs_mtime(store_dir))
        )
    except sqlite.Error:  # not an index this dotnb knows (or damaged): the store deals with it
        current = False
    if not current:
        db.close()
        return None
    return IndexReader(found, db, fallback)


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _file_uri(path: str) -> str:
    """An SQLite ``file:`` URI for an absolute path (the three characters URIs reserve escaped)."""
    for char, escaped in (("%", "%25"), ("?", "%3f"), ("#", "%23")):
        path = path.replace(char, escaped)
    path = path.replace(os.sep, "/")
    # file:///C:/... for a Windows drive; a POSIX path already starts with its slash.
    return "file://" + (path if path.startswith("/") else "/" + path)


def __getattr__(name: str) -> object:
    # indent_summaries lives in dotnb.store.summary_indent and is imported from here
    # (dotnb.cli.entry); imported on first use, so that ``dotnb log`` without --json does
    # not load it.
    if name == "indent_summaries":
        from dotnb.store import summary_indent

        return getattr(summary_indent, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
