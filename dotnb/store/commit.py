"""Recording runs: numbering a run, writing its manifest, ref and index row.

Write order for a run: data objects, then the manifest object, then the ref,
then the index row — so a crash at any point leaves a complete run or none.  A
ref without its index row (a crash between the two) is picked up by the next
reconcile (:mod:`dotnb.store.reconcile`).  A deferred commit (``sync=False``,
what a kernel uses) writes the index row and a write-ahead record instead of the
manifest object and the ref: see :mod:`dotnb.store.writeahead`.

A new run's deferred commit does not take the write lock first: the process
numbers it after the last number it knows of for its notebook and writes the
index row and the record in one SQLite statement (:meth:`Index.insert_new_run`),
which checks in the same transaction that no run of the notebook has that number
or a higher one.  When another process numbered a run meanwhile, or ``runs/``
changed since this process found it indexed, the commit is done under the write
lock as above: numbers stay unique per notebook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import chain
from typing import TYPE_CHECKING, Any

from dotnb.store.chain import WriterChain
from dotnb.store.errors import DotnbError
from dotnb.store.hashing import hash_bytes
from dotnb.store.ids import new_run_id
from dotnb.store.index import Index
from dotnb.store.lineage import manifest_bytes
from dotnb.store.manifest import FORMAT_VERSION, canonical_json
from dotnb.store.objects import ObjectStore
from dotnb.store.reconcile import Reconciler
from dotnb.store.refs import RunRefs
from dotnb.store.run_rows import (
    index_run,
    input_rows,
    output_rows,
    run_summary,
    search_text,
    tree_members,
)
from dotnb.store.trees import FolderRows, TreeMemo, block_entries, fold, is_tree
from dotnb.store.vocabulary import RUN
from dotnb.store.writeahead import WriteAhead

if TYPE_CHECKING:
    from dotnb.store.index import InputRow


class Committer:
    """Commits runs to a store (see the module docstring)."""

    def __init__(
        self,
        objects: ObjectStore,
        index: Index,
        refs: RunRefs,
        reconciler: Reconciler,
        writeahead: WriteAhead,
        read_ref_origin: Callable[[str], tuple[str, str | None]],
        before_write: Callable[[], None] = lambda: None,
    ) -> None:
        self.objects = objects
        self.index = index
        self.refs = refs
        self.reconciler = reconciler
        self.writeahead = writeahead
        self._read_ref_origin = read_ref_origin
        # Called before anything is written: brings the store's format up to date.
        self._before_write = before_write
        # The last number this process gave or saw given to a run, per notebook: the
        # next run's number without a query (checked when it is written, _commit_new).
        self._last_numbers: dict[str, int] = {}
        # Set by a kernel: a token that stays equal while nothing in runs/ changes (an
        # inotify watch), or None when it cannot tell; _commit_new then skips a stat.
        self.runs_watch: Callable[[], object] | None = None
        self._runs_watch_seen: object = None
        # Trees this process stored, by their rows: an unchanged folder is not encoded
        # and hashed again (see dotnb.store.trees.fold).
        self._tree_memo: TreeMemo = {}
        # This process's chain of runs (dotnb.store.chain), and the runs it committed
        # whose manifest hash is still to be signed (dotnb.store.signing, off the path).
        self.chain = WriterChain()
        self.to_sign: list[tuple[str, str]] = []

    def commit_run(
        self,
        manifest: dict[str, Any],
        sync: bool = True,
        lineage_json: bytes | None = None,
        input_blocks: Mapping[str, FolderRows] | None = None,
    ) -> dict[str, Any]:
        """Number, store and index a run manifest; returns its log summary.

        ``manifest`` must already reference objects that are in the store.
        ``lineage_json``, when given, is the canonical JSON of its ``lineage``
        (see :func:`dotnb.store.lineage.manifest_bytes`).  With
        ``sync=False`` only the index row and the write-ahead record are written
        now (one transaction, no file created); the manifest object and the ref
        are written and fsynced by :meth:`WriteAhead.flush`, which the kernel calls
        from a background thread (see :mod:`dotnb.store.writeahead`).

        ``input_blocks`` adds inputs given a folder at a time (plain files, none of
        them among the manifest's inputs: see :class:`~dotnb.store.trees.FolderRows`);
        they end up in the manifest's trees, or as file entries where their folder
        does not become one.

        A new run is linked into this process's chain (:mod:`dotnb.store.chain`)
        under the chain's lock, so two threads never give one link twice.
        """
        with self.chain.lock:
            writer = self.chain.link(manifest)
            try:
                summary = self._commit_run(manifest, sync, lineage_json, input_blocks or {})
            except BaseException:
                if writer is not None:
                    del manifest["writer"]
                raise
            digest = summary.pop("_manifest_hash")
            self.chain.advance(writer, digest)
            if writer is not None:
                self.to_sign.append((manifest["id"], digest))
        return summary

    def _commit_run(
        self,
        manifest: dict[str, Any],
        sync: bool,
        lineage_json: bytes | None,
        input_blocks: Mapping[str, FolderRows],
    ) -> dict[str, Any]:
        if self.index.reopen_if_replaced():
            # Another process deleted or replaced the index: what this process knew of
            # it (numbers, runs/ indexed) is about a file nobody else reads.
            self.forget_numbers()
            # This process's unflushed runs were recorded in the old file only.
            self.writeahead.rerecord()
        self._before_write()
        manifest.setdefault("format", FORMAT_VERSION)
        # The outputs' rows come from every file, before folders become trees.
        outputs = output_rows(manifest, self.objects.read_bytes)  # a copied run may hold trees
        files_read = list(manifest.get("inputs") or [])
        self._fold_trees(manifest, input_blocks)
        # Inputs: one row per tree, not per file; a tree's files are listed once per tree
        # (a folder read unchanged run after run adds one row per run).
        inputs = input_rows(manifest)
        blocks_read = (e for folder, block in input_blocks.items() for e in block_entries(folder, block))
        trees = tree_members(
            manifest, self.index.has_tree_members, self.objects.read_bytes, chain(files_read, blocks_read)
        )
        outputs += [(e["tree"], e["path"]) for e in manifest.get("outputs") or [] if is_tree(e)]
        new = "id" not in manifest  # an id made here is in no index row yet
        if new:
            manifest["id"] = new_run_id()
        manifest.setdefault("kind", RUN)
        notebook = manifest.get("notebook") or ""
        run_id = manifest["id"]
        # A folder read for the first time lists its files' hashes: that many rows go through
        # executemany under the write lock (the one-statement path would parse them per row).
        if not sync and new and not trees:
            summary = self._commit_new(manifest, notebook, lineage_json, outputs, inputs)
            if summary is not None:
                return summary
        writeahead = self.writeahead
        staged = writeahead.take_staged()
        try:
            if sync:
                for _, blob in staged:
                    self.objects.put_bytes(blob)
            with self.index.write() as tx:
                self.reconciler.reconcile_locked(tx)
                manifest["number"] = Index.next_number(tx, notebook)
                data = manifest_bytes(manifest, lineage_json)
                if sync:
                    digest, _ = self.objects.put_bytes(data)
                    self.refs.write(run_id, digest, sync=True)
                    summary = index_run(
                        tx, digest, manifest, new=new, outputs=outputs, inputs=inputs, trees=trees
                    )
                    self.reconciler.set_runs_indexed(tx)
                else:
                    digest = hash_bytes(data)
                    summary = index_run(
                        tx, digest, manifest, new=new, outputs=outputs, inputs=inputs, trees=trees
                    )
                    Index.add_pending_objects(tx, staged)
                    Index.add_pending(tx, run_id, digest, data)
        except BaseException:
            writeahead.unstage(staged)
            raise
        self._last_numbers[notebook] = manifest["number"]
        if not sync:
            writeahead.added(run_id, digest, data, staged)
        return {**summary, "_manifest_hash": digest}

    def forget_numbers(self) -> None:
        """Drop what this process knew of the index (numbers given, runs/ indexed): the
        file it learned them from was replaced."""
        self._last_numbers.clear()
        self._runs_watch_seen = None
        self.reconciler.runs_indexed = None

    def _fold_trees(self, manifest: dict[str, Any], input_blocks: Mapping[str, FolderRows]) -> None:
        """Record folders of many files as trees (see :mod:`dotnb.store.trees`): the
        tree objects are staged with the commit, as cells' code is, unless the store
        has them already (an unchanged folder: its tree's mtime is refreshed)."""
        writeahead, objects = self.writeahead, self.objects

        def put(data: bytes) -> str:
            digest = hash_bytes(data)
            if not objects.reuse(digest):
                writeahead.stage_bytes(data)
            return digest

        for key in ("inputs", "outputs"):
            entries = manifest.get(key)
            blocks = input_blocks if key == "inputs" else None
            if entries or blocks:
                manifest[key] = fold(entries or [], put, objects.reuse, self._tree_memo, blocks)

    def _commit_new(
        self,
        manifest: dict[str, Any],
        notebook: str,
        lineage_json: bytes | None,
        outputs: list[tuple[str, str]],
        inputs: list[InputRow],
    ) -> dict[str, Any] | None:
        """``commit_run(sync=False)`` of a run with a fresh id without taking the write
        lock first: numbered after the last number this process knows of for the
        notebook, and written by :meth:`Index.insert_new_run`, which checks in the
        same transaction that the number is still free.  None (nothing written, the
        manifest's number to be set again) when it is not, or when ``runs/`` changed
        since this process found it indexed (a ref without its index row may hold a
        number: :meth:`Reconciler.reconcile_locked` indexes it under the lock first);
        that is a stat of ``runs/``, skipped while ``runs_watch`` reports no change."""
        watch = self.runs_watch
        token = watch() if watch is not None else None
        if token is None or token != self._runs_watch_seen:
            indexed = self.reconciler.runs_indexed
            if indexed is None or indexed != str(self.refs.mtime()):
                return None
            self._runs_watch_seen = token  # read before the stat: a change since shows next time
        last = self._last_numbers.get(notebook)
        if last is None:
            last = self.index.last_number(notebook)
        manifest["number"] = last + 1
        data = manifest_bytes(manifest, lineage_json)
        digest = hash_bytes(data)
        summary = run_summary(manifest)
        writeahead = self.writeahead
        staged = writeahead.take_staged()
        try:
            done = self.index.insert_new_run(
                digest, summary, search_text(manifest), outputs, data, staged, inputs
            )
        except BaseException:
            writeahead.unstage(staged)
            raise
        if not done:
            writeahead.unstage(staged)
            self._last_numbers.pop(notebook, None)
            return None
        self._last_numbers[notebook] = last + 1
        writeahead.added(manifest["id"], digest, data, staged)
        return {**summary, "_manifest_hash": digest}

    def update_manifest(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Replace an existing run's manifest (e.g. to attach the live notebook snapshot).

        The new manifest object is written before the ref and the index row, as for
        a new run.  A chained run's new manifest names the one it replaces in
        ``amends`` (kept: the writer's next run links to it, see
        :mod:`dotnb.store.chain`); an unchained run's old manifest is left for gc.
        """
        run_id = manifest["id"]
        old_digest, origin = self._read_ref_origin(run_id)  # raises RunNotFound
        if origin is not None:
            raise DotnbError(f"run {run_id} was pulled from remote {origin!r} and cannot be changed here")
        if "writer" in manifest:
            manifest["amends"] = old_digest
        self._before_write()
        with self.index.write() as tx:
            data = canonical_json(manifest)
            digest, _ = self.objects.put_bytes(data)
            self.refs.write(run_id, digest, sync=True)
            summary = index_run(tx, digest, manifest, load=self.objects.read_bytes)
            self.reconciler.set_runs_indexed(tx)
        return summary
