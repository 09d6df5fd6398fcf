"""``dotnb verify --remote NAME``: the remote's runs checked as ``dotnb verify`` checks
the local store (:mod:`dotnb.store.verify`): every manifest re-hashed, every
writer's chain walked, every signature checked against this store's
allowed-signers file.  Nothing is stored locally.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dotnb.remote.backend import open_backend
from dotnb.remote.config import get_remote
from dotnb.remote.errors import RemoteEmpty
from dotnb.remote.format import check_remote_format
from dotnb.remote.packs import load_remote_packs, read_packed
from dotnb.remote.parallel import parallel
from dotnb.remote.signature_transfer import signature_key
from dotnb.store.ids import is_run_id
from dotnb.store.layout import RUNS_PREFIX, object_key
from dotnb.store.verify import verify_runs

if TYPE_CHECKING:
    from dotnb.store.repo import Store


def verify_remote(store: Store, remote: str | None, require_signed: bool = False) -> dict[str, Any]:
    spec = get_remote(store, remote)
    backend = open_backend(spec)
    try:
        if not check_remote_format(backend, create=False):
            raise RemoteEmpty(f"{backend.describe()} holds no dotnb store (nothing has been pushed to it)")
        packs = load_remote_packs(store, backend)
        ids = sorted(
            k[len(RUNS_PREFIX) :] for k in backend.list_keys(RUNS_PREFIX) if is_run_id(k[len(RUNS_PREFIX) :])
        )

        def read_ref(run_id: str) -> str | None:
            data = backend.read(f"{RUNS_PREFIX}{run_id}")
            return None if data is None else data.decode("ascii", "replace").strip()

        def read_object(digest: str) -> bytes | None:
            data = backend.read(object_key(digest))
            return data if data is not None else read_packed(backend, packs, digest)

        refs = list(zip(ids, parallel(read_ref, ids), strict=True))
        report = verify_runs(
            refs,
            read_object,
            lambda run_id: backend.read(signature_key(run_id)),
            store.signature_checker(),
            require_signed=require_signed,
            map_runs=parallel,
        )
    finally:
        backend.close()
    return {"where": f"remote {spec['name']}", "remote": spec["name"], "url": spec["url"], **report}
