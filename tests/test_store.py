"""The store on its own: objects, manifests, index, stat cache, crashes and concurrency."""

from __future__ import annotations

import json
import os
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
from dotnb.store.fsck import fsck, gc
from dotnb.store.hashing import hash_bytes
from dotnb.store.ids import new_run_id
from dotnb.store.paths import confine, to_relpath
from tests.conftest import validate_manifest
from tests.manifests import new_manifest


def manifest(store: Store, notebook: str = "nb.ipynb", **fields: Any) -> dict[str, Any]:
    return new_manifest(notebook, **fields)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.init(tmp_path)


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
    calls: list[Path] = []
    real = store.objects.put_file

    def spy(path: Any, progress: Any = None, known_hash: Any = None) -> Any:
        calls.append(known_hash)
        return real(path, progress=progress, known_hash=known_hash)

    store.objects.put_file = spy  # type: ignore[method-assign]
    again = store.snapshot_files(["data.csv"])[0]
    assert again["hash"] == first["hash"] and calls == [first["hash"]]
    # A same-size rewrite changes mtime/ctime: the cache must not answer.
    f.write_text("a,b\n3,4\n")
    changed = store.snapshot_files(["data.csv"])[0]
    assert changed["hash"] == hash_bytes(b"a,b\n3,4\n") != first["hash"]
    # Written just now: "racily clean", so the entry is not trusted yet.
    assert calls[-1] is None
    store.snapshot_files(["data.csv"])
    assert calls[-1] is None


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
    cursor = store.change_cursor()
    assert store.changes(cursor) == ([], cursor)
    doc = store.manifest(runs[0]["id"])
    doc["name"] = "renamed"
    store.update_manifest(doc)
    changed, new_cursor = store.changes(cursor)
    assert [c["name"] for c in changed] == ["renamed"] and new_cursor > cursor
    assert store.manifest(runs[0]["id"])["name"] == "renamed"
    assert store.list_runs(notebook="a.ipynb")[-1]["number"] == 1
