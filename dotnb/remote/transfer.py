"""Push, pull and fetch: moving runs between the local store and a remote.

Remote layout (the local store's format, on object storage)::

    format              {"format": N} (see dotnb.store.layout)
    objects/ab/cdef…    blobs named by their BLAKE3 hash (data, notebooks, manifests)
    packs/<name>.pack   many small objects pushed together, and their index
    packs/<name>.idx    (see dotnb.remote.packs)
    runs/<run id>       the run's manifest hash; written once, never replaced
    journal/<id>        one record per push: {"runs": {run id: manifest hash}, …}

Invariants that make push idempotent, resumable and safe with several pushers:

- a push writes a run's objects, then its manifest object, then ``runs/<id>``
  (create-only: an existing ref is never replaced), then a journal record;
- a run counts as pushed only once a journal record names it, so a push killed
  before its journal record is redone, journal included, by the next push;
- objects are content-addressed, so two pushers writing one object write the same bytes.

A pull lists only journal keys newer than its cursor (minus a window for clock
skew between pushers), reads those records and fetches the manifests it lacks;
data objects stay on the remote until something reads them (on demand) or
``--with-data``.  Every downloaded object is hashed before it enters the store.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dotnb.remote.annotation_transfer import pull_annotations, push_annotations
from dotnb.remote.backend import Backend, open_backend
from dotnb.remote.config import get_remote, list_remotes
from dotnb.remote.errors import (
    RemoteEmpty,
    RemoteFormatError,
    RemoteObjectCorrupt,
    RemoteObjectMissing,
    RemoteUnavailable,
)
from dotnb.remote.format import check_remote_format
from dotnb.remote.packs import RemotePacks, fetch_packed, load_remote_packs, push_packed
from dotnb.remote.parallel import parallel
from dotnb.remote.progress import Meter, ProgressFn
from dotnb.remote.progress import TransferProgress as TransferProgress
from dotnb.remote.signature_transfer import fetch_amended, pull_signatures, push_signatures
from dotnb.store.author import user_at_host
from dotnb.store.errors import DotnbError, ObjectCorrupt, PathOutsideRoot, StoreFormatError
from dotnb.store.hashing import hash_bytes, is_hash
from dotnb.store.ids import id_floor, is_run_id, new_run_id, time_ms
from dotnb.store.layout import OBJECTS_DIR, RUNS_PREFIX, object_key, object_of_key, run_key
from dotnb.store.manifest import FORMAT_VERSION, check_format, iso_time, parse_manifest
from dotnb.store.packs import PACK_MIN_OBJECTS, PACK_OBJECT_MAX
from dotnb.store.paths import check_relpath
from dotnb.store.referenced import manifest_objects
from dotnb.store.trees import is_tree, parse_tree

if TYPE_CHECKING:
    from dotnb.store.repo import Store

# Pushers' clocks may disagree: a pull re-lists journal keys this far behind its cursor.
SKEW_WINDOW_MS = 15 * 60 * 1000
# Above this many objects to check, one listing of objects/ beats a request per object.
LIST_INSTEAD_OF_HEAD = 2000
SMALL_OBJECT = 8 * 1024 * 1024


# ---------------------------------------------------------------------------
# push


def push(
    store: Store,
    remote: str | None = None,
    runs: list[str] | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Upload the given runs (default: every run, checkpoints excepted) that the remote lacks."""
    spec = get_remote(store, remote)
    backend = open_backend(spec)
    try:
        result = _push(store, spec, backend, runs, progress)
        result.update(push_annotations(store, backend, spec["name"]))  # tags and notes
        result.update(push_signatures(store, backend, spec["name"]))
        return result
    finally:
        backend.close()


def _push(
    store: Store, spec: dict[str, Any], backend: Backend, runs: list[str] | None, progress: ProgressFn | None
) -> dict[str, Any]:
    name = spec["name"]
    check_remote_format(backend, create=True, notice=store.notice)
    local = store.queries.run_manifests(runs)
    known = store.index.remote_runs(name)
    candidates = {rid: digest for rid, digest in local.items() if known.get(rid) != digest}
    result: dict[str, Any] = {
        "remote": name,
        "url": spec["url"],
        "runs_pushed": 0,
        "runs_already": len(local) - len(candidates),
        "objects_uploaded": 0,
        "bytes_uploaded": 0,
        "conflicts": [],
    }
    if not candidates:
        return result

    # Which runs does the remote already hold (a push killed after its refs)?
    ids = sorted(candidates)
    if len(ids) > LIST_INSTEAD_OF_HEAD:
        # One listing of runs/ instead of a request per run; read only the refs that exist.
        listed = {k[len(RUNS_PREFIX) :] for k in backend.list_keys(RUNS_PREFIX)}
        to_read = [rid for rid in ids if rid in listed]
    else:
        to_read = ids
    read = dict(zip(to_read, parallel(lambda rid: backend.read(run_key(rid)), to_read), strict=True))
    remote_refs = {rid: read.get(rid) for rid in ids}
    to_push: dict[str, str] = {}
    confirmed: dict[str, str] = {}
    for rid in ids:
        ref = remote_refs[rid]
        if ref is None:
            to_push[rid] = candidates[rid]
        elif ref.decode("ascii", "replace").strip() == candidates[rid]:
            confirmed[rid] = candidates[rid]  # pushed before (perhaps by a killed push)
            result["runs_already"] += 1
        else:
            result["conflicts"].append({"id": rid, "reason": _CONFLICT})

    # The objects those runs need: data first, manifests after them.
    manifests = {rid: store.manifest(rid) for rid in to_push}
    data_objects: set[str] = set()
    files: set[str] = set()  # the files' bytes (packable), not trees, code or notebooks
    for manifest in manifests.values():
        # Folders' trees are read here (fetched first for a pulled run pushed elsewhere).
        data_objects |= manifest_objects(manifest, store.objects.read_bytes)
        for key in ("inputs", "outputs"):
            files.update(e["hash"] for e in store.files(manifest, key) if e.get("hash"))
    manifest_hashes = set(to_push.values())
    data_objects -= manifest_hashes
    store.objects.ensure(data_objects | manifest_hashes)  # a pulled run pushed elsewhere
    packed = load_remote_packs(store, backend)
    present = {d for d in data_objects if d in packed}
    present |= _remote_has(backend, sorted((data_objects - present) | manifest_hashes), progress)
    upload_data = sorted(data_objects - present)
    upload_manifests = sorted(manifest_hashes - present)
    sizes = {d: store.objects.size(d) for d in upload_data + upload_manifests}
    meter = Meter(progress, "upload", len(sizes), sum(sizes.values()))
    # Many small files go up as packs (two requests a pack, not one an object);
    # manifests and trees stay objects of their own (a pull reads them first).
    small = [d for d in upload_data if d in files and sizes[d] <= PACK_OBJECT_MAX]
    if len(small) >= PACK_MIN_OBJECTS:
        push_packed(store, backend, small, meter)
        upload_data = sorted(set(upload_data) - set(small))
    for batch in (upload_data, upload_manifests):
        parallel(lambda d: _upload_object(store, backend, d, sizes[d], meter), batch)
    result["objects_uploaded"] = meter.done
    result["bytes_uploaded"] = meter.done_bytes

    # Refs last: a run becomes visible on the remote only once everything it needs is there.
    def write_ref(rid: str) -> tuple[str, bool]:
        digest = to_push[rid]
        if backend.write(run_key(rid), digest.encode() + b"\n", create_only=True):
            return rid, True
        existing = (backend.read(run_key(rid)) or b"").decode("ascii", "replace").strip()
        return rid, existing == digest

    for rid, ok in parallel(write_ref, sorted(to_push)):
        if ok:
            confirmed[rid] = to_push[rid]
            result["runs_pushed"] += 1
        else:
            result["conflicts"].append({"id": rid, "reason": _CONFLICT})
    if confirmed:
        record = {
            "format": FORMAT_VERSION,
            "pushed_at": iso_time(time.time()),
            "by": user_at_host(),
            "runs": confirmed,
        }
        backend.write(
            f"journal/{new_run_id()}", json.dumps(record, sort_keys=True).encode(), create_only=True
        )
        store.index.remote_runs_add(name, confirmed)
    return result


_CONFLICT = (
    "the remote holds another manifest for this run (it was changed here after an earlier push); "
    "pushed runs never change, so the remote keeps its version"
)


def _remote_has(backend: Backend, digests: list[str], progress: ProgressFn | None) -> set[str]:
    if not digests:
        return set()
    if len(digests) > LIST_INSTEAD_OF_HEAD:
        wanted = set(digests)
        found: set[str] = set()
        for key in backend.list_keys(f"{OBJECTS_DIR}/"):
            digest = object_of_key(key)
            if digest in wanted:
                found.add(digest)
        return found
    meter = Meter(progress, "check", len(digests), 0)

    def check(d: str) -> bool:
        ok = backend.exists(object_key(d))
        meter.item()
        return ok

    flags = parallel(check, digests)
    return {d for d, ok in zip(digests, flags, strict=True) if ok}


def _upload_object(store: Store, backend: Backend, digest: str, size: int, meter: Meter) -> None:
    key = object_key(digest)
    path = None if size < SMALL_OBJECT else store.objects.loose_path(digest)
    if path is None:  # small, or packed (packs hold small objects only)
        data = store.objects.read_bytes(digest)  # verified: a corrupted local object is never pushed
        backend.write(key, data)
        meter.add_bytes(len(data))
    else:
        # Large objects stream from disk; fsck verifies them locally, and every
        # reader verifies them again on download.
        backend.upload(path, key, callback=meter.add_bytes)
    meter.item()


# ---------------------------------------------------------------------------
# pull


def pull(
    store: Store,
    remote: str | None = None,
    with_data: bool = False,
    full: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Bring the remote's new runs into the local index; ``with_data`` fetches their objects too."""
    spec = get_remote(store, remote)
    backend = open_backend(spec)
    try:
        result = _pull(store, spec, backend, with_data, full, progress)
        result.update(pull_annotations(store, backend, spec["name"]))  # tags and notes
        return result
    finally:
        backend.close()


def _pull(
    store: Store,
    spec: dict[str, Any],
    backend: Backend,
    with_data: bool,
    full: bool,
    progress: ProgressFn | None,
) -> dict[str, Any]:
    name = spec["name"]
    result: dict[str, Any] = {
        "remote": name,
        "url": spec["url"],
        "runs_new": 0,
        "runs_rejected": [],
        "objects_downloaded": 0,
        "bytes_downloaded": 0,
    }
    if not check_remote_format(backend, create=False):
        raise RemoteEmpty(f"{backend.describe()} holds no dotnb runs yet (nothing has been pushed to it)")
    state_key = f"pull:{name}"
    state = _load_state(store.index.get_meta(state_key))
    if full:
        state = {"cursor": "", "seen": []}
    seen = set(state["seen"])
    start_after = _journal_start(state["cursor"]) if state["cursor"] else None
    keys = [k for k in backend.list_keys("journal/", start_after) if k not in seen]

    offered: dict[str, str] = {}
    records = parallel(lambda k: backend.read(k), keys)
    for key, data in zip(keys, records, strict=True):
        for rid, digest in _parse_record(key, data, result["runs_rejected"]).items():
            offered.setdefault(rid, digest)
    if full:
        # Also runs whose push died before its journal record: the refs are the truth.
        ref_keys = [k for k in backend.list_keys(RUNS_PREFIX) if is_run_id(k[len(RUNS_PREFIX) :])]
        missing_refs = [k for k in ref_keys if k[len(RUNS_PREFIX) :] not in offered]
        for key, data in zip(missing_refs, parallel(backend.read, missing_refs), strict=True):
            digest = (data or b"").decode("ascii", "replace").strip()
            if is_hash(digest):
                offered[key[len(RUNS_PREFIX) :]] = digest

    have = store.index.all_run_ids()
    wanted = {rid: d for rid, d in offered.items() if rid not in have}
    meter = Meter(progress, "manifests", len(wanted), 0)

    def fetch_manifest(rid: str) -> tuple[str, Any]:
        # Network failures propagate (the pull is redone); a bad manifest only rejects its run.
        digest = wanted[rid]
        try:
            data = backend.read(object_key(digest))
            if data is None:
                return rid, "its manifest object is missing on the remote"
            if hash_bytes(data) != digest:
                return rid, "its manifest is corrupted on the remote (bytes do not match the hash)"
            try:
                manifest = parse_manifest(data)
                _check_pulled_manifest(rid, manifest)
            except (StoreFormatError, ValueError) as exc:
                return rid, str(exc)
            return rid, (digest, data, manifest)
        finally:
            meter.item()

    accepted: list[tuple[str, bytes, dict[str, Any]]] = []
    for rid, outcome in parallel(fetch_manifest, sorted(wanted)):
        if isinstance(outcome, str):
            result["runs_rejected"].append({"id": rid, "reason": outcome})
        else:
            accepted.append(outcome)
    # Folders' trees are part of what a run says (which files it read and wrote): they
    # come with its manifest, before it is indexed, and are checked as they arrive.
    accepted = _fetch_trees(store, backend, accepted, result["runs_rejected"], progress)
    fetch_amended(store, backend, [m for _, _, m in accepted])  # what chains and signatures name
    added = store.import_runs(accepted, origin=name)
    result["runs_new"] = len(added)
    result.update(pull_signatures(store, backend, added))
    store.index.remote_runs_add(name, {m["id"]: d for d, _, m in accepted})
    store.index.remote_runs_add(name, {rid: d for rid, d in offered.items() if rid in have})

    if with_data:
        got = fetch_objects(
            store, _objects_of_remote_runs(store, name), backends=[backend], progress=progress
        )
        result["objects_downloaded"], result["bytes_downloaded"] = got

    # The cursor moves only after the runs are in the index: an interrupted pull is redone.
    all_keys = sorted(seen | set(keys))
    if all_keys:
        newest = all_keys[-1]
        floor = _journal_start(newest)
        state = {"cursor": newest, "seen": [k for k in all_keys if k > floor]}
        store.index.put_meta(state_key, json.dumps(state))
    return result


def _fetch_trees(
    store: Store,
    backend: Backend,
    accepted: list[tuple[str, bytes, dict[str, Any]]],
    rejected: list[dict[str, Any]],
    progress: ProgressFn | None,
) -> list[tuple[str, bytes, dict[str, Any]]]:
    """Download the trees of pulled runs (level by level, each hash-checked and parsed
    before its sub-trees are asked for); a run one of whose trees is missing or
    malformed on the remote is rejected, not imported."""
    tops = {
        e["tree"]
        for _, _, manifest in accepted
        for key in ("inputs", "outputs")
        for e in manifest.get(key) or []
        if is_tree(e)
    }
    if not tops:
        return accepted
    bad: dict[str, str] = {}
    level, seen = sorted(tops), set(tops)

    packs = {backend.name: load_remote_packs(store, backend)}

    def fetch(tree: str) -> tuple[str, list[list[Any]] | str]:
        # A tree missing or corrupted on the remote rejects its runs; an unreachable
        # remote fails the pull (it is redone).
        try:
            fetch_objects(store, [tree], backends=[backend], packs=packs)
            return tree, parse_tree(tree, store.objects.read_local(tree))
        except (RemoteObjectMissing, RemoteObjectCorrupt, StoreFormatError, ObjectCorrupt) as exc:
            return tree, str(exc)

    meter = Meter(progress, "trees", len(tops), 0)
    while level:
        following: list[str] = []
        for tree, rows in parallel(fetch, level):
            meter.item()
            if isinstance(rows, str):
                bad[tree] = rows
                continue
            for row in rows:
                if len(row) == 4 and row[1] not in seen:
                    seen.add(row[1])
                    following.append(row[1])
        level = sorted(following)
        meter.total += len(level)
    if not bad:
        return accepted
    kept = []
    for item in accepted:
        manifest = item[2]
        trees = [e["tree"] for key in ("inputs", "outputs") for e in manifest.get(key) or [] if is_tree(e)]
        problem = next((bad[t] for t in trees if t in bad), None)
        if problem is None and any(_under_bad(store, t, bad) for t in trees):
            problem = "one of its folders' trees is missing or malformed on the remote"
        if problem is None:
            kept.append(item)
        else:
            rejected.append({"id": manifest["id"], "reason": problem})
    return kept


def _under_bad(store: Store, tree: str, bad: dict[str, str]) -> bool:
    """Whether a bad tree lies under ``tree`` (whose own object was read)."""
    try:
        rows = parse_tree(tree, store.objects.read_local(tree))
    except DotnbError:
        return True
    return any(len(row) == 4 and (row[1] in bad or _under_bad(store, row[1], bad)) for row in rows)


def _load_state(text: str | None) -> dict[str, Any]:
    try:
        state = json.loads(text) if text else {}
        return {"cursor": str(state.get("cursor") or ""), "seen": list(state.get("seen") or [])}
    except (ValueError, AttributeError):
        return {"cursor": "", "seen": []}


def _journal_start(key: str) -> str:
    """The journal key SKEW_WINDOW_MS before ``key``'s time: listing starts after it."""
    ms = time_ms(key.rsplit("/", 1)[-1])
    return "journal/" if ms is None else "journal/" + id_floor(ms - SKEW_WINDOW_MS)


def _parse_record(key: str, data: bytes | None, rejected: list[dict[str, Any]]) -> dict[str, str]:
    if data is None:
        return {}
    try:
        record = json.loads(data)
        runs = record["runs"]
        check_format(record.get("format", FORMAT_VERSION), f"journal record {key}")
        if not isinstance(runs, dict):
            raise ValueError("'runs' is not an object")
    except StoreFormatError as exc:
        raise RemoteFormatError(str(exc)) from None
    except (ValueError, KeyError, TypeError) as exc:
        rejected.append({"id": key, "reason": f"unreadable journal record ({exc})"})
        return {}
    good: dict[str, str] = {}
    for rid, digest in runs.items():
        if isinstance(rid, str) and is_run_id(rid) and isinstance(digest, str) and is_hash(digest):
            good[rid] = digest
        else:
            rejected.append({"id": str(rid)[:40], "reason": f"malformed entry in journal record {key}"})
    return good


def _check_pulled_manifest(run_id: str, manifest: dict[str, Any]) -> None:
    """Refuse a manifest whose id or paths could mislead or escape the workspace."""
    if manifest.get("id") != run_id:
        raise ValueError(f"its manifest is for another run ({str(manifest.get('id'))[:30]!r})")
    paths: list[Any] = []
    for key in ("inputs", "outputs"):
        entries = manifest.get(key) or []
        if not isinstance(entries, list):
            raise ValueError(f"its {key!r} is not a list")
        for entry in entries:
            if not isinstance(entry, dict):
                raise ValueError(f"an entry of {key!r} is not an object")
            paths.append(entry.get("path"))
            if entry.get("hash") is not None and not is_hash(str(entry.get("hash"))):
                raise ValueError(f"{key} entry {entry.get('path')!r} has an invalid hash")
            if "tree" in entry and not is_hash(str(entry.get("tree"))):
                raise ValueError(f"{key} entry {entry.get('path')!r} has an invalid tree hash")
    paths.extend(manifest.get("absent") or [])
    if manifest.get("notebook"):
        paths.append(manifest["notebook"])
    for rel in paths:
        try:
            check_relpath(rel)
        except PathOutsideRoot as exc:
            raise ValueError(f"unsafe path: {exc}") from None


def _objects_of_remote_runs(store: Store, remote: str) -> list[str]:
    wanted: set[str] = set()
    for rid in sorted(store.queries.pulled_run_ids(remote)):
        try:
            wanted |= manifest_objects(store.manifest(rid), store.objects.read_bytes)
        except DotnbError:
            continue
    return sorted(d for d in wanted if not store.objects.has(d))


# ---------------------------------------------------------------------------
# fetching objects (pull --with-data, and on demand)


def fetch_objects(
    store: Store,
    digests: Iterable[str],
    backends: list[Backend] | None = None,
    progress: ProgressFn | None = None,
    packs: dict[str, RemotePacks] | None = None,
) -> tuple[int, int]:
    """Download the missing objects among ``digests``, trying each backend in turn.

    Returns (objects, bytes) downloaded.  An object found nowhere raises
    ObjectMissing-like RemoteError; a corrupted one raises RemoteObjectCorrupt —
    in both cases no partial or unverified bytes enter the store.  Objects in a
    remote's packs are read by byte ranges (``packs``: the backends' packs, when
    the caller read them already).
    """
    todo = sorted({d for d in digests if is_hash(d) and not store.objects.has(d)})
    if not todo:
        return 0, 0
    own: list[Backend] = []
    if backends is None:
        own = [open_backend(spec) for spec in _remotes_in_order(store)]
        backends = own
    try:
        meter = Meter(progress, "download", len(todo), 0)
        dead: dict[str, str] = {}
        for backend in backends:
            if not todo:
                break
            try:
                known = (packs or {}).get(backend.name) or load_remote_packs(store, backend)
            except RemoteUnavailable as exc:
                dead[backend.name] = str(exc)
                continue
            in_packs = [d for d in todo if d in known]
            if in_packs:
                _fetch_from_packs(store, backend, known, in_packs, meter)
                todo = sorted(set(todo) - set(in_packs))
        parallel(lambda d: _download_object(store, backends, d, meter, dead), todo)
        return meter.done, meter.done_bytes
    finally:
        for b in own:
            b.close()


def _fetch_from_packs(
    store: Store, backend: Backend, packs: RemotePacks, digests: list[str], meter: Meter
) -> None:
    """Store ``digests`` read from the remote's packs: many into one local pack, a few
    as objects of their own."""
    lock = threading.Lock()
    writer = store.objects.new_pack() if len(digests) >= PACK_MIN_OBJECTS else None

    def keep(digest: str, data: bytes) -> None:
        if writer is None:
            store.objects.install_bytes(digest, data)
        else:
            with lock:
                writer.add(digest, data)
        meter.add_bytes(len(data))
        meter.item()

    try:
        fetch_packed(backend, packs, digests, keep)
        if writer is not None:
            writer.finish()
    finally:
        if writer is not None:
            writer.abort()


def _remotes_in_order(store: Store) -> list[dict[str, Any]]:
    remotes = list_remotes(store)
    return sorted(remotes, key=lambda r: (not r["default"], r["name"]))


def _download_object(
    store: Store, backends: list[Backend], digest: str, meter: Meter, dead: dict[str, str]
) -> None:
    """Fetch one object from the first backend that has it.

    A backend that fails (unreachable, credentials) is skipped for the rest of
    this fetch and named in the error if no other backend has the object: a
    reader then reports a missing object (a lineage cell's code shown as
    missing) instead of failing outright while offline.
    """
    for backend in backends:
        if backend.name in dead:
            continue
        fd, tmp = store.objects.new_tempfile()
        os.close(fd)
        try:
            try:
                found = backend.download(object_key(digest), tmp, callback=meter.add_bytes)
            except RemoteUnavailable as exc:
                dead[backend.name] = str(exc)
                found = False
            if not found:
                os.unlink(tmp)
                continue
            try:
                store.objects.install_file(digest, tmp)
            except ObjectCorrupt:
                raise RemoteObjectCorrupt(
                    f"{backend.describe()}: object {digest[:12]} is corrupted there (its bytes do not "
                    "match its name); it was not stored (run `dotnb fsck --remote "
                    f"{backend.name}`)"
                ) from None
            meter.item()
            return
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    names = ", ".join(b.name for b in backends) or "none configured"
    why = "".join(f"; {reason}" for reason in dead.values())
    raise RemoteObjectMissing(f"object {digest[:12]} is missing locally and on the remotes ({names}){why}")
