"""Runs' kernel state (:mod:`dotnb.store.kernel_state`) travels only when asked:
``dotnb push --with-kernel-state`` and ``dotnb pull --with-kernel-state``.

Kernel state can be large (every array a notebook held) and private (whatever was in
memory), so a plain push leaves it out.  On a remote a run's state is the
create-only key ``kernel-state/<run id>`` (the hash of its state manifest, as the
local file holds it) and the objects the manifest names, under ``objects/`` like
every other object: deduplicated with the runs' data, each checked against its hash
when it is downloaded.  A pulled state was recorded by someone else: a checkout
loads it only with ``--trust`` (see docs/kernel-state.md).

Push and pull of runs come first (:mod:`dotnb.remote.transfer`); a state goes with
runs the remote already holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dotnb.remote.backend import Backend, open_backend
from dotnb.remote.config import get_remote
from dotnb.remote.parallel import parallel
from dotnb.remote.transfer import fetch_objects
from dotnb.store.hashing import is_hash
from dotnb.store.kernel_state import (
    GROUP_FORMAT,
    STATE_FORMAT,
    group_objects,
    manifest_groups,
    read_document,
    read_state_ref,
    state_objects,
    state_refs,
    write_state_ref,
)
from dotnb.store.layout import KERNEL_STATE_DIR, object_key

if TYPE_CHECKING:
    from dotnb.store.repo import Store

PREFIX = f"{KERNEL_STATE_DIR}/"
# Objects at least this large are uploaded from their file, not read into memory.
STREAM_FROM = 8 * 1024 * 1024


def state_key(run_id: str) -> str:
    return f"{PREFIX}{run_id}"


def push_states(store: Store, remote: str | None = None, runs: list[str] | None = None) -> dict[str, Any]:
    """Upload the kernel state of the runs (default: every run) that the remote holds
    and whose state it lacks: its objects first, then its ``kernel-state`` key."""
    spec = get_remote(store, remote)
    backend = open_backend(spec)
    try:
        local = state_refs(store.dir)
        on_remote = set(store.index.remote_runs(spec["name"]))
        wanted = set(runs) if runs is not None else None
        todo = sorted(r for r in local if r in on_remote and (wanted is None or r in wanted))
        there = {k[len(PREFIX) :] for k in backend.list_keys(PREFIX)} if todo else set()
        todo = [r for r in todo if r not in there]
        digests = sorted({d for r in todo for d in state_objects(store.objects, local[r])})
        sizes = parallel(lambda d: _upload_missing(store, backend, d), digests)
        for run_id in todo:  # after every object it names is there
            backend.write(state_key(run_id), (local[run_id] + "\n").encode(), create_only=True)
        return {
            "kernel_states_pushed": len(todo),
            "kernel_state_objects_uploaded": sum(1 for s in sizes if s is not None),
            "kernel_state_bytes_uploaded": sum(s for s in sizes if s is not None),
        }
    finally:
        backend.close()


def _upload_missing(store: Store, backend: Backend, digest: str) -> int | None:
    """Upload object ``digest`` unless the remote has it; the bytes sent, or None."""
    key = object_key(digest)
    if backend.exists(key):
        return None
    size = store.objects.size(digest)
    path = store.objects.loose_path(digest) if size >= STREAM_FROM else None
    if path is None:
        data = store.objects.read_bytes(digest)  # verified: a corrupted object is never pushed
        backend.write(key, data)
        return len(data)
    backend.upload(str(path), key)
    return size


def pull_states(store: Store, remote: str | None = None) -> dict[str, Any]:
    """Bring the kernel state of the runs this store holds that have one on the remote
    and none here: every object checked against its hash before the run's state key is
    written, so a damaged state is never half there."""
    spec = get_remote(store, remote)
    backend = open_backend(spec)
    try:
        offered = [k[len(PREFIX) :] for k in backend.list_keys(PREFIX)]
        known = set(store.index.remote_runs(spec["name"]))
        todo = [r for r in offered if r in known and read_state_ref(store.dir, r) is None]
        refs = parallel(lambda r: backend.read(state_key(r)), todo)
        pulled, rejected, objects, size = 0, [], 0, 0
        for run_id, data in zip(todo, refs, strict=True):
            digest = (data or b"").decode("ascii", "replace").strip()
            if not is_hash(digest):
                rejected.append({"id": run_id, "reason": "its kernel-state key does not hold a hash"})
                continue
            try:
                got = _fetch_state(store, backend, digest)
            except Exception as exc:  # reported per run; the runs themselves are already pulled
                rejected.append({"id": run_id, "reason": str(exc) or type(exc).__name__})
                continue
            objects, size = objects + got[0], size + got[1]
            write_state_ref(store.dir, run_id, digest)
            pulled += 1
        return {
            "kernel_states_pulled": pulled,
            "kernel_states_rejected": rejected,
            "kernel_state_objects_downloaded": objects,
            "kernel_state_bytes_downloaded": size,
        }
    finally:
        backend.close()


def _fetch_state(store: Store, backend: Backend, digest: str) -> tuple[int, int]:
    """Download a state manifest, its groups and what they name (each verified)."""
    got = fetch_objects(store, [digest], backends=[backend])
    manifest = read_document(store.objects, digest, STATE_FORMAT)
    groups = sorted(manifest_groups(manifest))
    more = fetch_objects(store, groups, backends=[backend])
    names = {d for g in groups for d in group_objects(read_document(store.objects, g, GROUP_FORMAT))}
    rest = fetch_objects(store, names, backends=[backend])
    return got[0] + more[0] + rest[0], got[1] + more[1] + rest[1]


def push_with_states(
    store: Store,
    remote: str | None = None,
    runs: list[str] | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """``dotnb push --with-kernel-state``: the runs, then their kernel state."""
    from dotnb.remote.transfer import push

    result = push(store, remote, runs, progress=progress)
    result.update(push_states(store, remote, runs))
    return result


def pull_with_states(
    store: Store,
    remote: str | None = None,
    with_data: bool = False,
    full: bool = False,
    progress: Any = None,
) -> dict[str, Any]:
    """``dotnb pull --with-kernel-state``: the runs, then their kernel state."""
    from dotnb.remote.transfer import pull

    result = pull(store, remote, with_data=with_data, full=full, progress=progress)
    result.update(pull_states(store, remote))
    return result
