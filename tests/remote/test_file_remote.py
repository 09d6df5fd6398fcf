"""A ``file://`` remote (a shared folder), without S3; and the remote configuration commands."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.hashing import hash_bytes
from dotnb.store.manifest import FORMAT_VERSION
from tests.remote.helpers import (
    KEY,
    SECRET,
    base_env,
    corrupt_local_objects,
    data_objects,
    dotnb,
    fails,
    local_objects,
    manifests,
    ok,
    record_files_run,
    workspace,
)


def files_under(base: Path) -> dict[str, bytes]:
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


@pytest.mark.kernel  # Alice's project is recorded by a real kernel
def test_two_people_share_runs_through_a_folder(alice: Path, bob: Path, tmp_path: Path) -> None:
    shared = tmp_path / "team-drive" / "dotnb"
    shared.mkdir(parents=True)
    url = f"file://{shared}"
    alice_env, bob_env = base_env("alice", tmp_path), base_env("bob", tmp_path)
    runs = manifests(alice)
    prep, scale = sorted(runs.values(), key=lambda m: m["id"])
    assert (prep["name"], scale["name"]) == ("prep", "scale")

    ok(dotnb("remote", "add", "origin", url, cwd=alice, env=alice_env))
    pushed = ok(dotnb("push", "--json", cwd=alice, env=alice_env)).json()
    assert (pushed["remote"], pushed["url"], pushed["runs_pushed"]) == ("origin", url, 2)

    # The folder holds the store's layout and nothing else (no temp files left behind).
    stored = files_under(shared)
    assert json.loads(stored.pop("format")) == {"format": FORMAT_VERSION}
    journal = [k for k in stored if k.startswith("journal/")]
    assert len(journal) == 1 and set(json.loads(stored.pop(journal[0]))["runs"]) == set(runs)
    for run_id in runs:
        assert stored.pop(f"runs/{run_id}") == (alice / ".dotnb" / "runs" / run_id).read_bytes()
    assert stored and all(k.startswith("objects/") for k in stored), sorted(stored)
    for key, data in stored.items():
        assert hash_bytes(data) == key.replace("objects/", "").replace("/", ""), key
    assert pushed["objects_uploaded"] == len(stored)
    assert pushed["bytes_uploaded"] == sum(len(d) for d in stored.values())
    again = ok(dotnb("push", "--json", cwd=alice, env=alice_env)).json()
    assert (again["runs_pushed"], again["objects_uploaded"]) == (0, 0)

    ok(dotnb("remote", "add", "origin", url, cwd=bob, env=bob_env))
    pulled = ok(dotnb("pull", "--json", cwd=bob, env=bob_env)).json()
    assert (pulled["runs_new"], pulled["runs_rejected"]) == (2, [])
    assert not (data_objects(prep) | data_objects(scale)) & local_objects(bob)
    rows = ok(dotnb("log", "--json", "--author", "alice", cwd=bob, env=bob_env)).json()
    assert {r["id"] for r in rows} == set(runs)
    assert {(r["user"], r["remote"]) for r in rows} == {("alice", "origin")}
    assert ok(dotnb("log", "--json", "--author", "bob", cwd=bob, env=bob_env)).json() == []

    # cat and restore read Alice's bytes from the folder.
    cat = ok(dotnb("cat", scale["id"], "out/scaled.csv", cwd=bob, env=bob_env))
    assert cat.stdout.encode() == (alice / "out" / "scaled.csv").read_bytes()
    ok(dotnb("restore", prep["id"], cwd=bob, env=bob_env))
    theirs, mine = workspace(alice), workspace(bob)
    for path in ("data/input.csv", "data/blob.bin", "out/result.csv", "analysis.ipynb"):
        assert mine[path] == theirs[path], path
    assert corrupt_local_objects(bob) == []
    ok(dotnb("fsck", "--remote", "origin", cwd=bob, env=bob_env))

    # Bob's own run goes back the same way (his restore checkpoint stays local); Alice's pull
    # brings only that run, not her own ones back.
    own = record_files_run(bob, {"notes/bob.txt": b"from bob\n"}, name="bobs", user="bob")
    assert ok(dotnb("push", "--json", cwd=bob, env=bob_env)).json()["runs_pushed"] == 1
    back = ok(dotnb("pull", "--json", cwd=alice, env=alice_env)).json()
    assert (back["runs_new"], back["runs_rejected"]) == (1, [])
    rows = {r["id"]: r for r in ok(dotnb("log", "--json", cwd=alice, env=alice_env)).json()}
    assert set(rows) == {*runs, own}
    assert (rows[own]["user"], rows[own]["remote"]) == ("bob", "origin")
    assert {rows[r]["remote"] for r in runs} == {None}


def test_remote_config_commands(bob: Path, tmp_path: Path) -> None:
    env = base_env("bob", tmp_path)
    config = bob / ".dotnb" / "remotes.json"

    result = fails(dotnb("push", cwd=bob, env=env))
    assert "no remote is configured" in result.stderr
    for url in (f"s3://{KEY}:{SECRET}@bucket/runs", f"https://{KEY}:{SECRET}@host/bucket"):
        result = fails(dotnb("remote", "add", "origin", url, cwd=bob, env=env))
        assert "Traceback" not in result.stderr and SECRET not in result.stdout + result.stderr
    endpoint = f"http://{KEY}:{SECRET}@minio:9000"
    add = ["remote", "add", "origin", "s3://bucket/runs", "--endpoint-url", endpoint]
    result = fails(dotnb(*add, cwd=bob, env=env))
    echoed = result.stdout + result.stderr
    assert not config.exists() or SECRET not in config.read_text()

    shared = tmp_path / "shared"
    shared.mkdir()
    ok(dotnb("remote", "add", "origin", f"file://{shared}", cwd=bob, env=env))
    ok(
        dotnb(
            "remote",
            "add",
            "lab",
            "s3://lab-bucket/x",
            "--endpoint-url",
            "http://minio:9000",
            cwd=bob,
            env=env,
        )
    )
    listed: list[dict[str, Any]] = ok(dotnb("remote", "list", "--json", cwd=bob, env=env)).json()
    assert [(r["name"], r["default"]) for r in listed] == [("lab", False), ("origin", True)]
    assert listed[0]["endpoint_url"] == "http://minio:9000"
    fails(dotnb("remote", "add", "origin", "s3://other-bucket", cwd=bob, env=env))
    ok(dotnb("remote", "remove", "origin", cwd=bob, env=env))
    listed = ok(dotnb("remote", "list", "--json", cwd=bob, env=env)).json()
    assert [(r["name"], r["default"]) for r in listed] == [("lab", True)]
    fails(dotnb("remote", "remove", "origin", cwd=bob, env=env))
    # pull takes only a remote name.
    result = fails(dotnb("pull", "nosuch", cwd=bob, env=env))
    assert "nosuch" in result.stderr
    assert os.stat(config).st_size > 0 and KEY not in config.read_text()
    assert SECRET not in echoed, "the refused --endpoint-url is echoed back with its secret"


@pytest.mark.kernel  # Alice's project is recorded by a real kernel
def test_local_fsck_after_a_plain_pull_is_clean(alice: Path, bob: Path, tmp_path: Path) -> None:
    """Objects a plain pull leaves on the remote (by design) are not damage to the local store."""
    shared = tmp_path / "shared"
    shared.mkdir()
    alice_env, bob_env = base_env("alice", tmp_path), base_env("bob", tmp_path)
    ok(dotnb("remote", "add", "origin", f"file://{shared}", cwd=alice, env=alice_env))
    ok(dotnb("push", cwd=alice, env=alice_env))
    ok(dotnb("remote", "add", "origin", f"file://{shared}", cwd=bob, env=bob_env))
    assert ok(dotnb("pull", "--json", cwd=bob, env=bob_env)).json()["runs_new"] == 2
    report = dotnb("fsck", "--json", cwd=bob, env=bob_env)
    assert report.returncode == 0 and report.json()["ok"] is True, str(report)
    ok(dotnb("fsck", "--remote", "origin", cwd=bob, env=bob_env))
