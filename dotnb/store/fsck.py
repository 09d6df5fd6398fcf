"""Store checks (``dotnb fsck``): every object re-hashed, every run readable and indexed."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dotnb.store import strays
from dotnb.store.errors import DotnbError
from dotnb.store.gc import return_doomed
from dotnb.store.hashing import hash_file
from dotnb.store.index import Index
from dotnb.store.layout import TMP_DIR
from dotnb.store.pack_checks import check_packs, remove_orphan_packs
from dotnb.store.repo import Store
from dotnb.store.trees import is_tree, tree_objects


def fsck(store: Store, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Re-hash every object; report corrupted and missing ones with the runs they affect.

    Objects a killed ``dotnb gc`` left renamed in the tmp folder are put back
    first (see :func:`dotnb.store.gc.return_doomed`).
    """
    returned = return_doomed(store)
    # What runs reference is read before the pending objects and the object files are
    # listed: an object a run referenced then is, later, a pending row or a file (the
    # flush writes files before it drops rows), so a kernel recording meanwhile is
    # never reported missing.  Read after them, a run committed in between would be.
    refs = store.referenced_objects()
    # One consistent view of index rows, refs, write-ahead records and pending objects:
    # refs are installed, and records and pending objects dropped, only in write
    # transactions (dotnb.store.writeahead), so they hold still while this one is open
    # (kernels recording meanwhile wait a few milliseconds).
    with store.index.write() as tx:
        indexed = Index.run_ids_tx(tx)
        on_disk = set(os.listdir(store.runs_dir)) if store.runs_dir.exists() else set()
        pending_runs = Index.pending_run_ids_tx(tx)
        pending_objects = Index.pending_object_ids_tx(tx)
    corrupted: list[str] = []
    checked = 0
    unshared: list[str] = []
    for digest in store.objects.iter_loose():
        path = store.objects.path_for(digest)
        try:
            actual = hash_file(path)[0]
            links = os.stat(path).st_nlink
        except OSError:
            actual, links = None, 1
        if actual != digest:
            corrupted.append(digest)
        elif links > 1 and store.objects.unshare(digest):
            # A restore killed before it settled its checkpoint left the object sharing
            # a user's file (dotnb.store.checkpoint_links): it gets bytes of its own.
            unshared.append(digest)
        checked += 1
        if progress is not None:
            progress(1)
    packs = check_packs(store.objects.packs, progress)
    checked += packs.checked
    corrupted += [d for d in packs.corrupted if d not in set(corrupted)]
    # A kernel's new small objects are rows of its write-ahead records until its flush.
    present = set(store.objects.iter_digests()) | pending_objects
    absent = sorted(d for d in refs if d not in present)
    # A plain pull leaves pulled runs' data on their remote by design: an object
    # only pulled runs use is "on the remote", not missing (`dotnb fsck --remote` checks it).
    pulled = store.queries.pulled_run_ids()
    on_remote = [d for d in absent if refs[d] and refs[d] <= pulled]
    missing = [d for d in absent if d not in set(on_remote)]
    damaged_runs: list[dict[str, str]] = []
    seen: set[str] = set()  # trees read: each once, however many runs share it
    bad_trees: dict[str, str] = {}
    for run_id in sorted(on_disk):
        try:
            manifest = store.manifest(run_id)
        except Exception as exc:
            damaged_runs.append({"run": run_id, "error": str(exc)})
            continue
        error = _tree_error(store, manifest, seen, bad_trees)
        if error is not None:
            damaged_runs.append({"run": run_id, "error": error})
    # A run a live kernel committed moments ago may have no ref yet (its manifest
    # is written by the kernel's background flush): that is not a stale row.
    on_disk |= pending_runs
    unindexed = sorted(on_disk - indexed)
    stale_index = sorted(indexed - on_disk)

    def affected(digests: list[str]) -> list[dict[str, Any]]:
        return [{"object": d, "runs": sorted(refs.get(d, set()))} for d in digests]

    report = {
        "objects_checked": checked,
        "corrupted": affected(corrupted),
        "missing": affected(missing),
        "on_remote": affected(on_remote),
        "damaged_runs": damaged_runs,
        "unindexed_runs": unindexed,
        "stale_index_rows": stale_index,
        "returned_from_interrupted_gc": returned,
        "unshared_objects": unshared,
        # Packs whose index cannot be read: their objects are missing (listed above if used).
        "damaged_packs": packs.damaged,
        # Pack files a killed writer left without their index (no reader sees them); removed.
        "orphan_packs_removed": remove_orphan_packs(store.objects.packs),
        # Temps a killed writer left beside the user's files or in the store's tmp
        # folder: dotnb's own, their process gone; removed.
        "stray_temp_files": [
            os.path.relpath(p, store.root)
            for p in strays.remove(
                strays.strays_under(str(store.root)) + strays.strays_in([str(store.dir / TMP_DIR)])
            )
        ],
    }
    # Each notebook's runs are numbered #1, #2, … by this store: two sharing a number
    # is damage (it takes an id to tell them apart), not something to renumber.
    report["duplicate_numbers"] = duplicates = store.queries.duplicate_numbers()
    report["ok"] = not (
        corrupted or missing or damaged_runs or unindexed or stale_index or duplicates or packs.damaged
    )
    return report


def _tree_error(store: Store, manifest: dict[str, Any], seen: set[str], bad: dict[str, str]) -> str | None:
    """Why a folder's tree of the run cannot be read (missing, corrupted, malformed),
    or None when each can; ``seen`` and ``bad`` carry what earlier runs' trees showed."""
    for key in ("inputs", "outputs"):
        for entry in manifest.get(key) or []:
            if not is_tree(entry):
                continue
            tree = entry["tree"]
            if tree in bad:
                return bad[tree]
            try:
                for _ in tree_objects([entry], store.objects.read_bytes, seen):
                    pass
            except DotnbError as exc:
                bad[tree] = f"folder {entry['path']!r}: {exc}"
                seen.discard(tree)
                return bad[tree]
    return None
