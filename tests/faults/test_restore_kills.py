"""kill -9 and SIGTERM of ``dotnb restore`` at random points over many files.

A run records 150 files in nested folders (small ones, written by restore in one
batch, and large ones, staged beside their targets); then every file is changed,
a few deleted and a few added, and a ``dotnb restore`` process is sent SIGKILL
or SIGTERM after a seeded random delay drawn over the time an uninterrupted
restore takes here (measured first).  Afterwards:

- every file holds exactly its bytes from before the restore or the run's bytes
  (a file the run has and the disk had not: absent or the run's bytes);
- after SIGTERM the restore has removed its own temp files at once;
- after SIGKILL, the next ``dotnb restore``, ``dotnb fsck`` or ``dotnb gc``
  (whichever runs next, chosen at random) leaves no ``.dotnb-<pid>-<n>-<hex>``
  file anywhere under the project: none beside the user's files (checked at
  once), none in the store's own ``.dotnb/tmp`` (checked after the last trial);
- re-running the restore completes, and every file then holds the run's bytes;
- the store stays clean (``fsck``), with every checkpoint run complete.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from dotnb.store.repo import Store
from tests.faults.helpers import Faults, check_store, dotnb, start_dotnb, temps_under
from tests.manifests import new_manifest

TRIALS = 8
KIB = 1024
MIB = 1024 * KIB
FOLDERS = ("data", "data/raw", "data/raw/deep", "features", "models")


def _make_run(root: Path, rng: random.Random) -> tuple[str, dict[str, bytes], dict[str, bytes | None]]:
    """A run of 150 files; returns (run id, the run's bytes, the bytes on disk before each restore)."""
    new: dict[str, bytes] = {}
    for n in range(150):
        folder = FOLDERS[n % len(FOLDERS)]
        size = rng.randint(3 * MIB // 2, 3 * MIB) if n % 15 == 0 else rng.randint(1, 128 * KIB)
        new[f"{folder}/f{n:03d}.bin"] = rng.randbytes(size)
    for rel, data in new.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    store = Store.init(root)
    try:
        outputs = store.snapshot_files(sorted(new))
        run_id = str(store.commit_run(new_manifest(outputs=outputs))["id"])
    finally:
        store.close()
    old: dict[str, bytes | None] = {}
    for n, rel in enumerate(sorted(new)):
        # Most files changed (some to a different size), some deleted.
        old[rel] = None if n % 17 == 3 else rng.randbytes(max(1, len(new[rel]) + rng.randint(-500, 500)))
    return run_id, new, old


def _set(root: Path, files: dict[str, bytes | None]) -> None:
    for rel, data in files.items():
        path = root / rel
        if data is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(data)


def _wait_for_temps(root: Path, proc: subprocess.Popen[bytes]) -> None:
    folders = [root / f for f in FOLDERS]
    deadline = time.monotonic() + 60
    while not any(n.startswith(".dotnb-") for f in folders for n in os.listdir(f)):
        if proc.poll() is not None or time.monotonic() > deadline:
            return  # finished (or failed) before: the checks below tell
        time.sleep(0.001)


def _old_or_new(root: Path, new: dict[str, bytes], old: dict[str, bytes | None]) -> int:
    """Each file holds its old or its new bytes exactly; returns how many hold the new."""
    restored = 0
    for rel, data in new.items():
        path = root / rel
        now = path.read_bytes() if path.exists() else None
        assert now in (old[rel], data), f"{rel} holds neither its old nor its new bytes ({len(now or b'')} B)"
        restored += now == data and old[rel] != data
    return restored


def test_killed_or_terminated_restore_leaves_old_or_new_bytes_and_no_temps(
    tmp_path: Path, faults: Faults
) -> None:
    root = tmp_path / "proj"
    run_id, new, old = _make_run(root, faults.rng)
    # How long an uninterrupted restore takes here (the second: the first also stores
    # the old bytes in its checkpoint, later ones find them stored): the kills are
    # spread over it.
    _set(root, old)
    dotnb(root, "restore", run_id)
    _set(root, old)
    t0 = time.monotonic()
    dotnb(root, "restore", run_id)
    full = time.monotonic() - t0
    assert _old_or_new(root, new, old) == sum(old[r] != new[r] for r in new)
    trials = faults.trials(TRIALS)
    phases: Counter[str] = Counter()
    cleaners: Counter[str] = Counter()
    files_checked = 0
    store_leftovers: list[str] = []
    for trial in range(trials):
        _set(root, old)
        sig = signal.SIGTERM if trial % 3 == 2 else signal.SIGKILL
        proc = start_dotnb(root, "restore", run_id)
        if trial % 2:
            # Anywhere in the restore, from its start (reading the plan, checkpointing).
            delay = faults.rng.uniform(0.05, full)
            time.sleep(delay)
        else:
            # Once it writes beside the user's files: staging, the batch, the renames.
            delay = faults.rng.uniform(0.0, 0.25)
            _wait_for_temps(root, proc)
            time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        origin = "from its start" if trial % 2 else "from its first temp"
        where = (
            f"trial {trial}, {signal.Signals(sig).name} after {delay:.3f}s ({origin}; "
            f"a restore takes {full:.3f}s) [{faults.where()}]"
        )
        if proc.returncode == 0:
            phases["finished before the signal"] += 1
        else:
            # SIGTERM ends dotnb through its cleanup (exit 128 + 15), or, in the first
            # moments, before the interpreter has installed that handler, as the signal's
            # default does (-15: nothing was written yet).
            want = {-sig} if sig == signal.SIGKILL else {-sig, 128 + sig}
            assert proc.returncode in want, f"{where}: exit {proc.returncode}: {err.decode()[-2000:]}"
        restored = _old_or_new(root, new, old)
        files_checked += len(new)
        left = temps_under(root)
        if proc.returncode != 0:
            phases[
                "nothing written yet (plan, checkpoint)"
                if not left and not restored
                else "temps written, none renamed"
                if not restored
                else "some files renamed into place"
            ] += 1
        if sig == signal.SIGTERM:
            assert left == [], f"{where}: a terminated restore left its temps: {left[:5]}"
        # The next dotnb command that cleans: a restore, fsck or gc.
        cleaner = faults.rng.choice(["restore", "fsck", "gc"])
        cleaners[cleaner] += 1
        if cleaner == "restore":
            dotnb(root, "restore", run_id)
        else:
            dotnb(root, cleaner, *(["--grace", "3600"] if cleaner == "gc" else []))
        left = temps_under(root)
        beside = [p for p in left if not p.startswith(".dotnb/")]
        assert beside == [], f"{where}: temps stay beside the files after dotnb {cleaner}: {beside[:5]}"
        # In the store's own tmp folder (a ref being written by the checkpoint): checked
        # after the last trial, so that one such file does not hide what follows.
        store_leftovers += [f"{p} (after dotnb {cleaner}, {where})" for p in left if p.startswith(".dotnb/")]
        if cleaner != "restore":
            dotnb(root, "restore", run_id)
        assert _old_or_new(root, new, old) == sum(old[r] != new[r] for r in new), where
        files_checked += len(new)
        for rel, data in new.items():
            assert (root / rel).read_bytes() == data, f"{where}: {rel} not restored by the re-run"
    checked = check_store(root)
    checkpoints = [r for r in checked.runs if r["kind"] == "checkpoint"]
    assert checkpoints, "no restore recorded a checkpoint"
    # Each checkpoint is a complete run: its files can be restored from it (the last one, here).
    _set(root, old)
    dotnb(root, "restore", checkpoints[0]["id"])
    faults.report(
        "restore kills",
        trials=trials,
        full_restore_s=round(full, 3),
        files_checked=files_checked,
        runs_checked=len(checked.runs),
        objects_rehashed=checked.objects_checked,
        **{f"phase[{k}]": v for k, v in sorted(phases.items())},
        **{f"cleaned_by[{k}]": v for k, v in sorted(cleaners.items())},
    )
    assert sum(phases.values()) == trials
    assert store_leftovers == [], f"temps of killed restores stay in .dotnb/tmp: {store_leftovers}"
