"""Files known unchanged through the event stream, and every case that falls back
to looking at them: a change in the folder by any process, a write through a
memory map, lost events, a folder replaced, no stream.  Real inotify, real files,
other processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dotnb.capture import watcher
from dotnb.capture.files import FileTracker
from dotnb.capture.ignore import IgnoreRules
from dotnb.capture.known_files import KnownFiles
from dotnb.store.hashing import hash_bytes


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "proj"
    for folder in ("data", "other"):
        (project / folder).mkdir(parents=True)
        for i in range(3):
            (project / folder / f"{i}.csv").write_text(f"{folder} {i}\n")
    monkeypatch.chdir(project)
    return project


@pytest.fixture
def tracker(root: Path) -> Iterator[FileTracker]:
    t = FileTracker(root, IgnoreRules(root), lambda path: None)
    t.begin()  # the event stream starts with the first cell
    t.end()
    yield t
    t.close()


RELS = [f"{folder}/{i}.csv" for folder in ("data", "other") for i in range(3)]


def entries(root: Path, rels: list[str]) -> list[dict[str, Any]]:
    return [
        {"path": rel, "hash": hash_bytes((root / rel).read_bytes()), "size": (root / rel).stat().st_size}
        for rel in rels
    ]


def recorded(tracker: FileTracker, root: Path, rels: list[str] = RELS) -> KnownFiles:
    """What a kernel does around a run: take the tokens, look at the files, remember them."""
    known = KnownFiles(os.path.realpath(root) + "/", tracker.watcher.watched)
    tokens = known.before_looking(rels)
    known.remember(entries(root, rels), tokens)
    return known


def elsewhere(code: str) -> None:
    """Run ``code`` in another process (its file events are not the kernel's)."""
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.inotify_reader
def test_files_of_unchanged_folders_are_known_without_looking(tracker: FileTracker, root: Path) -> None:
    known = recorded(tracker, root)
    tracker.watcher.sync()
    found, look = known.split([*RELS, "data/new.csv"])
    assert look == ["data/new.csv"]  # never recorded
    assert found == entries(root, RELS)
    # Reading the files (a cell re-run) is no change.
    for rel in RELS:
        (root / rel).read_bytes()
    tracker.watcher.sync()
    assert known.split(RELS)[1] == []


@pytest.mark.inotify_reader
def test_a_change_by_another_process_sends_its_whole_folder_to_be_looked_at(
    tracker: FileTracker, root: Path
) -> None:
    known = recorded(tracker, root)
    elsewhere("open('data/1.csv', 'a').write('more\\n')")
    tracker.watcher.sync()
    found, look = known.split(RELS)
    assert look == ["data/0.csv", "data/1.csv", "data/2.csv"]
    assert [e["path"] for e in found] == ["other/0.csv", "other/1.csv", "other/2.csv"]
    # Looked at again and remembered: known from then on.
    tokens = known.before_looking(look)
    known.remember(entries(root, look), tokens)
    assert known.split(RELS)[1] == []
    assert known.split(["data/1.csv"])[0][0]["hash"] == hash_bytes(b"data 1\nmore\n")


@pytest.mark.parametrize(
    "change",
    [
        "import os; os.unlink('data/2.csv')",
        "import os; os.rename('data/2.csv', 'data/9.csv')",
        "open('data/new.csv', 'w').write('x')",
        "import os; os.truncate('data/0.csv', 1)",
        # A write through a memory map raises no modify event; closing the file it
        # was opened from for writing is what shows.
        "import mmap\nwith open('data/0.csv', 'r+b') as f:\n"
        "    m = mmap.mmap(f.fileno(), 0); m[0:4] = b'DATA'; m.flush(); m.close()",
    ],
)
def test_every_kind_of_change_is_seen(tracker: FileTracker, root: Path, change: str) -> None:
    known = recorded(tracker, root)
    elsewhere(change)
    tracker.watcher.sync()
    assert known.split(["data/0.csv"])[1] == ["data/0.csv"]


def test_a_change_while_the_files_are_looked_at_shows_next_time(tracker: FileTracker, root: Path) -> None:
    known = KnownFiles(os.path.realpath(root) + "/", tracker.watcher.watched)
    tokens = known.before_looking(RELS)
    looked = entries(root, RELS)
    elsewhere("open('data/0.csv', 'w').write('changed meanwhile')")
    tracker.watcher.sync()
    known.remember(looked, tokens)  # the hash taken before the change
    assert "data/0.csv" in known.split(RELS)[1]


@pytest.mark.inotify_reader
def test_a_replaced_folder_is_looked_at_again(tracker: FileTracker, root: Path) -> None:
    known = recorded(tracker, root)
    (root / "data").rename(root / "data-old")
    (root / "data").mkdir()
    for i in range(3):  # the same names and bytes: a new folder all the same
        (root / "data" / f"{i}.csv").write_text(f"data {i}\n")
    tracker.watcher.sync()
    assert known.split(RELS)[1] == ["data/0.csv", "data/1.csv", "data/2.csv"]


def test_lost_events_send_every_folder_to_be_looked_at(tracker: FileTracker, root: Path) -> None:
    known = recorded(tracker, root)
    # Nobody reads the queue meanwhile: more events than it holds, in a third folder.
    (root / "busy").mkdir()
    tracker.watcher.sync()
    # (Two files in turn: the kernel merges an event with the one queued before it
    # when they are the same.)
    with tracker.watcher.read_lock, open(root / "busy" / "x", "w") as x, open(root / "busy" / "y", "w") as y:
        for _ in range(watcher.max_queued_events() // 2 + 100):
            x.write("1")
            x.flush()
            y.write("2")
            y.flush()
    tracker.watcher.sync()
    assert known.split(RELS)[1] == RELS


def test_without_the_event_stream_nothing_is_known(tracker: FileTracker, root: Path) -> None:
    known = recorded(tracker, root)
    tracker.close()
    assert known.split(RELS) == ([], RELS)
    fresh = KnownFiles(os.path.realpath(root) + "/", tracker.watcher.watched)
    tokens = fresh.before_looking(RELS)
    assert tokens == {}
    fresh.remember(entries(root, RELS), tokens)
    assert fresh.split(RELS) == ([], RELS)


@pytest.mark.inotify_reader
def test_only_plain_entries_are_remembered(tracker: FileTracker, root: Path) -> None:
    known = KnownFiles(os.path.realpath(root) + "/", tracker.watcher.watched)
    tokens = known.before_looking(RELS)
    flagged = entries(root, RELS)
    flagged[0]["pre_write"] = True
    flagged[1]["declared"] = True
    flagged[2] = {"path": flagged[2]["path"], "hash": None, "size": None, "missing": True}
    known.remember(flagged, tokens)
    assert known.split(RELS)[1] == ["data/0.csv", "data/1.csv", "data/2.csv"]
