"""Remotes through the Python API on a ``file://`` remote: the logic of push, pull and
on-demand fetch, fast.  tests/remote/ runs the same flows against a real S3 server."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from dotnb.remote import transfer
from dotnb.remote.check import fsck_remote
from dotnb.remote.config import add_remote, get_remote, list_remotes, remove_remote
from dotnb.remote.errors import (
    NoRemoteConfigured,
    RemoteError,
    RemoteFormatError,
    RemoteObjectCorrupt,
    UnknownRemote,
)
from dotnb.remote.ondemand import attach
from dotnb.remote.transfer import pull, push
from dotnb.store.errors import DotnbError
from dotnb.store.hashing import hash_bytes
from dotnb.store.ids import id_floor, new_run_id
from dotnb.store.manifest import canonical_json
from dotnb.store.repo import Store
from dotnb.store.restore import restore
from tests.manifests import new_manifest


def record(store: Store, rel: str, content: bytes, user: str = "alice", **fields: Any) -> str:
    path = store.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    outputs = store.snapshot_files([rel])
    env = {"user": user, "host": f"{user}-laptop"}
    return str(store.commit_run(new_manifest(outputs=outputs, environment=env, **fields))["id"])


@pytest.fixture
def remote_dir(tmp_path: Path) -> Path:
    d = tmp_path / "remote"
    d.mkdir()
    return d


@pytest.fixture
def alice(tmp_path: Path, remote_dir: Path) -> Store:
    store = Store.init(tmp_path / "alice")
    add_remote(store, "origin", remote_dir.as_uri())
    return store


@pytest.fixture
def bob(tmp_path: Path, remote_dir: Path) -> Store:
    store = Store.init(tmp_path / "bob")
    add_remote(store, "origin", remote_dir.as_uri())
    attach(store)
    return store


# -- configuration ----------------------------------------------------------


def test_remote_config_validates_and_keeps_no_credentials(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "p")
    with pytest.raises(NoRemoteConfigured):
        get_remote(store)
    first = add_remote(store, "origin", "s3://team-bucket/proj/", endpoint_url="http://127.0.0.1:9000")
    assert first["default"] and first["url"] == "s3://team-bucket/proj"
    second = add_remote(store, "shared", (tmp_path / "drive").as_uri())
    assert not second["default"]
    assert [r["name"] for r in list_remotes(store)] == ["origin", "shared"]
    for bad_name in ("", "-x", "a/b", "x" * 65):
        with pytest.raises(RemoteError, match="not a valid remote name"):
            add_remote(store, bad_name, "s3://bucket")
    with pytest.raises(RemoteError, match="already exists"):
        add_remote(store, "origin", "s3://other-bucket")
    with pytest.raises(RemoteError, match="credentials"):
        add_remote(store, "leaky", "s3://AKIA:s3cr3t@bucket/p")
    with pytest.raises(RemoteError, match="unsupported"):
        add_remote(store, "web", "http://example.com/x")
    with pytest.raises(RemoteError, match="absolute path"):
        add_remote(store, "rel", "file://relative/path")
    with pytest.raises(RemoteError, match="bucket name"):
        add_remote(store, "b", "s3://Bad_Bucket")
    assert "s3cr3t" not in (store.dir / "remotes.json").read_text()
    with pytest.raises(UnknownRemote, match="origin, shared"):
        get_remote(store, "nope")
    remove_remote(store, "origin")
    # The one remaining remote becomes the default.
    assert get_remote(store)["name"] == "shared"


# -- push and pull ------------------------------------------------------------


def test_push_then_pull_shows_author_and_origin_and_fetches_on_demand(alice: Store, bob: Store) -> None:
    run_id = record(alice, "out/model.bin", b"weights" * 1000, params={"lr": 0.1})
    result = push(alice)
    assert (result["runs_pushed"], result["runs_already"]) == (1, 0)
    assert result["objects_uploaded"] >= 2 and result["bytes_uploaded"] > 7000
    again = push(alice)
    assert (again["runs_pushed"], again["objects_uploaded"], again["runs_already"]) == (0, 0, 1)

    pulled = pull(bob)
    assert pulled["runs_new"] == 1 and pulled["runs_rejected"] == []
    (row,) = bob.list_runs()
    assert row["id"] == run_id and row["remote"] == "origin"
    assert (row["user"], row["host"]) == ("alice", "alice-laptop")
    assert [r["id"] for r in bob.list_runs(author="alice")] == [run_id]
    assert [r["id"] for r in bob.list_runs(author="alice@alice-laptop")] == [run_id]
    assert bob.list_runs(author="bob") == []
    # Data stays on the remote until something reads it.
    digest = bob.manifest(run_id)["outputs"][0]["hash"]
    assert not bob.objects.has(digest)
    restore(bob, run_id)
    assert (bob.root / "out/model.bin").read_bytes() == b"weights" * 1000
    assert bob.objects.has(digest)
    assert pull(bob)["runs_new"] == 0


def test_pull_with_data_fetches_every_object(alice: Store, bob: Store) -> None:
    run_id = record(alice, "a.csv", b"x,y\n1,2\n")
    push(alice)
    result = pull(bob, with_data=True)
    digest = bob.manifest(run_id)["outputs"][0]["hash"]
    assert result["objects_downloaded"] >= 1 and bob.objects.has(digest)


def test_pulled_runs_keep_numbers_and_hash_refers_to_own_run(alice: Store, bob: Store) -> None:
    theirs = record(alice, "a.txt", b"alice")
    record(alice, "a.txt", b"alice 2")
    record(alice, "a.txt", b"alice 3")
    push(alice)
    mine = record(bob, "b.txt", b"bob", user="bob")
    pull(bob)
    # Both are #1 of nb.ipynb; '#1' means this store's own run.
    assert bob.resolve("#1") == mine
    assert {mine, theirs} <= {r["id"] for r in bob.list_runs()}
    # A new local run continues this store's numbering, not the pulled ones'.
    next_run = record(bob, "c.txt", b"bob2", user="bob")
    assert bob.manifest(next_run)["number"] == 2


def test_incremental_pull_reads_only_new_journal_records(alice: Store, bob: Store, monkeypatch: Any) -> None:
    record(alice, "1.txt", b"1")
    push(alice)
    pull(bob)
    listed: list[tuple[str, str | None]] = []
    original = transfer.open_backend

    def spy(spec: dict[str, Any]) -> Any:
        backend = original(spec)
        real = backend.list_keys

        def list_keys(prefix: str, start_after: str | None = None) -> Any:
            listed.append((prefix, start_after))
            return real(prefix, start_after)

        backend.list_keys = list_keys  # type: ignore[method-assign]
        return backend

    monkeypatch.setattr(transfer, "open_backend", spy)
    second = record(alice, "2.txt", b"2")
    push(alice)
    result = pull(bob)
    assert result["runs_new"] == 1 and second in bob.index.all_run_ids()
    # (Tags and notes are listed too, from their own cursor: dotnb.remote.annotation_transfer.)
    journal = [after for prefix, after in listed if prefix == "journal/"]
    assert journal and journal[-1] is not None and journal[-1].startswith("journal/")
    assert all(after is not None for prefix, after in listed if prefix == "annotations/")


def test_a_late_journal_record_within_the_skew_window_is_still_pulled(
    alice: Store, bob: Store, remote_dir: Path
) -> None:
    record(alice, "1.txt", b"1")
    push(alice)
    pull(bob)
    # A pusher whose clock is 2 minutes behind writes a record that sorts before the cursor.
    late = record(alice, "2.txt", b"2")
    push(alice)
    journal = sorted((remote_dir / "journal").iterdir())
    newest = journal[-1]
    # (new_run_id never goes back in time within a process, so build the id by hand.)
    skewed_id = id_floor(int(time.time() * 1000) - 120_000) + "0" * 16
    os.rename(newest, newest.with_name(skewed_id))
    # bob's cursor must be ahead of the skewed record for the test to mean anything.
    cursor = json.loads(bob.index.get_meta("pull:origin") or "{}")["cursor"]
    assert f"journal/{skewed_id}" < cursor
    assert pull(bob)["runs_new"] == 1 and late in bob.index.all_run_ids()


def test_push_killed_before_its_journal_record_is_completed_by_the_next_push(
    alice: Store, bob: Store, monkeypatch: Any
) -> None:
    run_id = record(alice, "big.bin", os.urandom(50_000))
    original = transfer.open_backend

    def dies_at_journal(spec: dict[str, Any]) -> Any:
        backend = original(spec)
        real = backend.write

        def write(key: str, data: bytes, create_only: bool = False) -> bool:
            if key.startswith("journal/"):
                raise KeyboardInterrupt  # the process dies here
            return bool(real(key, data, create_only))

        backend.write = write  # type: ignore[method-assign]
        return backend

    monkeypatch.setattr(transfer, "open_backend", dies_at_journal)
    with pytest.raises(KeyboardInterrupt):
        push(alice)
    monkeypatch.setattr(transfer, "open_backend", original)
    assert pull(bob)["runs_new"] == 0  # nothing announced yet
    report = fsck_remote(bob)
    assert report["ok"] and report["unjournaled_runs"] == [run_id]
    finish = push(alice)
    assert (finish["objects_uploaded"], finish["runs_pushed"], finish["runs_already"]) == (0, 0, 1)
    assert pull(bob)["runs_new"] == 1
    assert fsck_remote(bob)["unjournaled_runs"] == []


def test_pull_full_finds_runs_whose_journal_record_is_missing(
    alice: Store, bob: Store, remote_dir: Path
) -> None:
    run_id = record(alice, "x.txt", b"x")
    push(alice)
    for rec in (remote_dir / "journal").iterdir():
        rec.unlink()
    assert pull(bob)["runs_new"] == 0
    assert pull(bob, full=True)["runs_new"] == 1 and run_id in bob.index.all_run_ids()


# -- faults and hostile remotes ---------------------------------------------------


def test_corrupted_remote_object_is_refused_and_never_stored(
    alice: Store, bob: Store, remote_dir: Path
) -> None:
    run_id = record(alice, "data/train.csv", b"a,b\n1,2\n" * 100)
    push(alice)
    pull(bob)
    digest = bob.manifest(run_id)["outputs"][0]["hash"]
    obj = remote_dir / "objects" / digest[:2] / digest[2:]
    obj.write_bytes(b"tampered")
    with pytest.raises(RemoteObjectCorrupt, match=digest[:12]):
        restore(bob, run_id)
    assert not bob.objects.has(digest)
    assert not (bob.root / "data/train.csv").exists()
    assert os.listdir(bob.dir / "tmp") == []
    report = fsck_remote(bob)
    assert not report["ok"]
    assert report["corrupted"] == [{"object": digest, "runs": [run_id]}]


def _plant_run(remote_dir: Path, manifest: dict[str, Any]) -> str:
    """Write a run straight onto a file remote, as a hostile pusher could."""
    data = canonical_json(manifest)
    digest = hash_bytes(data)
    obj = remote_dir / "objects" / digest[:2] / digest[2:]
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(data)
    (remote_dir / "runs").mkdir(exist_ok=True)
    (remote_dir / "runs" / manifest["id"]).write_text(digest + "\n")
    record = {"format": 1, "runs": {manifest["id"]: digest}}
    (remote_dir / "journal" / new_run_id()).write_text(json.dumps(record))
    return digest


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.txt", "data/../../x", "a//b"])
def test_malicious_manifest_paths_are_rejected_on_pull(
    alice: Store, bob: Store, remote_dir: Path, path: str
) -> None:
    record(alice, "ok.txt", b"fine")
    push(alice)
    evil = new_manifest(
        outputs=[{"path": path, "hash": hash_bytes(b"evil"), "size": 4}], format=1, number=1, id=new_run_id()
    )
    _plant_run(remote_dir, evil)
    result = pull(bob)
    assert result["runs_new"] == 1
    assert [r["id"] for r in result["runs_rejected"]] == [evil["id"]]
    assert "unsafe path" in result["runs_rejected"][0]["reason"]
    assert evil["id"] not in bob.index.all_run_ids()
    assert not (bob.dir / "runs" / evil["id"]).exists()


def test_manifest_whose_id_differs_from_its_ref_is_rejected(
    alice: Store, bob: Store, remote_dir: Path
) -> None:
    record(alice, "ok.txt", b"fine")
    push(alice)
    manifest = new_manifest(format=1, number=1, id=new_run_id())
    data = canonical_json(manifest)
    digest = _plant_run(remote_dir, manifest)
    other = new_run_id()
    (remote_dir / "journal" / new_run_id()).write_text(json.dumps({"format": 1, "runs": {other: digest}}))
    rejected = {r["id"]: r["reason"] for r in pull(bob)["runs_rejected"]}
    assert "another run" in rejected[other]
    assert data  # the planted run itself is fine and was imported
    assert manifest["id"] in bob.index.all_run_ids()


def test_remote_of_a_newer_format_is_refused(alice: Store, bob: Store, remote_dir: Path) -> None:
    record(alice, "a.txt", b"a")
    push(alice)
    (remote_dir / "format").write_text('{"format": 99}')
    with pytest.raises(RemoteFormatError, match="format 99"):
        push(alice)
    with pytest.raises(RemoteFormatError, match="format 99"):
        pull(bob)


def test_missing_remote_folder_and_empty_remote_give_clear_errors(tmp_path: Path, bob: Store) -> None:
    with pytest.raises(RemoteError, match="nothing has been pushed"):
        pull(bob)
    add_remote(bob, "gone", (tmp_path / "no-such-folder").as_uri())
    with pytest.raises(RemoteError, match="does not exist"):
        push(bob, "gone")


def test_a_run_changed_after_push_is_a_conflict_and_the_remote_keeps_its_version(
    alice: Store, remote_dir: Path
) -> None:
    run_id = record(alice, "a.txt", b"a")
    push(alice)
    before = (remote_dir / "runs" / run_id).read_text()
    manifest = alice.manifest(run_id)
    manifest["name"] = "renamed later"
    alice.update_manifest(manifest)
    result = push(alice)
    assert [c["id"] for c in result["conflicts"]] == [run_id]
    assert (remote_dir / "runs" / run_id).read_text() == before


def test_pulled_runs_cannot_be_changed_locally(alice: Store, bob: Store) -> None:
    run_id = record(alice, "a.txt", b"a")
    push(alice)
    pull(bob)
    manifest = bob.manifest(run_id)
    manifest["name"] = "mine now"
    with pytest.raises(DotnbError, match="pulled from remote 'origin'"):
        bob.update_manifest(manifest)


def test_pulled_origin_survives_an_index_rebuild(alice: Store, bob: Store) -> None:
    run_id = record(alice, "a.txt", b"a")
    push(alice)
    pull(bob)
    bob.rebuild_index()
    (row,) = bob.list_runs()
    assert row["id"] == run_id and row["remote"] == "origin"


def test_objects_missing_everywhere_name_the_remotes(alice: Store, bob: Store, remote_dir: Path) -> None:
    run_id = record(alice, "a.txt", b"abc")
    push(alice)
    pull(bob)
    digest = bob.manifest(run_id)["outputs"][0]["hash"]
    (remote_dir / "objects" / digest[:2] / digest[2:]).unlink()
    with pytest.raises(RemoteError, match=r"missing locally and on the remotes \(origin\)"):
        bob.objects.read_bytes(digest)
    report = fsck_remote(bob)
    assert report["missing"] == [{"object": digest, "runs": [run_id]}]


def test_local_fsck_counts_pulled_data_left_on_the_remote_as_healthy(
    alice: Store, bob: Store, remote_dir: Path
) -> None:
    from dotnb.store.fsck import fsck

    run_id = record(alice, "a.txt", b"abc")
    push(alice)
    pull(bob)
    report = fsck(bob)
    digest = bob.manifest(run_id)["outputs"][0]["hash"]
    assert report["ok"] and report["missing"] == []
    assert {"object": digest, "runs": [run_id]} in report["on_remote"]
    # An object a local run needs is still missing, pulled or not.
    own = record(bob, "b.txt", b"mine", user="bob")
    own_digest = bob.manifest(own)["outputs"][0]["hash"]
    os.chmod(bob.objects.path_for(own_digest), 0o644)
    os.unlink(bob.objects.path_for(own_digest))
    report = fsck(bob)
    assert not report["ok"] and report["missing"] == [{"object": own_digest, "runs": [own]}]


class _FakeS3FileSystem:
    """What dotnb.remote.s3_adapter needs of an S3FileSystem, the public call_s3 only
    (an s3fs without the coroutine behind it)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], bool]] = []

    def call_s3(self, method: str, **kwargs: Any) -> dict[str, Any]:
        import asyncio

        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        self.calls.append((method, kwargs, on_loop))
        return {"method": method, **kwargs}


def test_s3_requests_fall_back_to_the_public_call_s3_off_the_event_loop() -> None:
    import asyncio

    from dotnb.remote.s3_adapter import s3_request

    fs = _FakeS3FileSystem()
    request = s3_request(fs)

    async def send() -> Any:
        return await request("head_object", Bucket="b", Key="k")

    assert asyncio.run(send()) == {"method": "head_object", "Bucket": "b", "Key": "k"}
    # Run in a worker thread: the blocking call_s3 never runs on the loop it waits for.
    assert fs.calls == [("head_object", {"Bucket": "b", "Key": "k"}, False)]


def test_s3_requests_go_through_the_coroutine_where_s3fs_has_it() -> None:
    import asyncio

    from dotnb.remote.s3_adapter import s3_request

    class WithCoroutine(_FakeS3FileSystem):
        async def _call_s3(self, method: str, **kwargs: Any) -> dict[str, Any]:
            self.calls.append((method, kwargs, True))
            return {"coroutine": method}

    fs = WithCoroutine()

    async def send() -> Any:
        return await s3_request(fs)("get_object", Bucket="b", Key="k")

    assert asyncio.run(send()) == {"coroutine": "get_object"}
    assert fs.calls == [("get_object", {"Bucket": "b", "Key": "k"}, True)]
