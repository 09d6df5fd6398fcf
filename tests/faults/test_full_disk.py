"""A full disk: the project (and so its store) on a small tmpfs mounted for the test.

Mounting needs root (CAP_SYS_ADMIN), as CI has: without it the test fails and
says so; it never skips.

- A tracked cell whose own write fits but whose recording does not (the store's
  copy of the file it wrote): the cell's result stands, or its own exception is
  what the user sees; exactly one dotnb warning; no run, no partial object (every
  file in ``objects/`` matches its hash, no temp left in ``.dotnb/tmp``).
- The disk fills right after a run's write-ahead record was committed, before
  the kernel's background write of its manifest and ref: the run is listed and
  shown meanwhile, the kernel warns once, and the run is written completely once
  space is back.
- Once space is back, recording resumes, and the store is clean.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.hashing import hash_file
from tests.faults.helpers import Faults, check_store, dotnb, dotnb_json, raw_state, start_kernel
from tests.kernel_client import Kernel

pytestmark = pytest.mark.kernel

DISK = 48 * 1024 * 1024
KIB = 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0755", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            "the full-disk test mounts a small tmpfs and could not "
            f"(`mount -t tmpfs` exited {proc.returncode}: {proc.stderr.strip()}); "
            "it needs root or CAP_SYS_ADMIN, as CI has (uid here: "
            f"{os.getuid()})"
        )
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(root: Path, leave: int) -> Path:
    """Fill the file system of ``root`` until ``leave`` bytes are free (a hidden file,
    which capture ignores)."""
    filler = root / ".filler"
    with open(filler, "ab") as f:
        chunk = b"\0" * (256 * KIB)
        while True:
            st = os.statvfs(root)
            free = st.f_bavail * st.f_frsize
            if free <= leave:
                break
            try:
                f.write(chunk[: max(4096, min(len(chunk), free - leave))])
                f.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    return filler


def free_bytes(root: Path) -> int:
    st = os.statvfs(root)
    return st.f_bavail * st.f_frsize


def dotnb_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("dotnb:")]


def no_partial_object(root: Path) -> None:
    objects = root / ".dotnb" / "objects"
    for fan in os.listdir(objects):
        for name in os.listdir(objects / fan):
            assert hash_file(objects / fan / name)[0] == fan + name, f"partial object {fan}/{name}"
    left = os.listdir(root / ".dotnb" / "tmp")
    assert left == [], f"temp files left in .dotnb/tmp on a full disk: {left}"


def wait_flushed(root: Path, run_id: str) -> None:
    deadline = time.monotonic() + 30
    while run_id not in raw_state(root).refs or raw_state(root).pending:
        assert time.monotonic() < deadline, f"run {run_id} was not written by the kernel's background flush"
        time.sleep(0.05)


def collect_stderr(k: Kernel, seconds: float) -> str:
    """Everything the kernel writes to stderr for ``seconds`` (a background thread's
    warnings carry no cell of their own)."""
    text = ""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = k.kc.get_iopub_msg(timeout=left)
        except queue.Empty:
            break
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stderr":
            text += msg["content"]["text"]
    return text


def _fill_behind_a_run(k: Kernel, root: Path, attempt: int) -> tuple[dict[str, Any], bool]:
    # Most of the disk is filled first, so that filling the rest after the run line
    # takes a moment (the background write starts 0.1-0.2 s after the cell).
    prefill = fill(root, leave=2 * 1024 * 1024)
    prefill = prefill.rename(root / ".prefill")
    msg = k.kc.execute(f"%%track\nopen('out/late{attempt}.txt', 'w').write('late')\n", store_history=True)
    late: dict[str, Any] | None = None
    deadline = time.monotonic() + 60
    while late is None:
        m = k.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if m["parent_header"].get("msg_id") == msg and m["msg_type"] == "display_data":
            late = m["content"]["data"].get("application/vnd.dotnb.run+json")
    filler = fill(root, leave=0)
    caught = raw_state(root)
    in_flight = late["id"] in caught.pending and late["id"] not in caught.refs
    stderr = collect_stderr(k, 2.5)
    if in_flight:
        # Listed and shown from its record while the disk is full.
        assert late["id"] in {r["id"] for r in dotnb_json(root, "log")}
        assert dotnb_json(root, "show", late["id"])["id"] == late["id"]
        warned = dotnb_lines(stderr)
        assert len(warned) == 1 and "could not write the store" in warned[0], stderr
        assert late["id"] not in raw_state(root).refs
    filler.unlink()
    prefill.unlink()
    stderr = collect_stderr(k, 2.5)
    assert dotnb_lines(stderr) == [], stderr
    done = raw_state(root)
    assert late["id"] in done.refs and not done.pending, "the run was not written once space was back"
    return late, in_flight


def test_a_full_disk_keeps_the_cells_result_and_leaves_no_partial_run(
    small_disk: Path, faults: Faults
) -> None:
    root = small_disk / "proj"
    root.mkdir()
    k = start_kernel(root, env={"DOTNB_DEBUG": ""})
    figures: dict[str, Any] = {}
    try:
        first = k.ok("%%track\nopen('first.txt', 'w').write('before the disk filled')\n")
        assert first.run is not None
        wait_flushed(root, first.run["id"])
        before = raw_state(root)

        # 1. The cell's own write fits; the store's copy of it does not.
        size = 768 * KIB
        filler = fill(root, leave=size + 256 * KIB)
        res = k.execute(
            "%%track\nimport os\nos.makedirs('out', exist_ok=True)\n"
            f"open('out/result.bin', 'wb').write(bytes({size}))\n6 * 7\n"
        )
        assert res.status == "ok", res.error
        assert res.results and res.results[0]["text/plain"] == "42", "the cell lost its result"
        warnings = dotnb_lines(res.stderr)
        assert len(warnings) == 1 and "could not be recorded" in warnings[0], res.stderr
        assert res.run is None
        assert (root / "out" / "result.bin").stat().st_size == size
        no_partial_object(root)
        figures["result_kept"] = True

        # 2. The same with a cell that raises: the user sees their own exception.
        res = k.execute(
            "%%track\nopen('out/result2.bin', 'wb').write(bytes(range(256)) * 1024)\n"
            "raise ValueError('the cell fails on its own')\n"
        )
        assert res.status == "error" and res.error is not None
        assert res.error["ename"] == "ValueError" and res.error["evalue"] == "the cell fails on its own"
        assert len(dotnb_lines(res.stderr)) == 1, res.stderr
        no_partial_object(root)
        after = raw_state(root)
        assert set(after.runs) == set(before.runs), "a run was recorded half"
        assert not after.pending and after.refs == before.refs, "a run was recorded half"

        # 3. Space is back: recording resumes.
        filler.unlink()
        res = k.ok("%%track\nopen('out/result3.bin', 'wb').write(bytes(1000))\n1\n")
        assert res.run is not None and dotnb_lines(res.stderr) == [], res.stderr
        resumed = res.run["id"]
        wait_flushed(root, resumed)

        # 4. The disk fills after a run's write-ahead record, before the background
        # write of its manifest and ref (which waits for 0.1 s of idleness); tried
        # again if this process was too slow to fill it in time.
        late: dict[str, Any] | None = None
        in_flight = False
        for attempt in range(3):
            late, in_flight = _fill_behind_a_run(k, root, attempt)
            if in_flight:
                break
        assert late is not None
        figures["flush_caught_by_full_disk"] = in_flight
    finally:
        k.shutdown()
    checked = check_store(root, must_list=[first.run["id"], resumed, late["id"]], show=[late["id"]])
    with contextlib.suppress(FileNotFoundError):
        os.unlink(root / ".filler")
    faults.report("full disk", runs_checked=len(checked.runs), free_after=free_bytes(root), **figures)
    assert in_flight, "the disk did not fill before the run's background write: the case was not tested"
    dotnb(root, "gc", "--dry-run")
