"""Folders recorded as trees: folding, reading back, comparing, restoring, checking."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.errors import StoreFormatError
from dotnb.store.fsck import fsck
from dotnb.store.gc import gc
from dotnb.store.hashing import hash_bytes
from dotnb.store.layout import FORMAT_FILE, format_file_bytes
from dotnb.store.manifest import FORMAT_VERSION
from dotnb.store.repo import Store
from dotnb.store.restore import restore
from dotnb.store.status import file_status
from dotnb.store.trees import (
    TREE_MIN_FILES,
    FolderRows,
    diff_entries,
    encode_tree,
    expand_entries,
    fold,
    is_tree,
    parse_tree,
)
from tests.conftest import validate_manifest
from tests.manifests import new_manifest


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def record(store: Store, files: dict[str, bytes], key: str = "inputs", **fields: Any) -> str:
    write_files(store.root, files)
    entries = store.snapshot_files(sorted(files))
    return str(store.commit_run(new_manifest(**{key: entries}, **fields))["id"])


def dataset(n: int = 120, prefix: str = "data") -> dict[str, bytes]:
    """``n`` small files in nested folders, with a few odd names."""
    names = ["a b.csv", "ü.txt", "-dash", "x\ny"]
    files = {}
    for i in range(n):
        name = names[i] if i < len(names) else f"f{i:03d}.json"
        files[f"{prefix}/part{i % 3}/sub{i % 2}/{name}"] = f'{{"i": {i}}}\n'.encode()
    return files


class Objects:
    """An in-memory object store for the pure functions, counting reads."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.reads: list[str] = []

    def put(self, data: bytes) -> str:
        digest = hash_bytes(data)
        self.blobs[digest] = data
        return digest

    def load(self, digest: str) -> bytes:
        self.reads.append(digest)
        return self.blobs[digest]


def entries_of(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [{"path": p, "hash": hash_bytes(d), "size": len(d)} for p, d in sorted(files.items())]


# -- folding and reading back (pure) -------------------------------------------------


def test_a_folder_of_many_files_becomes_one_tree_and_expands_back_to_every_file() -> None:
    objects = Objects()
    files = dataset()
    files["top.csv"] = b"at the root\n"
    flat = entries_of(files)
    folded = fold(flat, objects.put)
    assert [e["path"] for e in folded] == ["data", "top.csv"]
    tree = folded[0]
    assert (
        is_tree(tree)
        and tree["files"] == 120
        and tree["size"] == sum(len(files[p]) for p in files if p != "top.csv")
    )
    assert expand_entries(folded, objects.load) == flat
    # Nested folders are trees of their own: the top one lists three sub-folders.
    rows = parse_tree(tree["tree"], objects.blobs[tree["tree"]])
    assert [r[0] for r in rows] == ["part0/", "part1/", "part2/"]


def test_small_folders_flagged_entries_and_root_files_stay_file_entries() -> None:
    objects = Objects()
    small = entries_of({f"few/f{i}": b"x" for i in range(TREE_MIN_FILES - 1)})
    assert fold(small, objects.put) == small
    many = entries_of({f"many/f{i:02d}": bytes([i]) for i in range(TREE_MIN_FILES + 5)})
    many[0]["pre_write"] = True  # what the file held before the cell overwrote it
    many[1] = {"path": many[1]["path"], "hash": None, "size": None, "missing": True}
    roots = entries_of({f"r{i:02d}": b"r" for i in range(TREE_MIN_FILES + 1)})
    folded = fold(many + roots, objects.put)
    trees = [e for e in folded if is_tree(e)]
    assert len(trees) == 1 and trees[0]["files"] == TREE_MIN_FILES + 3
    kept = {e["path"] for e in folded if not is_tree(e)}
    assert {many[0]["path"], many[1]["path"]} <= kept and {e["path"] for e in roots} <= kept
    assert expand_entries(folded, objects.load) == sorted(many + roots, key=lambda e: e["path"])


def test_entries_left_out_of_trees_keep_everything_they_say() -> None:
    objects = Objects()
    root_file = {"path": "model.pkl", "hash": hash_bytes(b"m"), "size": 1, "produced_by": "01RUN"}
    small = {"path": "conf/a.json", "hash": hash_bytes(b"a"), "size": 1, "produced_by": "01OTHER"}
    folded = fold([root_file, small, *entries_of(dataset())], objects.put)
    assert root_file in folded and small in folded


def test_an_unchanged_folder_is_taken_from_the_memo_and_a_changed_one_is_stored() -> None:
    objects = Objects()
    stored: list[bytes] = []

    def put(data: bytes) -> str:
        stored.append(data)
        return objects.put(data)

    memo: dict[Any, str] = {}
    files = dataset()
    first = fold(entries_of(files), put, objects.blobs.__contains__, memo)
    made = len(stored)
    assert made == 1 + 3 + 6  # data, part0-2, and their sub0/sub1
    again = fold(entries_of(files), put, objects.blobs.__contains__, memo)
    assert again == first and len(stored) == made  # nothing encoded or stored again
    files["data/part1/sub0/f010.json"] = b"changed"
    changed = fold(entries_of(files), put, objects.blobs.__contains__, memo)
    assert changed[0]["tree"] != first[0]["tree"]
    assert len(stored) == made + 3  # the changed folder and the two above it
    # A remembered tree whose object is gone is stored again, not trusted.
    del objects.blobs[first[0]["tree"]]
    files["data/part1/sub0/f010.json"] = dataset()["data/part1/sub0/f010.json"]
    assert fold(entries_of(files), put, objects.blobs.__contains__, memo) == first
    assert first[0]["tree"] in objects.blobs


def test_the_same_bytes_in_a_renamed_folder_are_the_same_tree() -> None:
    objects = Objects()
    a = fold(entries_of(dataset(prefix="data")), objects.put)[0]
    b = fold(entries_of(dataset(prefix="renamed/copy")), objects.put)[0]
    assert a["path"] == "data" and b["path"] == "renamed"
    assert parse_tree(b["tree"], objects.blobs[b["tree"]]) == [["copy/", a["tree"], a["size"], a["files"]]]


def test_trees_are_compared_top_down_and_an_equal_sub_tree_is_never_read() -> None:
    objects = Objects()
    before = dataset()
    after = dict(before)
    after["data/part1/sub0/f010.json"] = b"changed"
    del after["data/part2/sub1/f005.json"]
    after["data/part2/new.txt"] = b"new"
    a = fold(entries_of(before), objects.put)
    b = fold(entries_of(after), objects.put)
    part0 = {r[0]: r[1] for r in parse_tree(a[0]["tree"], objects.blobs[a[0]["tree"]])}["part0/"]
    objects.reads.clear()
    changed = diff_entries(a, b, objects.load)
    assert changed == {
        "data/part1/sub0/f010.json": (
            hash_bytes(before["data/part1/sub0/f010.json"]),
            hash_bytes(b"changed"),
        ),
        "data/part2/new.txt": (None, hash_bytes(b"new")),
        "data/part2/sub1/f005.json": (hash_bytes(before["data/part2/sub1/f005.json"]), None),
    }
    assert part0 not in objects.reads  # unchanged: one hash compared, nothing read
    objects.reads.clear()
    assert diff_entries(a, a, objects.load) == {} and objects.reads == []


@pytest.mark.parametrize(
    "row",
    [
        ["..", "0" * 64, 1],
        ["a/b", "0" * 64, 1],
        ["", "0" * 64, 1],
        ["sub/", "0" * 64, 1],
        ["f", "nothex", 1],
        ["f\0", "0" * 64, 1],
    ],
)
def test_a_tree_naming_a_path_outside_its_folder_or_malformed_is_refused(row: list[Any]) -> None:
    data = encode_tree([row])
    with pytest.raises(StoreFormatError, match="malformed entry"):
        parse_tree(hash_bytes(data), data)
    with pytest.raises(StoreFormatError, match="not a tree"):
        parse_tree("0" * 64, json.dumps({"entries": []}).encode())


# -- through the store -------------------------------------------------------------


def test_a_run_of_many_files_holds_a_tree_readers_see_every_file(store: Store) -> None:
    files = dataset()
    run = record(store, files)
    manifest = store.manifest(run)
    validate_manifest(manifest)
    assert manifest["format"] == FORMAT_VERSION
    assert [e["path"] for e in manifest["inputs"]] == ["data"]
    assert store.list_runs()[0]["inputs"] == len(files)
    assert {e["path"]: e["hash"] for e in store.files(manifest, "inputs")} == {
        p: hash_bytes(d) for p, d in files.items()
    }
    assert all(row["state"] == "same" for row in file_status(store, manifest))
    assert len(file_status(store, manifest)) == len(files)


def test_an_unchanged_folder_is_the_same_tree_and_adds_no_object(store: Store) -> None:
    files = dataset()
    first = store.manifest(record(store, files))
    count = sum(1 for _ in store.objects.iter_digests())
    second = store.manifest(record(store, files))
    assert first["inputs"] == second["inputs"]
    # Only the second run's manifest (and cell code, shared) is new.
    assert sum(1 for _ in store.objects.iter_digests()) == count + 1


def test_restore_from_a_tree_is_byte_for_byte_and_its_checkpoint_is_a_tree_too(store: Store) -> None:
    files = dataset()
    run = record(store, files, key="outputs")
    root = store.root
    edited = [rel for rel in files if "/part2/" not in rel]
    for rel in edited:
        (root / rel).write_bytes(b"edited " + rel.encode())
    shutil.rmtree(root / "data" / "part2")
    result = restore(store, run)
    assert {rel: (root / rel).read_bytes() for rel in files} == files
    checkpoint = store.manifest(result["checkpoint"])
    assert [e["path"] for e in checkpoint["outputs"] if is_tree(e)] == ["data"]
    restore(store, result["checkpoint"])
    assert {rel: (root / rel).read_bytes() for rel in edited} == {
        rel: b"edited " + rel.encode() for rel in edited
    }
    assert not [p for p in (root / "data" / "part2").rglob("*") if p.is_file()]


def test_files_in_an_output_tree_name_the_run_that_wrote_them(store: Store) -> None:
    files = dataset()
    run = record(store, files, key="outputs")
    some = files["data/part1/sub1/f007.json"]
    assert store.producer_of(hash_bytes(some)) == run
    store.rebuild_index()
    assert store.producer_of(hash_bytes(some)) == run


def test_gc_keeps_every_object_under_a_tree_and_fsck_finds_them_all(store: Store) -> None:
    files = dataset()
    run = record(store, files)
    report = gc(store, grace_s=0)
    assert report["removed"] == []
    assert {e["hash"] for e in store.files(store.manifest(run), "inputs")} <= set(
        store.objects.iter_digests()
    )
    assert fsck(store)["ok"]


def test_fsck_reports_a_run_whose_tree_is_missing_or_malformed(store: Store) -> None:
    run = record(store, dataset())
    tree = store.manifest(run)["inputs"][0]["tree"]
    path = store.objects.path_for(tree)
    os.chmod(path, 0o644)
    path.unlink()
    report = fsck(store)
    assert not report["ok"]
    assert [m["object"] for m in report["missing"]] == [tree] and report["missing"][0]["runs"] == [run]
    assert [d["run"] for d in report["damaged_runs"]] == [run]
    with pytest.raises(Exception, match="missing"):
        gc(store, grace_s=0)  # what lies under a tree it cannot read is unknown: nothing goes


def test_a_format_2_store_is_read_as_it_is_and_upgraded_before_its_first_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Store.init(tmp_path)
    old_run = record(old, {"a.csv": b"1\n"})
    old.close()
    (tmp_path / ".dotnb" / FORMAT_FILE).write_bytes(format_file_bytes(2))
    notices: list[str] = []
    monkeypatch.setattr(Store, "notice", staticmethod(notices.append))
    store = Store(tmp_path)
    assert store.format == 2 and store.manifest(old_run)["inputs"][0]["path"] == "a.csv"
    assert (tmp_path / ".dotnb" / FORMAT_FILE).read_bytes() == format_file_bytes(2)  # reading changes nothing
    assert notices == []
    record(store, dataset())
    assert (tmp_path / ".dotnb" / FORMAT_FILE).read_bytes() == format_file_bytes(FORMAT_VERSION)
    assert len(notices) == 1 and f"from format 2 to {FORMAT_VERSION}" in notices[0]
    record(store, {"b.csv": b"2\n"})
    assert len(notices) == 1
    # An older dotnb's format check refuses the upgraded store, rather than misread it.
    (tmp_path / ".dotnb" / FORMAT_FILE).write_bytes(format_file_bytes(FORMAT_VERSION + 1))
    with pytest.raises(StoreFormatError, match="upgrade dotnb"):
        Store(tmp_path)


def test_a_run_committed_with_its_trees_already_folded_names_its_files_producer(store: Store) -> None:
    """A run copied from another store (a headless reproduction) arrives with trees."""
    files = dataset()
    first = store.manifest(record(store, files, key="outputs"))
    copied = new_manifest(outputs=first["outputs"])
    run = store.commit_run(copied)["id"]
    assert store.manifest(run)["outputs"] == first["outputs"]
    assert store.producer_of(hash_bytes(files["data/part2/sub0/f008.json"])) == run


# -- folders given as blocks of rows (a kernel's files known unchanged) ----------------


def blocks_of(
    files: dict[str, bytes], folders: set[str]
) -> tuple[list[dict[str, Any]], dict[str, FolderRows]]:
    """``files`` split into file entries and, for ``folders``, blocks of rows."""
    entries, rows = [], {}
    for e in entries_of(files):
        folder, _, name = e["path"].rpartition("/")
        if folder in folders:
            rows.setdefault(folder, []).append((name, e["hash"], e["size"]))
        else:
            entries.append(e)
    blocks = {f: FolderRows(tuple(sorted(r)), sum(x[2] for x in r)) for f, r in rows.items()}
    return entries, blocks


def test_blocks_fold_into_the_same_trees_as_their_files() -> None:
    files = dataset()
    objects = Objects()
    whole = fold(entries_of(files), objects.put)
    for folders in (
        {"data/part0/sub0"},
        {"data/part1/sub1", "data/part2/sub0"},
        {f.rpartition("/")[0] for f in files},
    ):
        entries, blocks = blocks_of(files, folders)
        assert fold(entries, objects.put, blocks=blocks) == whole
    assert expand_entries(whole, objects.load) == entries_of(files)


def test_a_block_whose_folder_stays_a_list_comes_back_as_file_entries() -> None:
    small = {f"few/f{i}": b"%d" % i for i in range(3)}
    root_files = {f"r{i}": b"%d" % i for i in range(40)}
    objects = Objects()
    entries, blocks = blocks_of(small, {"few"})
    assert fold(entries, objects.put, blocks=blocks) == entries_of(small)
    entries, blocks = blocks_of(root_files, {""})
    assert fold(entries, objects.put, blocks=blocks) == entries_of(root_files)
    assert objects.blobs == {}  # no tree was stored


def test_a_run_committed_with_blocks_holds_the_tree_of_its_files(store: Store) -> None:
    files = dataset(200, prefix="blk")
    write_files(store.root, files)
    entries = store.snapshot_files(sorted(files))
    plain = store.manifest(str(store.commit_run(new_manifest(inputs=entries))["id"]))
    folders = {f.rpartition("/")[0] for f in list(files)[:100]}
    kept, blocks = blocks_of({e["path"]: files[e["path"]] for e in entries}, folders)
    run = store.commit_run(new_manifest(inputs=kept), input_blocks=blocks)
    manifest = store.manifest(str(run["id"]))
    assert manifest["inputs"] == plain["inputs"]
    assert run["inputs"] == len(files)
    assert {e["path"] for e in store.files(manifest, "inputs")} == set(files)
