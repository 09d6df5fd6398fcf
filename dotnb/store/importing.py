"""Adding runs pulled from a remote to the local store (``dotnb pull``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dotnb.store.index import Index
from dotnb.store.objects import ObjectStore
from dotnb.store.reconcile import Reconciler
from dotnb.store.refs import RunRefs
from dotnb.store.run_rows import index_run


def import_runs(
    index: Index,
    objects: ObjectStore,
    refs: RunRefs,
    reconciler: Reconciler,
    runs: Iterable[tuple[str, bytes, dict[str, Any]]],
    origin: str,
) -> list[str]:
    """Add runs pulled from remote ``origin``: (manifest hash, manifest bytes, parsed manifest).

    The caller has checked each manifest (hash, format, paths).  Objects are written
    before refs and refs before the index rows, as for a local run; fsyncs are
    batched at the end.  Runs already here are left alone.  Returns the ids added.
    """
    added: list[str] = []
    with index.write() as tx:
        reconciler.reconcile_locked(tx)
        known = Index.run_ids_tx(tx)
        for digest, data, manifest in runs:
            run_id = manifest["id"]
            if run_id in known or refs.exists(run_id):
                continue
            objects.install_bytes(digest, data, sync=False)
            refs.write(run_id, digest, sync=False, origin=origin)
            index_run(tx, digest, manifest, origin, load=objects.read_local)
            known.add(run_id)
            added.append(run_id)
        objects.flush()
        reconciler.set_runs_indexed(tx)
    return added
