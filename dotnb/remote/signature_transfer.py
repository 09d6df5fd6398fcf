"""Runs' signatures travel with push and pull (see :mod:`dotnb.store.signing`).

On a remote a run's signature is the create-only key ``signatures/<run id>``,
holding the same bytes as the local file.  A push writes the signature of every
run the remote holds that lacks one there (one listing of ``signatures/``; a run
pushed before its kernel signed it gets its signature with the next push).  A
pull stores the signature of each run it brings, as it came, and checks it: a
signature that fails is kept (the run reads as ``bad`` everywhere) and listed in
the pull's result, never accepted in silence.  Pulled runs' amended manifests
(:mod:`dotnb.store.chain`) come along, so a chain and a signature made over the
manifest a kernel recorded can be checked here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dotnb.remote.backend import Backend
from dotnb.remote.parallel import parallel
from dotnb.store.errors import DotnbError
from dotnb.store.hashing import hash_bytes
from dotnb.store.ids import is_run_id
from dotnb.store.layout import SIGNATURES_DIR, object_key
from dotnb.store.manifest import parse_manifest
from dotnb.store.signing import BAD, read_signature, write_signature

if TYPE_CHECKING:
    from dotnb.store.repo import Store

PREFIX = f"{SIGNATURES_DIR}/"


def signature_key(run_id: str) -> str:
    return f"{PREFIX}{run_id}"


def push_signatures(store: Store, backend: Backend, remote: str) -> dict[str, int]:
    """Write the local signature of each run the remote holds that lacks one there."""
    folder = store.dir / SIGNATURES_DIR
    if not folder.is_dir():
        return {"signatures_pushed": 0}
    local = {p.name for p in folder.iterdir() if is_run_id(p.name)}
    on_remote = set(store.index.remote_runs(remote))
    todo = sorted(local & on_remote)
    if not todo:
        return {"signatures_pushed": 0}
    there = {k[len(PREFIX) :] for k in backend.list_keys(PREFIX)}
    todo = [rid for rid in todo if rid not in there]

    def upload(run_id: str) -> bool:
        data = read_signature(store.dir, run_id)
        return data is not None and backend.write(signature_key(run_id), data, create_only=True)

    return {"signatures_pushed": sum(1 for ok in parallel(upload, todo) if ok)}


def pull_signatures(store: Store, backend: Backend, run_ids: list[str]) -> dict[str, Any]:
    """Store the signatures of the pulled runs ``run_ids`` and check them; the runs whose
    signature fails are listed in ``bad_signatures``."""
    datas = parallel(lambda rid: backend.read(signature_key(rid)), run_ids)
    checker = store.signature_checker()
    bad: list[dict[str, str]] = []
    pulled = 0
    for run_id, data in zip(run_ids, datas, strict=True):
        if data is None:
            continue
        write_signature(store.dir, run_id, data)  # kept as it came, good or bad
        pulled += 1
        try:
            found = store.signature(run_id, checker=checker)
        except DotnbError as exc:
            found = {"status": BAD, "reason": str(exc)}
        if found["status"] == BAD:
            bad.append({"id": run_id, "reason": found.get("reason") or "the signature fails"})
    return {"signatures_pulled": pulled, "bad_signatures": bad}


def fetch_amended(store: Store, backend: Backend, manifests: list[dict[str, Any]]) -> None:
    """Bring the manifests the pulled ``manifests`` amend (each checked against its hash);
    one that is missing or damaged there is left for ``dotnb verify`` to report."""
    todo = [m["amends"] for m in manifests if isinstance(m.get("amends"), str)]
    seen: set[str] = set()
    while todo:
        todo = [d for d in todo if d not in seen and not store.objects.has(d)]
        seen.update(todo)
        datas = parallel(lambda d: backend.read(object_key(d)), todo)
        following = []
        for digest, data in zip(todo, datas, strict=True):
            if data is None or hash_bytes(data) != digest:
                continue
            store.objects.install_bytes(digest, data)
            try:
                amends = parse_manifest(data).get("amends")
            except DotnbError:
                continue
            if isinstance(amends, str):
                following.append(amends)
        todo = following
