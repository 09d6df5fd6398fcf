"""A restore's checkpoint keeps replaced files' old bytes by linking their inodes into
the store: no copy, and the store never shares bytes with a file the user can still
write once the restore is over, however it ends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import dotnb.store.restore as restore_mod
from dotnb.store.checkpoint_links import LinkedCheckpoint
from dotnb.store.fsck import fsck
from dotnb.store.paths import Confiner
from dotnb.store.repo import Store
from dotnb.store.restore import restore
from tests.manifests import new_manifest


def record(store: Store, files: dict[str, bytes]) -> str:
    for rel, data in files.items():
        (store.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (store.root / rel).write_bytes(data)
    return str(store.commit_run(new_manifest(outputs=store.snapshot_files(sorted(files))))["id"])


def checkpoint_entries(store: Store, result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["path"]: e for e in store.files(store.manifest(result["checkpoint"]), "outputs")}


FILES = {"models/model.bin": os.urandom(3 << 20), "data/a.csv": b"a,b\n1,2\n", "data/b.csv": b"b\n3\n"}
EDITED = {"models/model.bin": os.urandom(2 << 20), "data/a.csv": b"a,b\n9,9\n", "data/b.csv": b"b\n7\n"}


def edit(root: Path) -> dict[str, int]:
    """Write EDITED over the files; their inodes."""
    inodes = {}
    for rel, data in EDITED.items():
        path = root / rel
        path.unlink()
        path.write_bytes(data)
        inodes[rel] = path.stat().st_ino
    return inodes


def test_the_checkpoint_keeps_the_replaced_inodes_and_gives_them_back(store: Store) -> None:
    run = record(store, FILES)
    inodes = edit(store.root)
    result = restore(store, run, notebook=False)
    assert {rel: (store.root / rel).read_bytes() for rel in FILES} == FILES
    kept = checkpoint_entries(store, result)
    for rel, data in EDITED.items():
        obj = Path(store.objects.loose_target(kept[rel]["hash"]))
        st = obj.stat()
        # The very inode the file had: linked, not copied; now the store's alone, read-only.
        assert (st.st_ino, st.st_nlink, st.st_mode & 0o222) == (inodes[rel], 1, 0)
        assert obj.read_bytes() == data
    assert "checkpoint_lost" not in result and fsck(store)["ok"]
    restore(store, result["checkpoint"], notebook=False)
    assert {rel: (store.root / rel).read_bytes() for rel in EDITED} == EDITED


def test_a_file_with_other_links_is_copied(store: Store) -> None:
    run = record(store, FILES)
    inodes = edit(store.root)
    os.link(store.root / "data/a.csv", store.root / "a-elsewhere.csv")  # the user's own second name
    result = restore(store, run, notebook=False)
    obj = Path(store.objects.loose_target(checkpoint_entries(store, result)["data/a.csv"]["hash"]))
    assert obj.stat().st_ino != inodes["data/a.csv"]
    assert (store.root / "a-elsewhere.csv").read_bytes() == EDITED["data/a.csv"]
    assert fsck(store)["ok"]


def test_a_restore_that_fails_midway_leaves_no_object_sharing_a_users_file(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = record(store, FILES)
    edit(store.root)
    real_apply = restore_mod.apply_plan

    def failing_apply(*args: Any, **kwargs: Any) -> list[str]:
        raise OSError(28, "No space left on device")  # after the checkpoint, before any write

    monkeypatch.setattr(restore_mod, "apply_plan", failing_apply)
    with pytest.raises(OSError, match="No space"):
        restore(store, run, notebook=False)
    monkeypatch.setattr(restore_mod, "apply_plan", real_apply)
    (checkpoint,) = store.list_runs(kind="checkpoint")
    kept = {e["path"]: e["hash"] for e in store.files(store.manifest(checkpoint["id"]), "outputs")}
    for rel in EDITED:
        user = (store.root / rel).stat()
        obj = Path(store.objects.loose_target(kept[rel])).stat()
        assert user.st_ino != obj.st_ino and obj.st_nlink == 1 and user.st_mode & 0o200
    # The user goes on editing in place: the checkpoint keeps what it recorded.
    with open(store.root / "data/a.csv", "r+b") as f:
        f.write(b"X")
    assert store.objects.read_bytes(kept["data/a.csv"]) == EDITED["data/a.csv"]
    assert fsck(store)["ok"]


def test_bytes_written_through_an_old_open_file_are_never_served_from_the_checkpoint(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = record(store, FILES)
    edit(store.root)
    writer = open(store.root / "data/b.csv", "r+b")  # noqa: SIM115 - a process that keeps it open
    real_apply = restore_mod.apply_plan

    def apply_while_written(*args: Any, **kwargs: Any) -> list[str]:
        written = real_apply(*args, **kwargs)
        writer.write(b"late")  # lands in the old inode, now only the store's
        writer.flush()
        return written

    monkeypatch.setattr(restore_mod, "apply_plan", apply_while_written)
    try:
        result = restore(store, run, notebook=False)
    finally:
        writer.close()
    assert result["checkpoint_lost"] == ["data/b.csv"]
    kept = checkpoint_entries(store, result)
    assert not store.objects.has(kept["data/b.csv"]["hash"])  # removed, not served
    assert store.objects.read_bytes(kept["data/a.csv"]["hash"]) == EDITED["data/a.csv"]
    assert (store.root / "data/b.csv").read_bytes() == FILES["data/b.csv"]


def test_fsck_gives_objects_a_killed_restore_left_linked_bytes_of_their_own(store: Store) -> None:
    for rel, data in EDITED.items():
        (store.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (store.root / rel).write_bytes(data)
    links = LinkedCheckpoint(store.objects)
    entries, rest = links.keep(Confiner(store.root), store.index, sorted(EDITED))
    assert rest == [] and len(entries) == 3
    # Killed here: nothing settled the links.
    report = fsck(store)
    assert sorted(report["unshared_objects"]) == sorted(e["hash"] for e in entries)
    for entry in entries:
        obj = Path(store.objects.loose_target(entry["hash"])).stat()
        assert obj.st_nlink == 1 and obj.st_ino != (store.root / entry["path"]).stat().st_ino
    (store.root / "data/a.csv").write_bytes(b"edited again")
    assert fsck(store)["corrupted"] == []
