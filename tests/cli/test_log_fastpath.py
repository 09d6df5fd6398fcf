"""``dotnb log`` reads a current index directly (dotnb.store.listing) and opens the
store otherwise; both ways must print exactly the same.  The console script
(dotnb.cli.entry) answers ``dotnb log --json`` without argparse or json: it must print
byte for byte what the argparse CLI prints, and leave everything else to it."""

from __future__ import annotations

import io
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dotnb.cli import entry
from dotnb.cli.app import main
from dotnb.cli.exits import EXIT_BROKEN_PIPE
from dotnb.store import listing, summary_indent
from dotnb.store.ids import new_run_id
from dotnb.store.layout import read_format_file
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


def make_project(
    root: Path, manifests: list[dict[str, Any]], checkpoint_name: str, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A store at ``root`` holding ``manifests`` and a checkpoint, with ``sub/`` (the working
    folder: the store is discovered from a folder inside it) and the other notebook's file."""
    store = Store.init(root)
    try:
        for manifest in manifests:
            store.commit_run(manifest)
        store.commit_run(new_manifest(notebook=NB, kind="checkpoint", name=checkpoint_name))
    finally:
        store.close()
    (root / "sub").mkdir()
    (root / OTHER_NB).write_text("{}")
    for var in ("DOTNB_ROOT", "DOTNB_DEBUG", "COLUMNS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(root / "sub")
    return root


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    manifests = [
        new_manifest(
            notebook=NB if i % 2 else OTHER_NB,
            name=["first", "second"][i % 2] + f" run {i}",
            status="error" if i == 3 else "ok",
            params={"lr": i / 10},
            metrics={"acc": i / 5, "loss": 1 - i / 5},
            environment={"user": "bob" if i == 4 else "ada", "host": "box"},
        )
        for i in range(6)
    ]
    # '?', '#' and '%' are special in the SQLite URI the index is opened with.
    yield make_project(tmp_path / "pro?j#1%20", manifests, "before overwrite", monkeypatch)


def run_cli(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def reader_used(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per ``open_current_index`` call, whether the index was read directly."""
    calls: list[bool] = []
    real = listing.open_current_index

    def spy(root: str | None, cwd: str, **kwargs: Any) -> listing.IndexReader | None:
        reader = real(root, cwd, **kwargs)
        calls.append(reader is not None)
        return reader

    monkeypatch.setattr(listing, "open_current_index", spy)
    return calls


def through_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "open_current_index", lambda root, cwd, **kwargs: None)


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


def test_an_index_damaged_past_the_pages_the_checks_read_is_listed_through_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index cut short under its WAL (a live kernel's recent pages): the checks that
    find it current read pages the WAL still holds, the listing meets a missing one.
    ``dotnb log`` then lists through the store, which sets the file aside."""
    manifests = [new_manifest(notebook=NB, name=f"run {i}", params={"p": "x" * 300}) for i in range(40)]
    project = make_project(tmp_path / "p", [], "cp", monkeypatch)
    store = Store(project)
    store.index.defer_checkpoints()  # as a kernel does: recent pages stay in the WAL
    try:
        for i, manifest in enumerate(manifests):
            store.commit_run(manifest)
            if i == 20:
                store.index.checkpoint()
        index = project / ".dotnb" / "index.sqlite"
        saved = {p.name: p.read_bytes() for p in index.parent.glob("index.sqlite*")}
    finally:
        store.close()
    expected = sorted(m["name"] for m in manifests)
    listed_through_store = 0
    for cut in range(1, len(saved["index.sqlite"]) // 4096):
        for leftover in index.parent.glob("index.sqlite*"):
            leftover.unlink()
        for name, data in saved.items():
            (index.parent / name).write_bytes(data)
        os.truncate(index, cut * 4096)
        code, out, err = run_cli(capsys, ["log", "--notebook", NB, "--kind", "run", "--json"])
        assert code == 0, f"cut at page {cut}: {err}"
        assert sorted(r["name"] for r in json.loads(out)) == expected, f"cut at page {cut}"
        listed_through_store += bool(list(index.parent.glob("index.sqlite.damaged-*")))
    assert listed_through_store  # some cut did damage what the listing reads


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


# ---------------------------------------------------------------------------
# the console script's fast path (dotnb.cli.entry)

DOTNB = str(Path(sys.executable).with_name("dotnb"))
# Each module the fast path must not import (dotnb.cli.app brings argparse).
HEAVY = ("argparse", "json", "re", "typing", "pathlib", "sqlite3", "sqlite3.dbapi2", "datetime")
HEAVY += ("dotnb.cli.app",)

# Every text JSON escapes, and the values a summary holds.
TRICKY_NAMES = [
    'qu"ote \\" and \\\\"',
    "back\\slash\\",
    "ÜBER naïve 漢字 😀",
    "new\nline\ttab\r",
    "ctrl \x00\x01\x1f \x7f \u2028 \u00a0 \ufeff",
    "",
    "plain ascii",
    "del\x7f run",
    "{[:, ]}",
]


@pytest.fixture
def tricky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    manifests = [
        new_manifest(
            notebook=NB if i % 2 else OTHER_NB,
            name=name,
            status=("ok", "error", "interrupted")[i % 3],
            params={
                name or "empty": name,
                "nested": [[1, [2.5, []], {}], {"": None, "t": True, "f": False}],
                "empty_dict": {},
                "empty_list": [],
                "numbers": [0, -1, 10**30, -0.0, 1e-07, 1e100, 0.1, 123456.789],
            }
            if i != 5
            else {},
            metrics={"acc": i / 7, "loss": "nan", "gain": "-inf"} if i != 6 else {},
            environment={"user": "bob" if i == 2 else "ada", "host": "box"},
        )
        for i, name in enumerate(TRICKY_NAMES)
    ]
    root = make_project(tmp_path / 'tri"cky ü', manifests, "before 'over\\write'", monkeypatch)
    monkeypatch.setenv("COLUMNS", "100")  # help and tables are cut to the terminal's width
    monkeypatch.setenv("PYTHONIOENCODING", "utf-8")  # as the in-process capture
    yield root


def console_script(args: list[str], cwd: Path | None = None, **env: str) -> tuple[int, str, str]:
    """``dotnb ARGS`` run by the installed console script: exit status, stdout, stderr."""
    done = subprocess.run(
        [DOTNB, *args], cwd=cwd or os.getcwd(), env={**os.environ, **env}, capture_output=True, timeout=60
    )
    return done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")


def argparse_cli(args: list[str], cwd: Path | None = None, **env: str) -> tuple[int, str, str]:
    """``dotnb ARGS`` through the argparse CLI (no fast path), in a subprocess."""
    code = "import sys\nfrom dotnb.cli.app import main\nsys.exit(main(sys.argv[1:]))\n"
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd or os.getcwd(),
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
    )
    return done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")


def fast_in_process(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int | None, str, str]:
    status = entry.fast_log(args)
    out, err = capsys.readouterr()
    return status, out, err


# Command lines the fast path answers; {root} is the store's root (the working folder is sub/).
FAST_ARGS = [
    ["log", "--json"],
    ["log", "--json", "--limit", "0"],
    ["log", "--limit=2", "--json"],
    ["log", "--limit", "5", "--json", "--limit", "1"],  # the last one wins, as in argparse
    ["log", "--json", "--limit", "007"],
    ["log", "--json", "--notebook", NB],
    ["log", "--json", "--notebook=explore.ipynb"],  # relative to the working folder (sub/)
    ["log", "--json", "--notebook", "../" + NB],
    ["log", "--json", "--notebook", "missing.ipynb"],
    ["log", "--json", "--kind", "checkpoint"],
    ["log", "--json", "--kind=run", "--status=error"],
    ["log", "--json", "--status", "interrupted"],
    ["log", "--json", "--search", 'QU"OTE'],
    ["log", "--json", "--search=über"],
    ["log", "--json", "--search", ""],
    ["log", "--json", "--search=", "--author=", "--notebook="],  # empty values
    ["log", "--json", "--author", "bob"],
    ["log", "--json", "--author=ada@box", "--notebook", NB, "--limit", "2", "--kind", "run"],
    ["--root", "{root}", "log", "--json"],
    ["--root={root}", "log", "--json", "--notebook", "sub/explore.ipynb"],
    ["log", "--root", "{root}", "--json"],
    ["log", "--json", "--root={root}/sub/.."],
    ["--root", "{root}/nowhere", "log", "--root", "{root}", "--json"],  # the last --root wins
]


@pytest.mark.parametrize("args", FAST_ARGS, ids=" ".join)
def test_the_console_script_prints_what_argparse_prints(
    tricky: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.format(root=tricky) for a in args]
    expected = run_cli(capsys, args)
    assert expected[0] == 0 and expected[2] == ""
    assert fast_in_process(capsys, args) == expected  # the fast path answered
    assert console_script(args) == expected


def test_dotnb_root_is_the_fallback_for_root(
    tricky: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tricky.parent)  # outside the store
    monkeypatch.setenv("DOTNB_ROOT", str(tricky))
    for args in (["log", "--json", "--notebook", f"{tricky.name}/{NB}"], ["--root=", "log", "--json"]):
        expected = run_cli(capsys, args)
        assert expected[0] == 0 and json.loads(expected[1])
        assert fast_in_process(capsys, args) == expected
        assert console_script(args) == expected


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
@pytest.mark.parametrize("search", ["", "ascii", "del"])
def test_json_escapes_non_ascii_when_stdout_is_not_utf8(
    tricky: Path, encoding: str, search: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "ascii" lists ASCII texts only (re-indented), "del" one with DEL (which
    # ensure_ascii escapes), "" every run (json escapes them).
    args = ["log", "--json", "--search", search]
    expected = argparse_cli(args, PYTHONIOENCODING=encoding)
    assert expected[0] == 0 and expected[1].isascii() and len(json.loads(expected[1])) >= 1
    assert console_script(args, PYTHONIOENCODING=encoding) == expected
    # The fast path answered.
    written = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(written, encoding=encoding))
    assert entry.fast_log(args) == 0  # it flushes
    assert written.getvalue().decode(encoding) == expected[1]


def test_a_store_without_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Store.init(tmp_path).close()
    args = ["--root", str(tmp_path), "log", "--json"]
    assert fast_in_process(capsys, args) == (0, "[]\n", "")
    assert console_script(args) == run_cli(capsys, args) == (0, "[]\n", "")


# Command lines the fast path leaves to the argparse CLI before opening anything.
NOT_FAST_ARGS = [
    [],
    ["log"],
    ["log", "--limit", "2"],
    ["--json", "log"],
    ["log", "--json", "--metric", "acc>0.5"],
    ["log", "--json", "--metric=acc>0.5"],
    ["log", "--json", "-h"],
    ["log", "--json", "--help"],
    ["--help"],
    ["--version"],
    ["log", "--json", "--"],
    ["log", "--json", "--", "--limit", "1"],
    ["log", "--json", "extra"],
    ["log", "log", "--json"],
    ["show", "latest", "--json"],
    ["log", "--json", "--bogus"],
    ["log", "--json", "--lim", "2"],  # no abbreviations
    ["log", "--json=yes"],
    ["log", "--json", "--limit"],
    ["log", "--json", "--notebook"],
    ["log", "--json", "--limit", "-1"],
    ["log", "--json", "--limit=-1"],
    ["log", "--json", "--limit", "x"],
    ["log", "--json", "--limit", ""],
    ["log", "--json", "--limit", " 2"],
    ["log", "--json", "--limit", "1_0"],
    ["log", "--json", "--limit", "٣"],  # a digit, not an ASCII one
    ["log", "--json", "--kind", "bogus"],
    ["log", "--json", "--kind="],
    ["log", "--json", "--status", "OK"],
    ["log", "--json", "--search", "-x"],
    ["log", "--json", "--notebook", "--json"],
    ["log", "--json", "--author", "-"],
    ["--notebook", NB, "log", "--json"],
    ["--root", "{root}", "--json", "log"],
]


@pytest.mark.parametrize("args", NOT_FAST_ARGS, ids=lambda a: " ".join(a) or "(none)")
def test_other_command_lines_are_left_to_argparse(
    tricky: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.format(root=tricky) for a in args]
    assert entry.log_json_options(args) is None
    assert fast_in_process(capsys, args) == (None, "", "")


@pytest.mark.parametrize(
    "args",
    [
        ["log", "--json", "--notebook", "--json"],
        ["log", "--json", "--limit", "-1"],
        ["log", "--json", "--kind", "bogus"],
        ["log", "--json", "--metric", "acc>>1"],
        ["log", "--json", "--bogus"],
        ["log", "--help"],
        ["--version"],
    ],
    ids=" ".join,
)
def test_the_console_script_leaves_them_to_argparse(
    tricky: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert console_script(args) == run_cli(capsys, args)


def _stale_index(root: Path) -> None:
    os.utime(root / ".dotnb" / "runs", ns=(1, 1))  # an mtime no commit recorded


def _newer_format(root: Path) -> None:
    (root / ".dotnb" / "format").write_text('{"format": 99}\n')


def _format_json_reads(root: Path) -> None:
    # Not the form the store writes, but one json reads: still read directly.
    (root / ".dotnb" / "format").write_text('{ "format" : 2 }')


@pytest.mark.parametrize(
    ("change", "args"),
    [
        (None, ["log", "--json", "--notebook", "/elsewhere/x.ipynb"]),  # outside the root
        (None, ["log", "--json", "--notebook", "../.."]),
        (None, ["--root", "{root}/nowhere", "log", "--json"]),
        (_stale_index, ["log", "--json", "--limit", "0"]),
        (_newer_format, ["log", "--json"]),
    ],
    ids=["outside", "outside-up", "no-store", "stale", "newer-format"],
)
def test_what_the_fast_path_cannot_answer_the_cli_does(
    tricky: Path, change: Any, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.format(root=tricky) for a in args]
    if change is not None:
        change(tricky)
    assert entry.log_json_options(args) is not None
    assert fast_in_process(capsys, args) == (None, "", "")
    got = console_script(args)
    assert got == run_cli(capsys, args)
    if change is _stale_index:
        assert got[0] == 0 and len(json.loads(got[1])) == len(TRICKY_NAMES) + 1
        # The CLI opened the store, which brought the index up to date: now read directly.
        assert fast_in_process(capsys, args) == got
    else:
        assert got[0] == 1 and got[1] == "" and got[2].startswith("dotnb: error: ")


def test_a_format_file_in_another_spelling_is_read_with_json(
    tricky: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _format_json_reads(tricky)
    expected = run_cli(capsys, ["log", "--json"])
    assert fast_in_process(capsys, ["log", "--json"]) == expected


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ('{"format": 2}\n', 2),
        ('{"format": 2}', 2),
        ('{"format": 10}\n', 10),
        ('{"format": 0}', 0),
        ('{ "format": 2 }', 2),
        ('{"format": 2, "x": 1}\n', 2),
        ('{"format": 02}', None),  # not JSON
        ('{"format": "2"}', "2"),
        ('{"format": -1}', -1),
        ('{"format": ٢}', None),
        ('{"format": 2}\n\n', 2),
        ("", None),
    ],
)
def test_the_format_file_is_read_as_json_reads_it(tmp_path: Path, text: str, version: Any) -> None:
    path = tmp_path / "format"
    path.write_text(text, encoding="utf-8")
    if version is None:
        with pytest.raises(ValueError):
            read_format_file(str(path))
    else:
        assert read_format_file(str(path)) == version == json.loads(text)["format"]


def test_a_closed_stdout_is_quiet(
    tricky: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class ClosedPipe:
        encoding = "utf-8"

        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert entry.fast_log(["log", "--json"]) == EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""


def test_the_fast_path_imports_nothing_heavy(tricky: Path) -> None:
    args = ["log", "--json", "--notebook", "explore.ipynb", "--limit", "2", "--search", "ü"]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", DOTNB, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and len(json.loads(done.stdout)) == 1
    imported = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "dotnb.store.listing" in imported  # the fast path answered
    assert not imported & set(HEAVY)
    # python -m dotnb enters the same way.
    done = subprocess.run(
        [sys.executable, "-c", "import runpy, sys; runpy.run_module('dotnb', run_name='__main__')", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout == console_script(args)[1]


# ---------------------------------------------------------------------------
# the re-indenter


def _random_text(rng: random.Random) -> str:
    alphabet = ['"', "\\", "\\\\", '\\"', "a", "Z", "é", "漢", "😀", "\n", "\t", "\x00", "\x1f", "\x7f", " ",
                "/", "\u2028", "\ufeff", ":", ",", "{", "]", "\\u00e9", "0", "-"]  # fmt: skip
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 4 and roll < 0.2:
        return {_random_text(rng): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 4 and roll < 0.35:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice(
        [
            None,
            True,
            False,
            0,
            -0.0,
            rng.randint(-(10**25), 10**25),
            rng.randint(-9, 9),
            rng.random() * 10 ** rng.randint(-40, 40),
            -rng.random(),
            float(rng.randint(-5, 5)),
            float("nan"),  # not in a summary (manifests refuse it), but json writes it
            float("inf"),
            -float("inf"),
            _random_text(rng),
        ]
    )


def emitted(texts: list[str]) -> str:
    """What ``dotnb log --json`` prints for the index's ``texts`` (as dotnb.cli.output.emit_json)."""
    return json.dumps([json.loads(t) for t in texts], indent=2, ensure_ascii=False) + "\n"


def test_the_reindenter_writes_what_json_writes() -> None:
    rng = random.Random(20240611)
    for _ in range(1500):
        docs = [_random_value(rng) for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.7:  # mostly summaries: objects
            docs = [{"doc": d, _random_text(rng): d} for d in docs]
        texts = [json.dumps(d, sort_keys=True, ensure_ascii=False) for d in docs]
        assert listing.indent_summaries(texts) == emitted(texts), texts


def test_the_reindenter_prints_the_store_s_summaries(tricky: Path) -> None:
    reader = listing.open_current_index(str(tricky), str(tricky))
    assert reader is not None
    try:
        texts = reader.list_run_texts()
    finally:
        reader.close()
    assert len(texts) == len(TRICKY_NAMES) + 1
    assert listing.indent_summaries(texts) == emitted(texts)
    assert listing.indent_summaries([]) == "[]\n" == emitted([])


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1}',  # other separators
        '{"a": 1,"b": 2}',
        '{"a" : 1}',
        '{"a":  1}',
        ' {"a": 1}',
        '{"a": 1} ',
        '{"a": 1}\n',
        '{\n"a": 1}',
        '{"a": 01}',  # numbers json.dumps does not write so
        '{"a": 1.50}',
        '{"a": 1E5}',
        '{"a": 1e5}',
        '{"a": .5}',
        '{"a": +1}',
        '{"a": -0}',
        '{"a": 1_0}',
        '{"a": nan}',
        '{"a": True}',
        '{"a": "\\/"}',  # escapes json.dumps does not write
        '{"a": "\\u0041"}',
        '{"a": "\\u000a"}',
        '{"a": "\\u001F"}',
        '{"a": "\\ud800"}',
        '{"a": "\\x"}',
        '{"a": "\\',
        '{"a": "tab\there"}',  # a raw control character
        '{"a": "x}',  # a string left open
        '{"a": "x\\"}',
        '{"a": 1',  # brackets
        '{"a": 1}}',
        '{"a": [1}',
        '{"a": 1]',
        "]",
        "}",
        "",
        '{"a": 1, }',  # what comes where
        '{"a": [1, ]}',
        '{"a": [, 1]}',
        '{"a" "b"}',
        '{"a": 1 2}',
        '{"a": 1, 2}',
        "{1: 2}",
        '{"a"}',
        '{"a": }',
        "{: 1}",
        '["a": 1]',
        '"a" "b"',
        '"a""b"',
        "1 2",
        "1, 2",
        '{"a": 1}{"b": 2}',
    ],
)
def test_the_reindenter_refuses_what_json_dumps_does_not_write(text: str) -> None:
    assert listing.indent_summaries(['{"ok": [1, {}]}', text]) is None


def test_the_reindenter_is_fast() -> None:
    # 50 rows as bench/log_query.py makes them, each with numbers of its own.
    summary = {
        "checkpoint_of": None,
        "duration_s": 0.25,
        "host": "box",
        "id": "01J0000000000000000000000",
        "inputs": 1,
        "kind": "run",
        "name": None,
        "notebook": "nb07.ipynb",
        "outputs": 0,
        "remote": None,
        "reproduces": None,
        "started_at": "2024-06-11T10:00:00.000Z",
        "status": "ok",
        "user": "bench",
    }
    texts = [
        json.dumps(
            {
                **summary,
                "number": i,
                "params": {"epochs": i % 10, "lr": round(0.001 * (i % 50), 3)},
                "metrics": {"acc": round(0.5 + (i % 97) / 200, 4)},
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        for i in range(1000, 1050)
    ]
    assert listing.indent_summaries(texts) == emitted(texts)

    def first_call() -> float:  # as in a dotnb log process: nothing walked yet
        summary_indent.forget_walks()
        start = time.perf_counter()
        listing.indent_summaries(texts)
        return time.perf_counter() - start

    def with_json() -> float:  # json imported already: only its work
        start = time.perf_counter()
        emitted(texts)
        return time.perf_counter() - start

    # Well under 1 ms on a quiet machine (0.3 to 0.6 here); against json, interleaved,
    # so that a busy machine does not fail the test.
    times = [(first_call(), with_json()) for _ in range(30)]
    best, best_json = min(t[0] for t in times), min(t[1] for t in times)
    assert best < best_json, f"{best * 1000:.2f} ms for 50 rows, json {best_json * 1000:.2f} ms"
