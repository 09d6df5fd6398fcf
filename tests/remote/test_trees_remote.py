"""Runs whose folders are recorded as trees, through a ``file://`` remote: push
uploads the trees and every file under them, pull brings the trees with the
manifests (checked), data on demand; a remote of an older format is upgraded by
the first push; a tree damaged on the remote rejects its run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dotnb.store.layout import format_file_bytes
from dotnb.store.manifest import FORMAT_VERSION
from dotnb.store.repo import Store
from dotnb.store.trees import is_tree, parse_tree
from tests.remote.helpers import (
    all_objects,
    base_env,
    dotnb,
    local_objects,
    manifests,
    new_project,
    ok,
    record_files_run,
    stored_objects,
    workspace,
)

SHARDS = {f"shards/{part}/{i:03d}.json": b'{"i": %d}\n' % i for part in ("a", "b") for i in range(30)}


def _remote(tmp_path: Path, format_version: int | None = None) -> tuple[Path, str]:
    shared = tmp_path / "drive" / "dotnb"
    shared.mkdir(parents=True)
    if format_version is not None:
        (shared / "format").write_bytes(format_file_bytes(format_version))
    return shared, f"file://{shared}"


def test_a_run_of_many_files_is_pushed_and_pulled_with_its_trees(tmp_path: Path) -> None:
    alice, bob = new_project(tmp_path / "alice"), new_project(tmp_path / "bob")
    alice_env, bob_env = base_env("alice", tmp_path), base_env("bob", tmp_path)
    run = record_files_run(alice, SHARDS, name="shards", user="alice")
    manifest = manifests(alice)[run]
    assert [e["path"] for e in manifest["outputs"] if is_tree(e)] == ["shards"]
    shared, url = _remote(tmp_path)
    ok(dotnb("remote", "add", "origin", url, cwd=alice, env=alice_env))
    ok(dotnb("push", cwd=alice, env=alice_env))
    assert all_objects(alice, manifest) <= stored_objects(shared)  # trees, every file under them

    ok(dotnb("remote", "add", "origin", url, cwd=bob, env=bob_env))
    pulled = ok(dotnb("pull", "--json", cwd=bob, env=bob_env)).json()
    assert (pulled["runs_new"], pulled["runs_rejected"]) == (1, [])
    # The trees came with the manifest (what the run read and wrote is known here);
    # the files' bytes stay on the remote until they are needed.
    top = manifest["outputs"][0]["tree"]
    trees = {top} | {row[1] for row in parse_tree(top, (shared / "objects" / top[:2] / top[2:]).read_bytes())}
    assert trees <= local_objects(bob)
    assert not {e["hash"] for e in Store(bob).files(manifest, "outputs")} & local_objects(bob)
    shown = ok(dotnb("show", run, "--files", "--json", cwd=bob, env=bob_env)).json()
    assert sorted(e["path"] for e in shown["outputs"]) == sorted(SHARDS)
    cat = ok(dotnb("cat", run, "shards/b/017.json", cwd=bob, env=bob_env))
    assert cat.stdout.encode() == SHARDS["shards/b/017.json"]
    ok(dotnb("restore", run, "--yes", cwd=bob, env=bob_env))
    assert {k: v for k, v in workspace(bob).items() if k.startswith("shards/")} == SHARDS
    ok(dotnb("fsck", "--remote", "origin", cwd=bob, env=bob_env))


def test_the_first_push_upgrades_a_remote_of_an_older_format(tmp_path: Path) -> None:
    alice = new_project(tmp_path / "alice")
    env = base_env("alice", tmp_path)
    record_files_run(alice, SHARDS, name="shards", user="alice")
    shared, url = _remote(tmp_path, format_version=2)
    ok(dotnb("remote", "add", "origin", url, cwd=alice, env=env))
    pushed = ok(dotnb("push", cwd=alice, env=env))
    assert json.loads((shared / "format").read_bytes()) == {"format": FORMAT_VERSION}
    assert f"from format 2 to {FORMAT_VERSION}" in pushed.stderr


def test_a_tree_missing_on_the_remote_rejects_its_run_and_nothing_else(tmp_path: Path) -> None:
    alice, bob = new_project(tmp_path / "alice"), new_project(tmp_path / "bob")
    alice_env, bob_env = base_env("alice", tmp_path), base_env("bob", tmp_path)
    broken = record_files_run(alice, SHARDS, name="shards", user="alice")
    fine = record_files_run(alice, {"one.csv": b"1\n"}, name="one", user="alice")
    shared, url = _remote(tmp_path)
    ok(dotnb("remote", "add", "origin", url, cwd=alice, env=alice_env))
    ok(dotnb("push", cwd=alice, env=alice_env))
    top = manifests(alice)[broken]["outputs"][0]["tree"]
    sub = parse_tree(top, (shared / "objects" / top[:2] / top[2:]).read_bytes())[0][1]
    (shared / "objects" / sub[:2] / sub[2:]).unlink()
    ok(dotnb("remote", "add", "origin", url, cwd=bob, env=bob_env))
    pulled = ok(dotnb("pull", "--json", cwd=bob, env=bob_env)).json()
    assert pulled["runs_new"] == 1
    assert [r["id"] for r in pulled["runs_rejected"]] == [broken]
    assert "missing" in pulled["runs_rejected"][0]["reason"]
    assert set(manifests(bob)) == {fine}
    report = dotnb("fsck", "--remote", "origin", "--json", cwd=bob, env=bob_env)
    assert report.returncode != 0 and sub in report.stdout
    shutil.rmtree(shared)
