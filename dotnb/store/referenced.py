"""Which objects runs refer to: what gc keeps, what push uploads, what fsck expects."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from dotnb.store.errors import DotnbError
from dotnb.store.hashing import is_hash
from dotnb.store.index import Index
from dotnb.store.lineage import lineage_objects
from dotnb.store.manifest import parse_manifest
from dotnb.store.objects import ObjectStore
from dotnb.store.refs import RunRefs
from dotnb.store.trees import Load, is_tree, tree_objects


def manifest_objects(
    manifest: dict[str, Any], load: Load | None = None, unreadable: list[str] | None = None
) -> set[str]:
    """Hashes of every object a manifest refers to.  ``load`` reads a tree object (see
    :mod:`dotnb.store.trees`): with it, the trees' own trees and files are listed too;
    without it, only the manifest's own trees are.  A tree ``load`` cannot read
    (missing, corrupted, malformed) raises, or with ``unreadable`` is listed itself
    and added to that list (what lies under it is then unknown)."""
    found: set[str] = set()
    for key in ("inputs", "outputs"):
        for entry in manifest.get(key) or []:
            if entry.get("hash"):
                found.add(entry["hash"])
            elif is_tree(entry):
                found.add(entry["tree"])
                if load is not None:
                    try:
                        found.update(tree_objects([entry], load, set()))
                    except DotnbError:
                        if unreadable is None:
                            raise
                        unreadable.append(entry["tree"])
    snap = manifest.get("notebook_snapshot")
    if isinstance(snap, dict) and snap.get("hash"):
        found.add(snap["hash"])
    env = manifest.get("environment") or {}
    if env.get("distributions"):
        found.add(env["distributions"])
    found |= lineage_objects(manifest.get("lineage"))
    amends = manifest.get("amends")  # the manifest an amended one replaced (dotnb.store.chain)
    if isinstance(amends, str):
        found.add(amends)
    return {h for h in found if is_hash(h)}


def referenced_objects(
    index: Index,
    refs: RunRefs,
    objects: ObjectStore,
    read_ref: Callable[[str], str],
    strict: bool = False,
) -> dict[str, set[str]]:
    """Every object some run refers to, mapped to the ids of those runs (``read_ref``:
    a run's manifest hash, as :meth:`Store.read_ref <dotnb.store.repo.Store.read_ref>`
    reads it).

    With ``strict``, a run whose ref or manifest cannot be read raises instead
    of being skipped: its objects are unknown, so nothing may be deleted.
    """
    found: dict[str, set[str]] = {}
    # With strict, a tree that cannot be read raises (what lies under it is unknown);
    # otherwise the tree is listed, so fsck reports it missing or corrupted.
    unreadable: list[str] | None = None if strict else []
    closures: dict[str, set[str]] = {}  # a tree -> every object under it, read once for all runs

    def objects_of(manifest: dict[str, Any]) -> set[str]:
        own = manifest_objects(manifest)  # its own objects and trees, not what is under them
        for key in ("inputs", "outputs"):
            for entry in manifest.get(key) or []:
                if is_tree(entry):
                    tree = entry["tree"]
                    if tree not in closures:
                        closures[tree] = manifest_objects({key: [entry]}, objects.read_bytes, unreadable)
                    own |= closures[tree]
        return own

    # Runs committed by a live kernel whose manifest is not flushed yet count too:
    # gc must never take the objects of a run that exists only in the index so far.
    # (Their manifest object itself does not exist yet, so it is not listed.)
    for run_id, _, data in index.pending():
        with contextlib.suppress(Exception):
            for obj in objects_of(parse_manifest(data)):
                found.setdefault(obj, set()).add(run_id)
    for name in refs.names():
        try:
            digest = read_ref(name)
            found.setdefault(digest, set()).add(name)
            for obj in objects_of(parse_manifest(objects.read_bytes(digest))):
                found.setdefault(obj, set()).add(name)
        except Exception as exc:
            if strict:
                raise DotnbError(
                    f"run {name} cannot be read ({exc}), so the objects it uses are unknown "
                    "(run `dotnb fsck`)"
                ) from None
    return found


def add_kernel_state_objects(
    found: dict[str, set[str]], objects: ObjectStore, states: dict[str, str], strict: bool = False
) -> None:
    """Add the objects of runs' kernel states (``states``: run id → state manifest
    hash, see :mod:`dotnb.store.kernel_state`) to ``found``.  With ``strict``, a state
    whose records cannot be read raises (its objects are unknown); otherwise its
    manifest alone is listed, so fsck reports it missing or corrupted."""
    from dotnb.store.kernel_state import state_objects

    for run_id, digest in states.items():
        try:
            held = state_objects(objects, digest)
        except Exception as exc:
            if strict:
                raise DotnbError(
                    f"the kernel state of run {run_id} cannot be read ({exc}), so the objects it "
                    "uses are unknown (run `dotnb fsck`)"
                ) from None
            held = {digest}
        for obj in held:
            found.setdefault(obj, set()).add(run_id)
