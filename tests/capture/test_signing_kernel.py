"""A real kernel chains its runs and signs them with a real SSH key, in its flush
thread: the cell's run line comes first, the signature a moment later."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dotnb.store import Store
from dotnb.store.settings import ALLOWED_SIGNERS, SIGNING_KEY, set_setting
from dotnb.store.verify import verify_store
from tests.kernel_client import Kernel
from tests.ssh_keys import allowed_signers, make_key

pytestmark = pytest.mark.kernel


def test_a_kernel_chains_and_signs_its_runs_off_the_cells_path(project: Path, tmp_path: Path) -> None:
    key = make_key(tmp_path / "keys", "alice@example.com")
    store = Store.init(project)
    set_setting(store.dir, SIGNING_KEY, str(key.path))
    set_setting(store.dir, ALLOWED_SIGNERS, str(allowed_signers(tmp_path / "allowed", key)))
    store.close()
    kernel = Kernel(project, project / "analysis.ipynb")
    try:
        kernel.ok("%load_ext dotnb")
        runs = [kernel.ok(f"%%track\nx = {i}").run for i in range(3)]
        ids = [r["id"] for r in runs if r is not None]
        assert len(ids) == 3
        store = Store(project)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if all(store.signature(r)["status"] != "unsigned" for r in ids):
                    break
                time.sleep(0.1)
            good = {"status": "good", "signer": "alice@example.com"}
            assert [store.signature(r) for r in ids] == [good] * 3
            writers = [store.manifest(r)["writer"] for r in ids]
            assert [w["seq"] for w in writers] == [1, 2, 3] and len({w["id"] for w in writers}) == 1
            assert [w.get("prev") for w in writers[1:]] == [store.read_ref(r) for r in ids[:2]]
            report = verify_store(store, require_signed=True)
            assert report["ok"] and report["signatures"]["good"] == 3
        finally:
            store.close()
    finally:
        kernel.shutdown()
