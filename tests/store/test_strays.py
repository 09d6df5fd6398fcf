"""Temp files a killed restore leaves beside the user's files are dotnb's own by
name: the next restore in those folders, ``dotnb gc`` and ``dotnb fsck`` remove
them, and never anything else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dotnb.store import strays
from dotnb.store.fsck import fsck
from dotnb.store.gc import gc
from dotnb.store.repo import Store
from dotnb.store.restore import restore
from tests.manifests import new_manifest


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_dotnb_temps_of_processes_gone_are_strays() -> None:
    gone = dead_pid()
    assert strays.is_stray(f".dotnb-{gone}-3-0a1b2c3d")
    assert not strays.is_stray(f".dotnb-{os.getpid()}-3-0a1b2c3d")  # this process: still writing
    for other in [
        f".dotnb-{gone}-3-0A1B2C3D",  # not the hex create_temp writes
        f".dotnb-{gone}-3-0a1b2c3",
        f".dotnb-{gone}-x-0a1b2c3d",
        f"x.dotnb-{gone}-3-0a1b2c3d",
        f".dotnb-{gone}-3-0a1b2c3d.csv",
        ".dotnb-notes",
        "data.csv",
    ]:
        assert not strays.is_stray(other), other


def _leave_temps(folder: Path, pid: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    temps = [folder / f".dotnb-{pid}-{n}-{n:08x}" for n in range(3)]
    for t in temps:
        t.write_bytes(b"half a file" * 100)
    return temps


def test_the_next_restore_removes_temps_left_beside_its_targets(store: Store, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("v1")
    outputs = store.snapshot_files(["data/a.csv"])
    run = store.commit_run(new_manifest(outputs=outputs))["id"]
    (tmp_path / "data" / "a.csv").write_text("v2")
    gone = dead_pid()
    left = _leave_temps(tmp_path / "data", gone)
    live = tmp_path / "data" / f".dotnb-{os.getpid()}-99-0000abcd"
    live.write_bytes(b"another restore of this process is writing this")
    mine = tmp_path / "data" / ".dotnb-notes"
    mine.write_text("the user's own file")
    elsewhere = _leave_temps(tmp_path / "models", gone)
    restore(store, run)
    assert (tmp_path / "data" / "a.csv").read_text() == "v1"
    assert not any(t.exists() for t in left)
    assert live.exists() and mine.read_text() == "the user's own file"
    assert all(t.exists() for t in elsewhere)  # not a folder this restore writes to


def test_gc_and_fsck_remove_strays_anywhere_outside_hidden_folders(store: Store, tmp_path: Path) -> None:
    gone = dead_pid()
    nested = _leave_temps(tmp_path / "a" / "b c" / "d", gone)
    hidden = _leave_temps(tmp_path / ".cache", gone)
    dry = gc(store, dry_run=True)
    assert sorted(dry["stray_temp_files"]) == sorted(os.path.relpath(t, tmp_path) for t in nested)
    assert all(t.exists() for t in nested)
    done = gc(store)
    assert done["stray_temp_files"] == dry["stray_temp_files"]
    assert not any(t.exists() for t in nested) and all(t.exists() for t in hidden)
    again = _leave_temps(tmp_path / "out", gone)
    report = fsck(store)
    assert report["ok"] and len(report["stray_temp_files"]) == 3
    assert not any(t.exists() for t in again)


def test_a_dead_writers_temp_in_the_stores_own_tmp_folder_goes_at_once(store: Store, tmp_path: Path) -> None:
    """A writer killed while it wrote a run's ref leaves its temp in ``.dotnb/tmp``:
    gc and fsck remove it at once (not after gc's grace period); a live writer's
    temp there, and anything not of dotnb's exact name, stay."""
    tmp = store.dir / "tmp"
    dead = _leave_temps(tmp, dead_pid())
    live = tmp / f".dotnb-{os.getpid()}-7-0123abcd"
    other = tmp / "not-ours.part"
    for path in (live, other):
        path.write_bytes(b"x")
    report = fsck(store)
    assert report["ok"] and len(report["stray_temp_files"]) == len(dead)
    assert not any(t.exists() for t in dead) and live.exists() and other.exists()
    again = _leave_temps(tmp, dead_pid())
    assert len(gc(store)["stray_temp_files"]) == len(again)
    assert not any(t.exists() for t in again) and live.exists() and other.exists()
