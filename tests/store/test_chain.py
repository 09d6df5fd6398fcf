"""Each writer's runs chained by hash (dotnb.store.chain), and dotnb verify's checks of
the local store (dotnb.store.verify): deleted, edited, replaced, moved and forked runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotnb.store.gc import gc
from dotnb.store.layout import FORMAT_FILE, format_file_bytes
from dotnb.store.manifest import FORMAT_VERSION, canonical_json
from dotnb.store.repo import Store
from dotnb.store.snapshots import attach_notebook_snapshot
from dotnb.store.verify import verify_store
from tests.conftest import validate_manifest
from tests.manifests import new_manifest


def record(store: Store, count: int, sync: bool = True) -> list[str]:
    ids = [store.commit_run(new_manifest(metrics={"i": i}), sync=sync)["id"] for i in range(count)]
    store.flush()
    return ids


def object_path(store: Store, digest: str) -> Path:
    return store.dir / "objects" / digest[:2] / digest[2:]


def kinds(report: dict[str, Any]) -> list[str]:
    return [b["kind"] for b in report["breaks"]]


def test_each_run_links_to_the_previous_run_of_its_writer(store: Store) -> None:
    ids = record(store, 2, sync=True) + record(store, 2, sync=False)
    manifests = [store.manifest(r) for r in ids]
    writer = manifests[0]["writer"]
    assert writer["seq"] == 1 and "prev" not in writer
    for n, (before, after) in enumerate(zip(ids, manifests[1:], strict=False), start=2):
        assert after["writer"] == {"id": writer["id"], "seq": n, "prev": store.read_ref(before)}
    for manifest in manifests:
        validate_manifest(manifest)
    # Another opening of the store is another writer, starting its own chain.
    other = Store(store.root)
    try:
        run = other.commit_run(new_manifest())["id"]
        assert other.manifest(run)["writer"]["seq"] == 1
        assert other.manifest(run)["writer"]["id"] != writer["id"]
    finally:
        other.close()
    report = verify_store(store)
    assert report["ok"], report
    assert (report["runs"], report["chained"], report["unchained"], report["writers"]) == (5, 5, 0, 2)


def test_a_snapshot_attached_later_amends_the_manifest_and_keeps_the_chain_whole(store: Store) -> None:
    ids = record(store, 3, sync=False)
    signed_over = store.read_ref(ids[1])
    attach_notebook_snapshot(store, ids[1], b'{"cells": []}', "frontend")
    amended = store.manifest(ids[1])
    assert amended["amends"] == signed_over
    validate_manifest(amended)
    # The writer's next run links to the manifest it recorded, which gc keeps.
    assert store.manifest(ids[2])["writer"]["prev"] == signed_over
    gc(store, dry_run=False, grace_s=0)
    assert object_path(store, signed_over).exists()
    assert verify_store(store)["ok"]


def test_an_amendment_that_changes_more_than_the_snapshot_is_a_break(store: Store) -> None:
    ids = record(store, 2)
    attach_notebook_snapshot(store, ids[0], b'{"cells": []}', "frontend")
    manifest = store.manifest(ids[0])
    manifest["metrics"] = {"i": 99}  # passed off as an amendment of the recorded manifest
    digest, _ = store.objects.put_bytes(canonical_json(manifest))
    store.refs.write(ids[0], digest, sync=True)
    report = verify_store(store)
    assert not report["ok"]
    assert kinds(report) == ["edited"]
    assert "changes metrics" in report["breaks"][0]["message"]


def test_a_run_deleted_from_the_store_is_a_break_naming_the_runs_around_it(store: Store) -> None:
    ids = record(store, 4)
    digest = store.read_ref(ids[1])
    (store.runs_dir / ids[1]).unlink()
    os.chmod(object_path(store, digest), 0o644)
    object_path(store, digest).unlink()
    report = verify_store(store)
    assert not report["ok"]
    gap = next(b for b in report["breaks"] if b["before"])
    assert gap["kind"] == "missing"
    assert (gap["before"]["id"], gap["after"]["id"]) == (ids[0], ids[2])
    assert [r["id"] for r in gap["runs"]] == [ids[1]]  # the index still names it
    assert kinds(report) == ["missing"]  # one break, not again for the index's row
    # With the index rebuilt (it forgets the run), the chain alone still shows the gap.
    store.rebuild_index()
    report = verify_store(store)
    assert kinds(report) == ["missing"]
    assert "1 run missing between" in report["breaks"][0]["message"]


def test_the_first_runs_of_a_writer_deleted_are_a_break(store: Store) -> None:
    ids = record(store, 3)
    (store.runs_dir / ids[0]).unlink()
    store.rebuild_index()
    report = verify_store(store)
    assert kinds(report) == ["missing"]
    assert report["breaks"][0]["after"]["id"] == ids[1]


def test_a_manifest_edited_in_place_is_a_break(store: Store) -> None:
    ids = record(store, 3)
    path = object_path(store, store.read_ref(ids[1]))
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(b'"metrics":{"i":1}', b'"metrics":{"i":7}'))
    report = verify_store(store)
    assert kinds(report) == ["edited"]
    assert "was edited" in report["breaks"][0]["message"]


def test_a_manifest_replaced_by_an_edited_copy_is_a_break_at_its_successor(store: Store) -> None:
    ids = record(store, 3)
    manifest = store.manifest(ids[1])
    manifest["metrics"] = {"i": 1000}
    digest, _ = store.objects.put_bytes(canonical_json(manifest))
    store.refs.write(ids[1], digest, sync=True)
    report = verify_store(store)
    assert kinds(report) == ["edited"]
    item = report["breaks"][0]
    assert (item["before"]["id"], item["after"]["id"]) == (ids[1], ids[2])


def test_a_moved_ref_and_a_fork_are_breaks(store: Store) -> None:
    ids = record(store, 2)
    # A second run claiming the writer's place 2, linked to run 1.
    chain = store.committer.chain
    chain.seq, chain.last = 1, store.read_ref(ids[0])
    fork = store.commit_run(new_manifest())["id"]
    report = verify_store(store)
    assert kinds(report) == ["fork"]
    assert {report["breaks"][0]["before"]["id"], report["breaks"][0]["after"]["id"]} == {ids[1], fork}
    # runs/<a> made to name run b's manifest.
    (store.runs_dir / ids[0]).write_text(store.read_ref(ids[1]) + "\n")
    assert "misplaced" in kinds(verify_store(store))


def test_runs_without_chain_fields_are_unchained_not_breaks(store: Store) -> None:
    old = new_manifest(id="01M98A2NYD2MND6PZTA7JCTGX8", number=1, format=4, kind="run")
    digest, _ = store.objects.put_bytes(canonical_json(old))
    store.refs.write(old["id"], digest, sync=True)
    store.reconcile()
    record(store, 2)
    report = verify_store(store)
    assert report["ok"], report
    assert (report["chained"], report["unchained"]) == (2, 1)


def test_a_format_4_store_is_read_as_it_is_and_upgraded_before_its_first_chained_run(tmp_path: Path) -> None:
    store = Store.init(tmp_path)
    old = new_manifest(id="01M98A2NYD2MND6PZTA7JCTGX8", number=1, format=4, kind="run")
    digest, _ = store.objects.put_bytes(canonical_json(old))
    store.refs.write(old["id"], digest, sync=True)
    store.close()
    (tmp_path / ".dotnb" / FORMAT_FILE).write_bytes(format_file_bytes(4))
    store = Store(tmp_path)
    notices: list[str] = []
    store.notice = notices.append  # type: ignore[method-assign]
    try:
        assert store.format == 4 and verify_store(store)["unchained"] == 1  # reading changes nothing
        assert (tmp_path / ".dotnb" / FORMAT_FILE).read_bytes() == format_file_bytes(4)
        record(store, 2)
        assert (
            (tmp_path / ".dotnb" / FORMAT_FILE).read_bytes()
            == format_file_bytes(FORMAT_VERSION)
            == (format_file_bytes(5))
        )
        assert len(notices) == 1 and "from format 4 to 5" in notices[0] and "runs chained" in notices[0]
        report = verify_store(store)
        assert report["ok"] and (report["chained"], report["unchained"]) == (2, 1)
    finally:
        store.close()


def test_runs_renumbered_after_the_index_was_replaced_keep_their_chain(tmp_path: Path) -> None:
    store = Store.init(tmp_path)
    notices: list[str] = []
    store.notice = notices.append  # type: ignore[method-assign]
    try:
        first = [store.commit_run(new_manifest(), sync=False)["id"] for _ in range(2)]  # not flushed
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / ".dotnb" / f"index.sqlite{suffix}").unlink(missing_ok=True)
        other = Store(tmp_path)  # a new index, where another process numbers a run #1
        try:
            other.commit_run(new_manifest())
        finally:
            other.close()
        last = store.commit_run(new_manifest(), sync=False)["id"]  # records its runs again, renumbered
        store.flush()
        assert any("is now #" in n for n in notices), notices
        renumbered = store.manifest(first[0])
        assert renumbered["number"] != 1 and isinstance(renumbered.get("amends"), str)
        report = verify_store(store)
        assert report["ok"], report["breaks"]
        assert store.manifest(last)["writer"]["seq"] == 3
    finally:
        store.close()
