"""Runs signed with a real SSH key (ssh-keygen), off the path of a deferred commit,
and their signatures checked against an allowed-signers file (dotnb.store.signing)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dotnb.store.repo import Store
from dotnb.store.settings import ALLOWED_SIGNERS, SIGNING_KEY, SettingError, set_setting
from dotnb.store.signing import read_signature, signature_path
from dotnb.store.snapshots import attach_notebook_snapshot
from dotnb.store.verify import verify_store
from tests.manifests import new_manifest
from tests.ssh_keys import SshKey, allowed_signers, make_key


@pytest.fixture(scope="module")
def alice_key(tmp_path_factory: pytest.TempPathFactory) -> SshKey:
    return make_key(tmp_path_factory.mktemp("keys"), "alice@example.com")


@pytest.fixture
def signed(store: Store, alice_key: SshKey, tmp_path: Path) -> Store:
    set_setting(store.dir, SIGNING_KEY, str(alice_key.path))
    set_setting(store.dir, ALLOWED_SIGNERS, str(allowed_signers(tmp_path / "allowed", alice_key)))
    return store


def test_a_deferred_commit_is_signed_by_the_flush_not_on_its_path(signed: Store) -> None:
    run = signed.commit_run(new_manifest(), sync=False)["id"]
    assert read_signature(signed.dir, run) is None  # the cell's path ran no ssh-keygen
    assert signed.has_pending_sync()
    signed.flush()
    assert signed.signature(run) == {"status": "good", "signer": "alice@example.com"}
    digest = signed.read_ref(run)
    assert signature_path(signed.dir, run).read_text().startswith(digest + "\n-----BEGIN SSH SIGNATURE-----")


def test_a_synchronous_commit_is_signed_at_once_and_stays_good_when_amended(signed: Store) -> None:
    run = signed.commit_run(new_manifest())["id"]
    assert signed.signature(run)["status"] == "good"
    attach_notebook_snapshot(signed, run, b'{"cells": []}', "frontend")
    assert signed.signature(run)["status"] == "good"  # it signs the manifest the new one amends
    report = verify_store(signed, require_signed=True)
    assert report["ok"] and report["signatures"]["good"] == 1


def test_statuses_unsigned_unknown_key_and_bad(signed: Store, alice_key: SshKey, tmp_path: Path) -> None:
    first, second = (signed.commit_run(new_manifest())["id"] for _ in range(2))
    set_setting(signed.dir, SIGNING_KEY, None)
    unsigned = signed.commit_run(new_manifest())["id"]
    assert signed.signature(unsigned) == {"status": "unsigned"}
    # Another run's signature put beside this one: valid, but over another manifest.
    signature_path(signed.dir, first).write_bytes(read_signature(signed.dir, second) or b"")
    bad = signed.signature(first)
    assert bad["status"] == "bad" and "not this run's" in bad["reason"]
    # A damaged signature.
    data = bytearray(read_signature(signed.dir, second) or b"")
    data[-60] ^= 1
    signature_path(signed.dir, second).write_bytes(bytes(data))
    assert signed.signature(second)["status"] == "bad"
    # Alice's key unknown to the allowed signers now in force.
    set_setting(signed.dir, SIGNING_KEY, str(alice_key.path))
    unknown = signed.commit_run(new_manifest())["id"]
    other = make_key(tmp_path / "other", "bob@example.com")
    set_setting(signed.dir, ALLOWED_SIGNERS, str(allowed_signers(tmp_path / "allowed-bob", other)))
    assert signed.signature(unknown) == {"status": "unknown_key", "signer": alice_fingerprint(alice_key)}
    report = verify_store(signed)
    assert report["signatures"] == {"good": 0, "bad": 2, "unsigned": 1, "unknown_key": 1}
    assert not report["ok"]  # bad signatures fail verify even without --require-signed
    assert not verify_store(signed, require_signed=True)["ok"]


def alice_fingerprint(key: SshKey) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(key.path)], capture_output=True, text=True, check=True
    )
    return out.stdout.split()[1]


def test_a_key_that_cannot_sign_leaves_runs_unsigned_and_says_so_once(signed: Store, tmp_path: Path) -> None:
    with pytest.raises(SettingError, match="no such file"):
        set_setting(signed.dir, SIGNING_KEY, str(tmp_path / "nope"))
    broken = tmp_path / "broken"
    broken.write_text("not a key\n")
    set_setting(signed.dir, SIGNING_KEY, str(broken))
    notices: list[str] = []
    signed.notice = notices.append  # type: ignore[method-assign]
    runs = [signed.commit_run(new_manifest(), sync=False)["id"] for _ in range(2)]
    signed.flush()
    signed.commit_run(new_manifest())
    assert [signed.signature(r)["status"] for r in runs] == ["unsigned", "unsigned"]
    assert len(notices) == 1 and "runs are recorded unsigned" in notices[0]
