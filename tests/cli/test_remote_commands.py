"""``dotnb remote`` / ``push`` / ``pull`` / ``fsck --remote`` / ``log --author`` in human and
``--json`` form, in-process on a ``file://`` remote (tests/remote/ uses a real S3 server)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from dotnb.cli.app import main
from dotnb.store.repo import Store
from tests.manifests import new_manifest


def dotnb(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def record(root: Path, rel: str, content: bytes, user: str) -> str:
    store = Store.init(root)
    try:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
        outputs = store.snapshot_files([rel])
        env = {"user": user, "host": f"{user}-pc"}
        return str(store.commit_run(new_manifest(outputs=outputs, environment=env))["id"])
    finally:
        store.close()


@pytest.fixture
def team(tmp_path: Path) -> dict[str, Any]:
    remote = tmp_path / "shared"
    remote.mkdir()
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    Store.init(alice).close()
    Store.init(bob).close()
    return {"remote": remote, "url": remote.as_uri(), "alice": alice, "bob": bob}


def test_remote_add_list_remove_human_and_json(
    capsys: pytest.CaptureFixture[str], team: dict[str, Any]
) -> None:
    a = team["alice"]
    code, out, _ = dotnb(capsys, a, "remote", "add", "origin", team["url"])
    assert code == 0 and out == f"added remote origin (default): {team['url']}\n"
    code, out, _ = dotnb(
        capsys,
        a,
        "remote",
        "add",
        "lab",
        "s3://lab-bucket/x",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--json",
    )
    assert code == 0 and json.loads(out)["endpoint_url"] == "http://127.0.0.1:9"
    code, out, _ = dotnb(capsys, a, "remote", "list")
    assert out.splitlines() == [
        "  lab  s3://lab-bucket/x  endpoint_url=http://127.0.0.1:9",
        f"* origin  {team['url']}",
    ]
    code, out, _ = dotnb(capsys, a, "remote", "list", "--json")
    assert [(r["name"], r["default"]) for r in json.loads(out)] == [("lab", False), ("origin", True)]
    code, _, err = dotnb(capsys, a, "remote", "add", "bad", "s3://key:secret@bucket")
    assert code == 1 and "credentials" in err and "Traceback" not in err
    code, _, err = dotnb(capsys, a, "remote", "remove", "nope")
    assert code == 1 and "no remote named 'nope'" in err
    code, out, _ = dotnb(capsys, a, "remote", "remove", "lab")
    assert code == 0 and "removed remote lab" in out
    code, _, err = dotnb(capsys, a, "remote")
    assert code == 2 and "usage: dotnb remote" in err


def test_push_pull_log_author_show_and_fsck(capsys: pytest.CaptureFixture[str], team: dict[str, Any]) -> None:
    a, b = team["alice"], team["bob"]
    run_id = record(a, "out/result.csv", b"x,y\n1,2\n", "alice")
    record(b, "notes.txt", b"bob's own", "bob")
    for root in (a, b):
        assert dotnb(capsys, root, "remote", "add", "origin", team["url"])[0] == 0

    code, _, err = dotnb(capsys, b, "pull")
    assert code == 1 and "nothing has been pushed" in err
    code, out, _ = dotnb(capsys, a, "push")
    assert code == 0 and out.startswith("pushed 1 run to origin (")
    code, out, _ = dotnb(capsys, a, "push", "--json")
    assert json.loads(out)["runs_already"] == 1 and json.loads(out)["objects_uploaded"] == 0
    # A RUN argument without a remote name pushes to the default remote.
    code, out, _ = dotnb(capsys, a, "push", "latest", "--json")
    assert code == 0 and json.loads(out)["remote"] == "origin"

    code, out, _ = dotnb(capsys, b, "pull")
    assert code == 0 and out == "pulled 1 new run from origin\n"
    code, out, _ = dotnb(capsys, b, "log")
    header, *rows = out.splitlines()
    assert "BY" in header
    assert any("alice (origin)" in r for r in rows) and any(" bob " in f" {r} " for r in rows)
    code, out, _ = dotnb(capsys, b, "log", "--author", "alice", "--json")
    (row,) = json.loads(out)
    assert (row["id"], row["user"], row["host"], row["remote"]) == (run_id, "alice", "alice-pc", "origin")
    code, out, _ = dotnb(capsys, b, "log", "--author", "alice@alice-pc", "--json")
    assert [r["id"] for r in json.loads(out)] == [run_id]
    code, out, _ = dotnb(capsys, b, "show", run_id)
    assert "by        alice@alice-pc" in out and "from      remote origin (pulled)" in out
    code, out, _ = dotnb(capsys, b, "cat", run_id, "out/result.csv")
    assert code == 0 and out == "x,y\n1,2\n"

    code, out, _ = dotnb(capsys, b, "fsck", "--remote", "origin")
    assert code == 0 and "store is healthy" in out
    code, out, _ = dotnb(capsys, b, "fsck", "--remote", "origin", "--json")
    assert json.loads(out)["ok"] is True and json.loads(out)["runs_checked"] == 1
    # Damage an object on the remote: fsck --remote names it and exits 1.
    obj = next(p for p in (team["remote"] / "objects").rglob("*") if p.is_file() and p.stat().st_size == 8)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"tampered")
    code, out, _ = dotnb(capsys, b, "fsck", "--remote", "origin", "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"] and len(report["corrupted"]) == 1
    code, _, err = dotnb(capsys, b, "fsck", "--remote", "origin", "--rebuild-index")
    assert code == 2 and "not allowed with" in err


def test_pull_with_data_reports_downloads(capsys: pytest.CaptureFixture[str], team: dict[str, Any]) -> None:
    a, b = team["alice"], team["bob"]
    record(a, "big.bin", os.urandom(100_000), "alice")
    for root in (a, b):
        dotnb(capsys, root, "remote", "add", "origin", team["url"])
    dotnb(capsys, a, "push")
    code, out, _ = dotnb(capsys, b, "pull", "--with-data")
    assert code == 0 and "downloaded" in out and "97.7 KiB" in out


def test_push_conflict_exits_1_and_names_the_run(
    capsys: pytest.CaptureFixture[str], team: dict[str, Any]
) -> None:
    a = team["alice"]
    run_id = record(a, "a.txt", b"a", "alice")
    dotnb(capsys, a, "remote", "add", "origin", team["url"])
    dotnb(capsys, a, "push")
    store = Store(a)
    manifest = store.manifest(run_id)
    manifest["name"] = "renamed"
    store.update_manifest(manifest)
    store.close()
    code, out, _ = dotnb(capsys, a, "push")
    assert code == 1 and f"conflict {run_id}" in out
