"""``dotnb gc`` killed at random points, and ``dotnb gc`` running while kernels record."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from dotnb.store.hashing import hash_bytes
from dotnb.store.repo import Store
from tests.faults.helpers import (
    Faults,
    check_store,
    close_thread_loop,
    dotnb,
    dotnb_json,
    object_files,
    raw_state,
    start_dotnb,
    start_kernel,
)
from tests.kernel_client import Kernel
from tests.manifests import new_manifest

OLD = 2 * 3600  # seconds: past gc's default grace of an hour


def age(paths: list[Path]) -> None:
    then = time.time() - OLD
    for p in paths:
        os.utime(p, (then, then))


def unreferenced(store: Store, rng: random.Random, count: int) -> list[str]:
    """``count`` objects no run uses, older than gc's grace."""
    digests = [
        store.objects.put_bytes(rng.randbytes(rng.randint(1, 2048)), sync=False)[0] for _ in range(count)
    ]
    store.objects.flush()
    age([store.objects.path_for(d) for d in digests])
    return digests


def test_a_killed_gc_loses_no_referenced_object_and_the_next_gc_completes(
    tmp_path: Path, faults: Faults
) -> None:
    root = tmp_path / "proj"
    rng = faults.rng
    store = Store.init(root)
    try:
        for n in range(6):
            folder = root / f"out{n}"
            folder.mkdir()
            for i in range(20):
                (folder / f"f{i}.bin").write_bytes(rng.randbytes(rng.randint(1, 8192)))
            outputs = store.snapshot_files(sorted(f"out{n}/{p.name}" for p in folder.iterdir()))
            store.commit_run(new_manifest(outputs=outputs))
        referenced = set(raw_state(root).objects)
        age(object_files(root))  # nothing is unreferenced yet
        # How long a whole gc of 500 objects takes here: the kills are spread over it.
        unreferenced(store, rng, 500)
        t0 = time.monotonic()
        dotnb(root, "gc")
        full = time.monotonic() - t0
        assert raw_state(root).objects == referenced
        phases: Counter[str] = Counter()
        trials = faults.trials(4)
        for trial in range(trials):
            doomed = set(unreferenced(store, rng, 500))
            delay = rng.uniform(0.05, full)
            proc = start_dotnb(root, "gc")
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            where = f"trial {trial}: SIGKILL after {delay:.3f}s of {full:.3f}s [{faults.where()}]"
            state = raw_state(root)
            # No referenced object is ever touched, even before the next command.
            assert referenced <= state.objects, f"{where}: referenced objects gone"
            set_aside = [n for n in state.store_temps if n.startswith("gc-")]
            gone = len(doomed - state.objects)
            phases[
                "finished"
                if proc.returncode == 0
                else "before deleting"
                if not gone and not set_aside
                else "an object set aside"
                if set_aside
                else "deleting"
            ] += 1
            if rng.random() < 0.5:
                report = json.loads(dotnb(root, "fsck", "--json", ok=False).stdout)
                assert report["ok"], f"{where}: {report}"
                assert sorted(report["returned_from_interrupted_gc"]) == sorted(
                    n.removeprefix("gc-") for n in set_aside
                ), where
            result = dotnb_json(root, "gc")
            assert set(result["removed"]) <= doomed, where
            state = raw_state(root)
            assert state.objects == referenced, f"{where}: the next gc left {len(state.objects - referenced)}"
            assert not [n for n in state.store_temps if n.startswith("gc-")], where
    finally:
        store.close()
    checked = check_store(root)
    faults.report(
        "killed gc",
        trials=trials,
        full_gc_s=round(full, 3),
        runs_checked=len(checked.runs),
        **{f"phase[{k}]": v for k, v in sorted(phases.items())},
    )


@pytest.mark.kernel
@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_gc_while_kernels_record_never_deletes_an_object_a_run_uses(
    tmp_path: Path, faults: Faults, packed: bool
) -> None:
    """Old unreferenced objects whose bytes the kernels' cells write again: gc (run in
    a loop) and the runs race for them.  No run may end up pointing at a deleted object.

    ``packed``: the old objects are in packs, which gc writes anew without them while
    the kernels reuse some (their cells also write new packs of their own)."""
    root = tmp_path / "proj"
    rng = faults.rng
    contents = 400
    base = rng.getrandbits(32)
    store = Store.init(root)
    try:
        # Content i is random.Random(base + i).randbytes(2000): the kernels make the same bytes.
        blobs = [random.Random(base + i).randbytes(2000) for i in range(contents)]
        if packed:  # four packs of 100
            for start in range(0, contents, 100):
                store.objects.packs.write((hash_bytes(b), b) for b in blobs[start : start + 100])
        else:
            for blob in blobs:
                store.objects.put_bytes(blob)
    finally:
        store.close()
    age(object_files(root))
    kernels: list[Kernel] = []
    seen: list[str] = []
    problems: list[str] = []
    gcs: Counter[str] = Counter()
    stop = threading.Event()
    cells = faults.trials(12)
    rngs = [random.Random(rng.getrandbits(64)) for _ in range(3)]
    try:
        kernels = [start_kernel(root, f"nb{n}.ipynb", env={"DOTNB_DEBUG": ""}) for n in range(3)]

        def record(n: int) -> None:
            try:
                c = 0
                # At least `cells` cells, and on until gc has run twice meanwhile (bounded).
                while c < cells or (gcs["runs"] < 2 and c < 10 * cells):
                    c += 1
                    picks = rngs[n].sample(range(contents), 25)
                    res = kernels[n].execute(
                        "%%track\nimport os, random\nos.makedirs('out', exist_ok=True)\n"
                        f"for j, i in enumerate({picks}):\n"
                        f"    data = random.Random({base} + i).randbytes(2000)\n"
                        f"    open(f'out/k{n}_{c}_{{j}}.bin', 'wb').write(data)\n"
                    )
                    if res.status != "ok" or res.run is None or res.stderr:
                        problems.append(f"kernel {n} cell {c}: {res.error} {res.stderr!r}")
                    else:
                        seen.append(res.run["id"])
            except BaseException as exc:
                problems.append(f"kernel {n}: {exc!r}")
            finally:
                close_thread_loop()

        def collect() -> None:
            while not stop.is_set():
                proc = dotnb(root, "gc", "--json", ok=False)
                if proc.returncode != 0:
                    problems.append(f"dotnb gc exited {proc.returncode}: {proc.stderr[-500:]}")
                    continue
                gcs["runs"] += 1
                gcs["removed"] += len(json.loads(proc.stdout)["removed"])

        writers = [threading.Thread(target=record, args=(n,)) for n in range(3)]
        collector = threading.Thread(target=collect)
        collector.start()
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        collector.join()
    finally:
        for k in kernels:
            k.shutdown()
    assert not problems, f"{problems[:5]} [{faults.where()}]"
    dotnb(root, "gc")  # once more, with every kernel gone
    checked = check_store(root, must_list=seen)
    faults.report(
        "gc while kernels record",
        runs=len(seen),
        gc_runs=gcs["runs"],
        objects_removed=gcs["removed"],
        objects_rehashed=checked.objects_checked,
    )
    assert gcs["runs"] >= 2, f"gc ran {gcs['runs']} times while the kernels recorded: the race was not tried"
