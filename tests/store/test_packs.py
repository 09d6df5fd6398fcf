"""Small objects in packs: written together, read like any object, checked by fsck,
repacked by gc, and safe against a writer killed on the way."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.errors import ObjectCorrupt
from dotnb.store.fsck import fsck
from dotnb.store.gc import gc
from dotnb.store.hashing import hash_bytes
from dotnb.store.layout import FORMAT_FILE, PACKS_DIR, format_file_bytes
from dotnb.store.manifest import FORMAT_VERSION
from dotnb.store.packs import INDEX_MAGIC, PACK_MIN_OBJECTS, PACK_OBJECT_MAX, RECORD
from dotnb.store.repack import MAX_PACKS
from dotnb.store.repo import Store
from dotnb.store.restore import restore
from tests.manifests import new_manifest

OLD = 2 * 3600.0  # past gc's grace of an hour


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def small_files(n: int, prefix: str = "data", seed: int = 0) -> dict[str, bytes]:
    return {
        f"{prefix}/part{i % 3}/r{i:03}.json": f'{{"seed": {seed}, "row": {i}}}\n'.encode() * (i % 7 + 1)
        for i in range(n)
    }


def record(store: Store, files: dict[str, bytes], key: str = "inputs") -> tuple[str, list[dict[str, Any]]]:
    write_files(store.root, files)
    entries = store.snapshot_files(sorted(files))
    run_id = store.commit_run(new_manifest(**{key: entries}))["id"]
    return run_id, entries


def pack_files(store: Store) -> list[str]:
    return sorted(os.listdir(store.dir / PACKS_DIR)) if (store.dir / PACKS_DIR).exists() else []


def loose_objects(store: Store) -> set[str]:
    return set(store.objects.iter_loose())


def read_index(path: Path) -> list[tuple[str, int, int]]:
    """A pack index read from the bytes, as the format says (not through dotnb)."""
    data = path.read_bytes()
    assert data.startswith(INDEX_MAGIC)
    return [
        (raw.hex(), offset, length) for raw, offset, length in RECORD.iter_unpack(data[len(INDEX_MAGIC) :])
    ]


def age_packs(store: Store) -> None:
    then = time.time() - OLD
    for name in pack_files(store):
        os.utime(store.dir / PACKS_DIR / name, (then, then))


def test_many_small_new_files_go_into_one_pack_that_names_each_by_its_bytes(store: Store) -> None:
    files = small_files(200)
    files["big.bin"] = os.urandom(PACK_OBJECT_MAX + 1)  # too large for a pack: a file of its own
    _, entries = record(store, files)
    names = pack_files(store)
    assert len(names) == 2 and Path(names[0]).stem == Path(names[1]).stem  # <name>.idx, <name>.pack
    index = store.dir / PACKS_DIR / next(n for n in names if n.endswith(".idx"))
    assert hash_bytes(index.read_bytes()) == index.stem  # named by what it holds
    records = read_index(index)
    pack = (store.dir / PACKS_DIR / f"{index.stem}.pack").read_bytes()
    distinct = {data for rel, data in files.items() if rel != "big.bin"}
    assert len(records) == len(distinct)
    for digest, offset, length in records:
        assert hash_bytes(pack[offset : offset + length]) == digest
    # Not one file per small object: the loose ones are the large file and metadata.
    by_path = {e["path"]: e["hash"] for e in entries}
    assert by_path["big.bin"] in loose_objects(store)
    assert not {by_path[rel] for rel in files if rel != "big.bin"} & loose_objects(store)
    for entry in entries:
        assert store.objects.read_bytes(entry["hash"]) == files[entry["path"]]
        assert store.objects.size(entry["hash"]) == len(files[entry["path"]])
        assert store.objects.has(entry["hash"]) and store.objects.verify(entry["hash"])
    assert os.listdir(store.dir / "tmp") == []
    # Read-only, like loose objects.
    assert all(not os.stat(store.dir / PACKS_DIR / n).st_mode & 0o222 for n in names)


def test_a_few_new_small_files_stay_files_of_their_own(store: Store) -> None:
    record(store, small_files(PACK_MIN_OBJECTS - 1))
    assert pack_files(store) == []


def test_a_pack_is_durable_before_its_index_makes_it_live(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[str] = []
    real_replace, real_fsync = os.replace, os.fsync

    def replace(src: Any, dst: Any) -> None:
        if PACKS_DIR in str(dst):
            log.append("rename " + Path(dst).suffix)
        real_replace(src, dst)

    def fsync(fd: int) -> None:
        log.append("fsync")
        real_fsync(fd)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    write_files(store.root, small_files(50))
    store.snapshot_files(sorted(small_files(50)))
    # Pack bytes, index bytes, then the pack, then the index (the commit point), then the folder.
    assert log == ["fsync", "fsync", "rename .pack", "rename .idx", "fsync"]


def test_a_run_restores_byte_for_byte_from_packs(store: Store) -> None:
    files = small_files(120)
    run_id, _ = record(store, files, key="outputs")
    changed = small_files(120, seed=1)
    write_files(store.root, changed)
    result = restore(store, run_id, notebook=False)
    for rel, data in files.items():
        assert (store.root / rel).read_bytes() == data
    checkpoint = store.manifest(result["checkpoint"])
    assert {
        e["path"]: store.objects.read_bytes(e["hash"]) for e in store.files(checkpoint, "outputs")
    } == changed
    assert fsck(store)["ok"]
    # Restoring the checkpoint brings the changed files back, from wherever it keeps them.
    restore(store, result["checkpoint"], notebook=False)
    assert {rel: (store.root / rel).read_bytes() for rel in changed} == changed


def test_a_pack_cut_short_reads_as_corrupted_objects_and_fsck_names_their_runs(store: Store) -> None:
    files = small_files(100)
    run_id, entries = record(store, files)
    (name,) = [n for n in pack_files(store) if n.endswith(".pack")]
    path = store.dir / PACKS_DIR / name
    records = read_index(path.with_suffix(".idx"))
    cut = sorted(offset for _, offset, _ in records)[len(records) // 2]
    os.chmod(path, 0o644)
    os.truncate(path, cut + 1)  # a crash (or a disk) lost the pack's tail
    lost = {d for d, offset, length in records if offset + length > cut}
    assert lost
    by_hash = {e["hash"]: e["path"] for e in entries}
    for digest in by_hash:
        if digest in lost:
            with pytest.raises(ObjectCorrupt):
                store.objects.read_bytes(digest)
        else:
            assert store.objects.read_bytes(digest) == files[by_hash[digest]]
    report = fsck(store)
    assert not report["ok"]
    assert {c["object"] for c in report["corrupted"]} == lost
    assert all(c["runs"] == [run_id] for c in report["corrupted"])
    # gc never repacks what fails its check: the damaged pack stays for the user to see.
    assert gc(store, grace_s=0)["removed"] == [] and name in pack_files(store)


def test_a_writer_killed_before_its_index_leaves_nothing_any_reader_sees(store: Store) -> None:
    files = small_files(60)
    write_files(store.root, files)
    entries = store.snapshot_files(sorted(files))
    (index,) = [store.dir / PACKS_DIR / n for n in pack_files(store) if n.endswith(".idx")]
    # As if the writer died between its two renames: the pack without its index.
    os.chmod(index, 0o644)
    index.unlink()
    assert all(not store.objects.has(e["hash"]) for e in entries)
    # A temp of a writer killed mid-pack (its pid gone) is a stray.
    stray = store.dir / "tmp" / ".dotnb-999999999-0-0123abcd"
    stray.write_bytes(b"DOTNBPK1partial")
    young = fsck(store)
    assert young["orphan_packs_removed"] == [] and not stray.exists()
    age_packs(store)
    assert fsck(store)["orphan_packs_removed"] == [index.stem + ".pack"]
    assert pack_files(store) == []
    # The next run stores the files again.
    _, again = record(store, files)
    assert again == entries and all(store.objects.read_bytes(e["hash"]) for e in again)
    assert fsck(store)["ok"]


def test_gc_repacks_what_runs_use_and_frees_the_rest(store: Store) -> None:
    kept = small_files(80, prefix="kept")
    kept_run, kept_entries = record(store, kept)
    # Objects no run uses: stored, never committed.
    dropped = small_files(80, prefix="dropped", seed=9)
    write_files(store.root, dropped)
    dropped_hashes = {e["hash"] for e in store.snapshot_files(sorted(dropped))} - {
        e["hash"] for e in kept_entries
    }
    assert len([n for n in pack_files(store) if n.endswith(".idx")]) == 2
    assert gc(store)["removed"] == []  # both packs are young
    age_packs(store)
    dry = gc(store, dry_run=True)
    assert set(dry["removed"]) == dropped_hashes and len(pack_files(store)) == 4
    result = gc(store)
    assert set(result["removed"]) == dropped_hashes
    assert result["bytes_freed"] == sum(len(d) for d in dropped.values() if hash_bytes(d) in dropped_hashes)
    assert len(result["packs_written"]) == 0 and len(result["packs_removed"]) == 1
    for digest in dropped_hashes:
        assert not store.objects.has(digest)
    for entry in kept_entries:
        assert store.objects.read_bytes(entry["hash"]) == kept[entry["path"]]
    assert fsck(store)["ok"]
    # A pack mixing used and unused objects is written anew with the used ones.
    mixed = {**small_files(40, prefix="a", seed=3), **small_files(40, prefix="b", seed=4)}
    write_files(store.root, mixed)
    entries = store.snapshot_files(sorted(mixed))
    used = [e for e in entries if e["path"].startswith("a/")]
    store.commit_run(new_manifest(inputs=used))
    age_packs(store)
    result = gc(store)
    assert len(result["packs_written"]) == 1 and len(result["packs_removed"]) == 1
    assert {e["hash"] for e in entries if e["path"].startswith("b/")} - {e["hash"] for e in used} == set(
        result["removed"]
    )
    for entry in [*used, *kept_entries]:
        assert store.objects.read_bytes(entry["hash"]) == (store.root / entry["path"]).read_bytes()
    assert fsck(store)["ok"]
    assert store.manifest(kept_run)["inputs"]


def test_gc_keeps_a_pack_a_writer_reuses_while_gc_decides(store: Store) -> None:
    files = small_files(40)
    write_files(store.root, files)
    entries = store.snapshot_files(sorted(files))  # not committed yet: unreferenced
    age_packs(store)
    # A writer about to commit a run reuses one of its objects: the pack is young again.
    assert Store(store.root).objects.reuse(entries[0]["hash"])
    result = gc(store)
    assert result["removed"] == [] and result["kept_within_grace"] == len({e["hash"] for e in entries})
    store.commit_run(new_manifest(inputs=entries))
    assert fsck(store)["ok"]


def test_an_index_a_killed_gc_left_aside_is_put_back(store: Store) -> None:
    _, entries = record(store, small_files(40))
    (index,) = [store.dir / PACKS_DIR / n for n in pack_files(store) if n.endswith(".idx")]
    os.rename(index, store.dir / "tmp" / f"gc-pack-{index.name}")  # killed after the move
    report = fsck(store)
    assert index.stem in report["returned_from_interrupted_gc"] and report["ok"]
    assert all(store.objects.has(e["hash"]) for e in entries)


def test_a_damaged_pack_index_is_reported_and_never_repacked(store: Store) -> None:
    record(store, small_files(40))
    (index,) = [store.dir / PACKS_DIR / n for n in pack_files(store) if n.endswith(".idx")]
    os.chmod(index, 0o644)
    index.write_bytes(index.read_bytes()[:-5])
    report = fsck(store)
    assert not report["ok"] and [d["pack"] for d in report["damaged_packs"]] == [index.stem]
    assert len(report["missing"]) == 40
    age_packs(store)
    gc(store)
    assert index.exists() and index.with_suffix(".pack").exists()


def test_many_packs_are_merged_into_one_by_gc(store: Store) -> None:
    everything: list[dict[str, Any]] = []
    for n in range(MAX_PACKS + 1):
        _, entries = record(store, small_files(PACK_MIN_OBJECTS, prefix=f"batch{n}", seed=n))
        everything += entries
    assert len(pack_files(store)) == 2 * (MAX_PACKS + 1)
    age_packs(store)
    result = gc(store)
    assert result["removed"] == [] and len(result["packs_written"]) == 1
    assert len(pack_files(store)) == 2
    for entry in everything:
        assert store.objects.read_bytes(entry["hash"]) == (store.root / entry["path"]).read_bytes()


def test_a_format_3_store_is_upgraded_before_its_first_pack(tmp_path: Path) -> None:
    Store.init(tmp_path)
    (tmp_path / ".dotnb" / FORMAT_FILE).write_bytes(format_file_bytes(3))
    store = Store(tmp_path)
    notices: list[str] = []
    store.notice = notices.append
    files = small_files(40)
    write_files(tmp_path, files)
    store.snapshot_files(sorted(files))  # no commit yet: the pack is the first write
    assert pack_files(store)
    assert json.loads((tmp_path / ".dotnb" / FORMAT_FILE).read_bytes()) == {"format": FORMAT_VERSION}
    assert len(notices) == 1 and f"from format 3 to {FORMAT_VERSION}" in notices[0]


def test_a_pack_that_fails_to_install_leaves_no_temp_and_no_object(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = small_files(40)
    write_files(store.root, files)
    real_replace = os.replace

    def failing_replace(src: Any, dst: Any) -> None:
        if str(dst).endswith(".idx"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        store.snapshot_files(sorted(files))
    monkeypatch.setattr(os, "replace", real_replace)
    assert os.listdir(store.dir / "tmp") == []
    assert list(store.objects.iter_digests()) == []  # the pack without its index is not live
    entries = store.snapshot_files(sorted(files))  # nothing was cached: all stored again
    assert [store.objects.read_bytes(e["hash"]) for e in entries] == [files[rel] for rel in sorted(files)]


def test_gc_packs_small_objects_stored_one_file_each(store: Store) -> None:
    files = small_files(60)
    run_id, entries = record(store, files, key="outputs")
    write_files(store.root, small_files(60, seed=5))
    result = restore(store, run_id, notebook=False)  # the checkpoint links the 60 files
    kept = store.files(store.manifest(result["checkpoint"]), "outputs")
    assert {e["hash"] for e in kept} <= loose_objects(store)
    then = time.time() - OLD
    for digest in loose_objects(store):
        os.utime(store.objects.loose_target(digest), (then, then))
    assert gc(store, dry_run=True)["objects_packed"] and {e["hash"] for e in kept} <= loose_objects(store)
    packed = gc(store)
    assert {e["hash"] for e in kept} <= set(packed["objects_packed"]) and packed["removed"] == []
    assert not {e["hash"] for e in kept} & loose_objects(store)
    for entry in [*kept, *entries]:
        assert store.objects.read_bytes(entry["hash"])
    assert fsck(store)["ok"]
    restore(store, result["checkpoint"], notebook=False)
    assert {rel: (store.root / rel).read_bytes() for rel in files} == small_files(60, seed=5)
