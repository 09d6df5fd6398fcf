"""``index.sqlite``: a rebuildable cache over run manifests, plus the stat cache.

The manifests are the truth; every row here can be rebuilt from them
(``dotnb fsck --rebuild-index``), except ``pending_manifests`` and
``pending_objects``: write-ahead records of runs whose manifest object and ref a
kernel has not written yet, and of small objects (cells' code) those runs refer
to (see :mod:`dotnb.store.writeahead`), which no schema change or rebuild drops.

WAL mode lets several kernels, the server and the CLI read while one writes;
writers take the lock up front (BEGIN IMMEDIATE) so two writers queue on
``busy_timeout`` instead of failing with "database is locked" on a lock upgrade.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time

# The version of the tables below (bump it in dotnb.store.versions when they change):
# an index of another version is dropped and rebuilt from the manifests (it is only a
# cache).  It lives there so that dotnb log can check it without importing this module.
from dotnb.store.versions import INDEX_SCHEMA

# typing and pathlib would cost milliseconds of every start that imports this module,
# and threading is imported by the Index objects that need it.  mypy reads any name
# TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path
    from typing import Any

    # An inputs row: (hash, path, produced_by, kind), and a tree's members: (tree hash,
    # the prefixes of its files' hashes); see those tables.
    InputRow = tuple[str, str, str, int]
    TreeMembers = tuple[str, list[int]]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    manifest    TEXT NOT NULL,
    notebook    TEXT NOT NULL DEFAULT '',
    number      INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    author      TEXT NOT NULL DEFAULT '',
    remote      TEXT NOT NULL DEFAULT '',
    search      TEXT NOT NULL DEFAULT '',
    summary     TEXT NOT NULL,
    seq         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_notebook ON runs(notebook, id);
CREATE INDEX IF NOT EXISTS runs_by_number ON runs(number, notebook);
CREATE INDEX IF NOT EXISTS runs_by_seq ON runs(seq);
CREATE INDEX IF NOT EXISTS runs_by_notebook_number ON runs(notebook, remote, number);
-- Write-ahead records of runs committed with deferred writes (Store.commit_run(sync=False)):
-- the canonical manifest bytes, until the manifest object and the ref are on disk.  Not a
-- cache: never dropped with the tables above (see dotnb.store.writeahead).
CREATE TABLE IF NOT EXISTS pending_manifests (
    run_id      TEXT PRIMARY KEY,
    manifest    TEXT NOT NULL,
    data        BLOB NOT NULL
);
-- Small objects (cells' code, lineage segments) a kernel committed with a run before
-- writing them as files (Store.stage_bytes).  Not a cache either.
CREATE TABLE IF NOT EXISTS pending_objects (
    hash        TEXT PRIMARY KEY,
    data        BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS metric_values (
    run_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       REAL NOT NULL,
    notebook    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metrics_by_name ON metric_values(name, value);
CREATE INDEX IF NOT EXISTS metrics_by_notebook ON metric_values(notebook, name, run_id);
CREATE TABLE IF NOT EXISTS outputs (
    hash        TEXT NOT NULL,
    path        TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    PRIMARY KEY (hash, run_id, path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outputs_by_run ON outputs(run_id);
-- What each run read, for lineage over content (dotnb.store.content_lineage): one row per
-- file, per folder recorded as a tree (kind 2, hash the tree's; its files' hashes are
-- in tree_members) and per file outside the project (kind 1, path its absolute path, hash '');
-- hash '' also for a file whose content was not stored.  produced_by as the manifest
-- says ('' when it names no run).
CREATE TABLE IF NOT EXISTS inputs (
    hash        TEXT NOT NULL,
    path        TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    produced_by TEXT NOT NULL DEFAULT '',
    kind        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hash, run_id, path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inputs_by_run ON inputs(run_id);
-- Which bytes the trees some run read hold, once per tree (an unchanged folder adds no
-- row), so that what read a file in a folder is found without reading trees: the first
-- 8 bytes of each file's hash as an integer (a false match needs a 64-bit collision),
-- against the tree's number in trees_read.  Small on purpose: a first run reading
-- 100,000 files adds about 1.6 MB here.
CREATE TABLE IF NOT EXISTS trees_read (
    id          INTEGER PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS tree_members (
    prefix      INTEGER NOT NULL,
    tree        INTEGER NOT NULL,
    PRIMARY KEY (prefix, tree)
) WITHOUT ROWID;
-- A row per file of the project that a run recorded (100,000 rows for a folder of
-- 100,000 files): the hash as 32 bytes, and no rowid (one B-tree, not a table and
-- an index on path).
CREATE TABLE IF NOT EXISTS stat_cache (
    path        TEXT PRIMARY KEY,
    inode       INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    ctime_ns    INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    recorded_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Tags and notes (dotnb.store.annotations): a cache over the events in annotations/,
-- refilled from them when the index is new.  tags and note hold JSON texts.
CREATE TABLE IF NOT EXISTS run_annotations (
    run_id      TEXT PRIMARY KEY,
    tags        TEXT NOT NULL,
    note        TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_tags (
    tag         TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    PRIMARY KEY (tag, run_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS remote_runs (
    remote      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    PRIMARY KEY (remote, run_id)
) WITHOUT ROWID;
"""


def hash_prefix(digest: str) -> int:
    """The first 8 bytes of a hex hash as the signed integer ``tree_members`` holds."""
    value = int(digest[:16], 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


# The WAL file is cut to this size when it starts over after a checkpoint (bytes): it
# holds nothing then, and would otherwise keep the size of the largest transaction.
WAL_SIZE_LIMIT = 0
# A background checkpoint that leaves a WAL file larger than this starts it over.
WAL_RESET_AT = 1024 * 1024
# Free pages (left by dropped write-ahead records) beyond this many are given back to
# the file system by the background checkpoint.
FREE_PAGES_KEPT = 256

# How the runs table holds each summary (dotnb log --json re-indents these texts, see
# dotnb.store.summary_indent.indent_summaries): json.dumps(summary, sort_keys=True,
# ensure_ascii=False), with one encoder for every call.
_SUMMARY_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)

# A stat entry is trusted only if the file's mtime is older than this when it
# was recorded (git's "racily clean" rule): a write within the same timestamp
# tick as the hash could otherwise leave size and mtime unchanged.
RACY_WINDOW_NS = 2_000_000_000
IN_CHUNK = 500  # values per "IN (?, …)" (SQLite allows at least 999 parameters)


# A plain class, not a dataclass or a NamedTuple: importing dataclasses (inspect,
# ast) or typing costs milliseconds of every CLI start.
class StatKey:
    """What the stat cache compares to tell that a file is unchanged."""

    __slots__ = ("ctime_ns", "inode", "mtime_ns", "size")

    def __init__(self, inode: int, size: int, mtime_ns: int, ctime_ns: int) -> None:
        self.inode = inode
        self.size = size
        self.mtime_ns = mtime_ns
        self.ctime_ns = ctime_ns

    @classmethod
    def of(cls, st: os.stat_result) -> StatKey:
        return cls(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.inode, self.size, self.mtime_ns, self.ctime_ns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StatKey) and self.as_tuple() == other.as_tuple()

    def __hash__(self) -> int:
        return hash(self.as_tuple())

    def __repr__(self) -> str:
        return f"StatKey({self.inode}, {self.size}, {self.mtime_ns}, {self.ctime_ns})"


# How a kernel records a new run in one statement (Index.insert_new_run): a TEMP view
# (this connection's only, nothing in the file) whose INSTEAD OF trigger checks that
# the number is still above every number of the notebook, then writes the runs row,
# its outputs and metric rows (from JSON arrays) and the write-ahead record.  One
# statement is one implicit transaction: a tracked cell makes one SQLite call, not
# five (BEGIN, the number, two inserts, COMMIT), each a GIL release in a busy kernel.
_NEW_RUN_VIEW = (
    """CREATE TEMP VIEW IF NOT EXISTS new_run AS SELECT
    '' AS id, '' AS manifest, '' AS notebook, 0 AS number, '' AS kind, '' AS name,
    '' AS status, '' AS started_at, '' AS author, '' AS search, '' AS summary,
    NULL AS outputs, NULL AS metrics, NULL AS data, NULL AS objects, NULL AS blob,
    NULL AS inputs WHERE 0""",
    """CREATE TEMP TRIGGER IF NOT EXISTS new_run_insert INSTEAD OF INSERT ON new_run BEGIN
    SELECT RAISE(ABORT, 'dotnb: number taken') WHERE EXISTS (SELECT 1 FROM runs
        WHERE notebook=NEW.notebook AND remote='' AND number>=NEW.number);
    INSERT INTO runs(id, manifest, notebook, number, kind, name, status, started_at, author,
        remote, search, summary, seq)
    VALUES (NEW.id, NEW.manifest, NEW.notebook, NEW.number, NEW.kind, NEW.name, NEW.status,
        NEW.started_at, NEW.author, '', NEW.search, NEW.summary,
        (SELECT COALESCE(MAX(seq), 0) + 1 FROM runs));
    INSERT OR IGNORE INTO outputs(hash, path, run_id)
        SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), NEW.id
        FROM json_each(NEW.outputs);
    INSERT OR IGNORE INTO inputs(hash, path, run_id, produced_by, kind)
        SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), NEW.id,
            json_extract(value, '$[2]'), json_extract(value, '$[3]')
        FROM json_each(NEW.inputs);
    INSERT INTO metric_values(run_id, name, value, notebook)
        SELECT NEW.id, json_extract(value, '$[0]'), json_extract(value, '$[1]'), NEW.notebook
        FROM json_each(NEW.metrics);
    INSERT OR IGNORE INTO pending_objects(hash, data)
        SELECT json_extract(value, '$[0]'),
            substr(NEW.blob, json_extract(value, '$[1]'), json_extract(value, '$[2]'))
        FROM json_each(NEW.objects);
    INSERT OR REPLACE INTO pending_manifests(run_id, manifest, data)
        VALUES (NEW.id, NEW.manifest, NEW.data);
END""",
)
_INSERT_NEW_RUN = (
    "INSERT INTO new_run(id, manifest, notebook, number, kind, name, status, started_at, author,"
    " search, summary, outputs, metrics, data, objects, blob, inputs)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_NUMBER_TAKEN = "dotnb: number taken"


# Metric values are finite: a manifest holding NaN or infinity is refused before this.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _metric_values(summary: dict[str, Any]) -> list[tuple[str, float]]:
    """The (name, value) rows ``metric_values`` holds for a run: its numeric summary metrics."""
    return [
        (name, float(value))
        for name, value in (summary.get("metrics") or {}).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]


def _pack_objects(objects: Sequence[tuple[str, bytes]]) -> tuple[str | None, bytes | None]:
    """Objects as the trigger of ``new_run`` takes them: a JSON list of (hash, start,
    length) and one blob holding every object's bytes (SQLite's substr counts bytes of
    a blob, from 1)."""
    if not objects:
        return None, None
    spans, start = [], 1
    for digest, data in objects:
        spans.append((digest, start, len(data)))
        start += len(data)
    return _COMPACT_JSON.encode(spans), b"".join(data for _, data in objects)


def _row_head(manifest_hash: str, summary: dict[str, Any]) -> tuple[Any, ...]:
    """A runs row's columns from ``id`` to ``author``, in table order."""
    return (
        summary["id"],
        manifest_hash,
        summary.get("notebook") or "",
        summary["number"],
        summary["kind"],
        summary.get("name"),
        summary["status"],
        summary["started_at"],
        _author(summary),
    )


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _author(summary: dict[str, Any]) -> str:
    user, host = summary.get("user") or "", summary.get("host") or ""
    return f"{user}@{host}" if host else user


class Index:
    def __init__(self, path: Path) -> None:
        import threading

        self.path = path
        self._lock = threading.RLock()
        self._checkpointer: sqlite3.Connection | None = None  # see checkpoint()
        self._new_run_view: bool | None = None  # see insert_new_run(): None until tried
        self._identity: tuple[int, int] | None = None
        # Called (under the lock) when a read finds the file damaged: the store sets it
        # aside and re-indexes every run (see query()).  None: the read just fails.
        self.on_damage: Callable[[], None] | None = None
        self._mending = False
        self._connect()

    def _connect(self) -> None:
        path = self.path
        self.db = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA busy_timeout=60000")
        deadline = time.monotonic() + 60.0
        while True:
            try:
                self._set_up()
                st = os.stat(path)
                self._identity = (st.st_dev, st.st_ino)
                return
            except sqlite3.OperationalError as exc:
                # Another process is creating the file: switching it to WAL fails at once
                # with "database is locked" (busy_timeout does not apply).  Wait for it:
                # this is not damage (the store sets a damaged index aside).
                if not _is_busy(exc) or time.monotonic() > deadline:
                    self.db.close()
                    raise
                time.sleep(0.02)

    def _set_up(self) -> None:
        # A new index gives back the pages of dropped write-ahead records (a kernel's
        # runs of 100,000 files stage megabytes of trees there): see checkpoint().
        # Set only on an empty file: on an existing one it changes nothing (that takes
        # a VACUUM) and still needs to write, which fails on a full disk.
        if self.db.execute("PRAGMA page_count").fetchone()[0] == 0:
            self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":  # pragma: no cover - e.g. a filesystem without shared memory
            self.db.execute("PRAGMA journal_mode=DELETE")
        self.db.execute("PRAGMA synchronous=NORMAL")
        # The WAL file shrinks once checkpointed, instead of keeping the size of the
        # largest transaction (tens of MB for a run of 100,000 files).
        self.db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        with self._lock:
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            version = self.get_meta("index_schema")
            if version not in (None, INDEX_SCHEMA):
                self.db.executescript(
                    "DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS metric_values;"
                    " DROP TABLE IF EXISTS outputs; DROP TABLE IF EXISTS remote_runs;"
                    " DROP TABLE IF EXISTS stat_cache;"
                    " DROP TABLE IF EXISTS inputs; DROP TABLE IF EXISTS trees_read;"
                    " DROP TABLE IF EXISTS tree_members;"
                )
                self.db.execute("DELETE FROM meta WHERE key='runs_mtime'")
            self.db.executescript(_SCHEMA)
            if version != INDEX_SCHEMA:
                self.db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('index_schema', ?)", (INDEX_SCHEMA,)
                )

    def close(self) -> None:
        with self._lock:
            self.db.close()
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.close()

    def is_current(self) -> bool:
        """Whether the file at :attr:`path` is the one this connection writes."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == self._identity

    def reopen_if_replaced(self) -> bool:
        """Open the index file again when the one at :attr:`path` is no longer the one
        this connection writes (deleted, or replaced by a rebuild): a process that kept
        writing an unlinked file would number runs apart from everyone else.  True
        when it did; the caller's cached views of the index are then stale."""
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._identity:
                return False
        except FileNotFoundError:
            pass
        with self._lock:
            self.close()
            self._new_run_view = None
            self._connect()
        return True

    # -- checkpoints -----------------------------------------------------------

    def defer_checkpoints(self) -> None:
        """Stop this connection's commits from checkpointing the WAL (SQLite does it in
        the commit that crosses 1000 pages: tens of ms, in a kernel's tracked cell);
        :meth:`checkpoint` then does it, from a background thread."""
        with self._lock:
            self.db.execute("PRAGMA wal_autocheckpoint=0")

    def checkpoint(self) -> bool:
        """Copy the WAL into the database without blocking writers (PASSIVE), on a
        connection of its own so this one's users never wait for it; False when it
        could not (best effort: the next one catches up)."""
        try:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(
                    self.path, timeout=60.0, isolation_level=None, check_same_thread=False
                )
                self._checkpointer.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            db = self._checkpointer
            if db.execute("PRAGMA freelist_count").fetchone()[0] > FREE_PAGES_KEPT:
                # Stepped to the end by executescript (execute() would free one page);
                # a no-op for an index created without auto_vacuum.
                db.executescript("PRAGMA incremental_vacuum;")
            busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy and frames == copied > 0 and _size(f"{self.path}-wal") > WAL_RESET_AT:
                # Everything is in the database: the next write starts the WAL over,
                # cut to WAL_SIZE_LIMIT.  Make that write now (one row of meta).
                db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('wal_reset_ns', ?)",
                    (str(time.time_ns()),),
                )
        except sqlite3.Error:
            return False
        return True

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding SQLite's write lock from its start."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """The rows of one read.  A file found damaged here (cut short or overwritten
        under this process, past the pages opening it read) is handed to
        :attr:`on_damage` once, which puts a sound index in its place; the read is then
        made again on that one."""
        with self._lock:
            try:
                return self.db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                # Busy, locked, full, a constraint: subclasses, and not damage.
                if type(exc) is not sqlite3.DatabaseError or self.on_damage is None or self._mending:
                    raise
            self._mending = True  # under the lock: a read that recovery makes fails plainly
            try:
                self.on_damage()
            finally:
                self._mending = False
            return self.db.execute(sql, args).fetchall()

    # -- meta ----------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    @staticmethod
    def get_meta_tx(tx: sqlite3.Connection, key: str) -> str | None:
        row = tx.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None

    @staticmethod
    def set_meta(tx: sqlite3.Connection, key: str, value: str) -> None:
        tx.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def put_meta(self, key: str, value: str) -> None:
        """:meth:`set_meta` in a write transaction of its own."""
        with self.write() as tx:
            Index.set_meta(tx, key, value)

    # -- runs ----------------------------------------------------------------

    # Pulled runs keep their author's numbers; this store numbers only its own runs.
    MAX_NUMBER_SQL = "SELECT MAX(number) FROM runs WHERE notebook=? AND remote=''"

    @staticmethod
    def next_number(tx: sqlite3.Connection, notebook: str) -> int:
        row = tx.execute(Index.MAX_NUMBER_SQL, (notebook,)).fetchone()
        return int(row[0] or 0) + 1

    @staticmethod
    def number_taken_tx(tx: sqlite3.Connection, notebook: str, number: int, run_id: str) -> bool:
        """Whether a run of this store other than ``run_id`` has ``number`` in ``notebook``."""
        row = tx.execute(
            "SELECT 1 FROM runs WHERE notebook=? AND remote='' AND number=? AND id!=? LIMIT 1",
            (notebook, number, run_id),
        ).fetchone()
        return row is not None

    def last_number(self, notebook: str) -> int:
        """The highest number this store gave a run of ``notebook`` (0: none yet)."""
        return int(self.query(Index.MAX_NUMBER_SQL, (notebook,))[0][0] or 0)

    @staticmethod
    def insert_run(
        tx: sqlite3.Connection,
        manifest_hash: str,
        summary: dict[str, Any],
        search: str,
        outputs: Sequence[tuple[str, str]] = (),
        new: bool = False,
        inputs: Sequence[InputRow] = (),
        trees: Sequence[TreeMembers] = (),
    ) -> None:
        """Index a run, replacing its rows if it is indexed already; ``new`` (a fresh id)
        skips removing old rows: in a kernel each statement here is on the cell's path."""
        run_id = summary["id"]
        notebook = summary.get("notebook") or ""
        # seq orders every change (new run or replaced manifest) for event cursors.
        tx.execute(
            "INSERT OR REPLACE INTO runs(id, manifest, notebook, number, kind, name, status,"
            " started_at, author, remote, search, summary, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,"
            " (SELECT COALESCE(MAX(seq), 0) + 1 FROM runs))",
            (
                *_row_head(manifest_hash, summary),
                summary.get("remote") or "",
                search,
                _SUMMARY_JSON.encode(summary),
            ),
        )
        if not new:
            tx.execute("DELETE FROM outputs WHERE run_id=?", (run_id,))
            tx.execute("DELETE FROM inputs WHERE run_id=?", (run_id,))
            tx.execute("DELETE FROM metric_values WHERE run_id=?", (run_id,))
        if inputs:
            tx.executemany(
                "INSERT OR IGNORE INTO inputs(hash, path, run_id, produced_by, kind) VALUES (?,?,?,?,?)",
                [(digest, path, run_id, producer, kind) for digest, path, producer, kind in inputs],
            )
        for tree, prefixes in trees:
            tx.execute("INSERT OR IGNORE INTO trees_read(hash) VALUES (?)", (tree,))
            number = tx.execute("SELECT id FROM trees_read WHERE hash=?", (tree,)).fetchone()[0]
            tx.executemany(
                "INSERT OR IGNORE INTO tree_members(prefix, tree) VALUES (?,?)",
                [(p, number) for p in prefixes],
            )
        if outputs:
            tx.executemany(
                "INSERT OR IGNORE INTO outputs(hash, path, run_id) VALUES (?,?,?)",
                [(digest, path, run_id) for digest, path in outputs],
            )
        values = [(run_id, name, value, notebook) for name, value in _metric_values(summary)]
        if values:
            tx.executemany(
                "INSERT INTO metric_values(run_id, name, value, notebook) VALUES (?,?,?,?)", values
            )

    def insert_new_run(
        self,
        manifest_hash: str,
        summary: dict[str, Any],
        search: str,
        outputs: Sequence[tuple[str, str]],
        data: bytes,
        objects: Sequence[tuple[str, bytes]] = (),
        inputs: Sequence[InputRow] = (),
    ) -> bool:
        """Index a run with a fresh id and write its write-ahead record and the
        pending ``objects`` (as :meth:`insert_run`, :meth:`add_pending` and
        :meth:`add_pending_objects` do), in one statement that is its own
        transaction; the run's number is ``summary["number"]``.

        False, with nothing written, when that number is no longer above every number
        of the notebook (another process numbered a run meanwhile), when another
        connection wrote first (SQLITE_BUSY_SNAPSHOT) or the statement cannot run
        here (a SQLite without JSON functions): the caller then numbers the run
        under the write lock.
        """
        if self._new_run_view is False:
            return False
        metrics = _metric_values(summary)
        args = (
            *_row_head(manifest_hash, summary),
            search,
            _SUMMARY_JSON.encode(summary),
            _COMPACT_JSON.encode(outputs) if outputs else None,
            _COMPACT_JSON.encode(metrics) if metrics else None,
            data,
            *_pack_objects(objects),
            _COMPACT_JSON.encode(inputs) if inputs else None,
        )
        with self._lock:
            try:
                if self._new_run_view is None:
                    # Not executescript: it would commit a transaction this thread has open.
                    for statement in _NEW_RUN_VIEW:
                        self.db.execute(statement)
                    self._new_run_view = True
                self.db.execute(_INSERT_NEW_RUN, args)
            except sqlite3.IntegrityError as exc:
                if _NUMBER_TAKEN not in str(exc):
                    raise
                return False
            except sqlite3.OperationalError as exc:
                if "no such" in str(exc):  # no json_each: the write lock path from now on
                    self._new_run_view = False
                return False  # busy, or disk full: the write lock path waits, or reports it
        return True

    # -- what each remote is known to hold (a cache: losing it costs requests) --

    def remote_runs(self, remote: str) -> dict[str, str]:
        rows = self.query("SELECT run_id, manifest FROM remote_runs WHERE remote=?", (remote,))
        return {str(r[0]): str(r[1]) for r in rows}

    def touch_runs(self, run_ids: list[str]) -> None:
        """Move runs to the end of the change feed (their signature came after them)."""
        if not run_ids:
            return
        with self.write() as tx:
            for run_id in run_ids:
                tx.execute(
                    "UPDATE runs SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM runs) WHERE id=?", (run_id,)
                )

    def remote_runs_add(self, remote: str, runs: dict[str, str]) -> None:
        if not runs:
            return
        with self.write() as tx:
            tx.executemany(
                "INSERT OR REPLACE INTO remote_runs(remote, run_id, manifest) VALUES (?,?,?)",
                [(remote, rid, digest) for rid, digest in runs.items()],
            )

    def forget_remote(self, remote: str) -> None:
        with self.write() as tx:
            tx.execute("DELETE FROM remote_runs WHERE remote=?", (remote,))
            tx.execute("DELETE FROM meta WHERE key=?", (f"pull:{remote}",))

    # -- write-ahead records (runs whose manifest object or ref is not written yet) --

    @staticmethod
    def add_pending(tx: sqlite3.Connection, run_id: str, manifest_hash: str, data: bytes) -> None:
        tx.execute(
            "INSERT OR REPLACE INTO pending_manifests(run_id, manifest, data) VALUES (?,?,?)",
            (run_id, manifest_hash, data),
        )

    def pending(self, run_id: str | None = None) -> list[tuple[str, str, bytes]]:
        """(run id, manifest hash, canonical manifest bytes) of pending runs (one, or all)."""
        sql = "SELECT run_id, manifest, data FROM pending_manifests"
        args: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " WHERE run_id=?"
            args = (run_id,)
        return [(str(r[0]), str(r[1]), bytes(r[2])) for r in self.query(sql + " ORDER BY run_id", args)]

    def has_pending(self) -> bool:
        return bool(self.query("SELECT 1 FROM pending_manifests LIMIT 1"))

    @staticmethod
    def add_pending_objects(tx: sqlite3.Connection, objects: Sequence[tuple[str, bytes]]) -> None:
        tx.executemany("INSERT OR IGNORE INTO pending_objects(hash, data) VALUES (?,?)", objects)

    def pending_objects(self, digests: Sequence[str] | None = None) -> list[tuple[str, bytes]]:
        """(hash, bytes) of pending objects: all, or those among ``digests``."""
        if digests is None:
            rows = self.query("SELECT hash, data FROM pending_objects ORDER BY hash")
        else:
            rows = []
            for start in range(0, len(digests), IN_CHUNK):
                chunk = tuple(digests[start : start + IN_CHUNK])
                marks = ",".join("?" * len(chunk))
                rows += self.query(f"SELECT hash, data FROM pending_objects WHERE hash IN ({marks})", chunk)
        return [(str(r[0]), bytes(r[1])) for r in rows]

    @staticmethod
    def pending_run_ids_tx(tx: sqlite3.Connection) -> set[str]:
        """The run ids of the write-ahead records, inside a transaction."""
        return {str(r[0]) for r in tx.execute("SELECT run_id FROM pending_manifests")}

    @staticmethod
    def pending_object_ids_tx(tx: sqlite3.Connection) -> set[str]:
        """The hashes of the pending objects, inside a transaction."""
        return {str(r[0]) for r in tx.execute("SELECT hash FROM pending_objects")}

    def drop_pending_objects(self, digests: Sequence[str]) -> None:
        """Forget pending objects whose files are written and synced."""
        with self.write() as tx:
            tx.executemany("DELETE FROM pending_objects WHERE hash=?", [(d,) for d in digests])

    @staticmethod
    def pending_manifest_tx(tx: sqlite3.Connection, run_id: str) -> str | None:
        """The manifest hash of run ``run_id``'s write-ahead record, if it has one."""
        row = tx.execute("SELECT manifest FROM pending_manifests WHERE run_id=?", (run_id,)).fetchone()
        return None if row is None else str(row[0])

    def drop_pending(self, records: Sequence[tuple[str, str]]) -> None:
        """Drop the write-ahead records (run id, manifest hash) whose manifest object and
        ref are durable; a record replaced meanwhile (another manifest hash) stays."""
        with self.write() as tx:
            tx.executemany("DELETE FROM pending_manifests WHERE run_id=? AND manifest=?", records)

    def all_run_ids(self) -> set[str]:
        return {r[0] for r in self.query("SELECT id FROM runs")}

    @staticmethod
    def run_ids_tx(tx: sqlite3.Connection) -> set[str]:
        """:meth:`all_run_ids` inside a write transaction."""
        return {r[0] for r in tx.execute("SELECT id FROM runs")}

    @staticmethod
    def run_manifest_tx(tx: sqlite3.Connection, run_id: str) -> str | None:
        """The manifest hash run ``run_id``'s index row names, if it has one."""
        row = tx.execute("SELECT manifest FROM runs WHERE id=?", (run_id,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def clear_runs(tx: sqlite3.Connection) -> None:
        """Drop every run row (to index them again from their manifests), not the
        write-ahead records: they are not cache."""
        tx.execute("DELETE FROM runs")
        tx.execute("DELETE FROM metric_values")
        tx.execute("DELETE FROM outputs")
        tx.execute("DELETE FROM inputs")
        tx.execute("DELETE FROM tree_members")
        tx.execute("DELETE FROM trees_read")
        Index.set_meta(tx, "runs_mtime", "")

    # -- stat cache ----------------------------------------------------------

    def has_tree_members(self, tree: str) -> bool:
        """Whether ``tree_members`` lists the files of ``tree`` already."""
        return bool(self.query("SELECT 1 FROM trees_read WHERE hash=?", (tree,)))

    @staticmethod
    def has_tree_members_tx(tx: sqlite3.Connection, tree: str) -> bool:
        """:meth:`has_tree_members` inside a write transaction."""
        return tx.execute("SELECT 1 FROM trees_read WHERE hash=?", (tree,)).fetchone() is not None

    def stat_lookup(self, rel: str, key: StatKey) -> str | None:
        return self.stat_lookup_many([(rel, key)]).get(rel)

    def stat_lookup_many(self, items: Sequence[tuple[str, StatKey]]) -> dict[str, str]:
        """The cached hash of each ``(path, key)`` whose file is unchanged since it was
        recorded (same key, and recorded outside the racy window of its mtime)."""
        keys = dict(items)
        found: dict[str, str] = {}
        paths = list(keys)
        for start in range(0, len(paths), IN_CHUNK):
            chunk = tuple(paths[start : start + IN_CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self.query(
                "SELECT path, inode, size, mtime_ns, ctime_ns, hash, recorded_ns FROM stat_cache"
                f" WHERE path IN ({marks})",
                chunk,
            )
            for path, inode, size, mtime_ns, ctime_ns, digest, recorded_ns in rows:
                if (inode, size, mtime_ns, ctime_ns) != keys[path].as_tuple():
                    continue
                if recorded_ns - mtime_ns < RACY_WINDOW_NS:
                    continue
                found[path] = bytes(digest).hex()
        return found

    def stat_record(self, entries: list[tuple[str, StatKey, str]], now_ns: int) -> None:
        if not entries:
            return
        with self.write() as tx:
            tx.executemany(
                "INSERT OR REPLACE INTO stat_cache(path, inode, size, mtime_ns, ctime_ns, hash,"
                " recorded_ns) VALUES (?,?,?,?,?,?,?)",
                [
                    (rel, k.inode, k.size, k.mtime_ns, k.ctime_ns, bytes.fromhex(digest), now_ns)
                    for rel, k, digest in entries
                ],
            )
