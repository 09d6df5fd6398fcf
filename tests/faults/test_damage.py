"""Damage to the store: flipped bytes in objects and manifests, and a deleted or
truncated ``index.sqlite`` and WAL, with and without a live kernel."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from tests.faults.helpers import (
    Faults,
    check_store,
    dotnb,
    dotnb_json,
    kill_kernel,
    raw_state,
    start_kernel,
)
from tests.kernel_client import Kernel

pytestmark = pytest.mark.kernel


def record(k: Kernel, tag: str, rng: random.Random, files: int = 2) -> dict[str, Any]:
    """A tracked cell writing ``files`` files of seeded bytes; its run bundle."""
    sizes = [rng.randint(1, 64 * 1024) for _ in range(files)]
    res = k.ok(
        "%%track\nimport os, random\nos.makedirs('out', exist_ok=True)\n"
        f"rnd = random.Random({rng.getrandbits(32)})\n"
        f"for i, size in enumerate({sizes}):\n"
        f"    open(f'out/{tag}_{{i}}.bin', 'wb').write(rnd.randbytes(size))\n"
    )
    assert res.run is not None, res.stderr
    return res.run


def try_record(k: Kernel, tag: str) -> dict[str, Any] | None:
    """A tracked cell that may fail to be recorded: then its result stands and dotnb
    says so in exactly one warning."""
    res = k.execute(f"%%track\nopen('out/{tag}.txt', 'w').write('{tag}')\n'{tag}'\n")
    assert res.status == "ok" and res.results and res.results[0]["text/plain"] == f"'{tag}'", res.error
    warnings = [line for line in res.stderr.splitlines() if line.startswith("dotnb:")]
    if res.run is not None:
        # The one message a recorded run may bring: an earlier run renumbered because
        # another kernel took its number from the new index (numbers stay unique).
        assert all(" is now #" in w for w in warnings), res.stderr
        return res.run
    assert len(warnings) == 1 and "could not be recorded" in warnings[0], res.stderr
    return None


def wait_flushed(root: Path, run_ids: list[str], timeout: float = 30, strict: bool = True) -> None:
    """Wait until the kernels wrote the manifest and ref of ``run_ids`` (and every
    record); with ``strict``, fail if they do not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        state = raw_state(root)
        unwritten = set(run_ids) - state.refs
        if not unwritten and not state.pending:
            return
        if time.monotonic() > deadline:
            assert not strict, (
                f"runs never written: {sorted(unwritten)}, records left: {sorted(state.pending)}"
            )
            return
        time.sleep(0.05)


def flip(path: Path, rng: random.Random) -> tuple[int, int]:
    data = bytearray(path.read_bytes())
    offset, bit = rng.randrange(len(data)), rng.randrange(8)
    data[offset] ^= 1 << bit
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    return offset, bit


def object_path(root: Path, digest: str) -> Path:
    return root / ".dotnb" / "objects" / digest[:2] / digest[2:]


# -- flipped bytes ----------------------------------------------------------------------


def test_flipped_bytes_in_objects_and_manifests_are_reported_and_nothing_else_breaks(
    tmp_path: Path, faults: Faults
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    rng = faults.rng
    k = start_kernel(root)
    try:
        runs = [record(k, f"r{n}", rng) for n in range(4)]
        wait_flushed(root, [r["id"] for r in runs])
        # Damage: one output of run 1, the manifest of run 2.
        hit = dotnb_json(root, "show", runs[1]["id"])
        victim_file = rng.choice(hit["outputs"])
        data_digest = victim_file["hash"]
        manifest_digest = raw_state(root).runs[runs[2]["id"]][2]
        where = {
            "data": flip(object_path(root, data_digest), rng),
            "manifest": flip(object_path(root, manifest_digest), rng),
        }
        context = f"flips (offset, bit) {where} [{faults.where()}]"

        proc = dotnb(root, "fsck", "--json", ok=False)
        report = dotnb_json_text(proc.stdout)
        assert proc.returncode == 1 and not report["ok"], context
        corrupted = {c["object"]: set(c["runs"]) for c in report["corrupted"]}
        assert set(corrupted) == {data_digest, manifest_digest}, context
        assert runs[1]["id"] in corrupted[data_digest], context
        assert [d["run"] for d in report["damaged_runs"]] == [runs[2]["id"]], context
        assert report["missing"] == [] and report["duplicate_numbers"] == [], context

        # Every run is still listed; undamaged runs show, cat and restore as before.
        assert {r["id"] for r in dotnb_json(root, "log")} == {r["id"] for r in runs}, context
        for run in (runs[0], runs[3]):
            assert dotnb_json(root, "show", run["id"])["id"] == run["id"], context
        # The damaged ones fail with a message, never with wrong bytes or a traceback.
        shown = dotnb(root, "show", runs[2]["id"], ok=False)
        assert shown.returncode != 0 and "Traceback" not in shown.stderr and shown.stderr.strip(), context
        cat = dotnb(root, "cat", runs[1]["id"], victim_file["path"], ok=False)
        assert cat.returncode != 0 and "Traceback" not in cat.stderr, context
        assert cat.stdout == "", f"dotnb cat printed bytes of a corrupted object: {context}"
        before = {p: p.read_bytes() for p in (root / "out").iterdir()}
        (root / victim_file["path"]).write_bytes(b"changed since")
        before[root / victim_file["path"]] = b"changed since"
        restored = dotnb(root, "restore", runs[1]["id"], ok=False)
        assert restored.returncode != 0 and "corrupt" in restored.stderr, context
        assert {p: p.read_bytes() for p in (root / "out").iterdir()} == before, (
            "a failed restore changed files"
        )
        # The live kernel keeps recording.
        after = record(k, "after", rng)
        wait_flushed(root, [after["id"]])
        assert dotnb_json(root, "show", after["id"])["number"] == 5
    finally:
        k.shutdown()
    faults.report("flipped bytes", runs=5, flipped=len(where))


def dotnb_json_text(text: str) -> dict[str, Any]:
    import json

    loaded: dict[str, Any] = json.loads(text)
    return loaded


# -- the index, without a live kernel ---------------------------------------------------

INDEX_DAMAGE = ("delete index and WAL", "delete the WAL", "truncate the index", "truncate the WAL")


@pytest.mark.parametrize("damage", INDEX_DAMAGE)
def test_a_deleted_or_truncated_index_without_a_live_kernel(
    tmp_path: Path, faults: Faults, damage: str
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    rng = faults.rng
    k = start_kernel(root)
    runs = [record(k, f"r{n}", rng) for n in range(4)]
    wait_flushed(root, [r["id"] for r in runs])
    # Killed, so the WAL still holds the newest transactions (a clean exit checkpoints it).
    kill_kernel(k)
    index = root / ".dotnb" / "index.sqlite"
    wal = Path(f"{index}-wal")
    assert wal.exists() and wal.stat().st_size > 0, "the WAL is empty: nothing to damage"
    targets = {
        "delete index and WAL": [index, wal, Path(f"{index}-shm")],
        "delete the WAL": [wal],
    }.get(damage, [])
    for path in targets:
        path.unlink(missing_ok=True)
    cut = None
    if damage.startswith("truncate"):
        path = index if damage.endswith("index") else wal
        cut = rng.randrange(path.stat().st_size)
        os.truncate(path, cut)
    context = f"{damage} (cut at {cut}) [{faults.where()}]"
    listed = dotnb_json(root, "log")
    assert {r["id"]: r["number"] for r in listed} == {r["id"]: r["number"] for r in runs}, context
    check_store(root, must_list=[r["id"] for r in runs])
    # The next kernel numbers after them.
    k = start_kernel(root)
    try:
        after = record(k, "after", rng)
    finally:
        k.shutdown()
    assert after["number"] == 5, context
    check_store(root, must_list=[r["id"] for r in [*runs, after]])


# -- the index, under a live kernel -----------------------------------------------------


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_the_index_deleted_or_truncated_under_live_kernels(
    tmp_path: Path, faults: Faults, damage: str
) -> None:
    """Two kernels on one notebook; the index is deleted (or truncated) under them,
    sometimes right after a run's write-ahead record, before its flush; both keep
    recording: every run whose run line was shown is listed, numbers stay unique."""
    root = tmp_path / "proj"
    root.mkdir()
    rng = faults.rng
    index = root / ".dotnb" / "index.sqlite"
    k1 = start_kernel(root, env={"DOTNB_DEBUG": ""})
    k2 = start_kernel(root, env={"DOTNB_DEBUG": ""})
    seen: list[dict[str, Any]] = []
    rounds = faults.trials(3)
    failed = 0
    try:
        for n in range(rounds):
            seen.append(record(k1, f"a{n}", rng))
            seen.append(record(k2, f"b{n}", rng))
            if rng.random() < 0.5:  # else: right after the run line, before its flush
                wait_flushed(root, [r["id"] for r in seen], timeout=3, strict=False)
            if damage == "delete":
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{index}{suffix}").unlink(missing_ok=True)
            else:
                os.truncate(index, rng.randrange(max(1, index.stat().st_size)))
            # Recording goes on (a truncated file may fail one kernel's next run: one
            # warning, and the next run is recorded).
            for k, tag in ((k1, f"c{n}"), (k2, f"d{n}")):
                for attempt in range(3):
                    run = try_record(k, f"{tag}_{attempt}")
                    if run is not None:
                        seen.append(run)
                        break
                    failed += 1
                else:
                    raise AssertionError(
                        f"kernel {tag[0]} records no run after the damage [{faults.where()}]"
                    )
        wait_flushed(root, [r["id"] for r in seen], timeout=5, strict=False)  # checked below
    finally:
        k1.shutdown()
        k2.shutdown()
    context = f"{damage}, {rounds} rounds [{faults.where()}]"
    listed = {r["id"]: r["number"] for r in dotnb_json(root, "log")}
    lost = [r["id"] for r in seen if r["id"] not in listed]
    assert not lost, f"runs whose run line was shown are gone: {lost} ({context})"
    numbers = sorted(listed.values())
    assert len(numbers) == len(set(numbers)), f"#N given twice: {numbers} ({context})"
    checked = check_store(root, must_list=[r["id"] for r in seen])
    faults.report(
        f"index {damage}d under live kernels", rounds=rounds, runs=len(checked.runs), not_recorded=failed
    )
