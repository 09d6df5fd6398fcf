"""File-access capture: FileTracker driven in-process, with real files and I/O libraries.

Each test runs one or more "cells" (begin / real I/O / end) against a project
root in tmp_path and checks how every touched path was classified.  Native
writers and readers (pyarrow, SQLite, subprocesses) are only visible through
inotify, so those tests also prove that the observer path works.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dotnb.capture import audit_hook, cell_record, watcher
from dotnb.capture import files as files_mod
from dotnb.capture.files import FileActivity, FileTracker, PreWrite
from dotnb.capture.ignore import IgnoreRules
from tests.capture.conftest import source_sees_native_reads


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Recorder:
    """The snapshot callback: remembers the bytes it was asked to save."""

    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}

    def __call__(self, path: Path) -> PreWrite | None:
        data = path.read_bytes()
        self.saved[str(path)] = data
        return PreWrite(hash=_digest(data), size=len(data))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def tracker(root: Path, recorder: Recorder) -> Iterator[FileTracker]:
    t = FileTracker(root, IgnoreRules(root), recorder)
    yield t
    t.close()


def cell(tracker: FileTracker, body: Callable[[], object]) -> FileActivity:
    tracker.begin()
    try:
        body()
    finally:
        activity = tracker.end()
    assert tracker.warnings == [], tracker.warnings
    return activity


def native_inputs(expected: dict[str, object]) -> dict[str, object]:
    """The inputs expected of a cell whose only reads are by native code or a
    subprocess: none where the source reports no reads (the README's table)."""
    return expected if source_sees_native_reads() else {}


def touched(act: FileActivity) -> set[str]:
    return set(act.inputs) | set(act.outputs) | set(act.missing) | set(act.changed)


def delay_events(monkeypatch: pytest.MonkeyPatch, tracker: FileTracker, seconds: float) -> None:
    """Make the observer thread lag: each file event is handled `seconds` late."""
    handle = tracker.on_file_event
    handle_reads = tracker.on_file_reads

    def slow(rel: str, written: bool) -> None:
        time.sleep(seconds)
        handle(rel, written)

    def slow_reads(folder: str, names: set[str]) -> None:
        time.sleep(seconds)
        handle_reads(folder, names)

    monkeypatch.setattr(tracker, "on_file_event", slow)
    monkeypatch.setattr(tracker, "on_file_reads", slow_reads)


def gate_events(monkeypatch: pytest.MonkeyPatch, tracker: FileTracker) -> threading.Event:
    """Hold file events back while the returned event is clear."""
    gate = threading.Event()
    gate.set()
    handle = tracker.on_file_event
    handle_reads = tracker.on_file_reads

    def gated(rel: str, written: bool) -> None:
        gate.wait(5)
        handle(rel, written)

    def gated_reads(folder: str, names: set[str]) -> None:
        gate.wait(5)
        handle_reads(folder, names)

    monkeypatch.setattr(tracker, "on_file_event", gated)
    monkeypatch.setattr(tracker, "on_file_reads", gated_reads)
    return gate


# -- Python-level I/O (audit hook, annotated by inotify) ------------------------------


def test_builtin_open_read_is_input_only(tracker: FileTracker, root: Path) -> None:
    (root / "a.txt").write_text("hello")

    def body() -> None:
        with open("a.txt") as f:
            f.read()

    act = cell(tracker, body)
    assert act.inputs == {"a.txt": None}
    assert act.outputs == [] and act.changed == [] and act.missing == []


def test_write_new_file_is_output_only(tracker: FileTracker, recorder: Recorder) -> None:
    act = cell(tracker, lambda: Path("b.txt").write_text("new"))
    assert act.outputs == ["b.txt"]
    assert act.inputs == {}
    assert recorder.saved == {}


def test_append_to_unread_file_is_output_not_input(
    tracker: FileTracker, root: Path, recorder: Recorder
) -> None:
    (root / "log.txt").write_text("old\n")

    def body() -> None:
        with open("log.txt", "a") as f:
            f.write("more\n")

    act = cell(tracker, body)
    assert act.outputs == ["log.txt"]
    assert act.inputs == {}
    assert recorder.saved == {}  # nothing read, so nothing to keep


def test_overwrite_of_unread_file_is_output_only(
    tracker: FileTracker, root: Path, recorder: Recorder
) -> None:
    # The common "rewrite last run's result" case: no input, no copy of the old bytes.
    (root / "out.csv").write_text("old")
    act = cell(tracker, lambda: Path("out.csv").write_text("new"))
    assert act.outputs == ["out.csv"]
    assert act.inputs == {}
    assert recorder.saved == {}


def test_pathlib_and_os_open(tracker: FileTracker, root: Path) -> None:
    (root / "p.txt").write_text("p")
    (root / "o.bin").write_bytes(b"o")

    def body() -> None:
        Path("p.txt").read_text()
        fd = os.open("o.bin", os.O_RDONLY)
        os.read(fd, 10)
        os.close(fd)
        fd = os.open("w.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"w")
        os.close(fd)

    act = cell(tracker, body)
    assert act.inputs == {"p.txt": None, "o.bin": None}
    assert act.outputs == ["w.bin"]


def test_read_then_overwrite_keeps_prewrite_bytes(
    tracker: FileTracker, root: Path, recorder: Recorder
) -> None:
    (root / "state.json").write_text('{"n": 1}')

    def body() -> None:
        n = int(Path("state.json").read_text()[6:-1])
        Path("state.json").write_text(f'{{"n": {n + 1}}}')

    act = cell(tracker, body)
    pre = act.inputs["state.json"]
    assert pre == PreWrite(hash=_digest(b'{"n": 1}'), size=8)
    assert recorder.saved == {str(root / "state.json"): b'{"n": 1}'}
    assert act.outputs == ["state.json"]
    assert act.changed == []
    assert (root / "state.json").read_text() == '{"n": 2}'


def test_read_then_r_plus_update_in_place(tracker: FileTracker, root: Path) -> None:
    (root / "r.txt").write_text("abcdef")

    def body() -> None:
        with open("r.txt", "r+") as f:
            f.read()
            f.seek(0)
            f.write("X")

    act = cell(tracker, body)
    assert act.inputs["r.txt"] == PreWrite(hash=_digest(b"abcdef"), size=6)
    assert act.outputs == ["r.txt"]


def test_atomic_replace_of_read_file_keeps_prewrite(tracker: FileTracker, root: Path) -> None:
    (root / "cfg.txt").write_text("v1")

    def body() -> None:
        Path("cfg.txt").read_text()
        Path("cfg.tmp").write_text("v2")
        os.replace("cfg.tmp", "cfg.txt")

    act = cell(tracker, body)
    assert act.inputs == {"cfg.txt": PreWrite(hash=_digest(b"v1"), size=2)}
    assert act.outputs == ["cfg.txt"]  # cfg.tmp no longer exists


def test_write_then_read_back_is_output_only(tracker: FileTracker) -> None:
    def body() -> None:
        Path("tmp.txt").write_text("x")
        Path("tmp.txt").read_text()

    act = cell(tracker, body)
    assert act.outputs == ["tmp.txt"]
    assert act.inputs == {}


def test_created_and_deleted_is_neither(tracker: FileTracker) -> None:
    def body() -> None:
        Path("scratch.txt").write_text("x")
        Path("scratch.txt").read_text()
        os.remove("scratch.txt")
        subprocess.run(
            ["sh", "-c", "echo y > scratch2.txt; cat scratch2.txt; rm scratch2.txt"],
            check=True,
            capture_output=True,
        )

    act = cell(tracker, body)
    assert touched(act) == set()


def test_read_then_deleted_is_missing(tracker: FileTracker, root: Path) -> None:
    (root / "gone.txt").write_text("bye")
    (root / "gone2.txt").write_text("bye")

    def body() -> None:
        Path("gone.txt").read_text()
        os.remove("gone.txt")
        subprocess.run(["sh", "-c", "cat gone2.txt > /dev/null && rm gone2.txt"], check=True)

    act = cell(tracker, body)
    # A subprocess's read is seen only where the source reports reads.
    assert act.missing == ["gone.txt", "gone2.txt"] if source_sees_native_reads() else ["gone.txt"]
    assert act.inputs == {} and act.outputs == []


def test_reads_in_other_threads(tracker: FileTracker, root: Path) -> None:
    (root / "t.txt").write_text("t")

    def body() -> None:
        th = threading.Thread(target=lambda: Path("t.txt").read_text())
        th.start()
        th.join()

    assert cell(tracker, body).inputs == {"t.txt": None}


# -- data libraries ------------------------------------------------------------------


def test_pandas_csv(tracker: FileTracker, root: Path) -> None:
    pd.DataFrame({"x": [1, 2]}).to_csv(root / "in.csv", index=False)

    def body() -> None:
        df = pd.read_csv("in.csv")
        df.assign(y=df.x * 2).to_csv("out.csv", index=False)

    act = cell(tracker, body)
    assert act.inputs == {"in.csv": None}
    assert act.outputs == ["out.csv"]


def test_pyarrow_parquet_is_seen_natively(tracker: FileTracker, root: Path) -> None:
    pq.write_table(pa.table({"x": [1, 2, 3]}), root / "in.parquet")

    def body() -> None:
        table = pq.read_table("in.parquet")  # pyarrow's C++ I/O: no audit event
        table.to_pandas().to_parquet("out.parquet")

    act = cell(tracker, body)
    assert act.inputs == native_inputs({"in.parquet": None})
    assert act.outputs == ["out.parquet"]


def test_parquet_written_then_read_back_is_output_only(tracker: FileTracker) -> None:
    def body() -> None:
        pd.DataFrame({"x": [1]}).to_parquet("rt.parquet")
        pd.read_parquet("rt.parquet")

    act = cell(tracker, body)
    assert act.outputs == ["rt.parquet"]
    assert act.inputs == {}


def test_numpy_load_and_save(tracker: FileTracker, root: Path) -> None:
    np.save(root / "a.npy", np.arange(5))

    def body() -> None:
        a = np.load("a.npy")
        np.save("b.npy", a * 2)
        np.savetxt("c.txt", a)

    act = cell(tracker, body)
    assert act.inputs == {"a.npy": None}
    assert act.outputs == ["b.npy", "c.txt"]


def test_sqlite_create_query_and_update(tracker: FileTracker, root: Path) -> None:
    def create() -> None:
        con = sqlite3.connect("db.sqlite")
        con.execute("create table t(x)")
        con.execute("insert into t values (1)")
        con.commit()
        con.close()

    act = cell(tracker, create)
    assert act.outputs == ["db.sqlite"]  # the journal came and went
    assert act.inputs == {}

    def query() -> None:
        con = sqlite3.connect("db.sqlite")
        assert con.execute("select count(*) from t").fetchone() == (1,)
        con.close()

    act = cell(tracker, query)
    assert act.inputs == {"db.sqlite": None}
    assert act.outputs == []  # opened read-write, but nothing was written

    def update() -> None:
        con = sqlite3.connect("db.sqlite")
        con.execute("insert into t select max(x) + 1 from t")
        con.commit()
        con.close()

    act = cell(tracker, update)
    # Read and then written by SQLite's C code: no pre-write copy is possible.
    assert act.inputs == {"db.sqlite": None}
    assert act.changed == ["db.sqlite"]
    assert act.outputs == ["db.sqlite"]


# -- subprocesses (inotify only) ---------------------------------------------------------


def test_subprocess_sort_with_python_opened_stdout(tracker: FileTracker, root: Path) -> None:
    (root / "a").write_text("b\na\n")
    (root / "b").write_text("stale output of an earlier run\n")

    def body() -> None:
        with open("b", "w") as out:
            subprocess.run(["sort", "a"], stdout=out, check=True)

    act = cell(tracker, body)
    assert act.inputs == native_inputs({"a": None})
    assert act.outputs == ["b"]
    assert (root / "b").read_text() == "a\nb\n"


def test_subprocess_shell_redirect(tracker: FileTracker, root: Path) -> None:
    (root / "a").write_text("x\n")
    act = cell(tracker, lambda: subprocess.run("cat a > b", shell=True, check=True))
    assert act.inputs == native_inputs({"a": None})
    assert act.outputs == ["b"]


def test_subprocess_output_then_read_by_python_is_output_only(tracker: FileTracker, root: Path) -> None:
    (root / "a").write_text("x\n")

    def body() -> None:
        # After a pause: a file time a tick after the cell's start (see below).
        subprocess.run("sleep 0.02; cat a > b", shell=True, check=True)
        Path("b").read_text()  # in real time after the write, whatever the event latency

    act = cell(tracker, body)
    # A source reporting no reads (polling: b's creation comes at its next look) tells
    # b's bytes were written during the cell by its modification time.
    assert act.inputs == native_inputs({"a": None})
    assert act.outputs == ["b"]


def test_read_then_modified_by_subprocess_is_changed(tracker: FileTracker, root: Path) -> None:
    (root / "log").write_text("one\n")

    def body() -> None:
        Path("log").read_text()
        subprocess.run("echo two >> log", shell=True, check=True)

    act = cell(tracker, body)
    assert act.inputs == {"log": None}
    assert act.changed == ["log"]
    assert act.outputs == ["log"]


def test_native_read_then_python_overwrite_is_snapshotted(
    tracker: FileTracker, root: Path, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The read is only in the event stream, and the stream lags: the overwrite
    # must flush it before deciding whether to save the old bytes.
    (root / "n.txt").write_text("native")
    cell(tracker, lambda: None)  # observer started before it is slowed down
    delay_events(monkeypatch, tracker, 0.05)

    def body() -> None:
        subprocess.run(["cat", "n.txt"], check=True, capture_output=True)
        Path("n.txt").write_text("python")

    act = cell(tracker, body)
    if source_sees_native_reads():
        assert act.inputs == {"n.txt": PreWrite(hash=_digest(b"native"), size=6)}
        assert recorder.saved == {str(root / "n.txt"): b"native"}
    else:  # the read by cat is unseen: nothing to save
        assert act.inputs == {} and recorder.saved == {}
    assert act.outputs == ["n.txt"]


# -- scope: ignore rules, folders, names, symlinks, outside the root ------------------------


def test_ignored_paths(tracker: FileTracker, root: Path) -> None:
    (root / ".dotnbignore").write_text("*.log\nscratch/\n")
    for d in (".dotnb", ".ipynb_checkpoints", "__pycache__", ".git", "scratch", "sub/.hidden"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "keep.txt").write_text("k")
    tracker.ignore.add_ignored_path("nb.ipynb")

    def body() -> None:
        for rel in (
            ".dotnb/x",
            ".ipynb_checkpoints/nb-checkpoint.ipynb",
            "__pycache__/m.pyc",
            ".git/HEAD",
            ".env",
            "sub/.hidden/f",
            "scratch/t.txt",
            "run.log",
            "nb.ipynb",
        ):
            Path(rel).write_text("x")
            Path(rel).read_text()
        subprocess.run("echo y > deep.log; cat keep.txt > scratch/copy", shell=True, check=True)
        Path("kept.txt").write_text("k")

    act = cell(tracker, body)
    assert act.inputs == native_inputs({"keep.txt": None})
    assert act.outputs == ["kept.txt"]


def test_dotnbignore_is_reread_when_it_changes(root: Path) -> None:
    rules = IgnoreRules(root)
    assert not rules.is_ignored("data/x.csv")
    (root / ".dotnbignore").write_text("data/\n")
    assert rules.is_ignored("data/x.csv")
    assert rules.is_ignored("data/deeper/y.csv")
    (root / ".dotnbignore").write_text("*.tmp\n!keep.tmp\n")
    assert not rules.is_ignored("data/x.csv")
    assert rules.is_ignored("a/b.tmp") and not rules.is_ignored("keep.tmp")
    (root / ".dotnbignore").unlink()
    assert not rules.is_ignored("a/b.tmp")
    assert rules.is_ignored("__pycache__/m.pyc") and rules.is_ignored("a/.cache/f")
    rules.add_ignored_path("nb.ipynb")
    assert rules.is_ignored("nb.ipynb") and not rules.is_ignored("sub/nb.ipynb")


def test_an_edit_of_dotnbignore_applies_from_the_next_cell(tracker: FileTracker, root: Path) -> None:
    (root / "secret").mkdir()
    (root / "secret" / "key.txt").write_text("k")
    (root / "data.csv").write_text("d")

    def read_both() -> None:
        Path("secret/key.txt").read_text()
        Path("data.csv").read_text()

    assert set(cell(tracker, read_both).inputs) == {"secret/key.txt", "data.csv"}
    (root / ".dotnbignore").write_text("secret/\n")
    assert set(cell(tracker, read_both).inputs) == {"data.csv"}
    (root / ".dotnbignore").write_text("*.csv\n")
    assert set(cell(tracker, read_both).inputs) == {"secret/key.txt"}


def test_new_subfolders(tracker: FileTracker, root: Path) -> None:
    def body() -> None:
        os.makedirs("out/deep/er")
        Path("out/deep/er/r.txt").write_text("r")
        # Created by another process a moment before its files: watchdog adds the
        # watch late and reports what it finds.
        subprocess.run("mkdir -p gen/a/b && echo z > gen/a/b/z.txt", shell=True, check=True)

    act = cell(tracker, body)
    assert act.outputs == ["gen/a/b/z.txt", "out/deep/er/r.txt"]


@pytest.mark.parametrize(
    "name",
    ["with space.csv", "ünïcødé-数据.txt", "new\nline.txt", "-leading-dash.txt", "sub dir/ü x.txt"],
)
def test_awkward_names(tracker: FileTracker, root: Path, name: str) -> None:
    src = root / ("in-" + name.replace("/", "_"))
    src.write_text("v")
    (root / name).parent.mkdir(exist_ok=True)

    def body() -> None:
        data = src.read_text()
        (root / name).write_text(data)
        subprocess.run(["cat", "--", src.name], check=True, capture_output=True)

    act = cell(tracker, body)
    assert act.inputs == {src.name: None}
    assert act.outputs == [name]


def test_reads_outside_root_are_external(tracker: FileTracker, tmp_path: Path) -> None:
    outside = tmp_path / "shared" / "ref.csv"
    outside.parent.mkdir()
    outside.write_text("1,2\n")
    hidden = tmp_path / ".cache" / "c.bin"
    hidden.parent.mkdir()
    hidden.write_bytes(b"c")

    def body() -> None:
        outside.read_text()
        hidden.read_bytes()
        Path(np.__file__).read_text()  # site-packages: interpreter, not data
        (tmp_path / "written-outside.txt").write_text("w")

    act = cell(tracker, body)
    st = outside.stat()
    assert act.external == [{"path": str(outside), "size": st.st_size, "mtime_ns": st.st_mtime_ns}]
    assert touched(act) == set()


def test_external_reads_are_capped(tracker: FileTracker, tmp_path: Path) -> None:
    many = tmp_path / "many"
    many.mkdir()
    for i in range(cell_record.MAX_EXTERNAL + 20):
        (many / f"{i}.txt").write_text("x")

    def body() -> None:
        for p in many.iterdir():
            p.read_text()

    act = cell(tracker, body)
    assert len(act.external) == cell_record.MAX_EXTERNAL


def test_symlinks(tracker: FileTracker, root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("outside")
    (root / "out-link.txt").symlink_to(secret)
    (root / "real.txt").write_text("inside")
    (root / "in-link.txt").symlink_to(root / "real.txt")

    def body() -> None:
        Path("out-link.txt").read_text()
        Path("in-link.txt").read_text()
        Path("out-link.txt").write_text("changed outside")
        os.symlink("real.txt", "new-link.txt")

    act = cell(tracker, body)
    # Through the link inside the root: the target's own path.
    assert act.inputs == {"real.txt": None}
    # Nothing reached through the link that leads out is a project file.
    assert act.outputs == []
    assert "out-link.txt" not in touched(act)
    assert [e["path"] for e in act.external] == [str(secret)]


# -- cell boundaries --------------------------------------------------------------------


def test_events_between_cells_do_not_leak(
    tracker: FileTracker, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "src.txt").write_text("s")
    act = cell(tracker, lambda: Path("res.txt").write_text(Path("src.txt").read_text()))
    assert act.inputs == {"src.txt": None} and act.outputs == ["res.txt"]

    # What the caller does after end() -- hash the outputs, in-process and by a
    # subprocess -- with the events of it still in flight when the next cell begins.
    gate = gate_events(monkeypatch, tracker)
    gate.clear()
    hashlib.sha256(Path("res.txt").read_bytes()).hexdigest()
    subprocess.run(["sha256sum", "res.txt", "src.txt"], check=True, capture_output=True)
    Path("between.txt").write_text("not in any cell")
    tracker.begin()
    gate.set()
    act = tracker.end()
    assert touched(act) == set()
    assert act.external == []


def test_file_left_open_still_counts_as_read(tracker: FileTracker, root: Path) -> None:
    (root / "held.txt").write_text("h")
    handles = []

    def body() -> None:
        f = open("held.txt")  # noqa: SIM115 - closed only after the cell
        f.read()
        handles.append(f)

    act = cell(tracker, body)
    handles[0].close()
    assert act.inputs == {"held.txt": None}


def test_renamed_folder_files_are_outputs_under_new_name(tracker: FileTracker, root: Path) -> None:
    (root / "d1").mkdir()
    (root / "d1" / "f.txt").write_text("f")
    act = cell(tracker, lambda: os.rename("d1", "d2"))
    assert act.outputs == ["d2/f.txt"]
    assert act.inputs == {}


def test_folders_renamed_or_moved_out_between_cells_keep_native_events_right(
    tracker: FileTracker, root: Path, tmp_path: Path
) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "in.txt").write_text("i")
    (root / "gone" / "sub").mkdir(parents=True)
    cell(tracker, lambda: None)  # watching starts
    # Between cells: a folder tree renamed inside the root, another moved out of it
    # and replaced by a new folder of the same name, a hidden folder made visible.
    os.rename(root / "a", root / "z")
    os.rename(root / "gone", tmp_path / "outside")
    (root / "gone" / "sub").mkdir(parents=True)
    (root / ".was-hidden").mkdir()
    os.rename(root / ".was-hidden", root / "visible")

    def body() -> None:
        subprocess.run(
            "cat z/b/in.txt > z/b/out.txt && echo n > gone/sub/new.txt && echo v > visible/v.txt"
            " && echo o > ../outside/sub/far.txt",
            shell=True,
            check=True,
        )

    act = cell(tracker, body)
    assert act.inputs == native_inputs({"z/b/in.txt": None})
    assert act.outputs == ["gone/sub/new.txt", "visible/v.txt", "z/b/out.txt"]
    if isinstance(tracker.watcher, watcher.TreeWatcher):  # the inotify reader's own watches
        assert all(not p.startswith(("a/", ".")) for p in tracker.watcher.folders())
        assert "z/b" in tracker.watcher.folders() and "gone/sub" in tracker.watcher.folders()


@pytest.mark.inotify_reader
def test_forked_child_leaves_the_parents_events_alone(tracker: FileTracker, root: Path) -> None:
    """A child forked in a cell (multiprocessing) shares the parent's inotify queue."""
    (root / "in.txt").write_text("i")
    status: list[int] = []

    def body() -> None:
        pid = os.fork()
        if pid == 0:  # the child runs Python I/O with a copy of the tracker, hook and all
            code = 3
            try:
                reads: list[int] = []
                tracker.watcher.inotify.read = lambda: reads.append(1) or b""
                data = Path("in.txt").read_text()
                Path("in.txt").write_text(data + "x")  # a write-open of a read file: the hook's _sync
                Path("child.txt").write_text("c")
                code = 1 if reads else 0
            finally:
                os._exit(code)
        status.append(os.waitpid(pid, 0)[1])

    act = cell(tracker, body)
    assert status == [0]  # the child never read the queue
    assert act.inputs == {"in.txt": None} and act.changed == ["in.txt"]
    assert act.outputs == ["child.txt", "in.txt"]


@pytest.mark.inotify_reader
def test_lost_events_are_reported(tracker: FileTracker, root: Path) -> None:
    cell(tracker, lambda: None)
    (root / "x.txt").write_text("x")
    (root / "y.txt").write_text("y")

    def body() -> None:
        # Nobody reads the queue meanwhile: more events than it holds (max_queued_events).
        with tracker.watcher.read_lock, open("x.txt", "w") as x, open("y.txt", "w") as y:
            for _ in range(watcher.max_queued_events() // 2 + 100):
                x.write("1")
                x.flush()
                y.write("2")
                y.flush()

    tracker.begin()
    body()
    act = tracker.end()
    assert "lost" in tracker.warnings[-1]
    assert act.outputs == ["x.txt", "y.txt"]  # what Python opened for writing still counts
    assert cell(tracker, lambda: Path("after.txt").write_text("a")).outputs == ["after.txt"]


@pytest.mark.inotify_reader
def test_a_tree_of_more_folders_than_the_queue_holds_is_walked_once(
    tracker: FileTracker, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reading a folder queues two events; watching this many floods the queue unless
    # the walk reads it as it goes (an overflow used to send the tree to be walked
    # again, at every cell, and each cell's events were reported lost).
    folders = watcher.max_queued_events() // 2 + 500
    for i in range(folders):
        (root / "data" / f"g{i // 100}" / f"d{i}").mkdir(parents=True)
    walks: list[str] = []
    watch_tree = tracker.watcher.watch_tree

    def counted(rel: str, sink: watcher.FileSink | None) -> None:
        if rel == "":
            walks.append(rel)
        watch_tree(rel, sink)

    monkeypatch.setattr(tracker.watcher, "watch_tree", counted)
    deepest = f"data/g{(folders - 1) // 100}/d{folders - 1}"
    for i in range(3):
        command = ["sh", "-c", f"echo {i} > {deepest}/out{i}.txt"]  # native: seen by inotify only
        act = cell(tracker, lambda command=command: subprocess.run(command, check=True))
        assert act.outputs == [f"{deepest}/out{i}.txt"]
    assert walks == [""]
    # root, data, groups, leaves
    assert len(tracker.watcher.folders()) == 1 + 1 + (folders - 1) // 100 + 1 + folders


def test_many_cells_in_a_row(tracker: FileTracker, root: Path) -> None:
    (root / "c.txt").write_text("0")
    for i in range(20):
        act = cell(tracker, lambda i=i: Path(f"o{i}.txt").write_text(Path("c.txt").read_text()))
        assert act.inputs == {"c.txt": None}
        assert act.outputs == [f"o{i}.txt"]


def test_declared_inputs_and_outputs(tracker: FileTracker, root: Path, tmp_path: Path) -> None:
    (root / "model.bin").write_bytes(b"m")
    (root / ".hidden-but-declared").write_text("h")
    ext = tmp_path / "ext.txt"
    ext.write_text("e")

    def body() -> None:
        tracker.add_input("model.bin")  # never opened, declared anyway
        tracker.add_input(root / ".hidden-but-declared")
        tracker.add_input(ext)
        Path("report.txt").write_text("r")
        tracker.add_output(Path("report.txt").resolve())

    act = cell(tracker, body)
    assert act.inputs == {".hidden-but-declared": None, "model.bin": None}
    assert act.outputs == ["report.txt"]
    assert [e["path"] for e in act.external] == [str(ext)]


def test_hook_is_idle_outside_a_cell(tracker: FileTracker, root: Path) -> None:
    (root / "x.txt").write_text("x")
    tracker.begin()
    tracker.end()
    Path("x.txt").read_text()  # after end(): nobody listens
    assert audit_hook.listening() is None
    act = cell(tracker, lambda: None)
    assert act.inputs == {}


@pytest.mark.inotify_reader
def test_without_inotify_python_access_is_still_recorded(
    root: Path, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dotnb.capture import inotify

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(inotify, "Inotify", refuse)
    (root / "a.txt").write_text("old")
    (root / "b.txt").write_text("b")
    t = FileTracker(root, IgnoreRules(root), recorder)
    try:
        t.begin()
        Path("a.txt").read_text()
        Path("a.txt").write_text("new")
        Path("b.txt").read_text()
        Path("c.txt").write_text("c")
        act = t.end()
    finally:
        t.close()
    assert len(t.warnings) == 1 and "inotify watch limit" in t.warnings[0]
    assert act.inputs == {"a.txt": PreWrite(hash=_digest(b"old"), size=3), "b.txt": None}
    assert act.outputs == ["a.txt", "c.txt"]


def test_begin_end_overhead(tracker: FileTracker) -> None:
    """Micro-benchmark, printed (run with -s to see it): cost of an empty tracked cell."""
    cell(tracker, lambda: None)  # starts the observer
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        tracker.begin()
        act = tracker.end()
        times.append(time.perf_counter() - t0)
        assert act == FileActivity()
    median = statistics.median(times)
    p90 = sorted(times)[int(len(times) * 0.9)]
    print(f"\nbegin()+end() of an empty cell: median {median * 1e3:.3f} ms, p90 {p90 * 1e3:.3f} ms")
    assert tracker.warnings == []


@pytest.mark.inotify_reader
def test_gives_up_on_inotify_after_repeated_timeouts(
    tracker: FileTracker, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cell(tracker, lambda: None)
    monkeypatch.setattr(files_mod, "END_TIMEOUT", 0.05)
    # The reader thread hangs in a handler, holding the event queue.
    release = threading.Event()
    handle = tracker.on_file_event

    def hang(rel: str, written: bool) -> None:
        if threading.current_thread().name == "dotnb-files":
            release.wait(30)
        handle(rel, written)

    monkeypatch.setattr(tracker, "on_file_event", hang)
    tracker.begin()
    Path("stuck.txt").write_text("s")
    deadline = time.monotonic() + 10
    while not tracker.watcher.read_lock.locked() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watcher.MAX_TIMEOUTS == 2
    try:
        tracker.end()  # first timeout
        assert "did not arrive within" in tracker.warnings[-1]
        tracker.begin()  # the queue is still held: second timeout, inotify is dropped
        assert not tracker.watcher.streaming
        tracker.end()
        assert "did not arrive when this cell started" in tracker.warnings[-1]
    finally:
        release.set()
    tracker.begin()
    Path("after.txt").write_text("a")
    t0 = time.perf_counter()
    act = tracker.end()
    assert time.perf_counter() - t0 < 0.05  # no longer waits
    assert act.outputs == ["after.txt"]  # Python-level capture goes on
    assert len(tracker.warnings) == 1 and "stopped arriving" in tracker.warnings[0]


def test_open_cost_idle_and_tracked(tracker: FileTracker, root: Path) -> None:
    """Printed: open()+close() of a file under the root, between cells and in one."""
    (root / "h.txt").write_text("h")
    cell(tracker, lambda: None)
    n = 2000

    def opens() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            open("h.txt").close()
        return (time.perf_counter() - t0) / n

    idle = opens()
    tracker.begin()
    tracked = opens()
    act = tracker.end()
    print(f"\nopen()+close(): between cells {idle * 1e6:.1f} us, in a cell {tracked * 1e6:.1f} us")
    assert act.inputs == {"h.txt": None}


def test_patterns_from_the_environment_are_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOTNB_IGNORE", "*.tmp\nscratch/\n")
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored("a.tmp") and rules.is_ignored("scratch/x.csv")
    assert not rules.is_ignored("data.csv")


@pytest.mark.inotify_reader
def test_watch_dir_counts_changes_until_the_folder_leaves_its_path(
    tracker: FileTracker, tmp_path: Path
) -> None:
    """watch_dir: a folder anywhere (here outside the root) whose changes the event
    stream counts; its watch dies when the folder is moved or deleted, or the stream stops."""
    cell(tracker, lambda: None)  # the stream starts with the first cell
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    watch = tracker.watcher.watch_dir(str(outside))
    assert watch is not None and watch.live and watch.changes == 0
    assert tracker.watcher.watch_dir(str(outside)) is watch  # one per folder
    cell(tracker, lambda: None)
    assert watch.changes == 0
    (outside / "a").write_text("1")
    cell(tracker, lambda: None)  # drained by begin()/end()
    seen = watch.changes
    assert seen > 0 and watch.live
    (outside / "a").unlink()
    tracker.watcher.sync()
    assert watch.changes > seen
    (outside / "sub").mkdir()
    (outside / "sub" / "deep").write_text("not counted: not in the folder itself")
    tracker.watcher.sync()
    seen = watch.changes
    (outside / "sub" / "deep").write_text("again")
    tracker.watcher.sync()
    assert watch.changes == seen

    outside.rename(tmp_path / "moved")  # the watch followed the folder: no longer its path
    tracker.watcher.sync()
    assert not watch.live
    assert tracker.watcher.watch_dir(str(outside)) is None  # nothing there now
    outside.mkdir()
    again = tracker.watcher.watch_dir(str(outside))
    assert again is not None and again is not watch and again.live
    (tmp_path / "moved" / "b").write_text("the old folder's events count for nobody")
    tracker.watcher.sync()
    assert again.changes == 0
    for child in outside.iterdir():
        child.rmdir()
    outside.rmdir()
    tracker.watcher.sync()
    assert not again.live

    outside.mkdir()
    last = tracker.watcher.watch_dir(str(outside))
    assert last is not None and last.live
    tracker.close()
    assert not last.live
    assert tracker.watcher.watch_dir(str(outside)) is None


@pytest.mark.inotify_reader
def test_watched_keeps_one_watch_per_folder_while_it_lives(
    tracker: FileTracker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cell(tracker, lambda: None)
    folder = tmp_path / "site"
    assert tracker.watcher.watched(str(folder)) is None  # not there yet: asked again next time
    folder.mkdir()
    assert tracker.watcher.watched(str(folder), create=False) is None
    calls: list[str] = []
    watch_dir = tracker.watcher.watch_dir

    def counted(path: str) -> object:
        calls.append(path)
        return watch_dir(path)

    monkeypatch.setattr(tracker.watcher, "watch_dir", counted)
    watch = tracker.watcher.watched(str(folder))
    assert watch is not None and tracker.watcher.watched(str(folder)) is watch and len(calls) == 1
    folder.rename(tmp_path / "gone")
    tracker.watcher.sync()
    assert tracker.watcher.watched(str(folder), create=False) is None  # dead, not replaced
    folder.mkdir()
    again = tracker.watcher.watched(str(folder))
    assert again is not None and again is not watch and again.live and len(calls) == 2
    # A folder that exists but cannot be watched (e.g. the watch limit) is not tried again.
    stubborn = tmp_path / "stubborn"
    stubborn.mkdir()
    monkeypatch.setattr(tracker.watcher, "watch_dir", lambda path: calls.append(path))
    assert tracker.watcher.watched(str(stubborn)) is None and tracker.watcher.watched(str(stubborn)) is None
    assert calls.count(str(stubborn)) == 1
