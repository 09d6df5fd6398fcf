"""``dotnb tag``, ``untag``, ``note``, ``log --tag`` and tags carried by push and pull
(in-process, on a ``file://`` remote)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dotnb.cli.app import main
from dotnb.store.ids import new_run_id
from dotnb.store.repo import Store
from tests.cli.test_remote_commands import record, team  # noqa: F401  (a fixture)


def dotnb(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_tag_untag_note_and_log(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    first = record(tmp_path, "a.txt", b"1", "ada")
    second = record(tmp_path, "b.txt", b"2", "ada")
    code, out, _ = dotnb(capsys, tmp_path, "tag", first, "baseline", "good")
    assert code == 0 and out.splitlines()[:2] == [f"run {first}", "  tags: baseline, good"]
    code, out, _ = dotnb(capsys, tmp_path, "untag", first, "good", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["tags"] == ["baseline"] and [e["op"] for e in doc["history"]] == ["tag", "untag"]
    code, out, _ = dotnb(capsys, tmp_path, "note", "latest", "lr too high\n<script>alert(1)</script>")
    assert code == 0 and "    lr too high" in out and "    <script>alert(1)</script>" in out

    rows = json.loads(dotnb(capsys, tmp_path, "log", "--json")[1])
    by_id = {r["id"]: r for r in rows}
    assert by_id[first]["tags"] == ["baseline"] and by_id[first]["note"] is None
    assert by_id[second]["tags"] == [] and by_id[second]["note"].startswith("lr too high")
    code, out, _ = dotnb(capsys, tmp_path, "log", "--tag", "baseline", "--json")
    assert [r["id"] for r in json.loads(out)] == [first]
    code, out, _ = dotnb(capsys, tmp_path, "log")
    header, *lines = out.splitlines()
    assert "TAGS" in header
    assert any("baseline" in line for line in lines) and any("(note)" in line for line in lines)
    # The fast path of `dotnb log --json` (no argparse) prints the same rows.
    assert main(["--root", str(tmp_path), "log", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == rows


def test_errors_are_clear(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    record(tmp_path, "a.txt", b"1", "ada")
    code, _, err = dotnb(capsys, tmp_path, "tag", "latest", "two words")
    assert code == 1 and "contains a space" in err and "Traceback" not in err
    code, _, err = dotnb(capsys, tmp_path, "tag", "ZZZZ", "x")
    assert code == 1 and "ZZZZ" in err
    code, _, err = dotnb(capsys, tmp_path, "tag", "latest")
    assert code == 2 and "NAME" in err
    code, _, err = dotnb(capsys, tmp_path, "note", "latest", "x" * 10_001)
    assert code == 1 and "10000" in err


def test_push_and_pull_carry_tags_and_notes(capsys: pytest.CaptureFixture[str], team: dict[str, Any]) -> None:  # noqa: F811
    a, b = team["alice"], team["bob"]
    run_id = record(a, "out/result.csv", b"x,y\n", "alice")
    unpushed = record(a, "out/other.csv", b"z\n", "alice")
    for root in (a, b):
        assert dotnb(capsys, root, "remote", "add", "origin", team["url"])[0] == 0
    assert dotnb(capsys, a, "tag", run_id, "baseline")[0] == 0
    assert dotnb(capsys, a, "note", run_id, "the one to beat")[0] == 0
    code, out, _ = dotnb(capsys, a, "push", run_id, "--json")
    assert code == 0 and json.loads(out)["annotations_pushed"] == 2
    assert dotnb(capsys, a, "tag", unpushed, "private")[0] == 0
    code, out, _ = dotnb(capsys, b, "pull", "--json")
    pulled = json.loads(out)
    assert pulled["runs_new"] == 1 and pulled["annotations_pulled"] == 2
    (row,) = json.loads(dotnb(capsys, b, "log", "--tag", "baseline", "--json")[1])
    assert row["id"] == run_id and row["note"] == "the one to beat"
    # Bob changes them too; both sides end up with the same tags after push and pull.
    assert dotnb(capsys, b, "untag", run_id, "baseline")[0] == 0
    assert dotnb(capsys, b, "tag", run_id, "reviewed")[0] == 0
    code, out, _ = dotnb(capsys, b, "push", "--json")
    assert json.loads(out)["annotations_pushed"] == 2
    code, out, _ = dotnb(capsys, a, "pull", "--json")
    assert json.loads(out)["annotations_pulled"] == 2
    for root in (a, b):
        doc = json.loads(dotnb(capsys, root, "log", "--json")[1])
        assert {r["id"]: r["tags"] for r in doc}[run_id] == ["reviewed"]
    # The unpushed run's tag stayed home.
    remote_events = [json.loads(p.read_bytes()) for p in (team["remote"] / "annotations").iterdir()]
    assert {e["run"] for e in remote_events} == {run_id}
    # Pushing that run again sends nothing; pushing the other run sends its tag.
    assert json.loads(dotnb(capsys, a, "push", run_id, "--json")[1])["annotations_pushed"] == 0
    assert json.loads(dotnb(capsys, a, "push", "--json")[1])["annotations_pushed"] == 1
    # A junk key on the remote is rejected, not stored.
    junk_id = new_run_id()
    junk = team["remote"] / "annotations" / f"{new_run_id()}.{junk_id}"
    junk.write_bytes(b'{"not": "an event"}')
    code, out, _ = dotnb(capsys, b, "pull", "--json")
    assert json.loads(out)["annotations_rejected"] == 1
    assert not list((b / ".dotnb" / "annotations").glob(f"*/{junk_id}"))
    # A second pull lists only keys since its cursor and stores nothing new.
    assert json.loads(dotnb(capsys, b, "pull", "--json")[1])["annotations_pulled"] == 0
    store = Store(b)
    try:
        assert store.list_runs(tags=["reviewed"])[0]["id"] == run_id
    finally:
        store.close()
