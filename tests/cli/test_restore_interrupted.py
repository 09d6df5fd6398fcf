"""``dotnb restore`` killed while it writes: the user's files hold their old or
their new bytes, never a mix, and no temp file stays behind once the next
restore (or ``dotnb gc``) has run.  Real processes, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dotnb.store import strays
from dotnb.store.repo import Store
from tests.manifests import new_manifest

BIG = 192 * 1024 * 1024  # large enough that the restore is caught while it writes


def _project(tmp_path: Path) -> tuple[Path, str, dict[str, bytes]]:
    root = tmp_path / "proj"
    store = Store.init(root)
    try:
        block = bytes(range(256)) * 4096
        files = {"data/model.bin": block * (BIG // len(block)), "data/small.csv": b"a,b\n1,2\n"}
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        outputs = store.snapshot_files(sorted(files))
        run = str(store.commit_run(new_manifest(outputs=outputs))["id"])
    finally:
        store.close()
    for rel in files:
        (root / rel).write_bytes(b"changed since the run")
    return root, run, files


def _restore(root: Path, run: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dotnb", "--root", str(root), "restore", run, "--yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _temps(root: Path) -> list[str]:
    return [name for name in os.listdir(root / "data") if name.startswith(".dotnb-")]


def _interrupt_while_writing(proc: subprocess.Popen[bytes], root: Path, sig: int) -> None:
    deadline = time.monotonic() + 60
    while not _temps(root):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the restore ended before it was caught writing: {proc.returncode}")
        time.sleep(0.0005)
    proc.send_signal(sig)
    proc.wait(timeout=60)


def _each_file_old_or_new(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert (root / rel).read_bytes() in (data, b"changed since the run"), rel


@pytest.mark.timeout(180)
def test_a_killed_restore_leaves_temps_that_the_next_restore_removes(tmp_path: Path) -> None:
    root, run, files = _project(tmp_path)
    proc = _restore(root, run)
    _interrupt_while_writing(proc, root, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    _each_file_old_or_new(root, files)
    left = _temps(root)
    assert left and all(strays.is_stray(name) for name in left)
    again = subprocess.run(
        [sys.executable, "-m", "dotnb", "--root", str(root), "restore", run, "--yes"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert _temps(root) == []
    assert all((root / rel).read_bytes() == data for rel, data in files.items())


@pytest.mark.timeout(180)
def test_a_terminated_restore_removes_its_own_temps(tmp_path: Path) -> None:
    root, run, files = _project(tmp_path)
    proc = _restore(root, run)
    _interrupt_while_writing(proc, root, signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM
    _each_file_old_or_new(root, files)
    assert _temps(root) == []
