"""Two people share runs through a real S3 server (SeaweedFS): push, pull, log, show,
restore, reproduce; pulling data or not; idempotent, concurrent and interrupted pushes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.manifest import FORMAT_VERSION
from dotnb.store.packs import PACK_OBJECT_MAX
from tests.remote.helpers import (
    PREP_CELL,
    Result,
    all_objects,
    assert_no_credentials,
    command,
    corrupt_local_objects,
    data_objects,
    dotnb,
    fails,
    local_objects,
    manifests,
    new_project,
    ok,
    record_files_run,
    remote_keys,
    remote_object_names,
    workspace,
)
from tests.remote.seaweed import SeaweedS3

pytestmark = pytest.mark.kernel


def by_name(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in runs.values()}


def local_ref(root: Path, run_id: str) -> str:
    return (root / ".dotnb" / "runs" / run_id).read_text().strip()


def object_size(root: Path, digest: str) -> int:
    return (root / ".dotnb" / "objects" / digest[:2] / digest[2:]).stat().st_size


def pushed_objects(root: Path, runs: dict[str, dict[str, Any]]) -> set[str]:
    """What a push of ``runs`` must put on the remote: every object they use, and their manifests."""
    found: set[str] = set()
    for run_id, manifest in runs.items():
        found |= all_objects(root, manifest) | {local_ref(root, run_id)}
    return found


def log(root: Path, env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ok(dotnb("log", "--json", *args, cwd=root, env=env)).json()
    return rows


def test_two_people_share_runs_through_s3(
    s3: SeaweedS3,
    alice: Path,
    bob: Path,
    alice_env: dict[str, str],
    bob_env: dict[str, str],
    remote_url: str,
    bucket: str,
    s3_client: Any,
) -> None:
    runs = manifests(alice)
    prep, scale = by_name(runs)["prep"], by_name(runs)["scale"]
    host = prep["environment"]["host"]
    assert prep["environment"]["user"] == "alice" and host

    # Alice: add the remote, push everything.
    added = ok(dotnb("remote", "add", "origin", remote_url, "--json", cwd=alice, env=alice_env)).json()
    assert added["name"] == "origin" and added["url"] == remote_url and added["default"] is True
    pushed = ok(dotnb("push", "--json", cwd=alice, env=alice_env)).json()
    assert pushed["remote"] == "origin" and pushed["url"] == remote_url
    assert (pushed["runs_pushed"], pushed["runs_already"], pushed["conflicts"]) == (2, 0, [])
    on_remote = remote_object_names(s3_client, bucket)
    needed = pushed_objects(alice, runs)
    assert needed <= on_remote
    assert pushed["objects_uploaded"] == len(on_remote)  # a fresh bucket: all of them were uploaded now
    assert pushed["bytes_uploaded"] == sum(object_size(alice, d) for d in on_remote)
    # The remote has the store's layout: format, refs equal to the local ones, a journal record.
    body = s3_client.get_object(Bucket=bucket, Key="team/format")["Body"].read()
    assert json.loads(body) == {"format": FORMAT_VERSION}
    for run_id in runs:
        ref = s3_client.get_object(Bucket=bucket, Key=f"team/runs/{run_id}")["Body"].read()
        assert ref == (alice / ".dotnb" / "runs" / run_id).read_bytes()
    assert remote_keys(s3_client, bucket, "team/journal/")

    # Bob has a run of his own, then adds the same remote with its endpoint stored in
    # remotes.json (no AWS_ENDPOINT_URL in his environment) and pulls.
    own = record_files_run(bob, {"notes/bob.txt": b"bob's own work\n"}, name="bobs", user="bob")
    bob_env = {k: v for k, v in bob_env.items() if k != "AWS_ENDPOINT_URL"}
    ok(dotnb("remote", "add", "origin", remote_url, "--endpoint-url", s3.endpoint_url, cwd=bob, env=bob_env))
    (listed,) = ok(dotnb("remote", "list", "--json", cwd=bob, env=bob_env)).json()
    assert listed["url"] == remote_url and listed["endpoint_url"] == s3.endpoint_url
    pulled = ok(dotnb("pull", "--json", cwd=bob, env=bob_env)).json()
    assert pulled["remote"] == "origin" and pulled["url"] == remote_url
    assert pulled["runs_new"] == 2 and pulled["runs_rejected"] == []
    data = data_objects(prep) | data_objects(scale)
    assert not data & local_objects(bob), "a plain pull must not fetch input/output data"

    # The log shows Alice's runs, who ran them and where, and the remote they came from.
    rows = {r["id"]: r for r in log(bob, bob_env)}
    assert set(rows) == {*runs, own}
    for run_id in runs:
        assert (rows[run_id]["user"], rows[run_id]["host"], rows[run_id]["remote"]) == (
            "alice",
            host,
            "origin",
        )
        assert rows[run_id]["name"] == runs[run_id]["name"]
    assert (rows[own]["user"], rows[own]["remote"]) == ("bob", None)
    assert {r["id"] for r in log(bob, bob_env, "--author", "alice")} == set(runs)
    assert {r["id"] for r in log(bob, bob_env, "--author", f"alice@{host}")} == set(runs)
    assert {r["id"] for r in log(bob, bob_env, "--author", "bob")} == {own}
    assert log(bob, bob_env, "--author", "nobody") == []

    # show: the manifest, with the lineage code fetched on demand.
    shown = ok(dotnb("show", prep["id"], "--json", cwd=bob, env=bob_env)).json()
    assert shown["id"] == prep["id"] and shown["params"] == prep["params"]
    assert [c["code"] for c in shown["lineage"]] == ["%load_ext dotnb", PREP_CELL]
    text = ok(dotnb("show", prep["id"], cwd=bob, env=bob_env)).stdout
    assert prep["id"] in text and "data/input.csv" in text

    # reproduce fetches the notebook, code and inputs it needs, and reproduces.
    repro = ok(dotnb("reproduce", prep["id"], cwd=bob, env=bob_env, timeout=180))
    assert f"reproduces {prep['id']}" in repro.stdout

    # restore writes Alice's bytes into Bob's folder, fetching what is missing.
    scaled = next(e["hash"] for e in scale["outputs"] if e["path"] == "out/scaled.csv")
    assert scaled not in local_objects(bob)
    ok(dotnb("restore", scale["id"], cwd=bob, env=bob_env))
    ok(dotnb("restore", prep["id"], cwd=bob, env=bob_env))
    theirs, mine = workspace(alice), workspace(bob)
    for path in ["data/input.csv", "data/blob.bin", "out/result.csv", "out/scaled.csv", "analysis.ipynb"]:
        assert mine[path] == theirs[path], path
    assert mine["notes/bob.txt"] == b"bob's own work\n"
    assert data <= local_objects(bob)
    assert corrupt_local_objects(bob) == []
    assert_no_credentials(alice, bob)


def test_pull_with_data_fetches_the_objects_and_plain_pull_does_not(
    alice: Path,
    bob: Path,
    tmp_path: Path,
    alice_env: dict[str, str],
    bob_env: dict[str, str],
    remote_url: str,
) -> None:
    runs = manifests(alice)
    prep = by_name(runs)["prep"]
    ok(dotnb("remote", "add", "origin", remote_url, cwd=alice, env=alice_env))
    ok(dotnb("push", cwd=alice, env=alice_env))

    ok(dotnb("remote", "add", "origin", remote_url, cwd=bob, env=bob_env))
    pulled = ok(dotnb("pull", "--with-data", "--json", cwd=bob, env=bob_env)).json()
    assert pulled["runs_new"] == 2 and pulled["runs_rejected"] == []
    data = set().union(*(data_objects(m) for m in runs.values()))
    everything = pushed_objects(alice, runs)
    assert everything <= local_objects(bob)
    assert pulled["objects_downloaded"] >= len(data)
    assert pulled["bytes_downloaded"] >= sum(object_size(alice, d) for d in data)
    assert corrupt_local_objects(bob) == []
    # Everything is local: restore works with the remote out of reach (a wrong secret).
    offline = {**bob_env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    ok(dotnb("restore", prep["id"], "--data-only", cwd=bob, env=offline))
    assert workspace(bob)["data/blob.bin"] == workspace(alice)["data/blob.bin"]

    # Carol pulls without data: the runs are there, their data is not, and it needs the remote.
    carol = new_project(tmp_path / "carol")
    carol_env = {**bob_env, "USER": "carol", "LOGNAME": "carol"}
    ok(dotnb("remote", "add", "origin", remote_url, cwd=carol, env=carol_env))
    plain = ok(dotnb("pull", "--json", cwd=carol, env=carol_env)).json()
    assert plain["runs_new"] == 2
    assert not data & local_objects(carol)
    assert {r["id"] for r in log(carol, carol_env)} == set(runs)
    offline = {**carol_env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    failed = fails(dotnb("restore", prep["id"], "--data-only", cwd=carol, env=offline))
    assert "remote 'origin'" in failed.stderr
    assert "data/input.csv" not in workspace(carol)
    assert_no_credentials(alice, bob, carol)


def test_push_is_idempotent_and_pull_reads_only_new_runs(
    alice: Path,
    bob: Path,
    tmp_path: Path,
    alice_template: Path,
    alice_env: dict[str, str],
    bob_env: dict[str, str],
    remote_url: str,
    bucket: str,
    s3_client: Any,
) -> None:
    runs = manifests(alice)
    ok(dotnb("remote", "add", "origin", remote_url, cwd=alice, env=alice_env))
    first = ok(dotnb("push", "--json", cwd=alice, env=alice_env)).json()
    assert first["runs_pushed"] == 2 and first["objects_uploaded"] > 0
    keys = set(remote_keys(s3_client, bucket, "team/objects/")) | set(
        remote_keys(s3_client, bucket, "team/runs/")
    )
    again = ok(dotnb("push", "--json", cwd=alice, env=alice_env)).json()
    assert (again["runs_pushed"], again["runs_already"]) == (0, 2)
    assert (again["objects_uploaded"], again["bytes_uploaded"], again["conflicts"]) == (0, 0, [])
    after = set(remote_keys(s3_client, bucket, "team/objects/")) | set(
        remote_keys(s3_client, bucket, "team/runs/")
    )
    assert after == keys
    # Naming the remote and a run pushes just that run (already there).
    prep = by_name(runs)["prep"]["id"]
    one = ok(dotnb("push", "origin", prep, "--json", cwd=alice, env=alice_env)).json()
    assert (one["runs_pushed"], one["runs_already"], one["objects_uploaded"]) == (0, 1, 0)

    # A copy of Alice's project (same runs, an index that never pushed) finds them there.
    twin = tmp_path / "twin"
    shutil.copytree(alice_template, twin, symlinks=True)
    ok(dotnb("remote", "add", "origin", remote_url, cwd=twin, env=alice_env))
    same = ok(dotnb("push", "--json", cwd=twin, env=alice_env)).json()
    assert (same["runs_pushed"], same["runs_already"], same["objects_uploaded"]) == (0, 2, 0), same

    ok(dotnb("remote", "add", "origin", remote_url, cwd=bob, env=bob_env))
    assert ok(dotnb("pull", "--json", cwd=bob, env=bob_env)).json()["runs_new"] == 2
    assert ok(dotnb("pull", "--json", cwd=bob, env=bob_env)).json()["runs_new"] == 0

    # A new run: the next push uploads just its objects (the shared ones are there already).
    new = record_files_run(alice, {"out/extra.bin": os.urandom(5000)}, name="extra", user="alice")
    extra = manifests(alice)[new]
    before = remote_object_names(s3_client, bucket)
    third = ok(dotnb("push", prep, new, "--json", cwd=alice, env=alice_env)).json()
    assert (third["runs_pushed"], third["runs_already"]) == (1, 1)
    added = remote_object_names(s3_client, bucket) - before
    assert added == pushed_objects(alice, {new: extra}) - before
    assert third["objects_uploaded"] == len(added)
    pulled = ok(dotnb("pull", "--json", cwd=bob, env=bob_env)).json()
    assert pulled["runs_new"] == 1
    assert {r["id"] for r in log(bob, bob_env)} == {*runs, new}
    assert_no_credentials(alice, bob)


def test_concurrent_pushes_leave_a_complete_remote(
    alice: Path,
    tmp_path: Path,
    alice_template: Path,
    alice_env: dict[str, str],
    bob_env: dict[str, str],
    remote_url: str,
) -> None:
    # Three projects push at once: Alice, a copy of her project (the same runs), and
    # Dave (different runs, some files identical to Alice's so objects are shared).
    twin = tmp_path / "twin"
    shutil.copytree(alice_template, twin, symlinks=True)
    dave = new_project(tmp_path / "dave")
    shared = (alice / "data" / "blob.bin").read_bytes()
    dave_runs = [
        record_files_run(
            dave,
            {f"d{i}/blob.bin": shared, f"d{i}/own.bin": os.urandom(20_000 + i)},
            name=f"dave{i}",
            user="dave",
        )
        for i in range(3)
    ]
    projects = [alice, twin, dave]
    for root in projects:
        ok(dotnb("remote", "add", "origin", remote_url, cwd=root, env=alice_env))
    procs = [
        subprocess.Popen(
            command("push", "--json"),
            cwd=root,
            env=alice_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for root in projects
    ]
    outcomes = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            outcomes.append(Result(["push", "--json"], proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    results = [ok(outcome).json() for outcome in outcomes]
    for result in results:
        assert result["conflicts"] == []
    assert results[0]["runs_pushed"] + results[0]["runs_already"] == 2
    assert results[1]["runs_pushed"] + results[1]["runs_already"] == 2
    assert results[2]["runs_pushed"] == 3

    carol = new_project(tmp_path / "carol")
    ok(dotnb("remote", "add", "origin", remote_url, cwd=carol, env=bob_env))
    pulled = ok(dotnb("pull", "--with-data", "--json", cwd=carol, env=bob_env)).json()
    expected = {*manifests(alice), *dave_runs}
    assert pulled["runs_new"] == len(expected) and pulled["runs_rejected"] == []
    assert {r["id"] for r in log(carol, bob_env)} == expected
    assert corrupt_local_objects(carol) == []
    ok(dotnb("fsck", "--remote", "origin", cwd=carol, env=bob_env))
    ok(dotnb("restore", dave_runs[1], cwd=carol, env=bob_env))
    assert workspace(carol)["d1/own.bin"] == workspace(dave)["d1/own.bin"]
    assert_no_credentials(alice, twin, dave, carol)


def test_a_push_killed_halfway_is_completed_by_the_next_push(
    tmp_path: Path,
    bob: Path,
    alice_env: dict[str, str],
    bob_env: dict[str, str],
    remote_url: str,
    bucket: str,
    s3_client: Any,
) -> None:
    # A run with many objects, so that the push takes long enough to be killed in the middle
    # (each too large for a pack: a request of its own).
    big = new_project(tmp_path / "big")
    files = {f"shards/{i:03d}.bin": os.urandom(PACK_OBJECT_MAX + 1024) for i in range(KILL_FILES)}
    run_id = record_files_run(big, files, name="big", user="alice")
    runs = manifests(big)
    needed = pushed_objects(big, runs)
    ok(dotnb("remote", "add", "origin", remote_url, cwd=big, env=alice_env))

    log_path = tmp_path / "push.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(command("push"), cwd=big, env=alice_env, stdout=log_file, stderr=log_file)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(remote_object_names(s3_client, bucket)) >= 5:
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL, (
        f"the push ended (exit {proc.returncode}) before it could be killed:\n{log_path.read_text()}"
    )
    # Requests already sent may still land after the kill: wait until the listing settles.
    uploaded = remote_object_names(s3_client, bucket)
    for _ in range(20):
        time.sleep(0.3)
        settled, uploaded = uploaded, remote_object_names(s3_client, bucket)
        if settled == uploaded:
            break
    assert 0 < len(uploaded & needed) < len(needed), "the kill did not land in the middle of the push"
    assert f"team/runs/{run_id}" not in remote_keys(s3_client, bucket, "team/runs/")

    # A pull now sees no run (its ref is written last), and fsck finds nothing wrong.
    ok(dotnb("remote", "add", "origin", remote_url, cwd=bob, env=bob_env))
    assert ok(dotnb("pull", "--json", cwd=bob, env=bob_env)).json()["runs_new"] == 0
    ok(dotnb("fsck", "--remote", "origin", cwd=bob, env=bob_env))

    again = ok(dotnb("push", "--json", cwd=big, env=alice_env)).json()
    assert again["runs_pushed"] == 1 and again["conflicts"] == []
    present = remote_object_names(s3_client, bucket)
    assert needed <= present
    assert again["objects_uploaded"] == len(present - uploaded), "the second push re-uploaded objects"
    ok(dotnb("fsck", "--remote", "origin", cwd=bob, env=bob_env))
    pulled = ok(dotnb("pull", "--with-data", "--json", cwd=bob, env=bob_env)).json()
    assert pulled["runs_new"] == 1 and pulled["runs_rejected"] == []
    assert needed <= local_objects(bob) and corrupt_local_objects(bob) == []
    ok(dotnb("restore", run_id, "--data-only", cwd=bob, env=bob_env))
    restored = workspace(bob)
    assert all(restored[path] == data for path, data in files.items())
    assert_no_credentials(big, bob)


KILL_FILES = 120
