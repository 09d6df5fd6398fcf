"""Reads handed over in bulk: a cell reading many files of a folder.

The event stream gathers read-only closes per folder and the tracker looks at
Python's read-opens a folder at a time (dotnb.capture.cell_record).  These tests
drive FileTracker in-process with real files, and check that the roles come out
as they would one file at a time: order against writes, names capture ignores,
files gone or renamed by the end, opens that failed, symlinks.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dotnb.capture import files
from dotnb.capture.cell_record import CellRecord
from dotnb.capture.files import FileActivity, FileTracker, PreWrite
from dotnb.capture.ignore import IgnoreRules
from dotnb.store.hashing import hash_bytes
from tests.capture.conftest import source_sees_native_reads


@pytest.fixture
def tracker(root: Path) -> Iterator[FileTracker]:
    def snapshot(path: Path) -> PreWrite:
        data = path.read_bytes()
        return PreWrite(hash=hash_bytes(data), size=len(data))

    t = FileTracker(root, IgnoreRules(root), snapshot)
    yield t
    t.close()


def cell(tracker: FileTracker, body: Callable[[], object], **end: object) -> FileActivity:
    tracker.begin()
    try:
        body()
    finally:
        activity = tracker.end(**end)  # type: ignore[arg-type]
    return activity


def folder_of(root: Path, name: str, count: int) -> list[str]:
    folder = root / name
    folder.mkdir(parents=True)
    rels = []
    for i in range(count):
        (folder / f"f{i:04d}.bin").write_bytes(b"%d" % i)
        rels.append(f"{name}/f{i:04d}.bin")
    return rels


def read_all(folder: str) -> None:
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            f.read()


def test_a_folder_read_whole_is_every_file_an_input(tracker: FileTracker, root: Path) -> None:
    rels = folder_of(root, "data/files", 300)
    act = cell(tracker, lambda: read_all("data/files"))
    assert sorted(act.inputs) == rels
    assert all(v is None for v in act.inputs.values())
    assert act.outputs == [] and act.missing == [] and act.changed == []


def test_relative_absolute_and_dotted_paths_name_the_same_file(tracker: FileTracker, root: Path) -> None:
    folder_of(root, "d", 3)

    def body() -> None:
        Path("d/f0000.bin").read_bytes()
        (root / "d" / "f0001.bin").read_bytes()
        Path("d/../d/./f0002.bin").read_bytes()
        os.chdir("d")
        Path("f0000.bin").read_bytes()
        os.chdir(root)

    act = cell(tracker, body)
    assert sorted(act.inputs) == ["d/f0000.bin", "d/f0001.bin", "d/f0002.bin"]


def test_failed_opens_ignored_and_hidden_names_are_not_inputs(tracker: FileTracker, root: Path) -> None:
    folder_of(root, "d", 40)
    (root / "d" / ".hidden").write_text("h")
    (root / "d" / "scratch.tmp").write_text("t")
    (root / ".dotnbignore").write_text("*.tmp\n")

    def body() -> None:
        read_all("d")
        with pytest.raises(FileNotFoundError):
            open("d/absent.bin", "rb")  # noqa: SIM115 - fails

    act = cell(tracker, body)
    assert len(act.inputs) == 40
    assert not {"d/.hidden", "d/scratch.tmp", "d/absent.bin"} & set(act.inputs)
    assert act.missing == []


def test_read_then_deleted_or_replaced_by_a_symlink_is_missing(tracker: FileTracker, root: Path) -> None:
    folder_of(root, "d", 40)
    (root / "elsewhere.txt").write_text("e")

    def body() -> None:
        read_all("d")
        os.remove("d/f0003.bin")
        os.remove("d/f0004.bin")
        os.symlink(root / "elsewhere.txt", "d/f0004.bin")

    act = cell(tracker, body)
    assert sorted(act.missing) == ["d/f0003.bin", "d/f0004.bin"]
    assert len(act.inputs) == 38


def test_reads_before_the_folder_is_renamed_keep_the_names_they_had(tracker: FileTracker, root: Path) -> None:
    folder_of(root, "a", 40)

    def body() -> None:
        read_all("a")
        os.rename("a", "b")

    act = cell(tracker, body)
    assert len(act.missing) == 40 and all(m.startswith("a/") for m in act.missing)
    assert not any(i.startswith("b/") for i in act.inputs)


def test_a_read_handed_over_then_changed_natively_is_changed(tracker: FileTracker, root: Path) -> None:
    # The read of `log` is handed over in bulk when the overwrite of `other`
    # brings the stream up to date; the native append that follows gives `log` a
    # story of its own, which must start with that read.
    folder_of(root, "many", 40)
    (root / "log").write_text("one\n")
    (root / "other").write_text("x")

    def body() -> None:
        read_all("many")
        Path("log").read_text()
        Path("other").write_text("y")
        subprocess.run("echo two >> log", shell=True, check=True)

    act = cell(tracker, body)
    assert "log" in act.inputs and act.changed == ["log"]
    assert sorted(act.outputs) == ["log", "other"]
    assert "other" not in act.inputs


def test_a_native_read_then_a_python_overwrite_keeps_the_old_bytes(tracker: FileTracker, root: Path) -> None:
    folder_of(root, "many", 40)
    (root / "n.txt").write_text("native")

    def body() -> None:
        subprocess.run("cat many/* n.txt > /dev/null", shell=True, check=True)
        Path("n.txt").write_text("python")

    act = cell(tracker, body)
    if source_sees_native_reads():
        assert act.inputs["n.txt"] == PreWrite(hash=hash_bytes(b"native"), size=6)
        assert len(act.inputs) == 41
    else:
        # No read events: the subprocess's reads are unseen (the README's table says to
        # declare them), so nothing asks the overwrite to keep the old bytes.
        assert act.inputs == {}
    assert act.outputs == ["n.txt"]


def test_a_python_read_then_a_python_overwrite_keeps_the_old_bytes(tracker: FileTracker, root: Path) -> None:
    folder_of(root, "many", 40)

    def body() -> None:
        read_all("many")
        Path("many/f0007.bin").write_bytes(b"new")

    act = cell(tracker, body)
    assert act.inputs["many/f0007.bin"] == PreWrite(hash=hash_bytes(b"7"), size=1)
    assert act.outputs == ["many/f0007.bin"]
    assert len(act.inputs) == 40


def test_a_symlink_read_is_its_target(tracker: FileTracker, root: Path, tmp_path: Path) -> None:
    folder_of(root, "d", 40)
    (root / "real.txt").write_text("r")
    outside = tmp_path / "outside.txt"
    outside.write_text("o")
    os.symlink(root / "real.txt", root / "d" / "to_real")
    os.symlink(outside, root / "d" / "to_outside")

    act = cell(tracker, lambda: read_all("d"))
    assert "real.txt" in act.inputs
    assert not {"d/to_real", "d/to_outside"} & set(act.inputs)
    assert [e["path"] for e in act.external] == [os.path.realpath(outside)]
    assert len(act.inputs) == 41


@pytest.mark.inotify_reader  # the bulk hand-over is the inotify reader's; watchdog gives reads one by one
def test_files_known_unchanged_are_not_looked_at(tracker: FileTracker, root: Path) -> None:
    # What the caller vouches for (its folder's watch saw no change since the
    # files were recorded) is taken as it is and handed back apart, as known reads:
    # the file deleted behind the stream's back here is not looked at, the one not
    # vouched for is.
    folder_of(root, "d", 40)

    def body() -> None:
        read_all("d")
        os.remove("d/f0001.bin")
        os.remove("d/f0002.bin")

    vouched = {f"f{i:04d}.bin" for i in range(2)}
    act = cell(tracker, body, unchanged=lambda folder: vouched if folder == "d" else ())
    assert act.known_reads == {"d": {"f0000.bin", "f0001.bin"}}
    assert not {"d/f0000.bin", "d/f0001.bin"} & set(act.inputs)
    assert len(act.inputs) == 37
    assert act.missing == ["d/f0002.bin"]


def test_another_thread_changing_files_while_the_cell_reads_many(tracker: FileTracker, root: Path) -> None:
    # The other thread's overwrites go through the hook's change path, which looks at
    # the cell's pending reads; the cell's end must still see every read exactly once.
    import threading

    rels = folder_of(root, "many", 2000)
    (root / "busy.txt").write_text("0")
    stop = threading.Event()

    def overwrite() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            Path("busy.txt").write_text(str(i))

    def body() -> None:
        writer = threading.Thread(target=overwrite)
        writer.start()
        try:
            for _ in range(3):
                read_all("many")
        finally:
            stop.set()
            writer.join()

    act = cell(tracker, body)
    assert sorted(r for r in act.inputs if r.startswith("many/")) == rels
    assert act.outputs == ["busy.txt"]
    assert act.missing == []


def test_relative_opens_after_a_chdir_are_files_of_the_new_folder(tracker: FileTracker, root: Path) -> None:
    """Relative read-opens are made absolute with the working folder of their moment:
    a file read in the folder changed to, then overwritten, keeps its bytes from
    before the overwrite as the input (which only a Python read of it earns)."""
    for name in ("d", "e"):
        (root / name).mkdir()
        (root / name / "x.bin").write_bytes(name.encode() * 10)

    def body() -> None:
        os.chdir("d")
        Path("x.bin").read_bytes()
        os.chdir(root / "e")
        Path("x.bin").read_bytes()
        Path("x.bin").write_bytes(b"new")
        os.chdir(root)

    act = cell(tracker, body)
    assert act.inputs["e/x.bin"] == PreWrite(hash=hash_bytes(b"e" * 10), size=10)
    assert act.inputs["d/x.bin"] is None
    assert act.outputs == ["e/x.bin"]


@pytest.mark.native_reads
def test_a_working_folder_changed_by_native_code_is_told(tracker: FileTracker, root: Path) -> None:
    import ctypes

    (root / "d").mkdir()
    (root / "d" / "x.bin").write_bytes(b"x")
    (root / "y.bin").write_bytes(b"y")
    libc = ctypes.CDLL(None, use_errno=True)

    def body() -> None:
        Path("y.bin").read_bytes()  # the hook learns the working folder
        assert libc.chdir(b"d") == 0  # not through os.chdir: no audit event
        Path("x.bin").read_bytes()
        os.chdir(root)

    act = cell(tracker, body)
    assert "d/x.bin" in act.inputs and "y.bin" in act.inputs  # the stream saw both reads
    assert any("working folder was changed by native code" in w for w in tracker.warnings)
    tracker.warnings.clear()
    cell(tracker, lambda: Path("y.bin").read_bytes())
    assert tracker.warnings == []


def test_odd_names_read_in_bulk_are_the_names_os_listdir_gives(tracker: FileTracker, root: Path) -> None:
    """Names handed over in bulk are decoded as ``os.fsdecode`` decodes them (bytes that
    are not UTF-8 kept as surrogates); hidden names and ``__pycache__`` are ignored."""
    folder = root / "odd"
    folder.mkdir()
    raw_names = [
        b"caf\xc3\xa9.txt",
        b"bad\xff\xfe.bin",
        b"tail\xc3",
        b"\xe2\x82",
        b"plain",
        b".hidden",
        b"__pycache__",
    ]
    for raw in raw_names:
        with open(os.path.join(os.fsencode(folder), raw), "wb") as f:
            f.write(raw)
    act = cell(tracker, lambda: read_all("odd"))
    kept = [os.fsdecode(raw) for raw in raw_names if raw not in (b".hidden", b"__pycache__")]
    assert sorted(act.inputs) == sorted(f"odd/{name}" for name in kept)


@pytest.mark.parametrize(
    ("match_at", "leave"), [(64, 0), (64, 16), (files.MATCH_WHILE_RUNNING, files.MATCH_LEAVE_NEWEST)]
)
def test_opens_matched_while_the_cell_runs_keep_every_role(
    tracker: FileTracker,
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    match_at: int,
    leave: int,
) -> None:
    """Thousands of read-opens, matched with the stream's reads while the cell runs
    (from ``match_at`` pending on, the newest ``leave`` left for the next time): an
    open the stream never reports (a file outside the root, a file still open at the
    end) is tried, then left for the end, and still counts; a file read, then
    overwritten, keeps its bytes from before."""
    monkeypatch.setattr(files, "MATCH_WHILE_RUNNING", match_at)
    monkeypatch.setattr(files, "MATCH_LEAVE_NEWEST", leave)
    rels = folder_of(root, "data/a", 3000) + folder_of(root, "data/b", 3000)
    outside = tmp_path / "outside.csv"
    outside.write_text("x\n")
    (root / "kept-open.bin").write_bytes(b"open")
    (root / "overwritten.bin").write_bytes(b"before")
    held: list[Any] = []

    def body() -> None:
        for i, rel in enumerate(rels):
            with open(rel, "rb") as f:
                f.read()
            if i % 500 == 0:
                outside.read_bytes()
                time.sleep(0.02)  # the stream's thread hands reads over meanwhile
            if i == 1000:
                held.append(open("kept-open.bin", "rb"))  # noqa: SIM115 - closed after the cell
                held[0].read()
                Path("overwritten.bin").read_bytes()
        Path("overwritten.bin").write_bytes(b"after")

    try:
        act = cell(tracker, body)
    finally:
        for f in held:
            f.close()
    assert sorted(r for r in act.inputs if r.startswith("data/")) == rels
    assert "kept-open.bin" in act.inputs
    assert act.inputs["overwritten.bin"] == PreWrite(hash=hash_bytes(b"before"), size=6)
    assert act.outputs == ["overwritten.bin"]
    assert [e["path"] for e in act.external] == [str(outside.resolve())]


def test_taking_pending_opens_leaves_the_newest_in_order() -> None:
    record = CellRecord(1)
    record.pending.extend(f"/p/{i}" for i in range(10))
    assert record.take_pending(leave=4) == [f"/p/{i}" for i in range(6)]
    assert record.take_pending(leave=4) == []
    record.pending.append("/p/10")
    assert record.take_pending() == ["/p/6", "/p/7", "/p/8", "/p/9", "/p/10"]
    assert record.pending == []
