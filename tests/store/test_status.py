"""dotnb.store.status: a run's recorded files compared with the files on disk now
(the sidebar's "unchanged / modified / missing on disk")."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from dotnb.store import Store
from dotnb.store.hashing import hash_bytes
from dotnb.store.status import file_status
from tests.manifests import new_manifest


def record(store: Store, root: Path, **fields: Any) -> dict[str, Any]:
    summary = store.commit_run(new_manifest("nb.ipynb", **fields))
    return store.manifest(summary["id"])


def states(store: Store, manifest: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(f["role"], f["path"]): f["state"] for f in file_status(store, manifest)}


def test_same_modified_missing_and_not_stored(store: Store, tmp_path: Path) -> None:
    for name, text in (("a.csv", "a"), ("b.csv", "b"), ("c.csv", "c"), ("nb.ipynb", "{}")):
        (tmp_path / name).write_text(text)
    entries = store.snapshot_files(["a.csv", "b.csv", "c.csv"])
    nb_hash, nb_size = store.objects.put_file(tmp_path / "nb.ipynb")
    manifest = record(
        store,
        tmp_path,
        inputs=[entries[0], {"path": "big.bin", "hash": None, "size": 10, "skipped": "too large"}],
        outputs=entries[1:],
        notebook_snapshot={"hash": nb_hash, "size": nb_size},
    )
    (tmp_path / "b.csv").write_text("changed")
    os.unlink(tmp_path / "c.csv")
    (tmp_path / "big.bin").write_bytes(b"x" * 10)
    assert states(store, manifest) == {
        ("input", "a.csv"): "same",
        ("input", "big.bin"): "not-stored",
        ("output", "b.csv"): "modified",
        ("output", "c.csv"): "missing",
        ("notebook", "nb.ipynb"): "same",
    }
    current = {f["path"]: f["current"] for f in file_status(store, manifest)}
    assert current["b.csv"] == hash_bytes(b"changed") and current["c.csv"] is None


def test_hashes_go_to_the_stat_cache(store: Store, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("a")
    manifest = record(store, tmp_path, inputs=store.snapshot_files(["a.csv"]))
    (tmp_path / "a.csv").write_text("bb")
    past = time.time() - 10  # older than the racy window, so the cache may trust it
    os.utime(tmp_path / "a.csv", (past, past))
    assert states(store, manifest)[("input", "a.csv")] == "modified"
    assert store.index.query("SELECT hash FROM stat_cache WHERE path='a.csv'")[0][0] == bytes.fromhex(
        hash_bytes(b"bb")
    )


def test_paths_that_cannot_be_checked(store: Store, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.csv"
    outside.write_text("secret")
    (tmp_path / "link.csv").symlink_to(outside)
    (tmp_path / "folder.csv").mkdir()
    fake = {"hash": hash_bytes(b"x"), "size": 1}
    manifest = record(
        store,
        tmp_path,
        inputs=[{"path": "link.csv", **fake}, {"path": "folder.csv", **fake}],
    )
    found = {f["path"]: f for f in file_status(store, manifest)}
    assert found["link.csv"]["state"] == "unknown" and found["link.csv"]["current"] is None
    assert found["folder.csv"]["state"] == "unknown"
