"""The store as a whole: layout of ``.dotnb/``, recording runs, resolving RUN arguments.

Layout::

    .dotnb/format          {"format": 1}
    .dotnb/objects/ab/…    content-addressed blobs (data, notebooks, manifests)
    .dotnb/runs/<id>       one ref per run: the hash of its manifest object
    .dotnb/index.sqlite    cache over manifests + stat cache
    .dotnb/tmp/            temp files (same filesystem, so renames are atomic)

Write order for a run: data objects, then the manifest object, then the ref,
then the index row — so a crash at any point leaves a complete run or none.  A
ref without its index row (a crash between the two) is picked up by
:meth:`Store.reconcile`, which compares the ``runs/`` folder's mtime with the one
recorded at the last commit.

Deferred commits (``commit_run(sync=False)``, what a kernel uses, so that a
tracked cell pays for one SQLite transaction and no file creation): data objects
first, as above, except small ones the kernel makes itself (each new cell's code,
lineage segments: :meth:`Store.stage_bytes`), which are not files yet; then, in
one transaction, the index row, a **write-ahead record** in ``pending_manifests``
(run id, manifest hash, the canonical manifest bytes) and those small objects in
``pending_objects``.  :meth:`Store.flush` (the kernel's background thread) then
writes the small objects, writes the manifest object and the ref, fsyncs them
all, and only then deletes the records.  So:

- a crash before the transaction commits leaves no run (only unreferenced
  objects, for gc);
- a crash after it leaves a record, and the next :meth:`Store.reconcile` (every
  store open) writes the missing manifest object and ref from it: a complete run;
- until then, readers in other processes find the manifest in the record
  (:meth:`Store.manifest`, :meth:`Store.read_ref_origin` complete it on the way),
  and an object missing from ``objects/`` is written from ``pending_objects``
  when read (``ObjectStore.pending_source``); every store open writes them all.

A new run's deferred commit does not take the write lock first: the process
numbers it after the last number it knows of for its notebook and writes the
index row and the record in one SQLite statement (:meth:`Index.insert_new_run`),
which checks in the same transaction that no run of the notebook has that number
or a higher one.  When another process numbered a run meanwhile, or ``runs/``
changed since this process found it indexed, the commit is done under the write
lock as above: numbers stay unique per notebook.

A record is installed (its ref renamed into place) only under the index's write
lock and only while the run's index row still names that manifest, so a later
:meth:`Store.update_manifest` is never overwritten by a late flush.  Records are
not cache: schema changes and ``rebuild_index`` leave them, and a record whose
run lost its index row is indexed again when it is installed.  The on-disk
result (objects, ``runs/<id>``, manifest bytes) is the same as a synchronous
commit's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from dotnb.store.atomic import create_temp, write_bytes
from dotnb.store.errors import AmbiguousRun, DotnbError, ObjectMissing, RunNotFound, StoreFormatError
from dotnb.store.hashing import hash_bytes, is_hash
from dotnb.store.ids import id_prefix_ok, new_run_id
from dotnb.store.index import IN_CHUNK, Index, StatKey
from dotnb.store.layout import (
    FORMAT_FILE,
    STORE_DIR,
    find_root_dir,
    format_file_bytes,
    read_format_file,
    runs_mtime,
)
from dotnb.store.lineage import expand, lineage_objects, manifest_bytes, pack
from dotnb.store.listing import RunListing
from dotnb.store.manifest import FORMAT_VERSION, canonical_json, check_format, parse_manifest
from dotnb.store.objects import SMALL_FILE, ObjectStore
from dotnb.store.paths import Confiner
from dotnb.store.syncing import fsync_path

DEFAULT_MAX_FILE_SIZE = 20 * 1024**3  # 20 GiB: bigger files are recorded as skipped


def find_root(start: Path) -> Path | None:
    """Nearest ancestor of ``start`` (itself included) that holds a ``.dotnb`` folder."""
    found = find_root_dir(os.fspath(start))
    return None if found is None else Path(found)


def run_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """The row ``dotnb log --json`` prints for a run (also cached in the index)."""
    env = manifest.get("environment") or {}
    return {
        "id": manifest["id"],
        "number": manifest["number"],
        "notebook": manifest.get("notebook"),
        "name": manifest.get("name"),
        "kind": manifest.get("kind", "run"),
        "status": manifest.get("status", "ok"),
        "started_at": manifest["started_at"],
        "duration_s": manifest.get("duration_s"),
        "params": manifest.get("params") or {},
        "metrics": manifest.get("metrics") or {},
        "inputs": len(manifest.get("inputs") or []),
        "outputs": len(manifest.get("outputs") or []),
        "user": env.get("user"),
        "host": env.get("host"),
        # The remote a run was pulled from (None: recorded here); set by _index_run.
        "remote": None,
        "reproduces": manifest.get("reproduces"),
        "checkpoint_of": manifest.get("checkpoint_of"),
    }


def _index_run(
    tx: Any, manifest_hash: str, manifest: dict[str, Any], origin: str | None = None, new: bool = False
) -> dict[str, Any]:
    summary = run_summary(manifest)
    summary["remote"] = origin
    outputs = _output_rows(manifest)
    Index.insert_run(tx, manifest_hash, summary, _search_text(manifest), outputs, new=new)
    return summary


_PARAMS_JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps(..., ensure_ascii=False), made once


def _output_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """The (hash, path) rows the ``outputs`` table holds for a run."""
    return [(e["hash"], e["path"]) for e in manifest.get("outputs") or [] if e.get("hash")]


def _search_text(manifest: dict[str, Any]) -> str:
    parts = [
        manifest.get("name") or "",
        _PARAMS_JSON.encode(manifest.get("params") or {}),
        manifest.get("code") or "",
    ]
    return "\n".join(parts).lower()


class Store(RunListing):
    def __init__(self, root: Path, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> None:
        self.root = Path(os.path.realpath(root))
        self.dir = self.root / STORE_DIR
        self.max_file_size = max_file_size
        fmt_file = self.dir / FORMAT_FILE
        if not fmt_file.exists():
            raise StoreFormatError(f"no dotnb store at {self.root} (run `dotnb init`)")
        try:
            fmt = read_format_file(str(fmt_file))
        except (ValueError, KeyError, TypeError):
            raise StoreFormatError(f"{fmt_file} is not a dotnb format file") from None
        check_format(fmt, "this store")
        self.objects = ObjectStore(self.dir / "objects", self.dir / "tmp")
        self.runs_dir = self.dir / "runs"
        # Runs committed with sync=False whose manifest object and ref flush() writes.
        self._pending_runs: list[tuple[str, str, bytes]] = []
        # Objects given to stage_bytes, for the next deferred commit to record, and
        # those committed so, whose files flush() writes.
        self._staged: dict[str, bytes] = {}
        self._pending_objects: list[tuple[str, bytes]] = []
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._flush_at_exit = False
        # The runs/ mtime this process last saw recorded as indexed (see _reconcile_locked).
        self._runs_indexed: str | None = None
        # The last number this process gave or saw given to a run, per notebook: the
        # next run's number without a query (checked when it is written, _commit_new).
        self._last_numbers: dict[str, int] = {}
        # Set by a kernel: a token that stays equal while nothing in runs/ changes (an
        # inotify watch), or None when it cannot tell; _commit_new then skips a stat.
        self.runs_watch: Callable[[], object] | None = None
        self._runs_watch_seen: object = None
        self.index = self._open_index()
        self.objects.pending_source = self._settle_objects
        self.reconcile()

    # -- opening -------------------------------------------------------------

    def _open_index(self) -> Index:
        path = self.dir / "index.sqlite"
        try:
            return Index(path)
        except sqlite3.OperationalError:
            raise  # busy, locked, unreadable: not damage, and another process may be using it
        except sqlite3.DatabaseError:
            # The index is only a cache: set the damaged file aside and start a new
            # one; reconcile() then re-indexes every run from its manifest.
            aside = path.with_name(f"index.sqlite.damaged-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(str(path) + suffix, str(aside) + suffix)
            return Index(path)

    @classmethod
    def init(cls, root: Path, **kwargs: Any) -> Store:
        """Create the store at ``root`` if missing and open it."""
        store_dir = Path(root) / STORE_DIR
        for sub in ("objects", "runs", "tmp"):
            (store_dir / sub).mkdir(parents=True, exist_ok=True)
        fmt_file = store_dir / FORMAT_FILE
        if not fmt_file.exists():
            write_bytes(fmt_file, format_file_bytes(FORMAT_VERSION))
            # Keep the store out of git by default: it holds data, not source.
            gi = store_dir / ".gitignore"
            if not gi.exists():
                write_bytes(gi, b"*\n")
        return cls(root, **kwargs)

    @classmethod
    def discover(cls, start: Path, **kwargs: Any) -> Store:
        root = find_root(start)
        if root is None:
            raise StoreFormatError(
                f"no dotnb store found in {start} or any parent folder "
                "(run a tracked cell or `dotnb init` first)"
            )
        return cls(root, **kwargs)

    def close(self) -> None:
        self.index.close()

    # -- files ---------------------------------------------------------------

    def snapshot_files(
        self,
        rels: Iterable[str],
        progress: Callable[[int], None] | None = None,
        enforce_limit: bool = True,
    ) -> list[dict[str, Any]]:
        """Store the current content of root-relative files; returns ``{path, hash, size}`` each.

        Unchanged files are found in the stat cache and never re-hashed.  Files
        above ``max_file_size`` are recorded with ``"skipped"`` and no hash; files
        that vanished are recorded with ``"missing": true``.  Checkpoints pass
        ``enforce_limit=False``: a file about to be overwritten is kept whatever its size.
        """
        confined = Confiner(self.root)
        entries: list[dict[str, Any] | None] = []
        found: list[tuple[int, str, str, StatKey]] = []  # (entry, rel, path, key) to store
        for rel in rels:
            path = confined.path(rel)
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                entries.append({"path": rel, "hash": None, "size": None, "missing": True})
                continue
            if enforce_limit and st.st_size > self.max_file_size:
                entries.append(
                    {
                        "path": rel,
                        "hash": None,
                        "size": st.st_size,
                        "skipped": f"larger than the {self.max_file_size}-byte limit",
                    }
                )
                continue
            found.append((len(entries), rel, path, StatKey.of(st)))
            entries.append(None)
        known = self.index.stat_lookup_many([(rel, key) for _, rel, _, key in found])
        small: list[tuple[int, str, str, StatKey]] = []
        stored: list[tuple[int, str, str, StatKey, tuple[str, int] | None]] = []
        for i, rel, path, key in found:
            digest = known.get(rel)
            if digest is not None and self.objects.reuse(digest):
                entries[i] = {"path": rel, "hash": digest, "size": key.size}
            elif key.size <= SMALL_FILE:
                small.append((i, rel, path, key))
            else:
                try:
                    got: tuple[str, int] | None = self.objects.put_file(path, progress=progress)
                except FileNotFoundError:
                    got = None
                stored.append((i, rel, path, key, got))
        if small:
            results = self.objects.put_small_files([path for _, _, path, _ in small], progress)
            stored += [(*item, got) for item, got in zip(small, results, strict=True)]
        fresh: list[tuple[str, StatKey, str]] = []
        for i, rel, path, key, got in stored:
            if got is None:
                entries[i] = {"path": rel, "hash": None, "size": None, "missing": True}
                continue
            digest, size = got
            with contextlib.suppress(OSError):
                if StatKey.of(os.stat(path)) == key:  # unchanged while it was read
                    fresh.append((rel, key, digest))
            entries[i] = {"path": rel, "hash": digest, "size": size}
        self.index.stat_record(fresh, time.time_ns())
        return [e for e in entries if e is not None]

    def snapshot_one(self, path: Path) -> tuple[str, int] | None:
        """Copy one file's current bytes into the store (used before an overwrite)."""
        try:
            if os.stat(path).st_size > self.max_file_size:
                return None
            return self.objects.put_file(path)
        except OSError:
            return None

    # -- runs ----------------------------------------------------------------

    def commit_run(
        self, manifest: dict[str, Any], sync: bool = True, lineage_json: bytes | None = None
    ) -> dict[str, Any]:
        """Number, store and index a run manifest; returns its log summary.

        ``manifest`` must already reference objects that are in the store.
        ``lineage_json``, when given, is the canonical JSON of its ``lineage``
        (see :func:`dotnb.store.lineage.manifest_bytes`).  With
        ``sync=False`` only the index row and the write-ahead record are written
        now (one transaction, no file created); the manifest object and the ref
        are written and fsynced by :meth:`flush`, which the kernel calls from a
        background thread (see the module docstring).
        """
        manifest.setdefault("format", FORMAT_VERSION)
        new = "id" not in manifest  # an id made here is in no index row yet
        if new:
            manifest["id"] = new_run_id()
        manifest.setdefault("kind", "run")
        notebook = manifest.get("notebook") or ""
        run_id = manifest["id"]
        if not sync and new:
            summary = self._commit_new(manifest, notebook, lineage_json)
            if summary is not None:
                return summary
        staged = self._take_staged()
        try:
            if sync:
                for _, blob in staged:
                    self.objects.put_bytes(blob)
            with self.index.write() as tx:
                self._reconcile_locked(tx)
                manifest["number"] = Index.next_number(tx, notebook)
                data = manifest_bytes(manifest, lineage_json)
                if sync:
                    digest, _ = self.objects.put_bytes(data)
                    self._write_ref(run_id, digest, sync=True)
                    summary = _index_run(tx, digest, manifest, new=new)
                    self._set_runs_indexed(tx)
                else:
                    digest = hash_bytes(data)
                    summary = _index_run(tx, digest, manifest, new=new)
                    Index.add_pending_objects(tx, staged)
                    Index.add_pending(tx, run_id, digest, data)
        except BaseException:
            self._unstage(staged)
            raise
        self._last_numbers[notebook] = manifest["number"]
        if not sync:
            self._pending_added(run_id, digest, data, staged)
        return summary

    def stage_bytes(self, data: bytes) -> str:
        """Store small ``data`` (a cell's code) with the next deferred commit instead of
        as a file now (a file creation costs a tracked cell about 0.5 ms): the
        commit records it with the run's write-ahead record, and :meth:`flush` writes
        the file.  Returns its hash."""
        digest = hash_bytes(data)
        with self._pending_lock:
            self._staged[digest] = data
        return digest

    def _take_staged(self) -> list[tuple[str, bytes]]:
        with self._pending_lock:
            staged, self._staged = list(self._staged.items()), {}
        return staged

    def _unstage(self, staged: list[tuple[str, bytes]]) -> None:
        """A commit failed: its staged objects go with the next one."""
        with self._pending_lock:
            self._staged.update(staged)

    def _commit_new(
        self, manifest: dict[str, Any], notebook: str, lineage_json: bytes | None
    ) -> dict[str, Any] | None:
        """``commit_run(sync=False)`` of a run with a fresh id without taking the write
        lock first: numbered after the last number this process knows of for the
        notebook, and written by :meth:`Index.insert_new_run`, which checks in the
        same transaction that the number is still free.  None (nothing written, the
        manifest's number to be set again) when it is not, or when ``runs/`` changed
        since this process found it indexed (a ref without its index row may hold a
        number: :meth:`_reconcile_locked` indexes it under the lock first); that is a
        stat of ``runs/``, skipped while ``runs_watch`` reports no change."""
        watch = self.runs_watch
        token = watch() if watch is not None else None
        if token is None or token != self._runs_watch_seen:
            if self._runs_indexed is None or self._runs_indexed != str(self._runs_mtime()):
                return None
            self._runs_watch_seen = token  # read before the stat: a change since shows next time
        last = self._last_numbers.get(notebook)
        if last is None:
            last = int(self.index.query(Index.MAX_NUMBER_SQL, (notebook,))[0][0] or 0)
        manifest["number"] = last + 1
        data = manifest_bytes(manifest, lineage_json)
        digest = hash_bytes(data)
        summary = run_summary(manifest)
        outputs = _output_rows(manifest)
        staged = self._take_staged()
        try:
            done = self.index.insert_new_run(digest, summary, _search_text(manifest), outputs, data, staged)
        except BaseException:
            self._unstage(staged)
            raise
        if not done:
            self._unstage(staged)
            self._last_numbers.pop(notebook, None)
            return None
        self._last_numbers[notebook] = last + 1
        self._pending_added(manifest["id"], digest, data, staged)
        return summary

    def _pending_added(self, run_id: str, digest: str, data: bytes, objects: list[tuple[str, bytes]]) -> None:
        """A write-ahead record (and ``objects``) was committed: have :meth:`flush` complete it."""
        with self._pending_lock:
            self._pending_runs.append((run_id, digest, data))
            self._pending_objects += objects
        if not self._flush_at_exit:
            self._flush_at_exit = True
            _flush_at_exit(self)
            self.index.defer_checkpoints()  # flush() checkpoints, off the cell's path

    def flush(self) -> None:
        """Write and fsync what ``sync=False`` deferred: objects, then each pending run's
        manifest object and ref, then drop the runs' write-ahead records.

        Safe to call from any thread, concurrently with commits.  On failure the
        runs stay pending (here and in the index) for the next call.
        """
        with self._flush_lock:
            with self._pending_lock:
                runs, self._pending_runs = self._pending_runs, []
                objects, self._pending_objects = self._pending_objects, []
            try:
                self._complete_pending(runs, objects)
            except BaseException:
                with self._pending_lock:
                    self._pending_runs[:0] = runs
                    self._pending_objects[:0] = objects
                raise
            if runs:
                self.index.checkpoint()

    def has_pending_sync(self) -> bool:
        with self._pending_lock:
            if self._pending_runs or self._pending_objects:
                return True
        return self.objects.has_pending()

    def _complete_pending(
        self, runs: list[tuple[str, str, bytes]], objects: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Write the manifest objects and refs of write-ahead records, then drop the records.

        Pending ``objects`` (see :meth:`stage_bytes`) are written first, so they are
        synced with the first batch, before any of its refs is in place; their
        records go last.

        Per batch of runs: manifest objects and ref files are written, then made
        durable together (with every object written with ``sync=False`` so far):
        an fsync each, or one ``syncfs`` when there are many (a kernel running
        cells back to back would otherwise fall behind, at ~3 fsyncs a run).  Refs
        are then renamed into place 8 at a time under the index's write lock (a
        kernel committing its next run waits for it), each only while its record is
        current, and the records dropped once the ``runs/`` folder is synced.
        """
        for digest, data in objects:
            if self.objects.holds(digest, data):
                # Perhaps written by another process that has not synced it yet.
                self.objects.defer_sync(self.objects.path_for(digest))
            else:
                self.objects.put_bytes(data, sync=False)  # (re)written whole
        for start in range(0, len(runs), 64):
            self._complete_batch(runs[start : start + 64])
        self.objects.flush()  # objects written with sync=False by runs that failed to commit
        if objects:
            self.index.drop_pending_objects([digest for digest, _ in objects])

    def _complete_batch(self, runs: list[tuple[str, str, bytes]]) -> None:
        written = []
        for run_id, digest, data in runs:
            if self.objects.put_bytes(data, sync=False)[0] == digest:
                written.append((run_id, digest, data))
        if not written:
            return
        tmp_dir = self.dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        temps: dict[str, str] = {}
        try:
            for run_id, digest, _ in written:
                fd, tmp = create_temp(tmp_dir, ".ref-")
                temps[run_id] = tmp
                with os.fdopen(fd, "wb") as f:
                    f.write(digest.encode() + b"\n")
                os.chmod(tmp, 0o644)
                self.objects.defer_sync(Path(tmp))
            self.objects.flush(whole_filesystem=len(written) >= 4)
            installed = []
            for start in range(0, len(written), 8):
                with self.index.write() as tx:
                    self._reconcile_locked(tx)
                    for run_id, digest, data in written[start : start + 8]:
                        record = tx.execute(
                            "SELECT manifest FROM pending_manifests WHERE run_id=?", (run_id,)
                        ).fetchone()
                        row = tx.execute("SELECT manifest FROM runs WHERE id=?", (run_id,)).fetchone()
                        if record is None or record[0] != digest or (row is not None and row[0] != digest):
                            continue  # completed by another process, or replaced since
                        os.replace(temps.pop(run_id), self.runs_dir / run_id)
                        if row is None:  # the index was rebuilt or dropped meanwhile
                            _index_run(tx, digest, parse_manifest(data))
                        installed.append(run_id)
                    self._set_runs_indexed(tx)
            if installed:
                fsync_path(self.runs_dir)
            with self.index.write() as tx:
                tx.executemany(
                    "DELETE FROM pending_manifests WHERE run_id=? AND manifest=?",
                    [(run_id, digest) for run_id, digest, _ in written],
                )
        finally:
            for tmp in temps.values():
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _settle_objects(self, digests: list[str]) -> None:
        """Write, synced, the objects among ``digests`` that are still pending in some
        process's write-ahead records (readers call this for a missing object)."""
        with contextlib.suppress(OSError, sqlite3.Error):
            for _, data in self.index.pending_objects(digests):
                self.objects.put_bytes(data)  # an object already there is only touched

    def _settle(self, run_id: str) -> tuple[str, bytes] | None:
        """A run still pending in any process: its (manifest hash, manifest bytes),
        after writing its manifest object and ref if the store is writable."""
        found = self.index.pending(run_id)
        if not found:
            return None
        with contextlib.suppress(OSError, sqlite3.Error):
            self._complete_pending(found)
        return found[0][1], found[0][2]

    def _write_ref(self, run_id: str, digest: str, sync: bool) -> None:
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        ref = self.runs_dir / run_id
        write_bytes(ref, digest.encode() + b"\n", sync=sync, tmp_dir=self.dir / "tmp")
        if not sync:
            self.objects.defer_sync(ref)

    def _runs_mtime(self) -> int:
        return runs_mtime(str(self.dir))

    def read_ref(self, run_id: str) -> str:
        return self.read_ref_origin(run_id)[0]

    def read_ref_origin(self, run_id: str) -> tuple[str, str | None]:
        """A ref is the manifest hash on its first line, then ``from REMOTE`` for a pulled run."""
        try:
            lines = (self.runs_dir / run_id).read_text("utf-8").splitlines()
        except FileNotFoundError:
            pending = self._settle(run_id)  # committed, ref not written yet
            if pending is None:
                raise RunNotFound(f"run {run_id} not found") from None
            return pending[0], None
        except UnicodeDecodeError:
            raise StoreFormatError(f"run ref {run_id} is damaged") from None
        digest = lines[0].strip() if lines else ""
        if not is_hash(digest):
            raise StoreFormatError(f"run ref {run_id} is damaged")
        origin = None
        for line in lines[1:]:
            if line.startswith("from "):
                origin = line[5:].strip() or None
        return digest, origin

    def manifest_hash(self, run_id: str) -> str:
        rows = self.index.query("SELECT manifest FROM runs WHERE id=?", (run_id,))
        return str(rows[0][0]) if rows else self.read_ref(run_id)

    def manifest(self, run_id: str) -> dict[str, Any]:
        digest = self.manifest_hash(run_id)
        try:
            data = self.objects.read_bytes(digest)
        except ObjectMissing:
            pending = self._settle(run_id)  # committed, manifest object not written yet
            if pending is None or pending[0] != digest:
                raise ObjectMissing(f"the manifest of run {run_id} is missing from the store") from None
            data = pending[1]
        return parse_manifest(data)

    def lineage(self, manifest: dict[str, Any], strict: bool = False) -> list[dict[str, Any]]:
        """Every lineage cell of a manifest, its segments read (see :mod:`dotnb.store.lineage`);
        with ``strict``, an unreadable segment raises instead of standing as placeholders."""
        return expand(manifest.get("lineage"), self.objects.read_bytes, strict)

    def pack_lineage(self, cells: list[dict[str, Any]]) -> Any:
        """The stored form of ``cells`` (each with its ``code``), its objects written here."""
        return pack(cells, lambda data: self.objects.put_bytes(data)[0])

    def reconcile(self) -> None:
        """Complete runs left pending (write-ahead records, after a crash or from a
        live kernel) and index runs whose ref exists but whose index row does not."""
        objects = self.index.pending_objects()
        if objects or self.index.has_pending():
            # Best effort: a read-only store is still readable (readers use the records).
            with contextlib.suppress(OSError, sqlite3.Error):
                self._complete_pending(self.index.pending(), objects)
        recorded = self.index.get_meta("runs_mtime")
        if recorded is not None and recorded == str(self._runs_mtime()):
            return
        with self.index.write() as tx:
            self._reconcile_locked(tx)
            self._set_runs_indexed(tx)

    def _set_runs_indexed(self, tx: Any) -> None:
        """Record (under the write lock) that every ref in ``runs/`` has its index row,
        for other processes (the meta row) and for this one's next commit."""
        current = str(self._runs_mtime())
        Index.set_meta(tx, "runs_mtime", current)
        self._runs_indexed = current

    def _reconcile_locked(self, tx: Any) -> None:
        """Index refs that have no index row (under the write lock: refs are only
        created under it, so the ``runs/`` folder holds still meanwhile)."""
        current = str(self._runs_mtime())
        if current == self._runs_indexed:
            return  # unchanged since this process found it indexed: no query needed
        if Index.get_meta_tx(tx, "runs_mtime") == current:
            self._runs_indexed = current
            return
        try:
            names = os.listdir(self.runs_dir)
        except FileNotFoundError:
            return
        known = {r[0] for r in tx.execute("SELECT id FROM runs")}
        for name in names:
            if name in known or name.startswith("."):
                continue
            try:
                digest, origin = self.read_ref_origin(name)
                manifest = parse_manifest(self.objects.read_bytes(digest))
            except Exception:
                continue  # fsck reports damaged refs and manifests
            _index_run(tx, digest, manifest, origin)
        Index.set_meta(tx, "runs_mtime", current)
        self._runs_indexed = current

    def rebuild_index(self) -> int:
        """Drop and rebuild every run row from the manifests; returns the run count."""
        with self.index.write() as tx:
            tx.execute("DELETE FROM runs")
            tx.execute("DELETE FROM metric_values")
            tx.execute("DELETE FROM outputs")
            Index.set_meta(tx, "runs_mtime", "")
            count = 0
            for name in sorted(os.listdir(self.runs_dir)) if self.runs_dir.exists() else []:
                try:
                    digest, origin = self.read_ref_origin(name)
                    manifest = parse_manifest(self.objects.read_bytes(digest))
                except Exception:
                    continue
                _index_run(tx, digest, manifest, origin)
                count += 1
            self._set_runs_indexed(tx)
        return count

    # -- queries -------------------------------------------------------------

    def _run_rows(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return self.index.query(sql, args)

    def changes(self, after_seq: int, limit: int = 200) -> tuple[list[dict[str, Any]], int]:
        """Runs added or updated after the change cursor ``after_seq``; returns (runs, new cursor)."""
        rows = self.index.query(
            "SELECT summary, seq FROM runs WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        )
        cursor = int(rows[-1][1]) if rows else after_seq
        return [json.loads(r[0]) for r in rows], cursor

    def change_cursor(self) -> int:
        rows = self.index.query("SELECT COALESCE(MAX(seq), 0) FROM runs")
        return int(rows[0][0])

    def metric_values(
        self, name: str, notebook: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """One summary metric across runs, oldest first: [{id, number, notebook, started_at, value}]."""
        sql = (
            "SELECT r.id, r.number, r.notebook, r.started_at, r.name, r.status, m.value"
            " FROM metric_values m JOIN runs r ON r.id = m.run_id WHERE m.name=?"
        )
        args: list[Any] = [name]
        if notebook is not None:
            sql += " AND m.notebook=?"
            args.append(notebook)
        sql += " ORDER BY r.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        rows = self.index.query(sql, tuple(args))
        keys = ("id", "number", "notebook", "started_at", "name", "status", "value")
        return [dict(zip(keys, row, strict=True)) for row in reversed(rows)]

    def metric_names(self, notebook: str | None = None) -> list[str]:
        if notebook is None:
            rows = self.index.query("SELECT DISTINCT name FROM metric_values ORDER BY name")
        else:
            rows = self.index.query(
                "SELECT DISTINCT name FROM metric_values WHERE notebook=? ORDER BY name", (notebook,)
            )
        return [str(r[0]) for r in rows]

    def update_manifest(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Replace an existing run's manifest (e.g. to attach the live notebook snapshot).

        The new manifest object is written before the ref and the index row, as for
        a new run; the old manifest object is left for gc.
        """
        run_id = manifest["id"]
        _, origin = self.read_ref_origin(run_id)  # raises RunNotFound
        if origin is not None:
            raise DotnbError(f"run {run_id} was pulled from remote {origin!r} and cannot be changed here")
        with self.index.write() as tx:
            data = canonical_json(manifest)
            digest, _ = self.objects.put_bytes(data)
            self._write_ref(run_id, digest, sync=True)
            summary = _index_run(tx, digest, manifest)
            self._set_runs_indexed(tx)
        return summary

    def import_runs(self, runs: Iterable[tuple[str, bytes, dict[str, Any]]], origin: str) -> list[str]:
        """Add runs pulled from remote ``origin``: (manifest hash, manifest bytes, parsed manifest).

        The caller has checked each manifest (hash, format, paths).  Objects are written
        before refs and refs before the index rows, as for a local run; fsyncs are
        batched at the end.  Runs already here are left alone.  Returns the ids added.
        """
        added: list[str] = []
        with self.index.write() as tx:
            self._reconcile_locked(tx)
            known = {r[0] for r in tx.execute("SELECT id FROM runs")}
            for digest, data, manifest in runs:
                run_id = manifest["id"]
                if run_id in known or (self.runs_dir / run_id).exists():
                    continue
                self.objects.install_bytes(digest, data, sync=False)
                self.runs_dir.mkdir(parents=True, exist_ok=True)
                ref = self.runs_dir / run_id
                text = f"{digest}\nfrom {origin}\n".encode()
                write_bytes(ref, text, sync=False, tmp_dir=self.dir / "tmp")
                self.objects.defer_sync(ref)
                _index_run(tx, digest, manifest, origin)
                known.add(run_id)
                added.append(run_id)
            self.objects.flush()
            self._set_runs_indexed(tx)
        return added

    def producers_of(self, digests: Iterable[str]) -> dict[str, str]:
        """:meth:`producer_of` for many contents at once: content hash -> run id, for
        those some run wrote."""
        found: dict[str, str] = {}
        unique = sorted(set(digests))
        for start in range(0, len(unique), IN_CHUNK):
            chunk = tuple(unique[start : start + IN_CHUNK])
            rows = self.index.query(
                "SELECT o.hash, MAX(o.run_id) FROM outputs o JOIN runs r ON r.id = o.run_id"
                f" WHERE r.kind='run' AND o.hash IN ({','.join('?' * len(chunk))}) GROUP BY o.hash",
                chunk,
            )
            found.update((str(h), str(run_id)) for h, run_id in rows)
        return found

    def producer_of(self, digest: str, before: str | None = None) -> str | None:
        """The newest run (of kind run) that wrote content ``digest`` as an output."""
        sql = "SELECT o.run_id FROM outputs o JOIN runs r ON r.id = o.run_id WHERE o.hash=? AND r.kind='run'"
        args: list[Any] = [digest]
        if before is not None:
            sql += " AND o.run_id < ?"
            args.append(before)
        rows = self.index.query(sql + " ORDER BY o.run_id DESC LIMIT 1", tuple(args))
        return str(rows[0][0]) if rows else None

    def resolve(self, ref: str, notebook: str | None = None) -> str:
        """A full run id from ``ref``: an id, a unique id prefix, ``#N`` or ``latest``."""
        ref = ref.strip()
        if not ref:
            raise RunNotFound("empty run reference")
        if ref == "latest":
            rows = self.list_runs(notebook=notebook, kind="run", limit=1)
            if not rows:
                where = f" for notebook {notebook}" if notebook else ""
                raise RunNotFound(f"no runs recorded{where}")
            return str(rows[0]["id"])
        match = re.fullmatch(r"#?(\d+)", ref) if ref.startswith("#") else None
        if match:
            number = int(match.group(1))
            sql = "SELECT id, notebook, remote, author FROM runs WHERE number=?"
            qargs: list[Any] = [number]
            if notebook is not None:
                sql += " AND notebook=?"
                qargs.append(notebook)
            found = self.index.query(sql, tuple(qargs))
            if not found:
                where = f" in notebook {notebook}" if notebook else ""
                raise RunNotFound(f"no run #{number}{where}")
            if len(found) > 1:
                # Pulled runs keep their author's numbers: '#N' means this store's own run.
                local = [r for r in found if not r[2]]
                if len(local) == 1:
                    return str(local[0][0])
                if len({r[1] for r in found}) > 1:
                    names = ", ".join(sorted({r[1] or "(no notebook)" for r in found}))
                    raise AmbiguousRun(f"#{number} exists in several notebooks ({names}); pass --notebook")
                shown = ", ".join(f"{r[0][:10]} by {r[3] or '?'}" for r in found[:5])
                raise AmbiguousRun(f"#{number} names several pulled runs ({shown}); use an id prefix")
            return str(found[0][0])
        if not id_prefix_ok(ref):
            raise RunNotFound(f"{ref!r} is not a run id, an id prefix, #N or 'latest'")
        prefix = ref.upper()
        matches = self.index.query(
            "SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 11",
            (prefix, prefix + "\x7f"),
        )
        if not matches:
            raise RunNotFound(f"no run matches {ref!r}")
        if len(matches) > 1:
            shown = ", ".join(r[0] for r in matches[:5])
            raise AmbiguousRun(f"{ref!r} matches several runs ({shown}…); use a longer prefix")
        return str(matches[0][0])

    # -- objects referenced by runs -----------------------------------------

    def referenced_objects(self, strict: bool = False) -> dict[str, set[str]]:
        """Every object some run refers to, mapped to the ids of those runs.

        With ``strict``, a run whose ref or manifest cannot be read raises instead
        of being skipped: its objects are unknown, so nothing may be deleted.
        """
        refs: dict[str, set[str]] = {}
        # Runs committed by a live kernel whose manifest is not flushed yet count too:
        # gc must never take the objects of a run that exists only in the index so far.
        # (Their manifest object itself does not exist yet, so it is not listed.)
        for run_id, _, data in self.index.pending():
            with contextlib.suppress(Exception):
                for obj in manifest_objects(parse_manifest(data)):
                    refs.setdefault(obj, set()).add(run_id)
        for name in os.listdir(self.runs_dir) if self.runs_dir.exists() else []:
            try:
                digest = self.read_ref(name)
                refs.setdefault(digest, set()).add(name)
                for obj in manifest_objects(parse_manifest(self.objects.read_bytes(digest))):
                    refs.setdefault(obj, set()).add(name)
            except Exception as exc:
                if strict:
                    raise DotnbError(
                        f"run {name} cannot be read ({exc}), so the objects it uses are unknown "
                        "(run `dotnb fsck`)"
                    ) from None
        return refs


def _flush_at_exit(store: Store) -> None:
    """Flush a store's deferred commits at interpreter exit (what is left is completed
    at the next open anyway); the store is not kept alive for it."""
    import atexit

    ref = weakref.ref(store)

    def flush() -> None:
        live = ref()
        if live is not None:
            with contextlib.suppress(Exception):
                live.flush()

    atexit.register(flush)


def manifest_objects(manifest: dict[str, Any]) -> set[str]:
    """Hashes of every object a manifest refers to."""
    found: set[str] = set()
    for key in ("inputs", "outputs"):
        for entry in manifest.get(key) or []:
            if entry.get("hash"):
                found.add(entry["hash"])
    snap = manifest.get("notebook_snapshot")
    if isinstance(snap, dict) and snap.get("hash"):
        found.add(snap["hash"])
    env = manifest.get("environment") or {}
    if env.get("distributions"):
        found.add(env["distributions"])
    found |= lineage_objects(manifest.get("lineage"))
    return {h for h in found if is_hash(h)}
