"""Several kernels and CLI readers on one store at once.

Seven kernels (four on one notebook, three on another) record tracked cells back
to back, each writing and reading files, while two threads run ``dotnb log``,
``dotnb show latest`` and ``dotnb fsck`` in a loop.  Every run whose run line a
kernel sent is listed, ids are unique, each notebook's ``#N`` are unique, no
process says "database is locked" (or anything else on stderr), and the store
is clean afterwards.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.faults.helpers import Faults, check_store, close_thread_loop, dotnb, start_kernel
from tests.kernel_client import Kernel

pytestmark = pytest.mark.kernel

KERNELS = (("a.ipynb", 4), ("b.ipynb", 3))
CELLS = 10  # tracked cells per kernel, times the soak factor


def _cell(rng: random.Random, kernel: int, n: int) -> str:
    return (
        "%%track --metrics acc\n"
        f"import os, random\nlr = {rng.random():.4f}\n"
        "os.makedirs('out', exist_ok=True)\n"
        f"rnd = random.Random({rng.getrandbits(32)})\n"
        f"open('out/k{kernel}_{n}.bin', 'wb').write(rnd.randbytes({rng.randint(1, 256 * 1024)}))\n"
        f"open('out/shared.txt', 'w').write('{kernel}-{n}')\n"
        "acc = len(open('data/in.csv').read())\n"
    )


def test_seven_kernels_and_cli_readers_on_one_store(tmp_path: Path, faults: Faults) -> None:
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "data" / "in.csv").write_text("a,b\n1,2\n")
    dotnb(root, "init")
    cells = faults.trials(CELLS)
    kernels: list[tuple[str, Kernel]] = []
    try:
        for notebook, count in KERNELS:
            kernels += [
                (notebook, start_kernel(root, notebook, env={"DOTNB_DEBUG": ""})) for _ in range(count)
            ]
        seen: list[tuple[str, str, int]] = []  # (notebook, id, number)
        problems: list[str] = []
        stop = threading.Event()
        reads = Counter[str]()
        rngs = [random.Random(faults.rng.getrandbits(64)) for _ in kernels]

        def record(n: int) -> None:
            notebook, k = kernels[n]
            try:
                for c in range(cells):
                    res = k.execute(_cell(rngs[n], n, c), timeout=120)
                    if res.status != "ok" or res.run is None or res.stderr:
                        problems.append(f"kernel {n} cell {c}: {res.status} {res.error} {res.stderr!r}")
                        continue
                    seen.append((notebook, res.run["id"], res.run["number"]))
            except BaseException as exc:
                problems.append(f"kernel {n}: {exc!r}")
            finally:
                close_thread_loop()

        def read(n: int) -> None:
            commands = [("log", "--json"), ("show", "latest", "--notebook", "a.ipynb", "--json"), ("fsck",)]
            while not stop.is_set():
                args = commands[reads[f"reader{n}"] % len(commands)]
                reads[f"reader{n}"] += 1
                proc = dotnb(root, *args, ok=False)
                # fsck may see a run in flight from a live kernel; it must not fail for it.
                if proc.returncode != 0 and not (args[0] == "show" and "not found" in proc.stderr):
                    problems.append(
                        f"dotnb {' '.join(args)} exited {proc.returncode}: "
                        f"{proc.stdout[-800:]} {proc.stderr[-500:]}"
                    )
                if "locked" in proc.stderr or "Traceback" in proc.stderr:
                    problems.append(f"dotnb {' '.join(args)}: {proc.stderr[-500:]}")

        t0 = time.monotonic()
        writers = [threading.Thread(target=record, args=(n,)) for n in range(len(kernels))]
        readers = [threading.Thread(target=read, args=(n,)) for n in range(2)]
        for t in [*writers, *readers]:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        for t in readers:
            t.join()
        elapsed = time.monotonic() - t0
    finally:
        for _, k in kernels:
            k.shutdown()
    # The store first (once every kernel is gone), then what the readers met meanwhile.
    checked = check_store(root, must_list=[run_id for _, run_id, _ in seen])
    assert not problems, f"{problems[:5]} [{faults.where()}]"
    assert len(seen) == len(kernels) * cells
    assert len(checked.runs) == len(seen)
    for notebook, count in KERNELS:
        numbers = sorted(number for nb, _, number in seen if nb == notebook)
        assert numbers == list(range(1, count * cells + 1)), f"{notebook}: numbers {numbers}"
    faults.report(
        "concurrency",
        kernels=len(kernels),
        runs=len(seen),
        cli_reads=sum(reads.values()),
        seconds=round(elapsed, 1),
        objects_rehashed=checked.objects_checked,
    )
