"""``dotnb lineage``: text, JSON and DOT output, and its argument errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dotnb.store.content_lineage import content_key, run_key
from dotnb.store.hashing import hash_bytes
from dotnb.store.repo import Store
from tests.cli.invoke import dotnb, plain_env  # noqa: F401 - plain_env: autouse for this module
from tests.store.test_content_lineage import Pipeline, step


@pytest.fixture
def pipeline(tmp_path: Path) -> tuple[Path, Pipeline]:
    store = Store.init(tmp_path)
    try:
        return tmp_path, Pipeline(store)
    finally:
        store.close()


def test_upstream_as_text_names_every_step_back_to_the_sources(
    pipeline: tuple[Path, Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    root, p = pipeline
    code, out, err = dotnb(capsys, "--root", root, "lineage", root / "report.json", "--upstream")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("report.json  " + p.report[:12])
    assert lines[1] == "upstream:"
    assert "downstream:" not in out
    text = "\n".join(lines)
    for run, notebook in (
        (p.prepare, "prepare.ipynb"),
        (p.train, "train.ipynb"),
        (p.evaluate, "evaluate.ipynb"),
    ):
        assert f"written by run {run[:10]} #1 {notebook} (tester@box " in text
    assert "work/clean.csv, work/train.csv" in text  # one content under both of its names
    assert text.count("[source: no run wrote these bytes]") == 2
    assert "[changed on disk since]" not in text


def test_bytes_no_longer_at_their_path_are_marked_in_text(
    pipeline: tuple[Path, Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = pipeline
    (root / "raw" / "test.csv").write_bytes(b"x,y\nnew\n")
    code, out, err = dotnb(capsys, "--root", root, "lineage", root / "report.json", "--upstream")
    assert code == 0, err
    [line] = [line for line in out.splitlines() if "raw/test.csv" in line]
    assert line.endswith("[source: no run wrote these bytes]  [changed on disk since]")


def test_json_and_dot_describe_the_same_graph(
    pipeline: tuple[Path, Pipeline], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, p = pipeline
    monkeypatch.chdir(root / "raw")  # PATH relative to the working folder
    code, out, _ = dotnb(capsys, "lineage", "data.csv", "--downstream", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["root"] == content_key(p.raw) and doc["direction"] == "downstream"
    assert {n["id"] for n in doc["nodes"] if n["type"] == "run"} == {
        run_key(r) for r in (p.prepare, p.train, p.evaluate)
    }
    code, dot, _ = dotnb(capsys, "lineage", "data.csv", "--downstream", "--dot")
    assert code == 0 and dot.startswith("digraph lineage {")
    assert dot.count(" -> ") == len(doc["edges"])
    code, one, _ = dotnb(capsys, "lineage", "data.csv", "--downstream", "--depth", "1", "--json")
    assert {n["id"] for n in json.loads(one)["nodes"] if n["type"] == "run"} == {run_key(p.prepare)}


def test_a_run_argument_and_its_number(
    pipeline: tuple[Path, Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    root, p = pipeline
    code, out, _ = dotnb(capsys, "--root", root, "lineage", "#1", "--notebook", "train.ipynb", "--json")
    assert code == 0
    assert json.loads(out)["root"] == run_key(p.train)
    code, out, _ = dotnb(capsys, "--root", root, "lineage", p.train[:12], "--upstream")
    assert code == 0 and out.startswith(f"run {p.train[:10]} #1 train.ipynb")


def test_names_that_are_hostile_to_a_terminal_or_dot_stay_inert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.init(tmp_path)
    odd = 'in"\\x\x1b[31m.csv'
    (tmp_path / odd).write_bytes(b"1")
    step(store, "nb.ipynb", [odd], {"out.csv": b"2"})
    store.close()
    code, out, _ = dotnb(capsys, "--root", tmp_path, "lineage", tmp_path / "out.csv")
    assert code == 0 and "\x1b" not in out and "\\x1b[31m" in out
    code, dot, _ = dotnb(capsys, "--root", tmp_path, "lineage", tmp_path / "out.csv", "--dot")
    assert code == 0 and "\x1b" not in dot
    assert json.dumps('in"\\x')[1:-1] in dot  # quote and backslash escaped in DOT strings


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nothing-here"], "neither a file of the project nor a run"),
        (["../outside.csv"], "outside the project root"),
        (["/etc/passwd"], "outside the project root"),
        (["report.json", "--depth", "-1"], "must be 0 or more"),
        (["report.json", "--upstream", "--downstream"], "not allowed with"),
        (["report.json", "--json", "--dot"], "not allowed with"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    pipeline: tuple[Path, Pipeline], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    root, _ = pipeline
    os.chdir(root)
    try:
        code, out, err = dotnb(capsys, "lineage", *args)
    finally:
        os.chdir(Path(__file__).parent)
    assert code == 2 and out == ""
    assert message in err
    if "usage:" not in err:
        assert err.count("\n") == 1 and err.startswith("dotnb: error: ")


def test_the_bytes_on_disk_decide_not_the_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store.init(tmp_path)
    first = step(store, "a.ipynb", [], {"out.csv": b"first"})
    (tmp_path / "out.csv").write_bytes(b"edited by hand")
    store.close()
    code, out, _ = dotnb(capsys, "--root", tmp_path, "lineage", tmp_path / "out.csv", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["root"] == content_key(hash_bytes(b"edited by hand"))
    assert all(n["type"] != "run" for n in doc["nodes"]) and first
    assert doc["nodes"][0]["source"] is True
