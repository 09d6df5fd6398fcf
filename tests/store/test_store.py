"""The store on its own: objects, manifests, index, stat cache, crashes and concurrency."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from dotnb.store import AmbiguousRun, RunNotFound, Store, StoreFormatError
from dotnb.store.errors import ObjectCorrupt, PathOutsideRoot
from dotnb.store.fsck import fsck
from dotnb.store.gc import gc
from dotnb.store.hashing import hash_bytes
from dotnb.store.ids import new_run_id
from dotnb.store.manifest import FORMAT_VERSION
from dotnb.store.objects import SMALL_FILE
from dotnb.store.packs import PACK_OBJECT_MAX
from dotnb.store.paths import confine, to_relpath
from dotnb.store.run_rows import index_run
from tests.conftest import validate_manifest
from tests.manifests import new_manifest


def manifest(store: Store, notebook: str = "nb.ipynb", **fields: Any) -> dict[str, Any]:
    return new_manifest(notebook, **fields)


def test_objects_are_content_addressed_read_only_and_deduplicated(store: Store, tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"hello" * 1000)
    (tmp_path / "b.bin").write_bytes(b"hello" * 1000)
    h1, size = store.objects.put_file(tmp_path / "a.bin")
    h2, _ = store.objects.put_file(tmp_path / "b.bin")
    assert h1 == h2 == hash_bytes(b"hello" * 1000) and size == 5000
    path = store.objects.path_for(h1)
    assert path.parent.name == h1[:2] and path.name == h1[2:]
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0
    assert len(list(store.objects.iter_digests())) == 1
    assert os.listdir(store.dir / "tmp") == []


def test_commit_numbers_runs_per_notebook_and_resolves_refs(store: Store) -> None:
    a1 = store.commit_run(manifest(store, "a.ipynb"))
    a2 = store.commit_run(manifest(store, "a.ipynb", name="second"))
    b1 = store.commit_run(manifest(store, "b.ipynb"))
    assert (a1["number"], a2["number"], b1["number"]) == (1, 2, 1)
    assert store.resolve("latest") == b1["id"]
    assert store.resolve("latest", notebook="a.ipynb") == a2["id"]
    assert store.resolve("#2") == a2["id"]
    with pytest.raises(AmbiguousRun, match="several notebooks"):
        store.resolve("#1")
    assert store.resolve("#1", notebook="b.ipynb") == b1["id"]
    assert store.resolve(a2["id"][:20].lower()) == a2["id"]
    with pytest.raises(RunNotFound):
        store.resolve("#9")
    with pytest.raises(RunNotFound):
        store.resolve("not-a-run")
    validate_manifest(store.manifest(a2["id"]))
    assert [r["id"] for r in store.list_runs()] == [b1["id"], a2["id"], a1["id"]]
    assert [r["id"] for r in store.list_runs(text="SECOND")] == [a2["id"]]


def test_ambiguous_prefix(store: Store) -> None:
    base = new_run_id()
    r1 = store.commit_run(manifest(store, id=base[:20] + "000000"))
    store.commit_run(manifest(store, id=base[:20] + "000001"))
    common = r1["id"][:20]
    with pytest.raises(AmbiguousRun):
        store.resolve(common)


def test_stat_cache_skips_rehash_and_respects_racy_window(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_text("a,b\n1,2\n")
    old = time.time() - 10
    os.utime(f, (old, old))
    first = store.snapshot_files(["data.csv"])[0]
    read: list[str] = []  # files whose bytes were read to be hashed and stored
    real_small, real_file = store.objects.put_small_files, store.objects.put_file

    def spy_small(paths: Any, progress: Any = None) -> Any:
        read.extend(os.path.basename(p) for p in paths)
        return real_small(paths, progress)

    def spy_file(path: Any, progress: Any = None, known_hash: Any = None) -> Any:
        read.append(os.path.basename(path))
        return real_file(path, progress=progress, known_hash=known_hash)

    store.objects.put_small_files = spy_small  # type: ignore[method-assign]
    store.objects.put_file = spy_file  # type: ignore[method-assign]
    again = store.snapshot_files(["data.csv"])[0]
    assert again["hash"] == first["hash"] and read == []
    # A same-size rewrite changes mtime/ctime: the cache must not answer.
    f.write_text("a,b\n3,4\n")
    changed = store.snapshot_files(["data.csv"])[0]
    assert changed["hash"] == hash_bytes(b"a,b\n3,4\n") != first["hash"]
    assert read == ["data.csv"]
    # Written just now: "racily clean", so the entry is not trusted yet.
    store.snapshot_files(["data.csv"])
    assert read == ["data.csv", "data.csv"]
    # Its object gone (a store restored from an old backup): read and stored again.
    os.utime(f, (old, old))
    store.snapshot_files(["data.csv"])
    store.objects.remove(changed["hash"])
    assert store.snapshot_files(["data.csv"])[0]["hash"] == changed["hash"]
    assert read == ["data.csv"] * 4
    assert store.objects.read_bytes(changed["hash"]) == b"a,b\n3,4\n"


def test_many_new_files_too_large_to_pack_are_synced_together_before_and_after_their_renames(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dotnb.store.syncing as syncing_mod

    # Each too large for a pack (see tests/store/test_packs.py for those).
    contents = [b"x" * PACK_OBJECT_MAX + f"row {i}\n".encode() * (i + 1) for i in range(30)] + [b""]
    rels = []
    for i, data in enumerate([*contents, *contents[:10]]):  # ten duplicates
        rel = f"d{i % 3}/f {i}.csv"
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(data)
        rels.append(rel)
    log: list[str] = []
    real_syncfs, real_replace, real_fsync = syncing_mod.syncfs, os.replace, os.fsync

    def syncfs(path: Path) -> bool:
        log.append("syncfs")
        return real_syncfs(path)

    def replace(src: Any, dst: Any) -> None:
        if str(dst).startswith(str(store.objects.dir)):
            log.append("rename")
        real_replace(src, dst)

    def fsync(fd: int) -> None:
        log.append("fsync")
        real_fsync(fd)

    monkeypatch.setattr(syncing_mod, "syncfs", syncfs)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    entries = store.snapshot_files(rels)
    # Every new object's bytes are on disk before any is renamed into place, and the
    # renames before the call returns; one syncfs each way, no fsync per file.
    assert log == ["syncfs", *["rename"] * len(contents), "syncfs"]
    for rel, entry in zip(rels, entries, strict=True):
        data = (tmp_path / rel).read_bytes()
        assert entry == {"path": rel, "hash": hash_bytes(data), "size": len(data)}
        assert store.objects.read_bytes(entry["hash"]) == data
        assert not os.stat(store.objects.path_for(entry["hash"])).st_mode & 0o222  # read-only
    assert os.listdir(store.dir / "tmp") == []

    # A few new files: an fsync each (and each folder), not a syncfs of everything.
    log.clear()
    for i in range(3):
        (tmp_path / f"few{i}.txt").write_text(f"few {i}")
    store.snapshot_files([f"few{i}.txt" for i in range(3)])
    assert "syncfs" not in log and log.count("rename") == 3 and log.count("fsync") >= 3 + 1


def test_a_failed_batch_of_small_files_leaves_no_temp_file_and_no_partial_object(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rels = [f"f{i}.txt" for i in range(20)]
    pad = "x" * PACK_OBJECT_MAX  # too large for a pack
    for i, rel in enumerate(rels):
        (tmp_path / rel).write_text(f"{pad}content {i}")
    real_replace = os.replace
    renamed: list[str] = []

    def failing_replace(src: Any, dst: Any) -> None:
        if len(renamed) == 5:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)
        renamed.append(os.path.basename(dst))

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        store.snapshot_files(rels)
    monkeypatch.setattr(os, "replace", real_replace)
    assert os.listdir(store.dir / "tmp") == []
    present = list(store.objects.iter_digests())
    assert len(present) == 5 and all(store.objects.verify(d) for d in present)
    # Nothing was recorded in the stat cache: the next snapshot stores the rest.
    entries = store.snapshot_files(rels)
    assert [store.objects.read_bytes(e["hash"]) for e in entries] == [
        f"{pad}content {i}".encode() for i in range(20)
    ]


def test_small_file_batch_handles_vanished_and_grown_files(store: Store, tmp_path: Path) -> None:
    from dotnb.store.objects import SMALL_FILE

    (tmp_path / "big.bin").write_bytes(b"b" * (SMALL_FILE + 10))  # grew past the limit
    (tmp_path / "ok.txt").write_text("ok")
    got = store.objects.put_small_files([tmp_path / "gone.txt", tmp_path / "big.bin", tmp_path / "ok.txt"])
    assert got[0] is None
    assert got[1] == (hash_bytes(b"b" * (SMALL_FILE + 10)), SMALL_FILE + 10)
    assert got[2] == (hash_bytes(b"ok"), 2)
    assert store.objects.verify(got[1][0]) and store.objects.verify(got[2][0])


def test_stat_cache_answers_for_more_files_than_one_query_holds(store: Store, tmp_path: Path) -> None:
    old = time.time() - 10
    rels = [f"many/f{i}.txt" for i in range(1200)]
    (tmp_path / "many").mkdir()
    for i, rel in enumerate(rels):
        (tmp_path / rel).write_text(str(i))
        os.utime(tmp_path / rel, (old, old))
    store.snapshot_files(rels)
    read: list[str] = []
    real = store.objects.put_small_files

    def spy(paths: Any, progress: Any = None) -> Any:
        read.extend(os.path.basename(p) for p in paths)
        return real(paths, progress)

    store.objects.put_small_files = spy  # type: ignore[method-assign]
    (tmp_path / rels[1100]).write_text("changed")
    entries = store.snapshot_files(rels)
    assert read == ["f1100.txt"]
    assert entries[1100]["hash"] == hash_bytes(b"changed") and entries[7]["hash"] == hash_bytes(b"7")


def test_producers_of_many_contents_name_the_newest_run_that_wrote_each(store: Store) -> None:
    digests = [hash_bytes(f"out {i}".encode()) for i in range(600)]  # more than one query holds
    outputs = [{"path": f"o{i}.txt", "hash": d, "size": 5} for i, d in enumerate(digests)]
    first = store.commit_run(new_manifest(outputs=outputs))["id"]
    second = store.commit_run(new_manifest(outputs=outputs[550:]))["id"]
    store.commit_run(new_manifest(kind="checkpoint", outputs=outputs[:3]))  # not a producer
    found = store.producers_of([*digests, hash_bytes(b"never written"), digests[0]])
    assert found == {d: (second if i >= 550 else first) for i, d in enumerate(digests)}
    assert all(store.producer_of(d) == found[d] for d in digests[::50])


@pytest.mark.parametrize("size", [0, 1, 4096, 4 * 1024 * 1024 - 1, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1])
def test_hash_file_matches_hash_bytes_around_its_buffer_size(tmp_path: Path, size: int) -> None:
    from dotnb.store.hashing import CHUNK, hash_file

    assert CHUNK == 4 * 1024 * 1024  # the sizes above straddle it
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    assert hash_file(tmp_path / "f") == (hash_bytes(data), size)
    seen: list[int] = []
    assert hash_file(tmp_path / "f", progress=seen.append) == (hash_bytes(data), size)
    assert sum(seen) == size


def _run_of_files(store: Store, root: Path, files: dict[str, bytes]) -> str:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    outputs = store.snapshot_files(sorted(files))
    return str(store.commit_run(new_manifest(outputs=outputs))["id"])


def test_restore_of_many_small_files_and_a_big_one_is_byte_for_byte_and_undoable(
    store: Store, tmp_path: Path
) -> None:
    from dotnb.store.objects import SMALL_FILE
    from dotnb.store.restore import restore

    files = {f"data/part {i // 10}/f{i}.csv": f"{i},{i * i}\n".encode() * 50 for i in range(40)}
    files["model.bin"] = os.urandom(SMALL_FILE + 1)
    run = _run_of_files(store, tmp_path, files)
    (tmp_path / "data" / "part 1" / "f12.csv").write_text("edited")
    shutil.rmtree(tmp_path / "data" / "part 3")  # its folder is created again
    (tmp_path / "model.bin").write_bytes(b"retrained")
    result = restore(store, run)
    assert {rel: (tmp_path / rel).read_bytes() for rel in files} == files
    assert sorted(result["written"]) == sorted(
        ["data/part 1/f12.csv", "model.bin"] + [f"data/part 3/f{i}.csv" for i in range(30, 40)]
    )
    assert not [p for p in tmp_path.rglob(".dotnb-*")]  # no temp file left beside a target
    # The checkpoint holds what was there: restoring it brings the edits back.
    restore(store, result["checkpoint"])
    assert (tmp_path / "data" / "part 1" / "f12.csv").read_text() == "edited"
    assert (tmp_path / "model.bin").read_bytes() == b"retrained"
    assert not (tmp_path / "data" / "part 3" / "f30.csv").exists()


def test_restored_small_files_are_synced_before_and_after_their_renames(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dotnb.store.syncing as syncing_mod
    from dotnb.store.restore import write_small_verified

    items = [(store.objects.put_bytes(f"f{i}".encode())[0], tmp_path / "out" / f"f{i}") for i in range(20)]
    log: list[str] = []
    real_syncfs, real_replace = syncing_mod.syncfs, os.replace

    def syncfs(path: Any) -> bool:
        log.append("syncfs")
        return real_syncfs(path)

    def replace(src: Any, dst: Any) -> None:
        log.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(syncing_mod, "syncfs", syncfs)
    monkeypatch.setattr(os, "replace", replace)
    write_small_verified(store, items, None)
    # Bytes durable before any rename; the one folder is then fsynced (too few for a syncfs).
    assert log == ["syncfs", *["rename"] * 20]
    assert [p.read_bytes() for _, p in items] == [f"f{i}".encode() for i in range(20)]


def test_a_restore_that_fails_midway_leaves_no_temp_file_and_can_be_undone(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dotnb.store.restore import restore

    files = {f"d/f{i}.txt": f"version 1 of {i}".encode() for i in range(20)}
    run = _run_of_files(store, tmp_path, files)
    for rel in files:
        (tmp_path / rel).write_text("version 2")
    real_replace = os.replace
    done: list[str] = []

    def failing_replace(src: Any, dst: Any) -> None:
        restoring = os.path.basename(src).startswith(".dotnb-") and "/d/" in str(dst)
        if restoring and len(done) == 7:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)
        if restoring:
            done.append(str(dst))

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        restore(store, run)
    monkeypatch.setattr(os, "replace", real_replace)
    assert sorted(os.listdir(tmp_path / "d")) == sorted(os.path.basename(r) for r in files)
    contents = sorted((tmp_path / rel).read_text() for rel in files)
    assert contents.count("version 2") == 13 and len(set(contents)) == 8  # 7 restored, whole
    checkpoint = store.list_runs(kind="checkpoint")[0]["id"]
    restore(store, checkpoint)
    assert all((tmp_path / rel).read_text() == "version 2" for rel in files)


def _corrupt_object(store: Store, digest: str) -> None:
    path = store.objects.path_for(digest)
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(SMALL_FILE)
        f.write(b"bit rot")
    path.chmod(0o444)


@pytest.mark.parametrize("staged", [True, False], ids=["staged", "no room to stage"])
def test_a_corrupted_large_object_changes_nothing_and_leaves_no_temp_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, staged: bool
) -> None:
    import dotnb.store.restore as restore_mod

    if not staged:  # the disk cannot hold the new files beside the old ones
        monkeypatch.setattr(restore_mod, "STAGING_MARGIN", 1 << 62)
    big = {f"models/m{i}.bin": os.urandom(SMALL_FILE + 4096 * (i + 1)) for i in range(3)}
    run = _run_of_files(store, tmp_path, {**big, "small.txt": b"small"})
    for rel in big:
        (tmp_path / rel).write_bytes(b"newer")
    (tmp_path / "small.txt").write_bytes(b"edited")
    manifest = store.manifest(run)
    last = next(e for e in manifest["outputs"] if e["path"] == "models/m2.bin")
    _corrupt_object(store, last["hash"])
    runs = len(store.list_runs(kind="checkpoint"))
    with pytest.raises(ObjectCorrupt, match="nothing was changed"):
        restore_mod.restore(store, run)
    assert all((tmp_path / rel).read_bytes() == b"newer" for rel in big)
    assert (tmp_path / "small.txt").read_bytes() == b"edited"
    assert not list(tmp_path.rglob(".dotnb-*"))
    assert len(store.list_runs(kind="checkpoint")) == runs  # no checkpoint either


def test_a_large_object_is_read_once_by_a_restore(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dotnb.store.restore import restore

    data = os.urandom(SMALL_FILE * 3 + 5)
    run = _run_of_files(store, tmp_path, {"model.bin": data, "small.txt": b"small"})
    (tmp_path / "model.bin").write_bytes(b"retrained")
    (tmp_path / "small.txt").write_bytes(b"edited")
    verified: list[str] = []
    read: list[str] = []
    real_verify, real_read = store.objects.verify, store.objects.read_bytes

    def verify(digest: str) -> bool:
        verified.append(digest)
        return real_verify(digest)

    def read_bytes(digest: str, verify: bool = True) -> bytes:
        read.append(digest)
        return real_read(digest, verify)

    monkeypatch.setattr(store.objects, "verify", verify)
    monkeypatch.setattr(store.objects, "read_bytes", read_bytes)
    restore(store, run)
    assert (tmp_path / "model.bin").read_bytes() == data
    assert (tmp_path / "small.txt").read_bytes() == b"small"
    big = hash_bytes(data)
    # The large object is checked while it is copied, not hashed once more before; the
    # small one is read (and checked) once, before anything is replaced.
    assert big not in verified and big not in read
    assert read.count(hash_bytes(b"small")) == 1 and hash_bytes(b"small") not in verified
    assert not list(tmp_path.rglob(".dotnb-*"))


def test_restore_refuses_paths_in_the_store_and_folders_in_the_way(store: Store, tmp_path: Path) -> None:
    from dotnb.store.errors import DotnbError
    from dotnb.store.restore import restore

    digest, size = store.objects.put_bytes(b"payload")
    entry = {"hash": digest, "size": size}
    into_store = store.commit_run(new_manifest(outputs=[{"path": ".dotnb/runs/evil", **entry}]))["id"]
    before = sorted(p.name for p in (store.dir / "runs").iterdir())
    with pytest.raises(PathOutsideRoot, match="inside the dotnb store"):
        restore(store, into_store)
    assert sorted(p.name for p in (store.dir / "runs").iterdir()) == before
    (tmp_path / "a folder").mkdir()
    blocked = store.commit_run(
        new_manifest(outputs=[{"path": "a folder", **entry}, {"path": "ok.txt", **entry}])
    )
    with pytest.raises(DotnbError, match="a folder or special file is in the way"):
        restore(store, blocked["id"])
    assert (tmp_path / "a folder").is_dir() and not (tmp_path / "ok.txt").exists()


def test_an_object_cut_short_by_a_power_loss_is_rewritten_not_reused(store: Store) -> None:
    # Objects written with sync=False are renamed into place before their bytes are
    # on disk; after a power loss one can be in place, empty.  A run committed by a
    # kernel (write-ahead record) whose manifest object is in that state:
    kernel = Store(store.root)
    run = kernel.commit_run(new_manifest(code="print('x')\n"), sync=False)
    kernel.close()  # the kernel died before its flush
    digest = store.index.pending(run["id"])[0][1]
    short = store.objects.path_for(digest)
    short.parent.mkdir(parents=True, exist_ok=True)
    short.write_bytes(b"")
    short.chmod(0o444)
    again = Store(store.root)  # opening the store completes pending runs
    assert again.manifest(run["id"])["code"] == "print('x')\n"
    assert store.objects.verify(digest)
    report = fsck(again)
    assert report["ok"], report
    # The same for put_bytes itself.
    d, _ = store.objects.put_bytes(b"payload")
    path = store.objects.path_for(d)
    path.chmod(0o644)
    path.write_bytes(b"pay")
    path.chmod(0o444)
    assert store.objects.put_bytes(b"payload")[0] == d and store.objects.verify(d)


def test_a_small_file_that_grows_while_it_is_read_is_stored_whole(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dotnb.store.objects import SMALL_FILE

    real_fstat = os.fstat

    class Smaller:  # what fstat said just before the file grew
        st_size = 100

    data, big = b"x" * 5000, b"y" * (SMALL_FILE + 5)
    (tmp_path / "grew").write_bytes(data)
    (tmp_path / "grew past the limit").write_bytes(big)
    monkeypatch.setattr(os, "fstat", lambda fd: Smaller())
    got = store.objects.put_small_files([tmp_path / "grew", tmp_path / "grew past the limit"])
    monkeypatch.setattr(os, "fstat", real_fstat)
    assert got == [(hash_bytes(data), len(data)), (hash_bytes(big), len(big))]
    assert store.objects.read_bytes(hash_bytes(data)) == data


def test_hash_file_of_a_file_that_grew_after_its_stat_hashes_all_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dotnb.store.hashing import hash_file

    data = os.urandom(70_000)
    (tmp_path / "f").write_bytes(data)

    class Smaller:
        st_size = 10

    monkeypatch.setattr(os, "stat", lambda path, **kwargs: Smaller())
    got = hash_file(tmp_path / "f")
    monkeypatch.undo()
    assert got == (hash_bytes(data), len(data))


def test_missing_and_oversized_files_are_recorded_not_stored(tmp_path: Path) -> None:
    store = Store.init(tmp_path, max_file_size=10)
    (tmp_path / "big.bin").write_bytes(b"x" * 11)
    big, gone = store.snapshot_files(["big.bin", "gone.csv"])
    assert big["hash"] is None and "limit" in big["skipped"] and big["size"] == 11
    assert gone == {"path": "gone.csv", "hash": None, "size": None, "missing": True}


def test_newer_store_format_is_refused(tmp_path: Path) -> None:
    Store.init(tmp_path).close()
    (tmp_path / ".dotnb" / "format").write_text(json.dumps({"format": 99}))
    with pytest.raises(StoreFormatError, match="format 99"):
        Store(tmp_path)


def test_confine_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "root-evil").mkdir()
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    for bad in ["../x", "a/../../x", "/etc/passwd", "a\x00b", "", "./a", "../root-evil/x", "link/f"]:
        with pytest.raises(PathOutsideRoot):
            confine(root, bad)
    assert confine(root, "sub dir/ü -x") == root.resolve() / "sub dir" / "ü -x"
    assert to_relpath(root, tmp_path / "root-evil" / "x") is None
    assert to_relpath(root, root / "a" / "b.csv") == "a/b.csv"


def test_corrupted_object_is_detected(store: Store, tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("precious")
    entry = store.snapshot_files(["d.txt"])[0]
    run = store.commit_run(manifest(store, outputs=[entry]))
    path = store.objects.path_for(entry["hash"])
    os.chmod(path, 0o644)
    path.write_text("tampered")
    with pytest.raises(ObjectCorrupt):
        store.objects.read_bytes(entry["hash"])
    report = fsck(store)
    assert not report["ok"]
    assert report["corrupted"] == [{"object": entry["hash"], "runs": [run["id"]]}]


def test_gc_keeps_referenced_and_young_objects(store: Store, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("keep")
    kept = store.snapshot_files(["keep.txt"])[0]
    store.commit_run(manifest(store, inputs=[kept]))
    old_orphan, _ = store.objects.put_bytes(b"orphan")
    young_orphan, _ = store.objects.put_bytes(b"young")
    past = time.time() - 7200
    os.utime(store.objects.path_for(old_orphan), (past, past))
    dry = gc(store, dry_run=True)
    assert dry["removed"] == [old_orphan] and store.objects.has(old_orphan)
    done = gc(store)
    assert done["removed"] == [old_orphan] and done["kept_within_grace"] == 1
    assert not store.objects.has(old_orphan)
    assert store.objects.has(young_orphan) and store.objects.has(kept["hash"])
    assert fsck(store)["ok"]


CRASH_CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from dotnb.store import Store
    from dotnb.store import index as index_mod
    from dotnb.store.manifest import iso_time

    root, where = Path(sys.argv[1]), sys.argv[2]
    store = Store(root)
    (root / "data.csv").write_text("a\\n1\\n")
    entry = store.snapshot_files(["data.csv"])[0]
    if where == "after-objects":
        os.kill(os.getpid(), signal.SIGKILL)
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    index_mod.Index.insert_run = staticmethod(die)  # manifest and ref are written, row is not
    store.commit_run({
        "kind": "run", "name": "crashed", "notebook": "nb.ipynb", "code": "", "lineage": [],
        "params": {}, "metrics": {}, "metric_series": {}, "inputs": [entry], "outputs": [],
        "status": "ok", "error": None, "started_at": iso_time(time.time()), "duration_s": 0.0,
        "environment": {},
    })
    """
)


@pytest.mark.parametrize("where", ["after-objects", "before-index-row"])
def test_killed_writer_leaves_complete_run_or_none(tmp_path: Path, where: str) -> None:
    Store.init(tmp_path).close()
    child = subprocess.run([sys.executable, "-c", CRASH_CHILD, str(tmp_path), where], check=False)
    assert child.returncode == -9
    store = Store(tmp_path)
    runs = store.list_runs()
    if where == "after-objects":
        assert runs == []
    else:
        # The manifest and ref were complete: the run is recovered into the index.
        assert [r["name"] for r in runs] == ["crashed"]
        assert store.manifest(runs[0]["id"])["inputs"][0]["path"] == "data.csv"
    report = fsck(store)
    assert report["ok"], report
    follow = store.commit_run(manifest(store, "nb.ipynb"))
    assert follow["number"] == len(runs) + 1


DEFERRED_CRASH_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from dotnb.store import Store
    from dotnb.store import index as index_mod, refs as refs_mod
    from tests.manifests import new_manifest

    root, where = Path(sys.argv[1]), sys.argv[2]
    store = Store(root)
    (root / "data.csv").write_text("a\\n1\\n")
    entry = store.snapshot_files(["data.csv"])[0]
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    if where == "in-commit":  # inside the transaction: neither the row nor the record commits
        index_mod.Index.add_pending = staticmethod(die)
    if where == "in-flush":  # the manifest object is written, the ref is not
        refs_mod.create_temp = die
    if where == "after-fast-commit":  # the next commit skips the write lock (one statement)
        store.commit_run(new_manifest("nb.ipynb", name="first"), sync=False)
    # Cells' code goes with the run's record, not as files (a kernel's Session does this).
    lineage = [
        {"execution_count": 1, "code_hash": store.stage_bytes("x = 'é'\\n".encode()), "tracked": False},
        {"execution_count": 2, "code_hash": store.stage_bytes(b""), "tracked": True},
    ]
    run = store.commit_run(
        new_manifest("nb.ipynb", name="deferred", inputs=[entry], lineage=lineage), sync=False
    )
    print(run["id"], flush=True)
    if where == "in-flush":
        store.flush()
    os.kill(os.getpid(), signal.SIGKILL)  # before the background flush
    """
)


@pytest.mark.parametrize("where", ["in-commit", "after-commit", "after-fast-commit", "in-flush"])
def test_killed_deferred_commit_leaves_complete_run_or_none(tmp_path: Path, where: str) -> None:
    Store.init(tmp_path).close()
    child = subprocess.run(
        [sys.executable, "-c", DEFERRED_CRASH_CHILD, str(tmp_path), where],
        check=False,
        capture_output=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.returncode == -9, child.stderr.decode()
    if where == "in-commit":
        store = Store(tmp_path)
        assert store.list_runs() == []
        assert fsck(store)["ok"]
        return
    run_id = child.stdout.decode().split()[0]
    assert not (tmp_path / ".dotnb" / "runs" / run_id).exists()  # the ref was never written
    store = Store(tmp_path)  # reconcile writes the objects, the manifest object and the ref
    runs = store.list_runs()
    assert runs[0]["id"] == run_id and len(runs) == (2 if where == "after-fast-commit" else 1)
    assert store.read_ref(run_id) == store.manifest_hash(run_id)
    man = store.manifest(run_id)
    assert man["name"] == "deferred" and man["inputs"][0]["path"] == "data.csv"
    validate_manifest(man)
    assert store.index.pending() == [] and store.index.pending_objects() == []
    code = [cell["code_hash"] for cell in man["lineage"]]
    assert [store.objects.read_bytes(h) for h in code] == ["x = 'é'\n".encode(), b""]
    report = fsck(store)
    assert report["ok"], report
    assert store.rebuild_index() == len(runs)
    assert store.commit_run(manifest(store))["number"] == len(runs) + 1


def test_deferred_commit_is_readable_before_flush_and_flush_writes_it(store: Store) -> None:
    run = store.commit_run(manifest(store, name="deferred"), sync=False)
    run_id = run["id"]
    assert store.has_pending_sync()
    assert not (store.runs_dir / run_id).exists()
    digest = store.manifest_hash(run_id)
    assert not store.objects.has(digest)
    # Another process (the server, the CLI) reads it through the write-ahead record.
    other = Store(store.root)  # opening completes pending records
    assert other.manifest(run_id)["name"] == "deferred"
    assert store.objects.has(digest) and (store.runs_dir / run_id).exists()
    store.flush()  # nothing left to do but drop its own bookkeeping
    assert not store.has_pending_sync() and store.index.pending() == []
    assert store.read_ref(run_id) == digest
    assert fsck(store)["ok"]


def test_staged_code_is_readable_before_flush_and_flush_writes_it(store: Store) -> None:
    """A kernel records each new cell's code with the run, not as a file on the cell's
    path: until the background flush writes the file, readers get it from the record."""
    from dotnb.store.views import with_lineage_code

    code = store.stage_bytes(b"print(1)\n")
    lineage = [{"execution_count": 1, "code_hash": code, "tracked": True}]
    run = store.commit_run(manifest(store, lineage=lineage), sync=False)
    assert not store.objects.has(code)
    assert store.index.pending_objects() == [(code, b"print(1)\n")]
    shown = with_lineage_code(store, store.manifest(run["id"]))  # what show and the server do
    assert [c["code"] for c in shown["lineage"]] == ["print(1)\n"]
    assert store.objects.has(code)  # written, synced, for that reader
    later = store.stage_bytes(b"print(2)\n")
    store.commit_run(
        manifest(store, lineage=[*lineage, {"execution_count": 2, "code_hash": later, "tracked": True}]),
        sync=False,
    )
    old_umask = os.umask(0o077)  # objects are read-only for everyone, whatever the umask
    try:
        store.flush()
    finally:
        os.umask(old_umask)
    assert store.index.pending_objects() == [] and not store.has_pending_sync()
    assert store.objects.read_bytes(later) == b"print(2)\n"
    assert stat.S_IMODE(store.objects.path_for(later).stat().st_mode) == 0o444
    assert fsck(store)["ok"]


def test_flush_writes_many_deferred_runs_in_order(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [store.commit_run(manifest(store, name=f"r{i}"), sync=False)["id"] for i in range(21)]
    # The kernel's commits never checkpoint the WAL themselves; flush() does.
    assert store.index.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    checkpoints: list[bool] = []
    real_checkpoint = store.index.checkpoint
    monkeypatch.setattr(store.index, "checkpoint", lambda: checkpoints.append(real_checkpoint()) or True)
    store.flush()
    assert checkpoints == [True]
    assert not store.has_pending_sync() and store.index.pending() == []
    assert sorted(os.listdir(store.runs_dir)) == sorted(runs)
    assert [store.manifest(r)["number"] for r in runs] == list(range(1, 22))
    assert fsck(store)["ok"]


def test_flush_syncs_objects_of_runs_that_never_committed(store: Store) -> None:
    store.objects.put_bytes(b"code of a cell whose run failed", sync=False)
    assert store.has_pending_sync()
    store.flush()
    assert not store.has_pending_sync()  # the kernel's flush loop would spin otherwise


def test_reader_completes_a_pending_run(store: Store) -> None:
    other = Store(store.root)  # a reader that opened the store before the commit (the server)
    run = store.commit_run(manifest(store, name="live"), sync=False)
    assert other.read_ref(run["id"]) == store.manifest_hash(run["id"])
    assert (store.runs_dir / run["id"]).exists() and store.index.pending() == []
    store.flush()
    assert store.manifest(run["id"])["name"] == "live" and fsck(store)["ok"]


def test_late_flush_does_not_undo_a_manifest_update(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    other = Store(store.root)  # the server, which attaches the live notebook to a run
    run = store.commit_run(manifest(store, name="first"), sync=False)

    def cannot_write(*args: object, **kwargs: object) -> None:
        raise OSError("simulated: the reader could not complete the record")

    # The record stays while the update replaces the run: the kernel's flush comes later.
    monkeypatch.setattr(other.writeahead, "complete", cannot_write)
    updated = other.manifest(run["id"])
    updated["name"] = "updated"
    other.update_manifest(updated)
    assert store.index.pending() != []
    store.flush()
    assert store.index.pending() == []
    assert store.manifest(run["id"])["name"] == "updated"
    assert store.read_ref(run["id"]) == store.manifest_hash(run["id"])
    assert Store(store.root).manifest(run["id"])["name"] == "updated"
    assert fsck(store)["ok"]


def test_rebuilt_index_keeps_pending_runs(store: Store) -> None:
    done = store.commit_run(manifest(store, name="done"))
    pending = store.commit_run(manifest(store, name="pending"), sync=False)
    assert store.rebuild_index() == 1  # only runs with refs; the record stays
    store.flush()  # installs the ref and indexes the run again
    assert [r["id"] for r in store.list_runs()] == [pending["id"], done["id"]]
    assert fsck(store)["ok"] and store.rebuild_index() == 2


WRITER_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dotnb.store import Store
    from dotnb.store.manifest import iso_time
    store = Store(Path(sys.argv[1]))
    for i in range(int(sys.argv[2])):
        store.commit_run({
            "kind": "run", "name": f"{sys.argv[3]}-{i}", "notebook": "shared.ipynb", "code": "",
            "lineage": [], "params": {"i": i}, "metrics": {}, "metric_series": {}, "inputs": [],
            "outputs": [], "status": "ok", "error": None, "started_at": iso_time(time.time()),
            "duration_s": 0.0, "environment": {},
        }, sync=False)
    """
)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    Store.init(tmp_path).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_CHILD, str(tmp_path), "60", tag], stderr=subprocess.PIPE
        )
        for tag in ("a", "b", "c")
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    store = Store(tmp_path)
    runs = store.list_runs(notebook="shared.ipynb")
    assert len(runs) == 180
    assert sorted(r["number"] for r in runs) == list(range(1, 181))
    assert fsck(store)["ok"]
    assert store.rebuild_index() == 180
    assert sorted(r["number"] for r in store.list_runs()) == list(range(1, 181))


def _index_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    q = store.index.query
    return {
        "runs": [tuple(r) for r in q("SELECT * FROM runs ORDER BY id")],
        "outputs": [tuple(r) for r in q("SELECT * FROM outputs ORDER BY run_id, path")],
        "metric_values": [tuple(r) for r in q("SELECT * FROM metric_values ORDER BY run_id, name")],
    }


def test_a_kernels_one_statement_commit_indexes_what_a_rebuild_does(store: Store) -> None:
    """Deferred commits of new runs skip the write lock (one statement, a trigger): the
    rows it writes must be the ones the manifests give, odd paths and metrics included."""
    outputs = [
        {"path": path, "hash": hash_bytes(path.encode()), "size": 1}
        for path in ["out/a b.csv", "ünï/cödé.parquet", 'new\nline "quoted".txt', "-lead"]
    ]
    metrics: list[dict[str, Any]] = [
        {"acc": 0.93, "loss": 1, "big": 2**70, "flag": True, "note": "nan"},
        {"tiny": 1e-300, "neg": -0.0},
        {"none": None, "acc": 0.5},
        {},
    ]
    runs = []
    for i, m in enumerate(metrics):
        doc = manifest(store, name=f"r{i}", outputs=outputs[i:], metrics=m, params={"ü": i})
        runs.append(store.commit_run(doc, sync=False))
    assert [r["number"] for r in runs] == [1, 2, 3, 4]
    written = _index_rows(store)
    assert [r["id"] for r in store.changes(0)[0]] == [r["id"] for r in runs]  # seq follows commits
    assert {r[0]: r[2] for r in written["metric_values"] if r[1] == "big"} == {runs[0]["id"]: 2.0**70}
    assert len(written["outputs"]) == 4 + 3 + 2 + 1
    store.flush()
    assert store.rebuild_index() == 4
    rebuilt = _index_rows(store)
    drop_seq = [r[:-1] for r in written["runs"]]
    assert drop_seq == [r[:-1] for r in rebuilt["runs"]]
    assert written["outputs"] == rebuilt["outputs"] and written["metric_values"] == rebuilt["metric_values"]


def test_a_number_taken_by_another_process_is_caught_in_the_commit(tmp_path: Path) -> None:
    """Each store numbers its next run from the last number it knows; a run numbered by
    another store meanwhile makes the commit take the write lock and number again."""
    a, b = Store.init(tmp_path), Store(tmp_path)
    numbers = []
    for i in range(12):
        writer = a if i % 3 else b  # both stores fall behind, by one run or by two
        numbers.append(writer.commit_run(manifest(writer, name=f"r{i}"), sync=False)["number"])
        other = writer.commit_run(manifest(writer, "other.ipynb"), sync=False)["number"]
        assert other == i + 1
    assert numbers == list(range(1, 13))
    for s in (a, b):
        s.flush()
    assert sorted(r["number"] for r in Store(tmp_path).list_runs(notebook="nb.ipynb")) == list(range(1, 13))


@pytest.mark.parametrize("how", ["deleted", "moved aside"])
def test_numbers_stay_unique_when_the_index_is_replaced_under_a_live_writer(tmp_path: Path, how: str) -> None:
    """A kernel keeps its store open; meanwhile the index file is deleted (or a
    rebuilt one moved over it) and another process opens a new one from runs/."""
    live = Store.init(tmp_path)
    for i in range(3):
        live.commit_run(manifest(live, name=f"before {i}"), sync=False)
    live.flush()
    index = tmp_path / ".dotnb" / "index.sqlite"
    for suffix in ("", "-wal", "-shm"):
        if how == "deleted":
            Path(f"{index}{suffix}").unlink(missing_ok=True)
        elif Path(f"{index}{suffix}").exists():  # set aside, as a damaged index is
            os.rename(f"{index}{suffix}", tmp_path / f"index.sqlite.old{suffix}")
    other = Store(tmp_path)  # a new index, built from runs/
    numbers = []
    for i in range(8):
        writer = live if i % 2 else other
        numbers.append(writer.commit_run(manifest(writer, name=f"after {i}"), sync=False)["number"])
        writer.flush()
    assert sorted(numbers) == list(range(4, 12))
    everyone = Store(tmp_path)
    assert sorted(r["number"] for r in everyone.list_runs(notebook="nb.ipynb")) == list(range(1, 12))
    assert fsck(everyone)["duplicate_numbers"] == []


def test_fsck_reports_two_runs_of_this_store_sharing_a_number(store: Store, tmp_path: Path) -> None:
    from dotnb.store.errors import AmbiguousRun

    first = store.commit_run(manifest(store))
    doc = manifest(store, name="same number", id=new_run_id())
    doc["number"] = first["number"]  # as a writer on a stale index would have numbered it
    with store.index.write() as tx:
        digest, _ = store.objects.put_bytes(b"{}")
        index_run(tx, digest, doc)
    report = fsck(store)
    assert not report["ok"]
    [dup] = report["duplicate_numbers"]
    assert dup["number"] == first["number"] and first["id"] in dup["runs"] and len(dup["runs"]) == 2
    with pytest.raises(AmbiguousRun, match="several runs of this store"):
        store.resolve(f"#{first['number']}", notebook="nb.ipynb")


def test_damaged_index_is_rebuilt_from_manifests(store: Store) -> None:
    run = store.commit_run(manifest(store))
    store.close()
    (store.dir / "index.sqlite").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (store.dir / f"index.sqlite{suffix}").unlink(missing_ok=True)
    reopened = Store(store.root)
    assert [r["id"] for r in reopened.list_runs()] == [run["id"]]
    assert list(store.dir.glob("index.sqlite.damaged-*"))


def test_reused_object_is_protected_from_gc(store: Store, tmp_path: Path) -> None:
    digest, _ = store.objects.put_bytes(b"shared content")
    past = time.time() - 7200
    os.utime(store.objects.path_for(digest), (past, past))
    # A run in flight stores the same bytes again: the object must look young.
    store.objects.put_bytes(b"shared content")
    assert gc(store)["removed"] == []


def test_metric_filters_series_and_change_cursor(store: Store) -> None:
    from dotnb.store.query import BadQuery, parse_metric_condition

    runs = [
        store.commit_run(manifest(store, "a.ipynb", metrics={"acc": acc, "loss": 1 - acc}))
        for acc in (0.5, 0.95, 0.9)
    ]
    other = store.commit_run(manifest(store, "b.ipynb", metrics={"acc": 0.99, "note": "nan"}))
    cond = parse_metric_condition("acc>0.9")
    assert [r["id"] for r in store.list_runs(metrics=[cond])] == [other["id"], runs[1]["id"]]
    both = [parse_metric_condition("acc >= 0.9"), parse_metric_condition("loss<0.09")]
    assert [r["id"] for r in store.list_runs(notebook="a.ipynb", metrics=both)] == [runs[1]["id"]]
    for bad in ["acc", "acc>high", ">3", "acc>inf"]:
        with pytest.raises(BadQuery):
            parse_metric_condition(bad)
    series = store.metric_values("acc", notebook="a.ipynb")
    assert [(s["number"], s["value"]) for s in series] == [(1, 0.5), (2, 0.95), (3, 0.9)]
    assert store.metric_names("b.ipynb") == ["acc"]  # "nan" is not a number to chart
    # What a chart opens on: a metric of the newest run that recorded one.
    store.commit_run(manifest(store, "a.ipynb", metrics={"zeta": 1.0, "mu": 2.0}))
    assert store.metric_names("a.ipynb") == ["acc", "loss", "mu", "zeta"]
    assert store.latest_metric("a.ipynb") == "mu"
    assert store.latest_metric("b.ipynb") == "acc"
    assert store.latest_metric() == "mu"
    assert store.latest_metric("none.ipynb") is None
    cursor = store.change_cursor()
    assert store.changes(cursor) == ([], cursor)
    doc = store.manifest(runs[0]["id"])
    doc["name"] = "renamed"
    store.update_manifest(doc)
    changed, new_cursor = store.changes(cursor)
    assert [c["name"] for c in changed] == ["renamed"] and new_cursor > cursor
    assert store.manifest(runs[0]["id"])["name"] == "renamed"
    assert store.list_runs(notebook="a.ipynb")[-1]["number"] == 1


def test_gc_keeps_an_object_a_run_starts_using_while_gc_removes_it(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest, _ = store.objects.put_bytes(b"left over by a deleted run")
    old = time.time() - 7200
    os.utime(store.objects.path_for(digest), (old, old))
    target = str(store.objects.path_for(digest))
    real_rename, real_unlink = os.rename, os.unlink
    raced: list[str] = []

    def writer_gets_there_first() -> None:
        # A kernel records a run that uses the same bytes: the object is reused
        # (its mtime refreshed), then the run commits.
        if not raced:
            raced.append(digest)
            digest_again, _ = store.objects.put_bytes(b"left over by a deleted run")
            assert digest_again == digest
            entry = {"path": "out.txt", "hash": digest, "size": 26}
            store.commit_run(new_manifest(outputs=[entry]))

    def rename(src: Any, dst: Any) -> None:
        if str(src) == target:
            writer_gets_there_first()
        real_rename(src, dst)

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path) == target:
            writer_gets_there_first()
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "unlink", unlink)
    result = gc(store)
    monkeypatch.undo()
    assert raced == [digest] and result["removed"] == []
    assert store.objects.read_bytes(digest) == b"left over by a deleted run"
    assert fsck(store)["ok"]


def test_objects_an_interrupted_gc_set_aside_come_back(store: Store) -> None:
    digest, _ = store.objects.put_bytes(b"used by a run")
    store.commit_run(new_manifest(outputs=[{"path": "a.txt", "hash": digest, "size": 13}]))
    # gc was killed between setting the object aside and deciding about it.
    (store.dir / "tmp").mkdir(exist_ok=True)
    os.rename(store.objects.path_for(digest), store.dir / "tmp" / f"gc-{digest}")
    report = fsck(store)
    assert report["ok"] and report["returned_from_interrupted_gc"] == [digest]
    assert store.objects.read_bytes(digest) == b"used by a run"
    # The same from gc, for an unreferenced old object: put back, then collected.
    lone, _ = store.objects.put_bytes(b"unused")
    old = time.time() - 7200
    os.utime(store.objects.path_for(lone), (old, old))
    os.rename(store.objects.path_for(lone), store.dir / "tmp" / f"gc-{lone}")
    assert gc(store)["removed"] == [lone]
    assert not (store.dir / "tmp" / f"gc-{lone}").exists() and not store.objects.has(lone)


def test_fsck_and_gc_respect_a_run_whose_manifest_is_not_flushed_yet(store: Store) -> None:
    from dotnb.store.fsck import fsck
    from dotnb.store.gc import gc

    (store.root / "out.txt").write_text("kept")
    (entry,) = store.snapshot_files(["out.txt"])
    run = store.commit_run(new_manifest(outputs=[entry]), sync=False)
    assert store.index.pending(run["id"])  # only the write-ahead record exists so far
    report = fsck(store)
    assert report["ok"] and report["stale_index_rows"] == []
    assert entry["hash"] not in gc(store, dry_run=True, grace_s=0)["removed"]


def test_a_ref_written_by_another_process_is_indexed_by_the_next_commit(store: Store) -> None:
    """A kernel's store stays open for hours: a ref another process wrote without its
    index row (it crashed in between) must still be indexed, and number runs after it."""
    from dotnb.store.manifest import canonical_json

    first = store.commit_run(manifest(store), sync=False)
    orphan = manifest(store, id=new_run_id(), number=first["number"] + 1, format=2)
    digest = store.objects.put_bytes(canonical_json(orphan))[0]
    time.sleep(0.01)  # a new mtime for runs/ even on coarse clocks
    (store.runs_dir / orphan["id"]).write_text(digest + "\n")
    follow = store.commit_run(manifest(store), sync=False)
    assert follow["number"] == first["number"] + 2
    assert {r["id"] for r in store.list_runs()} == {first["id"], orphan["id"], follow["id"]}


OPEN_AT_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dotnb.store import Store
    base, start = Path(sys.argv[1]), float(sys.argv[2])
    for k in range(30):  # 30 new stores, each opened by every child at the same moment
        while time.time() < start + 0.04 * k:
            pass
        Store.init(base / f"p{k}").close()
    """
)


def test_stores_created_at_once_by_several_processes_share_one_index(tmp_path: Path) -> None:
    """Kernels starting together all create the store: a "database is locked" (SQLite's
    switch to WAL does not wait for the other process) must not pass for a damaged
    index, which would be set aside with another kernel's runs in it."""
    start = str(time.time() + 1.0)
    children = [
        subprocess.Popen([sys.executable, "-c", OPEN_AT_CHILD, str(tmp_path), start], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
    damaged = [p for p in tmp_path.glob("p*/.dotnb/*") if "damaged" in p.name]
    assert len(list(tmp_path.glob("p*/.dotnb/index.sqlite"))) == 30 and not damaged


def test_iso_time_across_seconds_and_the_cache() -> None:
    """iso_time keeps the last whole second formatted: the same text as formatting anew."""
    import random
    import time

    from dotnb.store.manifest import iso_time

    def reference(ts: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"

    rng = random.Random(5)
    stamps = [1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.0, 1_700_000_000.5, 0.0, 4_102_444_799.9994]
    stamps += [rng.uniform(0, 4e9) for _ in range(2000)]
    stamps += [1_800_000_000 + rng.random() for _ in range(200)]
    for ts in stamps:
        assert iso_time(ts) == reference(ts), ts
    assert iso_time(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"


def crockford(value: int, length: int) -> str:
    """``value`` in ``length`` digits of Crockford's base32, most significant first."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "".join(alphabet[(value >> (5 * i)) & 31] for i in reversed(range(length)))


def test_run_ids_encode_time_and_random_bits() -> None:
    import random

    from dotnb.store import ids

    rng = random.Random(7)
    start = int(time.time() * 1000)
    cases = [(start + k * 7919, rng.getrandbits(80)) for k in range(300)]
    cases += [(cases[-1][0] + 1, (1 << 80) - 1), (cases[-1][0] + 2, 0)]
    given = iter([rand for _, rand in cases])

    def random_bits(bits: int) -> int:
        assert bits == 80
        return next(given)

    # A source of its own: the process's ids (new_run_id) are left as they were.
    source = ids.RunIdSource(random_bits=random_bits)
    for ms, rand in cases:
        run_id = source.new(now_ms=ms)
        assert run_id == crockford(ms, 10) + crockford(rand, 16)
        assert ids.time_ms(run_id) == ms and ids.is_run_id(run_id)
    # Within one millisecond, or asked for an earlier time, the random part counts up.
    assert source.new(now_ms=cases[-2][0]) == crockford(cases[-1][0], 10) + "0" * 15 + "1"
    assert ids.id_floor(start) == crockford(start, 10)
    assert new_run_id() < new_run_id()


def test_the_layout_is_the_same_for_the_store_and_its_remotes(store: Store) -> None:
    from dotnb.store import layout

    digest, _ = store.objects.put_bytes(b"laid out once")
    key = layout.object_key(digest)
    # The key a remote stores an object under is its path in .dotnb/, and reads back.
    assert store.objects.path_for(digest) == store.dir / key
    assert layout.object_of_key(key) == digest
    assert [layout.object_of_key(k) for k in ("runs/x", "objects/abc/d", "objects/ab", "x/ab/cd")] == [
        None
    ] * 4
    run = store.commit_run(new_manifest())
    assert (store.dir / layout.run_key(run["id"])).read_text().strip() == store.read_ref(run["id"])
    assert layout.run_key(run["id"]).startswith(layout.RUNS_PREFIX)
    # The format file: what json writes, read without json, and as json reads any other.
    fmt = (store.dir / layout.FORMAT_FILE).read_bytes()
    assert (
        fmt
        == layout.format_file_bytes(FORMAT_VERSION)
        == json.dumps({"format": FORMAT_VERSION}).encode() + b"\n"
    )
    for data in (fmt, fmt.decode(), '{"format": 7, "x": 1}'.encode("utf-16"), b'{"format": 3}'):
        assert layout.parse_format_file(data) == json.loads(data)["format"]
    with pytest.raises(ValueError):
        layout.parse_format_file(b"\xff not json")


def test_fsck_next_to_a_kernel_with_unflushed_runs_reports_nothing(store: Store) -> None:
    """A kernel's new runs and cells' code are rows of its write-ahead records until
    its flush: neither missing objects nor runs missing from the index."""
    code = store.stage_bytes(b"x = 2\n")
    run = store.commit_run(
        manifest(
            store, name="unflushed", lineage=[{"execution_count": 1, "code_hash": code, "tracked": True}]
        ),
        sync=False,
    )
    assert not store.objects.path_for(code).exists()  # a row of the record until the flush
    report = fsck(store)
    assert report["ok"], report
    assert store.index.pending(run["id"])


def test_fsck_next_to_a_kernel_recording_while_it_reads_reports_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel records a run (its cell's code a row of the write-ahead record) at the
    moment fsck reads what runs reference: whatever fsck counts as referenced, it finds
    present, as a file or as a pending row."""
    kernel = Store(store.root)
    real = store.referenced_objects
    committed: list[str] = []

    def while_a_kernel_records(strict: bool = False) -> dict[str, set[str]]:
        code = kernel.stage_bytes(f"x = {len(committed)}\n".encode())
        lineage = [{"execution_count": 1, "code_hash": code, "tracked": True}]
        committed.append(kernel.commit_run(manifest(kernel, lineage=lineage), sync=False)["id"])
        return real(strict)

    monkeypatch.setattr(store, "referenced_objects", while_a_kernel_records)
    try:
        for _ in range(2):
            report = fsck(store)
            assert report["ok"], report
        assert len(committed) == 2
        kernel.flush()
        report = fsck(store)
        assert report["ok"], report
    finally:
        kernel.close()


def test_unflushed_runs_survive_the_index_deleted_under_their_kernel(tmp_path: Path) -> None:
    kernel = Store.init(tmp_path)
    shown = [kernel.commit_run(manifest(kernel, name=f"shown {i}"), sync=False) for i in range(2)]
    index = tmp_path / ".dotnb" / "index.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    after = kernel.commit_run(manifest(kernel, name="after"), sync=False)
    kernel.flush()
    runs = Store(tmp_path).list_runs(notebook="nb.ipynb")
    assert {r["id"] for r in runs} == {r["id"] for r in [*shown, after]}
    assert sorted(r["number"] for r in runs) == [1, 2, 3]


def test_a_kernels_index_damaged_in_place_is_set_aside_and_recording_goes_on(tmp_path: Path) -> None:
    kernel = Store.init(tmp_path)
    before = kernel.commit_run(manifest(kernel, name="before"), sync=False)
    kernel.flush()
    index = tmp_path / ".dotnb" / "index.sqlite"
    kernel.index.checkpoint()
    with open(index, "r+b") as f:  # damaged in place: the same file, its pages garbage
        f.seek(0)
        f.write(b"\x00garbage" * 600)
    (tmp_path / "x.csv").write_text("1\n")
    inputs = kernel.snapshot_files(["x.csv"])
    after = kernel.commit_run(manifest(kernel, name="after", inputs=inputs), sync=False)
    kernel.flush()
    runs = Store(tmp_path).list_runs(notebook="nb.ipynb")
    assert {r["id"] for r in runs} == {before["id"], after["id"]}
    assert list((tmp_path / ".dotnb").glob("index.sqlite.damaged-*"))


def test_an_index_truncated_under_a_kernel_before_its_flush_loses_no_run(tmp_path: Path) -> None:
    """A deferred run's write-ahead record is in the index only; the index is cut short
    in place before the kernel flushes: the flush sets it aside, records the run again
    in a new index and installs it (the run's cell has shown its number)."""
    kernel = Store.init(tmp_path)
    first = kernel.commit_run(manifest(kernel, name="first"), sync=False)
    kernel.flush()
    pending = kernel.commit_run(manifest(kernel, name="pending"), sync=False)
    index = tmp_path / ".dotnb" / "index.sqlite"
    kernel.index.checkpoint()
    os.truncate(index, 4096)  # the first page only: every table is gone
    kernel.flush()
    runs = Store(tmp_path).list_runs(notebook="nb.ipynb")
    assert {r["id"]: r["number"] for r in runs} == {first["id"]: 1, pending["id"]: 2}
    assert (tmp_path / ".dotnb" / "runs").exists()
    assert list((tmp_path / ".dotnb").glob("index.sqlite.damaged-*"))


def test_a_flushed_write_ahead_record_gives_its_pages_and_its_wal_back(store: Store) -> None:
    """A kernel's run of many files stages megabytes of trees in write-ahead records:
    once flushed, the index file and its WAL shrink back (the store's size on disk)."""
    index = store.dir / "index.sqlite"
    wal = store.dir / "index.sqlite-wal"
    digests = [store.stage_bytes(os.urandom(1024 * 1024)) for _ in range(6)]
    store.commit_run(
        new_manifest(inputs=[{"path": f"f{i}", "hash": d, "size": 1 << 20} for i, d in enumerate(digests)]),
        sync=False,
    )
    assert index.stat().st_size + wal.stat().st_size > 6 * 1024 * 1024  # the records hold the bytes
    store.writeahead.flush()
    assert all(store.objects.read_bytes(d) for d in digests)
    assert index.stat().st_size < 1024 * 1024
    assert wal.stat().st_size <= 1024 * 1024


def test_an_index_of_schema_4_gets_the_new_stat_cache_and_forgets_the_old_one(
    store: Store, tmp_path: Path
) -> None:
    """Schema 5 keeps hashes as 32 bytes: an older index's stat cache is dropped (the
    next snapshot hashes the files once) and its runs are indexed again."""
    import sqlite3

    (tmp_path / "a.csv").write_bytes(b"a,b\n")
    run = store.commit_run(new_manifest(inputs=store.snapshot_files(["a.csv"])))["id"]
    store.close()
    db = sqlite3.connect(tmp_path / ".dotnb" / "index.sqlite", isolation_level=None)
    db.executescript(
        "DROP TABLE stat_cache; CREATE TABLE stat_cache (path TEXT PRIMARY KEY, inode INTEGER, size INTEGER,"
        " mtime_ns INTEGER, ctime_ns INTEGER, hash TEXT, recorded_ns INTEGER);"
        " INSERT INTO stat_cache VALUES ('a.csv', 1, 4, 0, 0, 'ab', 0);"
        " UPDATE meta SET value='4' WHERE key='index_schema';"
    )
    db.close()
    reopened = Store(tmp_path)
    try:
        assert reopened.index.query("SELECT COUNT(*) FROM stat_cache")[0][0] == 0
        assert [r["id"] for r in reopened.list_runs()] == [run]
        (tmp_path / "a.csv").touch()
        os.utime(tmp_path / "a.csv", (time.time() - 60, time.time() - 60))
        (entry,) = reopened.snapshot_files(["a.csv"])
        assert entry["hash"] == hash_bytes(b"a,b\n")
        assert reopened.index.query("SELECT hash FROM stat_cache")[0][0] == bytes.fromhex(entry["hash"])
    finally:
        reopened.close()


def test_an_index_cut_short_under_its_wal_is_set_aside_by_the_next_read(tmp_path: Path) -> None:
    """The index file cut short at any page while its WAL still holds recent pages: the
    store opens (what opening reads may sit in the WAL), and the first read that meets
    a missing page sets the file aside and re-indexes: every run is listed, and found."""
    writer = Store.init(tmp_path)
    writer.index.defer_checkpoints()  # as a kernel does: recent pages stay in the WAL
    runs = [writer.commit_run(manifest(writer, name=f"a{i}", params={"p": "x" * 300})) for i in range(20)]
    writer.index.checkpoint()
    runs += [writer.commit_run(manifest(writer, name=f"b{i}", params={"p": "y" * 300})) for i in range(20)]
    saved = tmp_path / "saved"
    shutil.copytree(writer.dir, saved)
    writer.close()
    pages = (saved / "index.sqlite").stat().st_size // 4096
    assert (saved / "index.sqlite-wal").stat().st_size > 0
    expected = {r["id"]: r["number"] for r in runs}
    damaged_at = []
    for cut in range(1, pages):
        shutil.rmtree(writer.dir)
        shutil.copytree(saved, writer.dir)
        os.truncate(writer.dir / "index.sqlite", cut * 4096)
        reader = Store(tmp_path)
        try:
            assert {r["id"]: r["number"] for r in reader.list_runs()} == expected, f"cut at page {cut}"
            assert reader.manifest(reader.resolve("#8", notebook="nb.ipynb"))["id"] == runs[7]["id"]
        finally:
            reader.close()
        if list(writer.dir.glob("index.sqlite.damaged-*")):
            damaged_at.append(cut)
    assert damaged_at  # the cuts did damage the file (else this test proves nothing)
