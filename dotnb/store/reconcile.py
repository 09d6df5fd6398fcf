"""Keeping the index in step with ``runs/``: a ref without its index row (a writer
that crashed between the two, or a run another process committed) is indexed.

Whether ``runs/`` changed is told by its mtime, compared with the one recorded (in the
index's meta table, under the write lock) when every ref was last known indexed, so
a store open that has nothing to index costs a stat and one query.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable

from dotnb.store.index import Index
from dotnb.store.manifest import parse_manifest
from dotnb.store.objects import ObjectStore
from dotnb.store.refs import RunRefs
from dotnb.store.run_rows import index_run


class Reconciler:
    """Indexes refs that have no index row, and rebuilds the run rows."""

    def __init__(
        self,
        index: Index,
        refs: RunRefs,
        objects: ObjectStore,
        read_ref_origin: Callable[[str], tuple[str, str | None]],
    ) -> None:
        self.index = index
        self.refs = refs
        self.objects = objects
        self._read_ref_origin = read_ref_origin
        # The runs/ mtime this process last saw recorded as indexed (see reconcile_locked).
        self.runs_indexed: str | None = None

    def index_refs(self) -> None:
        """Index refs whose index row is missing, unless ``runs/`` is unchanged since
        the index last recorded it indexed."""
        recorded = self.index.get_meta("runs_mtime")
        if recorded is not None and recorded == str(self.refs.mtime()):
            return
        with self.index.write() as tx:
            self.reconcile_locked(tx)
            self.set_runs_indexed(tx)

    def set_runs_indexed(self, tx: sqlite3.Connection) -> None:
        """Record (under the write lock) that every ref in ``runs/`` has its index row,
        for other processes (the meta row) and for this one's next commit."""
        current = str(self.refs.mtime())
        Index.set_meta(tx, "runs_mtime", current)
        self.runs_indexed = current

    def reconcile_locked(self, tx: sqlite3.Connection) -> None:
        """Index refs that have no index row (under the write lock: refs are only
        created under it, so the ``runs/`` folder holds still meanwhile)."""
        current = str(self.refs.mtime())
        if current == self.runs_indexed:
            return  # unchanged since this process found it indexed: no query needed
        if Index.get_meta_tx(tx, "runs_mtime") == current:
            self.runs_indexed = current
            return
        try:
            names = os.listdir(self.refs.dir)
        except FileNotFoundError:
            return
        known = Index.run_ids_tx(tx)
        for name in names:
            if name in known or name.startswith("."):
                continue
            try:
                digest, origin = self._read_ref_origin(name)
                manifest = parse_manifest(self.objects.read_bytes(digest))
            except Exception:
                continue  # fsck reports damaged refs and manifests
            index_run(tx, digest, manifest, origin, load=self.objects.read_bytes)
        Index.set_meta(tx, "runs_mtime", current)
        self.runs_indexed = current

    def rebuild_index(self) -> int:
        """Drop and rebuild every run row from the manifests; returns the run count."""
        with self.index.write() as tx:
            Index.clear_runs(tx)
            count = 0
            for name in sorted(self.refs.names()):
                try:
                    digest, origin = self._read_ref_origin(name)
                    manifest = parse_manifest(self.objects.read_bytes(digest))
                except Exception:
                    continue
                index_run(tx, digest, manifest, origin, load=self.objects.read_bytes)
                count += 1
            self.set_runs_indexed(tx)
        return count
