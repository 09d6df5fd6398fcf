"""Deferred commits: the write-ahead records and the flush that completes them.

A deferred commit (``commit_run(sync=False)``, what a kernel uses, so that a tracked
cell pays for one SQLite transaction and no file creation, see
:mod:`dotnb.store.commit`) writes data objects first, as a synchronous commit does,
except small ones the kernel makes itself (each new cell's code, lineage segments:
:meth:`WriteAhead.stage_bytes`), which are not files yet; then, in one transaction,
the index row, a **write-ahead record** in ``pending_manifests`` (run id, manifest
hash, the canonical manifest bytes) and those small objects in ``pending_objects``.
:meth:`WriteAhead.flush` (the kernel's background thread) then writes the small
objects, writes the manifest object and the ref, fsyncs them all, and only then
deletes the records.  So:

- a crash before the transaction commits leaves no run (only unreferenced
  objects, for gc);
- a crash after it leaves a record, and the next reconcile (every store open)
  writes the missing manifest object and ref from it (:meth:`WriteAhead.complete_recorded`):
  a complete run;
- until then, readers in other processes find the manifest in the record
  (``Store.manifest``, ``Store.read_ref_origin`` complete it on the way,
  :meth:`WriteAhead.settle`), and an object missing from ``objects/`` is written from
  ``pending_objects`` when read (``ObjectStore.pending_source``); every store open
  writes them all.

A record is installed (its ref renamed into place) only under the index's write
lock and only while the run's index row still names that manifest, so a later
``Store.update_manifest`` is never overwritten by a late flush.  Records are not
cache: schema changes and ``rebuild_index`` leave them, and a record whose run lost
its index row is indexed again when it is installed.  The on-disk result (objects,
``runs/<id>``, manifest bytes) is the same as a synchronous commit's.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Sequence

from dotnb.store.hashing import hash_bytes
from dotnb.store.index import Index
from dotnb.store.manifest import canonical_json, parse_manifest
from dotnb.store.objects import ObjectStore
from dotnb.store.reconcile import Reconciler
from dotnb.store.refs import RunRefs
from dotnb.store.run_rows import index_run


class WriteAhead:
    """This process's deferred commits: objects staged for the next one, and the runs
    and objects committed so whose files :meth:`flush` writes."""

    def __init__(self, objects: ObjectStore, index: Index, refs: RunRefs, reconciler: Reconciler) -> None:
        self.objects = objects
        self.index = index
        self.refs = refs
        self.reconciler = reconciler
        # Runs committed with sync=False whose manifest object and ref flush() writes.
        self._pending_runs: list[tuple[str, str, bytes]] = []
        # Objects given to stage_bytes, for the next deferred commit to record, and
        # those committed so, whose files flush() writes.
        self._staged: dict[str, bytes] = {}
        self._pending_objects: list[tuple[str, bytes]] = []
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._flush_at_exit = False
        # Where a renumbered run is told (see rerecord): the store's notice.
        self.notice: Callable[[str], None] = lambda message: None

    # -- staging (before a commit) ---------------------------------------------

    def stage_bytes(self, data: bytes) -> str:
        """Store small ``data`` (a cell's code) with the next deferred commit instead of
        as a file now (a file creation costs a tracked cell about 0.5 ms): the
        commit records it with the run's write-ahead record, and :meth:`flush` writes
        the file.  Returns its hash."""
        digest = hash_bytes(data)
        with self._pending_lock:
            self._staged[digest] = data
        return digest

    def take_staged(self) -> list[tuple[str, bytes]]:
        """The staged objects, for the commit about to be written (see :meth:`unstage`)."""
        with self._pending_lock:
            staged, self._staged = list(self._staged.items()), {}
        return staged

    def unstage(self, staged: list[tuple[str, bytes]]) -> None:
        """A commit failed: its staged objects go with the next one."""
        with self._pending_lock:
            self._staged.update(staged)

    def added(self, run_id: str, digest: str, data: bytes, objects: list[tuple[str, bytes]]) -> None:
        """A write-ahead record (and ``objects``) was committed: have :meth:`flush` complete it."""
        with self._pending_lock:
            self._pending_runs.append((run_id, digest, data))
            self._pending_objects += objects
        if not self._flush_at_exit:
            self._flush_at_exit = True
            _flush_at_exit(self)
            self.index.defer_checkpoints()  # flush() checkpoints, off the cell's path

    # -- flushing ----------------------------------------------------------------

    def flush(self) -> None:
        """Write and fsync what ``sync=False`` deferred: objects, then each pending run's
        manifest object and ref, then drop the runs' write-ahead records.

        Safe to call from any thread, concurrently with commits.  On failure the
        runs stay pending (here and in the index) for the next call.
        """
        with self._flush_lock:
            if self.index.reopen_if_replaced():
                # Its records are in the old file only: write them into the new one
                # first, or the flush would find none and drop the runs.
                self.reconciler.runs_indexed = None
                self._rerecord_locked()
            with self._pending_lock:
                runs, self._pending_runs = self._pending_runs, []
                objects, self._pending_objects = self._pending_objects, []
            try:
                self.complete(runs, objects)
            except BaseException:
                with self._pending_lock:
                    self._pending_runs[:0] = runs
                    self._pending_objects[:0] = objects
                raise
            if runs:
                self.index.checkpoint()

    def rerecord(self) -> None:
        """The index file was deleted or replaced under this process: record again, in
        the one now at its path, the runs and objects this process committed and has
        not flushed (their write-ahead records were in the old file only), with their
        index rows, so that the flush installs them and nobody numbers over them.
        Under the flush lock: a flush cannot take them meanwhile."""
        with self._flush_lock:
            self._rerecord_locked()

    def _rerecord_locked(self) -> None:
        with self._pending_lock:
            runs, objects = list(self._pending_runs), list(self._pending_objects)
        if not runs and not objects:
            return
        renumbered: dict[str, tuple[str, bytes]] = {}
        with self.index.write() as tx:
            self.reconciler.reconcile_locked(tx)
            Index.add_pending_objects(tx, objects)
            for run_id, digest, data in runs:
                if Index.run_manifest_tx(tx, run_id) is None:
                    manifest = parse_manifest(data)
                    if Index.number_taken_tx(tx, manifest.get("notebook") or "", manifest["number"], run_id):
                        # Another process numbered a run from the new file while this
                        # run's record was in the old one only: numbers stay unique, and
                        # this run (whose number its cell showed) takes the next one.
                        old = manifest["number"]
                        manifest["number"] = Index.next_number(tx, manifest.get("notebook") or "")
                        if "writer" in manifest:
                            # The writer's next run may link to the old manifest: kept
                            # (written by the flush) and named, see dotnb.store.chain.
                            manifest["amends"] = digest
                            Index.add_pending_objects(tx, [(digest, data)])
                            with self._pending_lock:
                                self._pending_objects.append((digest, data))
                        data = canonical_json(manifest)
                        digest = hash_bytes(data)
                        renumbered[run_id] = (digest, data)
                        self.notice(
                            f"dotnb: run #{old} of {manifest.get('notebook') or 'no notebook'} is now "
                            f"#{manifest['number']}: the index was replaced while it was recorded, and "
                            f"another run took #{old}"
                        )
                    index_run(tx, digest, manifest, load=self.objects.read_bytes)
                Index.add_pending(tx, run_id, digest, data)
            self.reconciler.set_runs_indexed(tx)
        if renumbered:
            with self._pending_lock:
                self._pending_runs = [
                    (rid, *renumbered[rid]) if rid in renumbered else (rid, d, b)
                    for rid, d, b in self._pending_runs
                ]

    def has_pending_sync(self) -> bool:
        with self._pending_lock:
            if self._pending_runs or self._pending_objects:
                return True
        return self.objects.has_pending()

    def complete_recorded(self) -> None:
        """Complete every write-ahead record in the index (of any process: after a
        crash, or from a live kernel), best effort: a read-only store is still
        readable (readers use the records)."""
        objects = self.index.pending_objects()
        if objects or self.index.has_pending():
            with contextlib.suppress(OSError, sqlite3.Error):
                self.complete(self.index.pending(), objects)

    def complete(self, runs: list[tuple[str, str, bytes]], objects: Sequence[tuple[str, bytes]] = ()) -> None:
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
        self.refs.make_dirs()
        temps: dict[str, str] = {}
        try:
            for run_id, digest, _ in written:
                temps[run_id] = self.refs.write_temp(digest)
            self.objects.flush(whole_filesystem=len(written) >= 4)
            installed = []
            for start in range(0, len(written), 8):
                with self.index.write() as tx:
                    self.reconciler.reconcile_locked(tx)
                    for run_id, digest, data in written[start : start + 8]:
                        record = Index.pending_manifest_tx(tx, run_id)
                        row = Index.run_manifest_tx(tx, run_id)
                        # Neither a record nor a row nor a ref: the index file was replaced
                        # since this flush began (flush() re-records first), not completed
                        # by another process; the run is installed all the same.
                        lost = record is None and row is None and not self.refs.exists(run_id)
                        if not lost and (record != digest or (row is not None and row != digest)):
                            continue  # completed by another process, or replaced since
                        self.refs.install(temps.pop(run_id), run_id)
                        if row is None:  # the index was rebuilt or dropped meanwhile
                            index_run(tx, digest, parse_manifest(data), load=self.objects.read_bytes)
                        installed.append(run_id)
                    self.reconciler.set_runs_indexed(tx)
            if installed:
                self.refs.sync_folder()
            self.index.drop_pending([(run_id, digest) for run_id, digest, _ in written])
        finally:
            for tmp in temps.values():
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    # -- readers -------------------------------------------------------------------

    def settle_objects(self, digests: list[str]) -> None:
        """Write, synced, the objects among ``digests`` that are still pending in some
        process's write-ahead records (readers call this for a missing object)."""
        with contextlib.suppress(OSError, sqlite3.Error):
            for _, data in self.index.pending_objects(digests):
                self.objects.put_bytes(data)  # an object already there is only touched

    def settle(self, run_id: str) -> tuple[str, bytes] | None:
        """A run still pending in any process: its (manifest hash, manifest bytes),
        after writing its manifest object and ref if the store is writable."""
        found = self.index.pending(run_id)
        if not found:
            return None
        with contextlib.suppress(OSError, sqlite3.Error):
            self.complete(found)
        return found[0][1], found[0][2]


def _flush_at_exit(pending: WriteAhead) -> None:
    """Flush deferred commits at interpreter exit (what is left is completed at the
    next open anyway); the store is not kept alive for it."""
    import atexit

    ref = weakref.ref(pending)

    def flush() -> None:
        live = ref()
        if live is not None:
            with contextlib.suppress(Exception):
                live.flush()

    atexit.register(flush)
