"""What a remote must never do to a project, against a real S3 server (SeaweedFS):
corrupted objects, hostile manifests, wrong credentials, unreachable endpoints,
remotes of a newer format."""

from __future__ import annotations

import copy
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.hashing import hash_bytes
from dotnb.store.ids import new_run_id
from dotnb.store.manifest import canonical_json
from tests.remote.helpers import (
    KEY,
    SECRET,
    assert_no_credentials,
    corrupt_local_objects,
    dotnb,
    error_lines,
    fails,
    local_objects,
    manifests,
    ok,
    remote_keys,
    tree,
    workspace,
)
from tests.remote.seaweed import SeaweedS3

pytestmark = pytest.mark.kernel


def by_name(root: Path) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in manifests(root).values()}


def object_key(digest: str) -> str:
    return f"team/objects/{digest[:2]}/{digest[2:]}"


def share(alice: Path, bob: Path, alice_env: dict[str, str], bob_env: dict[str, str], url: str) -> None:
    """Alice pushes her runs; Bob adds the remote (he pulls in the test)."""
    ok(dotnb("remote", "add", "origin", url, cwd=alice, env=alice_env))
    ok(dotnb("push", cwd=alice, env=alice_env))
    ok(dotnb("remote", "add", "origin", url, cwd=bob, env=bob_env))


def assert_one_error_line(result: Any, remote_url: str, *words: str) -> str:
    lines = error_lines(result)
    assert len(lines) == 1, str(result)
    line = lines[0]
    assert line.startswith(f"dotnb: error: remote 'origin' ({remote_url})"), line
    for word in words:
        assert word in line, (word, line)
    return line


# ---------------------------------------------------------------------------
# a corrupted object


def test_a_corrupted_remote_object_is_refused_and_never_stored(
    alice: Path,
    bob: Path,
    alice_env: dict[str, str],
    bob_env: dict[str, str],
    remote_url: str,
    bucket: str,
    s3_client: Any,
) -> None:
    share(alice, bob, alice_env, bob_env, remote_url)
    prep = by_name(alice)["prep"]
    (entry,) = [e for e in prep["outputs"] if e["path"] == "out/result.csv"]
    digest = entry["hash"]
    s3_client.put_object(Bucket=bucket, Key=object_key(digest), Body=b"x,double,blob\n1,666,0\n")

    assert ok(dotnb("pull", "--json", cwd=bob, env=bob_env)).json()["runs_new"] == 2
    before = workspace(bob)
    for args in (["restore", prep["id"]], ["cat", prep["id"], "out/result.csv"]):
        result = fails(dotnb(*args, cwd=bob, env=bob_env))
        line = assert_one_error_line(result, remote_url, digest[:12])
        assert "corrupt" in line, line
        if args[0] == "cat":
            assert result.stdout == "", "cat wrote the corrupted bytes"
        assert workspace(bob) == before, f"dotnb {args[0]} changed the workspace"
        assert digest not in local_objects(bob)
        assert list((bob / ".dotnb" / "tmp").iterdir()) == [], "a download left a temp file"
    # Reproducing "scale", which read that file, cannot run (exit 2), and stores nothing either.
    scale = by_name(alice)["scale"]
    assert digest in {e["hash"] for e in scale["inputs"]}
    result = fails(dotnb("reproduce", scale["id"], cwd=bob, env=bob_env), code=2)
    assert digest[:12] in result.stderr
    assert digest not in local_objects(bob)
    # --with-data fetches every other object, refuses that one, and says so.
    result = fails(dotnb("pull", "--with-data", cwd=bob, env=bob_env))
    assert "corrupt" in result.stderr and digest[:12] in result.stderr
    assert digest not in local_objects(bob)
    assert corrupt_local_objects(bob) == []
    assert workspace(bob) == before

    # fsck --remote finds it (exit 1) and names the runs it affects.
    report = fails(dotnb("fsck", "--remote", "origin", "--json", cwd=bob, env=bob_env)).json()
    assert report["ok"] is False
    assert [c["object"] for c in report["corrupted"]] == [digest]
    assert report["corrupted"][0]["runs"] == sorted(
        rid
        for rid, m in manifests(alice).items()
        if digest in {e["hash"] for e in m["outputs"] + m["inputs"]}
    )
    assert_no_credentials(alice, bob)


# ---------------------------------------------------------------------------
# hostile manifests


def publish(client: Any, bucket: str, runs: dict[str, bytes], template: dict[str, Any]) -> dict[str, str]:
    """Put manifests on the remote as a push would: each object (named by its bytes' hash),
    its ref, then one journal record (a copy of a real one).  ``runs``: run id → manifest bytes."""
    refs: dict[str, str] = {}
    for run_id, data in runs.items():
        digest = hash_bytes(data)
        client.put_object(Bucket=bucket, Key=object_key(digest), Body=data)
        client.put_object(Bucket=bucket, Key=f"team/runs/{run_id}", Body=digest.encode() + b"\n")
        refs[run_id] = digest
    record = dict(template, runs=refs)
    client.put_object(Bucket=bucket, Key=f"team/journal/{new_run_id()}", Body=json.dumps(record).encode())
    return refs


def test_hostile_manifests_on_the_remote_write_nothing_outside_the_project(
    alice: Path,
    bob: Path,
    tmp_path: Path,
    alice_env: dict[str, str],
    bob_env: dict[str, str],
    remote_url: str,
    bucket: str,
    s3_client: Any,
) -> None:
    share(alice, bob, alice_env, bob_env, remote_url)
    (journal_key,) = remote_keys(s3_client, bucket, "team/journal/")
    template = json.loads(s3_client.get_object(Bucket=bucket, Key=journal_key)["Body"].read())
    alice_runs = set(manifests(alice))  # read now: opening a store touches its index files
    assert set(template["runs"]) == alice_runs  # a record as the push writes it
    prep = by_name(alice)["prep"]
    outside = tmp_path / "outside"
    outside.mkdir()
    (bob / "linkdir").symlink_to(outside, target_is_directory=True)

    def variant(change: Any) -> tuple[str, dict[str, Any]]:
        doc = copy.deepcopy(prep)
        doc["id"] = new_run_id()
        change(doc)
        return doc["id"], doc

    def set_input(path: str) -> Any:
        return lambda doc: doc["inputs"][0].update(path=path)

    hostile = dict(
        [
            variant(set_input(str(outside / "absolute.csv"))),
            variant(set_input("../escape.csv")),
            variant(lambda doc: doc["outputs"][0].update(path="out/../../escape-out.csv")),
            variant(lambda doc: doc.update(notebook="../evil.ipynb")),
        ]
    )
    symlinked_id, symlinked = variant(set_input("linkdir/payload.csv"))
    # A manifest published under another run's id, and one whose bytes do not match its name.
    other_id, other = new_run_id(), copy.deepcopy(prep)
    other["id"] = new_run_id()
    bad_bytes_id = new_run_id()
    runs = {rid: canonical_json(doc) for rid, doc in [*hostile.items(), (symlinked_id, symlinked)]}
    runs[other_id] = canonical_json(other)
    refs = publish(s3_client, bucket, runs, template)
    forged = copy.deepcopy(prep)
    forged["id"] = bad_bytes_id
    fake_digest = hash_bytes(b"not these bytes")
    s3_client.put_object(Bucket=bucket, Key=object_key(fake_digest), Body=canonical_json(forged))
    s3_client.put_object(Bucket=bucket, Key=f"team/runs/{bad_bytes_id}", Body=fake_digest.encode() + b"\n")
    record = dict(template, runs={bad_bytes_id: fake_digest, "../../evil": refs[other_id]})
    s3_client.put_object(Bucket=bucket, Key=f"team/journal/{new_run_id()}", Body=json.dumps(record).encode())

    around = tree(tmp_path, skip=bob)
    pulled = ok(dotnb("pull", "--json", cwd=bob, env=bob_env)).json()
    rejected = {r["id"]: r["reason"] for r in pulled["runs_rejected"]}
    must_reject = {*hostile, other_id, bad_bytes_id}
    assert must_reject <= set(rejected), pulled
    assert all(isinstance(reason, str) and reason for reason in rejected.values())
    assert any("evil" in rid for rid in rejected), "the malformed journal entry is not reported"
    symlink_accepted = symlinked_id not in rejected
    if not symlink_accepted:  # refusing it already at pull time is fine too, for that reason
        assert "symlink" in rejected[symlinked_id], rejected[symlinked_id]
    assert pulled["runs_new"] == 2 + symlink_accepted
    listed = {r["id"] for r in ok(dotnb("log", "--json", cwd=bob, env=bob_env)).json()}
    assert listed == alice_runs | ({symlinked_id} if symlink_accepted else set())
    assert not must_reject & {p.name for p in (bob / ".dotnb" / "runs").iterdir()}
    for rid in hostile:
        fails(dotnb("show", rid, cwd=bob, env=bob_env))

    # A run whose input goes through a symlinked folder leading out: restore refuses it whole.
    before = workspace(bob)
    if symlink_accepted:
        for args in (["restore", symlinked_id], ["restore", symlinked_id, "--data-only"]):
            result = fails(dotnb(*args, cwd=bob, env=bob_env))
            assert "symlink" in result.stderr and "linkdir/payload.csv" in result.stderr
            assert workspace(bob) == before, "a refused restore wrote part of the run"
    # Neither --full (which reads the refs) nor --with-data lets any of them in.
    again = ok(dotnb("pull", "--full", "--with-data", "--json", cwd=bob, env=bob_env)).json()
    assert again["runs_new"] == 0 and must_reject <= {r["id"] for r in again["runs_rejected"]}
    assert list(outside.iterdir()) == []
    assert tree(tmp_path, skip=bob) == around, "something was written outside Bob's project"
    assert not (tmp_path / "escape.csv").exists() and not (tmp_path / "escape-out.csv").exists()
    assert corrupt_local_objects(bob) == []
    assert_no_credentials(alice, bob)


# ---------------------------------------------------------------------------
# credentials and reachability


def test_wrong_or_missing_credentials_are_one_line_and_never_written(
    alice: Path,
    bob: Path,
    alice_env: dict[str, str],
    bob_env: dict[str, str],
    remote_url: str,
    bucket: str,
    s3_client: Any,
) -> None:
    wrong = "wrong-secret-3e1d9f77c2b84a05"
    ok(dotnb("remote", "add", "origin", remote_url, cwd=alice, env=alice_env))
    result = fails(dotnb("push", cwd=alice, env={**alice_env, "AWS_SECRET_ACCESS_KEY": wrong}))
    assert_one_error_line(result, remote_url)
    for text in (result.stdout, result.stderr):
        assert wrong not in text and SECRET not in text
    assert remote_keys(s3_client, bucket, "team/") == [], "a refused push wrote to the remote"

    # A wrong access key, and none at all, the same way (Bob pulling).
    ok(dotnb("push", cwd=alice, env=alice_env))
    ok(dotnb("remote", "add", "origin", remote_url, cwd=bob, env=bob_env))
    bad_key = "NOSUCHKEY0000000000"
    result = fails(dotnb("pull", cwd=bob, env={**bob_env, "AWS_ACCESS_KEY_ID": bad_key}))
    assert_one_error_line(result, remote_url)
    assert SECRET not in result.stdout + result.stderr
    no_keys = {k: v for k, v in bob_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    result = fails(dotnb("pull", cwd=bob, env=no_keys))
    assert_one_error_line(result, remote_url)
    assert ok(dotnb("log", "--json", cwd=bob, env=bob_env)).json() == []
    assert_no_credentials(alice, bob, secrets=(wrong, bad_key))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_endpoint_is_one_line_and_quick(
    alice: Path, alice_env: dict[str, str], remote_url: str
) -> None:
    env = {k: v for k, v in alice_env.items() if k != "AWS_ENDPOINT_URL"}
    nowhere = f"http://127.0.0.1:{free_port()}"
    ok(dotnb("remote", "add", "origin", remote_url, "--endpoint-url", nowhere, cwd=alice, env=env))
    started = time.monotonic()
    result = fails(dotnb("push", cwd=alice, env=env))
    elapsed = time.monotonic() - started
    assert_one_error_line(result, remote_url)
    assert elapsed < 30, f"push took {elapsed:.0f} s to report a refused connection"
    assert_no_credentials(alice)


# ---------------------------------------------------------------------------
# a newer remote format


def test_a_remote_of_a_newer_format_is_refused(
    alice: Path,
    bob: Path,
    alice_env: dict[str, str],
    bob_env: dict[str, str],
    remote_url: str,
    bucket: str,
    s3_client: Any,
) -> None:
    s3_client.put_object(Bucket=bucket, Key="team/format", Body=b'{"format": 99}\n')
    ok(dotnb("remote", "add", "origin", remote_url, cwd=alice, env=alice_env))
    result = fails(dotnb("push", cwd=alice, env=alice_env))
    assert_one_error_line(result, remote_url, "99")
    assert remote_keys(s3_client, bucket, "team/") == ["team/format"], "push wrote to a newer remote"
    ok(dotnb("remote", "add", "origin", remote_url, cwd=bob, env=bob_env))
    for args in (["pull"], ["pull", "--with-data"], ["fsck", "--remote", "origin"]):
        assert_one_error_line(fails(dotnb(*args, cwd=bob, env=bob_env)), remote_url, "99")
    # Something that is not a dotnb remote at all is refused too, not overwritten.
    s3_client.put_object(Bucket=bucket, Key="team/format", Body=b"<html>not json</html>")
    assert_one_error_line(fails(dotnb("push", cwd=alice, env=alice_env)), remote_url)
    body = s3_client.get_object(Bucket=bucket, Key="team/format")["Body"].read()
    assert body == b"<html>not json</html>"
    assert remote_keys(s3_client, bucket, "team/") == ["team/format"]


def test_s3_fixture_refuses_wrong_keys(s3: SeaweedS3) -> None:
    """The server really checks credentials (else the tests above prove nothing)."""
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        s3.client(KEY, "not-the-secret").list_buckets()
