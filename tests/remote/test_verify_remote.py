"""Chains and signatures across a real S3 remote (SeaweedFS): ``dotnb verify --remote``
finds a run removed from the remote; a pulled run whose signature fails is flagged,
kept as it came and counted by ``dotnb verify``, never accepted in silence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.remote.helpers import dotnb, fails, ok, record_files_run, remote_keys
from tests.ssh_keys import allowed_signers, make_key

pytestmark = pytest.mark.kernel


def test_a_run_removed_from_the_remote_is_detected_by_verify(
    alice: Path, alice_env: dict[str, str], remote_url: str, s3_client: Any, bucket: str
) -> None:
    ok(dotnb("remote", "add", "origin", remote_url, cwd=alice, env=alice_env))
    ok(dotnb("push", cwd=alice, env=alice_env))
    report = ok(dotnb("verify", "--remote", "origin", "--json", cwd=alice, env=alice_env)).json()
    # Alice's two runs were recorded by one kernel: one writer, one chain.
    assert (report["runs"], report["chained"], report["writers"], report["breaks"]) == (2, 2, 1, [])
    rows = {r["name"]: r for r in ok(dotnb("log", "--json", cwd=alice, env=alice_env)).json()}
    prep, scale = rows["prep"]["id"], rows["scale"]["id"]
    manifest = (alice / ".dotnb" / "runs" / prep).read_text().split()[0]
    s3_client.delete_object(Bucket=bucket, Key=f"team/runs/{prep}")
    s3_client.delete_object(Bucket=bucket, Key=f"team/objects/{manifest[:2]}/{manifest[2:]}")
    result = fails(dotnb("verify", "--remote", "origin", cwd=alice, env=alice_env))
    assert "remote origin: 1 run" in result.stdout
    assert "missing: writer" in result.stdout and "its first 1 run is missing" in result.stdout
    assert f"after:  {scale[:10]} #2" in result.stdout
    # The local store is whole.
    ok(dotnb("verify", cwd=alice, env=alice_env))


def test_a_bad_signature_is_flagged_after_pull(
    alice: Path,
    alice_env: dict[str, str],
    bob: Path,
    bob_env: dict[str, str],
    remote_url: str,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    key = make_key(tmp_path / "keys", "alice@example.com")
    allowed = allowed_signers(tmp_path / "allowed_signers", key)
    for root, env in ((alice, alice_env), (bob, bob_env)):
        ok(dotnb("config", "signing.allowed_signers", allowed, cwd=root, env=env))
        ok(dotnb("remote", "add", "origin", remote_url, cwd=root, env=env))
    ok(dotnb("config", "signing.key", key.path, cwd=alice, env=alice_env))
    first = record_files_run(alice, {"out/a.txt": b"a\n"}, name="first", user="alice")
    second = record_files_run(alice, {"out/b.txt": b"b\n"}, name="second", user="alice")
    pushed = ok(dotnb("push", "--json", cwd=alice, env=alice_env)).json()
    assert pushed["signatures_pushed"] == 2
    assert {f"team/signatures/{first}", f"team/signatures/{second}"} <= set(remote_keys(s3_client, bucket))
    report = ok(dotnb("verify", "--remote", "origin", "--json", cwd=alice, env=alice_env)).json()
    assert report["signatures"]["good"] == 2
    # Someone with write access to the bucket puts the second run's (valid) signature
    # beside the first run: it signs another manifest.
    other = s3_client.get_object(Bucket=bucket, Key=f"team/signatures/{second}")["Body"].read()
    s3_client.put_object(Bucket=bucket, Key=f"team/signatures/{first}", Body=other)

    pulled = ok(dotnb("pull", "--json", cwd=bob, env=bob_env)).json()
    assert pulled["signatures_pulled"] == 2  # the kernel's two runs were recorded unsigned
    assert [b["id"] for b in pulled["bad_signatures"]] == [first]
    assert "not this run's" in pulled["bad_signatures"][0]["reason"]
    rows = {r["id"]: r for r in ok(dotnb("log", "--show-signature", "--json", cwd=bob, env=bob_env)).json()}
    assert rows[first]["signature"]["status"] == "bad"
    assert rows[second]["signature"] == {"status": "good", "signer": "alice@example.com"}
    assert "BAD signature" in ok(dotnb("show", first, cwd=bob, env=bob_env)).stdout
    result = fails(dotnb("verify", cwd=bob, env=bob_env))
    assert "signatures: 1 good, 1 bad" in result.stdout and f"bad signature: {first}" in result.stdout
    fails(dotnb("verify", "--remote", "origin", cwd=bob, env=bob_env))
