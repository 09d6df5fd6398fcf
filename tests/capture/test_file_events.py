"""The file-event sources: the inotify reader and watchdog record the same files; the
inotify watch limit hands over to watchdog's polling observer without losing
outputs; ``DOTNB_FILE_EVENTS`` chooses.  Real files, real subprocesses, pyarrow."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dotnb.capture.file_events import NoEvents, file_events_mode, open_file_events
from dotnb.capture.files import FileActivity, FileTracker
from dotnb.capture.ignore import IgnoreRules
from dotnb.capture.watchdog_events import WatchdogEvents
from dotnb.capture.watcher import TreeWatcher


def run_cells(root: Path, cells: list[Callable[[], object]]) -> list[FileActivity]:
    tracker = FileTracker(root, IgnoreRules(root), lambda path: None)
    found = []
    try:
        for body in cells:
            tracker.begin()
            try:
                body()
            finally:
                found.append(tracker.end())
    finally:
        tracker.close()
    return found


def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "a.csv").write_text("x\n1\n2\n")
    (root / "data" / "raw" / "b.csv").write_text("x\n3\n")
    (root / "models").mkdir()
    return root


def workload() -> list[Callable[[], object]]:
    """Python reads and writes, a subprocess reading and writing, pyarrow writing and
    reading, a rename onto a file, a folder made by a subprocess."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def python_io() -> None:
        rows = Path("data/raw/a.csv").read_text().splitlines()
        Path("data/clean.csv").write_text("\n".join(rows[1:]))

    def subprocess_io() -> None:
        subprocess.run(
            "sort data/raw/b.csv > data/sorted.csv && mkdir -p out/deep && echo 1 > out/deep/x.txt",
            shell=True,
            check=True,
        )

    def native_io() -> None:
        pq.write_table(pa.table({"x": [1, 2, 3]}), "data/table.parquet")

    def native_read_and_rename() -> None:
        pq.read_table("data/table.parquet")
        Path("models/tmp.bin").write_bytes(b"model")
        os.replace("models/tmp.bin", "models/model.bin")

    return [python_io, subprocess_io, native_io, native_read_and_rename]


def summary(acts: list[FileActivity]) -> list[tuple[list[str], list[str]]]:
    return [(sorted(a.inputs), sorted(a.outputs)) for a in acts]


@pytest.mark.parametrize("mode", ["inotify", "watchdog"])
def test_each_source_records_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("DOTNB_FILE_EVENTS", mode)
    root = project(tmp_path)
    monkeypatch.chdir(root)
    acts = run_cells(root, workload())
    assert summary(acts) == [
        (["data/raw/a.csv"], ["data/clean.csv"]),
        (["data/raw/b.csv"], ["data/sorted.csv", "out/deep/x.txt"]),
        ([], ["data/table.parquet"]),
        (["data/table.parquet"], ["models/model.bin"]),
    ]


def test_past_the_inotify_watch_limit_polling_takes_over_and_outputs_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOTNB_FILE_EVENTS", raising=False)
    monkeypatch.setenv("DOTNB_INOTIFY_WATCH_LIMIT", "2")  # the root and one folder
    root = project(tmp_path)
    monkeypatch.chdir(root)
    tracker = FileTracker(root, IgnoreRules(root), lambda path: None)
    try:
        tracker.begin()
        assert isinstance(tracker.watcher, WatchdogEvents) and tracker.watcher.polling
        warned = [w for w in tracker.warnings if "watch limit" in w]
        assert len(warned) == 1
        Path("data/raw/a.csv").read_text()  # Python: the audit hook sees it anyway
        subprocess.run(
            "echo 1 > data/raw/native.txt && mkdir -p models/v2 && echo w > models/v2/w.bin",
            shell=True,
            check=True,
        )
        act = tracker.end()
        assert sorted(act.inputs) == ["data/raw/a.csv"]
        assert sorted(act.outputs) == ["data/raw/native.txt", "models/v2/w.bin"]
        tracker.begin()
        Path("models/v2/w.bin").write_text("again")
        act = tracker.end()
        assert act.outputs == ["models/v2/w.bin"]
        assert len([w for w in tracker.warnings if "watch limit" in w]) == 1  # said once
    finally:
        tracker.close()


def test_the_limit_reached_with_inotify_forced_only_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOTNB_FILE_EVENTS", "inotify")
    monkeypatch.setenv("DOTNB_INOTIFY_WATCH_LIMIT", "2")
    root = project(tmp_path)
    tracker = FileTracker(root, IgnoreRules(root), lambda path: None)
    try:
        tracker.begin()
        tracker.end()
        assert isinstance(tracker.watcher, TreeWatcher)
        assert any("not watched" in w for w in tracker.warnings)
    finally:
        tracker.close()


def test_file_events_off_records_python_access_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOTNB_FILE_EVENTS", "off")
    root = project(tmp_path)
    monkeypatch.chdir(root)

    def body() -> None:
        Path("data/raw/a.csv").read_text()
        Path("py.txt").write_text("p")
        subprocess.run([sys.executable, "-c", "open('sub.txt', 'w').write('s')"], check=True)

    tracker = FileTracker(root, IgnoreRules(root), lambda path: None)
    try:
        assert isinstance(tracker.watcher, NoEvents)
        tracker.begin()
        body()
        act = tracker.end()
        assert sorted(act.inputs) == ["data/raw/a.csv"] and act.outputs == ["py.txt"]
        assert any("DOTNB_FILE_EVENTS=off" in w for w in tracker.warnings)
    finally:
        tracker.close()


@pytest.mark.parametrize(
    ("value", "mode"),
    [("", "auto"), ("watchdog", "watchdog"), (" Inotify ", "inotify"), ("fsevents", "auto")],
)
def test_the_setting_names_a_source(monkeypatch: pytest.MonkeyPatch, value: str, mode: str) -> None:
    monkeypatch.setenv("DOTNB_FILE_EVENTS", value)
    assert file_events_mode() == mode


def test_auto_is_the_inotify_reader_on_linux_and_watchdog_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = open_file_events(str(tmp_path), lambda: None, "auto")
    assert isinstance(source, TreeWatcher if sys.platform.startswith("linux") else WatchdogEvents)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert isinstance(open_file_events(str(tmp_path), lambda: None, "auto"), WatchdogEvents)


def native_write(path: str) -> None:
    """Create ``path`` through libc, as native code would: the audit hook does not see it."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.open(os.fsencode(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    libc.write(fd, b"x", 1)
    libc.close(fd)


def native_read(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.open(os.fsencode(path), os.O_RDONLY)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    libc.close(fd)


@pytest.mark.parametrize("mode", ["inotify", "watchdog"])
def test_events_just_before_a_cell_are_not_its_own_and_events_just_before_its_end_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """No time between the last event and a cell's start or end: the event is still
    on its way through the source's threads when the drain begins."""
    monkeypatch.setenv("DOTNB_FILE_EVENTS", mode)
    root = project(tmp_path)
    monkeypatch.chdir(root)
    tracker = FileTracker(root, IgnoreRules(root), lambda path: None)
    try:
        for i in range(20):
            native_write(f"before-{i}.txt")  # between cells: nobody's
            tracker.begin()
            native_write(f"inside-{i}.txt")
            native_read("data/raw/a.csv")
            act = tracker.end()
            assert (sorted(act.inputs), sorted(act.outputs)) == (["data/raw/a.csv"], [f"inside-{i}.txt"]), i
            assert not tracker.warnings
    finally:
        tracker.close()


@pytest.mark.parametrize("mode", ["inotify", "watchdog"])
def test_a_folder_moved_out_of_a_hidden_folder_brings_its_files_as_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Hidden folders are not watched; a folder renamed from one into the project is."""
    monkeypatch.setenv("DOTNB_FILE_EVENTS", mode)
    root = project(tmp_path)
    monkeypatch.chdir(root)
    (root / ".staging" / "sub").mkdir(parents=True)

    def stage() -> None:
        Path(".staging/a.txt").write_text("a")
        Path(".staging/sub/b.txt").write_text("b")

    def publish() -> None:
        os.rename(".staging", "out")
        native_write("out/c.txt")

    acts = run_cells(root, [stage, publish])
    assert summary(acts) == [([], []), ([], ["out/a.txt", "out/c.txt", "out/sub/b.txt"])]


def test_markers_of_kernels_that_are_gone_are_removed_when_a_source_starts(tmp_path: Path) -> None:
    root = project(tmp_path)
    markers = root / ".dotnb" / "events"
    markers.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(gone.stdout)  # exited and reaped: no process has its pid (until reused)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as alive:
        try:
            names = [f"drain-{dead_pid}-7", f"drain-{alive.pid}-3", f"drain-{os.getpid()}-1", "notes.txt"]
            for name in names:
                (markers / name).write_bytes(b"")
            source = WatchdogEvents(os.path.realpath(root), lambda: None, polling=True)
            source.start()
            try:
                assert source.streaming
                assert sorted(p.name for p in markers.iterdir()) == sorted(names[1:])
            finally:
                source.stop()
        finally:
            alive.kill()


@pytest.mark.parametrize("mode", ["watchdog-polling", "inotify", "watchdog"])
def test_python_reads_are_right_whether_or_not_the_source_reports_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Where reads come as events, Python's read-opens wait for them; where they do
    not (watchdog's polling observer, FSEvents, ReadDirectoryChangesW), each is
    looked at as it is opened: a file read then deleted is still missing, and a file
    the cell wrote and read back is its output only, also when a subprocess wrote it
    (its write event comes at the polling observer's next look)."""
    monkeypatch.setenv("DOTNB_FILE_EVENTS", mode)
    root = project(tmp_path)
    monkeypatch.chdir(root)

    def body() -> None:
        Path("data/raw/a.csv").read_text()
        Path("data/raw/b.csv").read_text()
        os.remove("data/raw/b.csv")
        Path("models/fresh.txt").write_text("x")
        Path("models/fresh.txt").read_text()
        # A tick of the file clock later than the cell's start (Linux's is coarse).
        subprocess.run("sleep 0.02; echo y > models/made.txt", shell=True, check=True)
        Path("models/made.txt").read_text()

    tracker = FileTracker(root, IgnoreRules(root), lambda path: None)
    try:
        tracker.begin()
        assert tracker.watcher.reports_reads is (mode != "watchdog-polling")
        try:
            body()
        finally:
            act = tracker.end()
    finally:
        tracker.close()
    assert sorted(act.inputs) == ["data/raw/a.csv"]
    assert act.missing == ["data/raw/b.csv"]
    assert act.outputs == ["models/fresh.txt", "models/made.txt"]
