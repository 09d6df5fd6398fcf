"""``dotnb verify``, ``dotnb config`` and ``dotnb log --show-signature`` / ``show`` on a
real store with runs signed by a real SSH key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dotnb.store.repo import Store
from tests.cli.invoke import dotnb
from tests.cli.invoke import plain_env as plain_env
from tests.manifests import new_manifest
from tests.ssh_keys import SshKey, allowed_signers, make_key

Capsys = pytest.CaptureFixture[str]


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SshKey:
    return make_key(tmp_path_factory.mktemp("keys"), "alice@example.com")


def record(root: Path, count: int) -> list[str]:
    store = Store.init(root)
    try:
        ids = [store.commit_run(new_manifest(metrics={"i": i}))["id"] for i in range(count)]
        store.flush()
        return ids
    finally:
        store.close()


def test_verify_reports_a_deleted_run_with_the_runs_around_it(tmp_path: Path, capsys: Capsys) -> None:
    ids = record(tmp_path, 3)
    code, out, err = dotnb(capsys, "--root", tmp_path, "verify")
    assert (code, err) == (0, "")
    assert "3 runs, 3 chained by 1 writer" in out and "ok: every chain is whole" in out
    (tmp_path / ".dotnb" / "runs" / ids[1]).unlink()
    code, out, _ = dotnb(capsys, "--root", tmp_path, "verify")
    assert code == 1
    assert "missing: writer" in out and f"between run {ids[0]} and run {ids[2]}" in out
    assert f"before: {ids[0][:10]} #1 nb.ipynb" in out and f"after:  {ids[2][:10]} #3 nb.ipynb" in out
    code, out, _ = dotnb(capsys, "--root", tmp_path, "verify", "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert {b["kind"] for b in report["breaks"]} == {"missing"}


def test_signing_configured_log_and_show_print_the_status_and_require_signed_gates(
    tmp_path: Path, key: SshKey, capsys: Capsys
) -> None:
    unsigned = record(tmp_path, 1)[0]
    assert dotnb(capsys, "--root", tmp_path, "config", "signing.key", key.path)[0] == 0
    allowed = allowed_signers(tmp_path / "allowed_signers", key)
    assert dotnb(capsys, "--root", tmp_path, "config", "signing.allowed_signers", allowed)[0] == 0
    assert dotnb(capsys, "--root", tmp_path, "config", "signing.key")[1] == f"{key.path}\n"
    signed = record(tmp_path, 1)[0]
    code, out, _ = dotnb(capsys, "--root", tmp_path, "log", "--show-signature")
    assert code == 0
    lines = out.splitlines()
    assert lines[1] == "  good signature by alice@example.com" and signed[:10] in lines[2]
    assert lines[3] == "  unsigned" and unsigned[:10] in lines[4]
    rows = json.loads(dotnb(capsys, "--root", tmp_path, "log", "--show-signature", "--json")[1])
    assert [r["signature"] for r in rows] == [
        {"status": "good", "signer": "alice@example.com"},
        {"status": "unsigned"},
    ]
    out = dotnb(capsys, "--root", tmp_path, "show", signed)[1]
    assert "signature good signature by alice@example.com" in out
    # Without --require-signed an unsigned run is fine; with it, it fails.
    assert dotnb(capsys, "--root", tmp_path, "verify")[0] == 0
    code, out, _ = dotnb(capsys, "--root", tmp_path, "verify", "--require-signed")
    assert code == 1
    assert f"unsigned: {unsigned}" in out and "1 good, 0 bad, 0 unknown key, 1 unsigned" in out


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, key: SshKey, capsys: Capsys) -> None:
    record(tmp_path, 1)
    code, out, err = dotnb(capsys, "--root", tmp_path, "config", "signing.key", tmp_path / "no-such-key")
    assert (code, out) == (2, "")
    assert err == f"dotnb: error: signing.key: no such file: {tmp_path / 'no-such-key'}\n"
    code, _, err = dotnb(capsys, "--root", tmp_path, "config", "signing.colour", "red")
    assert (
        code == 2
        and err.startswith("dotnb: error: unknown setting 'signing.colour'")
        and err.count("\n") == 1
    )
    code, _, err = dotnb(capsys, "--root", tmp_path, "verify", "--remote", "nowhere")
    assert code == 2 and err.startswith("dotnb: error: no remote named 'nowhere'") and err.count("\n") == 1
    # An allowed-signers file that became unreadable after it was set.
    assert dotnb(capsys, "--root", tmp_path, "config", "signing.key", key.path)[0] == 0
    allowed = allowed_signers(tmp_path / "allowed", key)
    assert dotnb(capsys, "--root", tmp_path, "config", "signing.allowed_signers", allowed)[0] == 0
    record(tmp_path, 1)
    os.unlink(allowed)
    code, _, err = dotnb(capsys, "--root", tmp_path, "verify")
    assert (
        code == 2
        and err.startswith("dotnb: error: signing.allowed_signers: cannot read")
        and err.count("\n") == 1
    )


def test_a_run_removed_from_a_folder_remote_is_found(tmp_path: Path, capsys: Capsys) -> None:
    project, shared = tmp_path / "project", tmp_path / "shared"
    shared.mkdir()
    ids = record(project, 3)
    assert dotnb(capsys, "--root", project, "remote", "add", "origin", f"file://{shared}")[0] == 0
    code, out, _ = dotnb(capsys, "--root", project, "push", "--json")
    assert code == 0 and json.loads(out)["runs_pushed"] == 3
    code, out, _ = dotnb(capsys, "--root", project, "verify", "--remote", "origin")
    assert code == 0 and out.startswith("remote origin: 3 runs, 3 chained by 1 writer")
    (shared / "runs" / ids[1]).unlink()
    code, out, _ = dotnb(capsys, "--root", project, "verify", "--remote", "origin", "--json")
    report = json.loads(out)
    assert code == 1 and [b["kind"] for b in report["breaks"]] == ["missing"]
    assert (report["breaks"][0]["before"]["id"], report["breaks"][0]["after"]["id"]) == (ids[0], ids[2])
