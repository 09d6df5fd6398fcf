"""``dotnb fsck --remote``: check a remote as ``dotnb fsck`` checks the local store.

Every object is downloaded and re-hashed (nothing is stored locally); every run
ref must name a readable manifest whose objects are all present.  Runs whose
push died before its journal record are listed as a warning: the next push of
them, or ``dotnb pull --full``, completes them.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from dotnb.remote.backend import Backend, open_backend
from dotnb.remote.config import get_remote
from dotnb.remote.errors import RemoteEmpty
from dotnb.remote.format import check_remote_format
from dotnb.remote.packs import check_remote_packs, load_remote_packs, read_packed
from dotnb.remote.parallel import parallel
from dotnb.remote.progress import Meter, ProgressFn
from dotnb.remote.transfer import SMALL_OBJECT
from dotnb.store.errors import DotnbError, ObjectCorrupt, ObjectMissing
from dotnb.store.hashing import hash_bytes, hash_file, is_hash
from dotnb.store.ids import is_run_id
from dotnb.store.layout import OBJECTS_DIR, RUNS_PREFIX, object_key, object_of_key
from dotnb.store.manifest import parse_manifest
from dotnb.store.referenced import manifest_objects

if TYPE_CHECKING:
    from dotnb.store.repo import Store


def fsck_remote(
    store: Store, remote: str | None = None, progress: ProgressFn | None = None
) -> dict[str, Any]:
    spec = get_remote(store, remote)
    backend = open_backend(spec)
    try:
        return _fsck(store, spec, backend, progress)
    finally:
        backend.close()


def _fsck(
    store: Store, spec: dict[str, Any], backend: Backend, progress: ProgressFn | None
) -> dict[str, Any]:
    if not check_remote_format(backend, create=False):
        raise RemoteEmpty(f"{backend.describe()} holds no dotnb store (nothing has been pushed to it)")
    objects: dict[str, int] = {}
    for key, size in backend.list_sized(f"{OBJECTS_DIR}/"):
        digest = object_of_key(key)
        if digest is not None and is_hash(digest):
            objects[digest] = size

    meter = Meter(progress, "check", len(objects), sum(objects.values()))

    def rehash(digest: str) -> bool:
        try:
            if objects[digest] < SMALL_OBJECT:
                data = backend.read(object_key(digest))
                ok = data is not None and hash_bytes(data) == digest
            else:
                fd, tmp = store.objects.new_tempfile()
                os.close(fd)
                try:
                    ok = backend.download(object_key(digest), tmp) and hash_file(tmp)[0] == digest
                finally:
                    os.unlink(tmp)
            meter.add_bytes(objects[digest])
            return ok
        finally:
            meter.item()

    digests = sorted(objects)
    corrupted = [d for d, ok in zip(digests, parallel(rehash, digests), strict=True) if not ok]
    packs = load_remote_packs(store, backend)
    packed_meter = Meter(progress, "check packs", len(packs.where), 0)

    def counted(n: int) -> None:
        packed_meter.add_bytes(n)
        packed_meter.item()

    corrupted += [d for d in check_remote_packs(backend, packs, counted) if d not in objects]

    ref_keys = [k for k in backend.list_keys(RUNS_PREFIX) if is_run_id(k[len(RUNS_PREFIX) :])]
    ref_ids = [k[len(RUNS_PREFIX) :] for k in ref_keys]
    journaled: set[str] = set()
    for data in parallel(backend.read, list(backend.list_keys("journal/"))):
        try:
            journaled |= set(json.loads(data or b"{}").get("runs") or {})
        except (ValueError, AttributeError):
            continue

    refs: dict[str, set[str]] = {}
    damaged: list[dict[str, str]] = []

    def read_tree(digest: str) -> bytes:
        data = backend.read(object_key(digest))
        if data is None:
            data = read_packed(backend, packs, digest)
        if data is None:
            raise ObjectMissing(f"tree {digest[:12]} is missing on the remote")
        if hash_bytes(data) != digest:
            raise ObjectCorrupt(f"tree {digest[:12]} is corrupted on the remote")
        return data

    def read_run(key: str) -> tuple[str, Any]:
        rid = key[len(RUNS_PREFIX) :]
        digest = (backend.read(key) or b"").decode("ascii", "replace").strip()
        if not is_hash(digest):
            return rid, "its ref is damaged"
        data = backend.read(object_key(digest))
        if data is None:
            return rid, f"its manifest object {digest[:12]} is missing"
        if hash_bytes(data) != digest:
            return rid, f"its manifest object {digest[:12]} is corrupted"
        try:
            manifest = parse_manifest(data)
        except DotnbError as exc:
            return rid, str(exc)
        # Folders' trees are read from the remote; one that cannot be read is listed
        # itself (and so reported missing or corrupted), what lies under it unknown.
        return rid, {digest} | manifest_objects(manifest, read_tree, unreadable=[])

    for rid, outcome in parallel(read_run, ref_keys):
        if isinstance(outcome, str):
            damaged.append({"run": rid, "error": outcome})
            continue
        for digest in outcome:
            refs.setdefault(digest, set()).add(rid)
    missing = sorted(d for d in refs if d not in objects and d not in packs)

    def affected(items: list[str]) -> list[dict[str, Any]]:
        return [{"object": d, "runs": sorted(refs.get(d, set()))} for d in items]

    report: dict[str, Any] = {
        "remote": spec["name"],
        "url": spec["url"],
        "objects_checked": len(objects) + len(set(packs.where) - set(objects)),
        "runs_checked": len(ref_keys),
        "corrupted": affected(corrupted),
        "missing": affected(missing),
        "damaged_runs": damaged,
        "damaged_packs": [{"pack": name, "error": why} for name, why in sorted(packs.damaged.items())],
        "unjournaled_runs": sorted(rid for rid in ref_ids if rid not in journaled),
        "unindexed_runs": [],
        "stale_index_rows": [],
    }
    report["ok"] = not (corrupted or missing or damaged or packs.damaged)
    return report
