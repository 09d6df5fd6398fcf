"""``dotnb log`` reads a current index directly (dotnb.store.listing) and opens the
store otherwise; both ways must print exactly the same."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dotnb.cli import main
from dotnb.store import listing
from dotnb.store.ids import new_run_id
from dotnb.store.manifest import FORMAT_VERSION, canonical_json
from dotnb.store.repo import Store
from tests.manifests import new_manifest

NB = "train.ipynb"
OTHER_NB = "sub/explore.ipynb"

# Arguments covering every filter, JSON and the table, the limit message and --notebook's readings.
LOG_ARGS = [
    ["log", "--json"],
    ["log", "--json", "--limit", "0"],
    ["log", "--notebook", NB, "--limit", "2", "--json"],
    ["log", "--notebook", "explore.ipynb", "--json"],  # relative to the working folder (sub/)
    ["log", "--notebook", "missing.ipynb", "--json"],
    ["log", "--kind", "checkpoint", "--json"],
    ["log", "--status", "error", "--json"],
    ["log", "--author", "bob", "--json"],
    ["log", "--author", "ada@box", "--json"],
    ["log", "--search", "SECOND", "--json"],
    ["log", "--metric", "acc>0.5", "--metric", "loss<=0.3", "--json"],
    ["log"],
    ["log", "--limit", "2"],
    ["log", "--notebook", NB],
    ["log", "--notebook", "/elsewhere/x.ipynb"],
    ["log", "--metric", "acc>>1"],
    ["--root", "{root}", "log", "--notebook", "sub/explore.ipynb", "--json"],  # from outside the root
    ["log", "--root", "{root}/sub/..", "--limit", "1"],
]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # '?', '#' and '%' are special in the SQLite URI the index is opened with.
    root = tmp_path / "pro?j#1%20"
    store = Store.init(root)
    try:
        for i in range(6):
            store.commit_run(
                new_manifest(
                    notebook=NB if i % 2 else OTHER_NB,
                    name=["first", "second"][i % 2] + f" run {i}",
                    status="error" if i == 3 else "ok",
                    params={"lr": i / 10},
                    metrics={"acc": i / 5, "loss": 1 - i / 5},
                    environment={"user": "bob" if i == 4 else "ada", "host": "box"},
                )
            )
        store.commit_run(new_manifest(notebook=NB, kind="checkpoint", name="before overwrite"))
    finally:
        store.close()
    (root / "sub").mkdir()
    (root / OTHER_NB).write_text("{}")
    for var in ("DOTNB_ROOT", "DOTNB_DEBUG", "COLUMNS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(root / "sub")  # the store is discovered from a folder inside it
    yield root


def run_cli(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def reader_used(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per ``open_current_index`` call, whether the index was read directly."""
    calls: list[bool] = []
    real = listing.open_current_index

    def spy(root: str | None, cwd: str) -> listing.IndexReader | None:
        reader = real(root, cwd)
        calls.append(reader is not None)
        return reader

    monkeypatch.setattr(listing, "open_current_index", spy)
    return calls


def through_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "open_current_index", lambda root, cwd: None)


@pytest.mark.parametrize("args", LOG_ARGS, ids=" ".join)
def test_index_read_directly_prints_what_the_store_prints(
    root: Path, args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")  # the table is cut to the terminal's width
    if "--root" in args:
        args = [a.format(root=root) for a in args]
        monkeypatch.chdir(root.parent)
    calls = reader_used(monkeypatch)
    direct = run_cli(capsys, args)
    if args != ["log", "--metric", "acc>>1"]:  # a bad condition is refused before anything is opened
        assert calls == [True]
    through_store(monkeypatch)
    assert run_cli(capsys, args) == direct


def test_the_store_is_not_opened_when_the_index_is_current(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the store was opened")

    monkeypatch.setattr(Store, "__init__", refuse)
    code, out, _ = run_cli(capsys, ["log", "--notebook", NB, "--json"])
    assert code == 0 and [r["notebook"] for r in json.loads(out)] == [NB] * 4
    # The reader's connection was the index's only one: closing it removed the WAL,
    # as closing the store does (a read-only connection would have left it behind).
    assert not (root / ".dotnb" / "index.sqlite-wal").exists()


def test_a_ref_without_its_index_row_sends_log_through_the_store(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run whose manifest object and ref are written but not its index row (a crash
    # between the two, or a ref copied in): opening the store indexes it.
    manifest = new_manifest(notebook=NB, name="unindexed", format=FORMAT_VERSION, id=new_run_id(), number=99)
    store = Store(root)
    try:
        digest, _ = store.objects.put_bytes(canonical_json(manifest))
    finally:
        store.close()
    runs = root / ".dotnb" / "runs"
    (runs / manifest["id"]).write_text(digest + "\n")
    os.utime(runs, ns=(1, 1))  # an mtime no commit recorded, however coarse the clock
    assert listing.open_current_index(str(root), str(root)) is None

    calls = reader_used(monkeypatch)
    code, out, _ = run_cli(capsys, ["log", "--json", "--limit", "0"])
    assert code == 0 and calls == [False]
    assert json.loads(out)[0]["name"] == "unindexed"
    # Opening the store brought the index up to date: the next log reads it directly.
    assert run_cli(capsys, ["log", "--json", "--limit", "0"]) == (0, out, "")
    assert calls == [False, True]


def _pending_run(root: Path) -> None:
    # A kernel that committed a run and ended before writing its manifest object and ref.
    store = Store(root)
    try:
        store.commit_run(new_manifest(notebook=NB, name="pending"), sync=False)
    finally:
        store.close()


def _other_schema(root: Path) -> None:
    with sqlite3.connect(root / ".dotnb" / "index.sqlite") as db:
        db.execute("UPDATE meta SET value='0' WHERE key='index_schema'")
    db.close()


def _no_index(root: Path) -> None:
    (root / ".dotnb" / "index.sqlite").unlink()


def _damaged_index(root: Path) -> None:
    (root / ".dotnb" / "index.sqlite").write_bytes(b"not a database" * 100)


@pytest.mark.parametrize("change", [_pending_run, _other_schema, _no_index, _damaged_index])
def test_an_index_the_store_would_change_is_not_read_directly(
    root: Path, change: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    change(root)
    index = root / ".dotnb" / "index.sqlite"
    existed = index.exists()
    assert listing.open_current_index(str(root), str(root)) is None
    assert index.exists() == existed  # never created by the reader
    calls = reader_used(monkeypatch)
    code, out, _ = run_cli(capsys, ["log", "--json", "--limit", "0"])
    assert code == 0 and calls == [False]
    names = [r["name"] for r in json.loads(out)]
    assert len(names) == (8 if change is _pending_run else 7)
    assert ("pending" in names) == (change is _pending_run)


def test_a_newer_store_format_is_reported_by_the_store(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / ".dotnb" / "format").write_text(json.dumps({"format": FORMAT_VERSION + 1}))
    assert listing.open_current_index(str(root), str(root)) is None
    code, out, err = run_cli(capsys, ["log", "--json"])
    assert (code, out) == (1, "") and f"store format {FORMAT_VERSION + 1}" in err


def test_no_store_is_reported_by_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert listing.open_current_index(None, str(tmp_path)) is None
    assert listing.open_current_index(str(tmp_path / "nowhere"), str(tmp_path)) is None
    code, _, err = run_cli(capsys, ["--root", str(tmp_path / "nowhere"), "log"])
    assert code == 1 and "no dotnb store at" in err
