"""Small objects travel as packs: a push uploads them as one pack (two requests),
a pull reads them back by byte ranges, each checked; ``fsck --remote`` re-hashes
them; a push killed before a pack's index leaves nothing any reader trusts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotnb.store.repo import Store
from tests.remote.helpers import (
    base_env,
    dotnb,
    fails,
    local_objects,
    manifests,
    new_project,
    ok,
    record_files_run,
    remote_keys,
    stored_objects,
    workspace,
)

RECORDS = {
    f"records/{part}/{i:03d}.json": b'{"part": "%s", "i": %d}\n' % (part.encode(), i) * (i % 5 + 1)
    for part in ("train", "test")
    for i in range(150)
}


def _remote(tmp_path: Path) -> tuple[Path, str]:
    shared = tmp_path / "drive" / "dotnb"
    shared.mkdir(parents=True)
    return shared, f"file://{shared}"


def _data(manifest: dict[str, Any], root: Path) -> dict[str, str]:
    store = Store(root)
    try:
        return {e["path"]: e["hash"] for e in store.files(manifest, "outputs")}
    finally:
        store.close()


def _setup(tmp_path: Path) -> tuple[Path, Path, dict[str, str], dict[str, str], Path, str, str]:
    alice, bob = new_project(tmp_path / "alice"), new_project(tmp_path / "bob")
    alice_env, bob_env = base_env("alice", tmp_path), base_env("bob", tmp_path)
    run = record_files_run(alice, RECORDS, name="records", user="alice")
    shared, url = _remote(tmp_path)
    for root, env in ((alice, alice_env), (bob, bob_env)):
        ok(dotnb("remote", "add", "origin", url, cwd=root, env=env))
    return alice, bob, alice_env, bob_env, shared, url, run


def test_many_small_files_are_pushed_as_one_pack_and_pulled_back_by_ranges(tmp_path: Path) -> None:
    alice, bob, alice_env, bob_env, shared, _, run = _setup(tmp_path)
    pushed = ok(dotnb("push", "--json", cwd=alice, env=alice_env)).json()
    hashes = _data(manifests(alice)[run], alice)
    distinct = set(hashes.values())
    assert pushed["objects_uploaded"] >= len(distinct)
    packs = sorted(p.name for p in (shared / "packs").iterdir())
    assert len(packs) == 2 and {Path(p).suffix for p in packs} == {".pack", ".idx"}
    loose = {p.parent.name + p.name for p in (shared / "objects").rglob("*") if p.is_file()}
    assert not distinct & loose  # no file of its own on the remote for any of them
    assert distinct <= stored_objects(shared)

    pulled = ok(dotnb("pull", "--with-data", "--json", cwd=bob, env=bob_env)).json()
    assert pulled["runs_new"] == 1 and pulled["objects_downloaded"] >= len(distinct)
    assert distinct <= local_objects(bob)
    assert list((bob / ".dotnb" / "packs").glob("*.idx"))  # stored here as a pack too
    ok(dotnb("restore", run, "--yes", cwd=bob, env=bob_env))
    assert {k: v for k, v in workspace(bob).items() if k.startswith("records/")} == RECORDS
    assert ok(dotnb("fsck", "--json", cwd=bob, env=bob_env)).json()["ok"]
    checked = ok(dotnb("fsck", "--remote", "origin", "--json", cwd=bob, env=bob_env)).json()
    assert checked["ok"] and checked["objects_checked"] >= len(distinct)


def test_a_packed_object_is_fetched_on_demand_alone(tmp_path: Path) -> None:
    alice, bob, alice_env, bob_env, _, _, run = _setup(tmp_path)
    ok(dotnb("push", cwd=alice, env=alice_env))
    ok(dotnb("pull", cwd=bob, env=bob_env))
    cat = ok(dotnb("cat", run, "records/test/042.json", cwd=bob, env=bob_env))
    assert cat.stdout.encode() == RECORDS["records/test/042.json"]
    hashes = _data(manifests(alice)[run], alice)
    fetched = set(hashes.values()) & local_objects(bob)
    assert fetched == {hashes["records/test/042.json"]}  # one range, not the whole pack


def test_a_corrupted_packed_object_on_the_remote_is_reported_and_never_stored(tmp_path: Path) -> None:
    alice, bob, alice_env, bob_env, shared, _, run = _setup(tmp_path)
    ok(dotnb("push", cwd=alice, env=alice_env))
    (pack,) = (shared / "packs").glob("*.pack")
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(pack, 0o644)
    pack.write_bytes(bytes(data))
    checked = fails(dotnb("fsck", "--remote", "origin", "--json", cwd=bob, env=bob_env)).json()
    (bad,) = checked["corrupted"]
    assert bad["runs"] == [run]
    ok(dotnb("pull", cwd=bob, env=bob_env))
    path = next(p for p, h in _data(manifests(alice)[run], alice).items() if h == bad["object"])
    got = dotnb("cat", run, path, cwd=bob, env=bob_env)
    assert got.returncode != 0 and "corrupted" in got.stderr and got.stdout == ""
    assert bad["object"] not in local_objects(bob)


def test_a_push_killed_before_its_pack_index_is_completed_by_the_next_push(tmp_path: Path) -> None:
    alice, bob, alice_env, bob_env, shared, _, run = _setup(tmp_path)
    ok(dotnb("push", cwd=alice, env=alice_env))
    # As if the push died after uploading the pack and before its index and the run's ref.
    (index,) = (shared / "packs").glob("*.idx")
    index.unlink()
    for p in [*(shared / "runs").iterdir(), *(shared / "journal").iterdir()]:
        p.unlink()
    Store(alice).index.db.execute("DELETE FROM remote_runs")
    again = ok(dotnb("push", "--json", cwd=alice, env=alice_env)).json()
    assert again["runs_pushed"] == 1
    assert index.exists()
    ok(dotnb("pull", "--with-data", cwd=bob, env=bob_env))
    ok(dotnb("restore", run, "--yes", cwd=bob, env=bob_env))
    assert {k: v for k, v in workspace(bob).items() if k.startswith("records/")} == RECORDS


def test_a_push_to_s3_takes_a_few_requests_for_many_small_files(
    alice: Path,
    bob: Path,
    alice_env: dict[str, str],
    bob_env: dict[str, str],
    remote_url: str,
    s3_client: Any,
    bucket: str,
) -> None:
    run = record_files_run(alice, RECORDS, name="records", user="alice")
    for root, env in ((alice, alice_env), (bob, bob_env)):
        ok(dotnb("remote", "add", "team", remote_url, cwd=root, env=env))
    ok(dotnb("push", cwd=alice, env=alice_env))
    keys = remote_keys(s3_client, bucket)
    # 300 files, a few objects of their own (manifests, trees, code), one pack.
    assert len([k for k in keys if "/packs/" in k]) == 2
    assert len(keys) < 60
    ok(dotnb("pull", "--with-data", cwd=bob, env=bob_env))
    ok(dotnb("restore", run, "--yes", cwd=bob, env=bob_env))
    assert {k: v for k, v in workspace(bob).items() if k.startswith("records/")} == RECORDS
