"""Kernel state capture and checkout (issue 17) against baselines measured in the same run.

Two kernels hold the same namespace (a float64 array ``big`` of ``--size-mib``, and a
few small names): ``plain`` tracks without state, ``stateful`` has ``%dotnb state on``.

1. Per cell, a tracked cell changing one small name (``%%track x = 1``), the two
   kernels interleaved; the offset between the two kernels (both without state) is
   measured first and subtracted.  Goal: ≤ 2 ms added over today's tracked cell.
2. A tracked cell changing ``big`` in place (``big += 1``): the time it adds on the
   cell's path (fork), the round trip of the next (untracked) cell sent right after
   it (goal: starts ≤ 50 ms after), and the time until its state is stored (the run's
   ``kernel-state`` ref appears) against ``np.save`` of ``big`` timed in the kernel,
   without and with fsync (goal: ≤ 1.5× ``np.save``).
3. ``%dotnb checkout`` of a run that differs in two small names while ``big`` is
   unchanged (goal ≤ 100 ms), and of a run whose ``big`` differs (a full load of
   ``big``; goal ≤ 1.5× ``np.load``), both timed inside the kernel; also
   ``--undo`` of a small checkout (from its stored checkpoint), and a small
   checkout after a cell that only read ``big`` (its checkpoint hashes ``big``
   again).
4. Storage: ten runs each changing one small name, with ``big`` unchanged
   (goal: ≤ 1 MiB added to the store, kernel state objects and run records together).

5. Kishu side by side (``--no-kishu`` leaves it out): Kishu 0.3.4, in a virtualenv of
   its own (``.venv-kishu``, see bench/peers.py), in a third kernel holding the same
   namespace, doing the same work: the cell ``x = 1`` (Kishu checkpoints every cell;
   added vs the same kernel before ``init_kishu``), ``big += 1`` and the next cell,
   the two checkouts (``_kishu.checkout(commit, skip_notebook=True)``, timed inside
   the kernel), and its store's growth over the ten small runs.  Kishu runs in its
   test mode (``ENV_KISHU_TEST_MODE``, ``TEST_NOTEBOOK_PATH``): there is no
   JupyterLab front end here for it to save the notebook through.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from harness import (
    BenchKernel,
    HookClock,
    age,
    make_notebook,
    median,
    ms,
    parse_args,
    print_header,
    print_table,
    ratio,
    scratch,
    start_tracking_kernel,
    verdict,
)

MiB = 1024 * 1024


def store_bytes(project: Path) -> int:
    total = 0
    for folder in ("objects", "packs", "kernel-state", "runs"):
        for dirpath, _, names in os.walk(project / ".dotnb" / folder):
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def wait_state(project: Path, run_id: str, timeout: float = 600) -> float:
    """Seconds until run ``run_id``'s kernel state ref exists (polled every 2 ms)."""
    ref = project / ".dotnb" / "kernel-state" / run_id
    start = time.perf_counter()
    while not ref.exists():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"no kernel state for run {run_id}")
        time.sleep(0.002)
    return time.perf_counter() - start


def tracked(kernel: BenchKernel, code: str) -> tuple[str, float]:
    res = kernel.ok("%%track\n" + code)
    if res.run is None:
        raise RuntimeError(f"no run recorded: {res.stderr}")
    if res.stderr.strip():
        print(f"   note: stderr: {res.stderr.strip()[:300]}")
    return str(res.run["id"]), res.seconds


def in_kernel(kernel: BenchKernel, code: str) -> float:
    """Seconds ``code`` takes inside the kernel (perf_counter around it)."""
    body = "\n".join("    " + line for line in code.splitlines())
    out = kernel.ok(
        "import time as _t\n_s = _t.perf_counter()\nif True:\n" + body + "\nprint(_t.perf_counter() - _s)"
    ).stdout
    return float(out.strip().splitlines()[-1])


def kishu_size(project: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(project):
        for name in names:
            if ".kishudb" in os.path.join(dirpath, name):
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def measure_kishu(tmp: Path, setup: str, n: int, reps: int) -> dict[str, float]:
    """Kishu on the work of sections 1-4 (see the module's docstring); seconds and bytes."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from peers import KISHU_VERSION, kishu_python

    python = kishu_python()
    project = tmp / "kishu"
    notebook = make_notebook(project / "kishu.ipynb")
    env = {"ENV_KISHU_TEST_MODE": "1", "TEST_NOTEBOOK_PATH": str(notebook), "KISHU_PATH_ROOT": str(tmp)}
    kernel = BenchKernel(project, notebook, env, python=str(python))
    got: dict[str, float] = {}
    try:
        kernel.ok(setup)
        for _ in range(5):
            kernel.ok("x = 1")
        before = [kernel.ok("x = 1").seconds for _ in range(max(10, n // 2))]
        kernel.ok(f"from kishu import init_kishu\ninit_kishu({str(notebook)!r})")
        version = kernel.ok("import kishu; print(kishu.__version__)").stdout.strip()
        if version != KISHU_VERSION:
            raise RuntimeError(f"the Kishu kernel runs kishu {version!r}")
        for _ in range(5):
            kernel.ok("x = 1")
        cells = [kernel.ok("x = 1").seconds for _ in range(n)]
        got["cell"], got["cell_added"] = median(cells), median(cells) - median(before)
        idle = [kernel.ok("y = 1").seconds for _ in range(10)]
        path, following = [], []
        for _ in range(reps):
            kernel.ok(RELEASE)
            path.append(kernel.ok("big += 1").seconds)
            following.append(kernel.ok("y = 1").seconds)
        got["big_cell"], got["next_added"] = median(path), median(following) - median(idle)

        def head() -> str:
            return kernel.ok("print(_kishu._kishu_branch.get_head().commit_id)").stdout.strip()

        def checkout(commit: str) -> float:
            return in_kernel(kernel, f"_kishu.checkout({commit!r}, skip_notebook=True)")

        kernel.ok("small = 1\nnames = ['c']")
        c1 = head()
        kernel.ok("small = 2\nnames = ['d', 'e']")
        c2 = head()
        got["checkout_small"] = median([checkout((c1, c2)[i % 2]) for i in range(2 * reps)])
        kernel.ok("big += 1")
        ca = head()
        kernel.ok("big += 1")
        cb = head()
        full = []
        for i in range(reps):
            kernel.ok(RELEASE)
            full.append(checkout((ca, cb)[i % 2]))
        got["checkout_full"] = median(full)
        size = kishu_size(project)
        for i in range(10):
            kernel.ok(f"small = {100 + i}")
        got["storage"] = kishu_size(project) - size
    finally:
        kernel.shutdown()
    return got


def print_kishu(ours: dict[str, float], kishu: dict[str, float], size_mib: int) -> None:
    def row(what: str, key: str, note: str = "") -> list[str]:
        return [what, ms(ours[key]), ms(kishu[key]), note]

    rows = [
        row(
            "x = 1: added per cell (dotnb: state on vs off; Kishu: vs before init_kishu)",
            "cell_added",
            f"dotnb's hooks +{ms(ours['hooks_added'], 3)} ms",
        ),
        [
            "x = 1 with Kishu (whole cell, client round trip)",
            "",
            ms(kishu["cell"]),
            "",
        ],
        row("big += 1: the cell, client round trip", "big_cell"),
        row("the next cell right after it: added vs idle", "next_added"),
        row("checkout: 2 small names differ, big unchanged (in the kernel)", "checkout_small"),
        row(f"checkout: big ({size_mib} MiB) differs (in the kernel)", "checkout_full"),
        [
            "ten runs changing one small name: store growth (bytes)",
            f"{int(ours['storage']):,}",
            f"{int(kishu['storage']):,}",
            "",
        ],
    ]
    print_table("5. side by side with Kishu, the same work", ["what", "dotnb ms", "Kishu ms", ""], rows)


def interleave(
    a: tuple[BenchKernel, str], b: tuple[BenchKernel, str], n: int
) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for i in range(n):
        pair = [(a, xs), (b, ys)]
        if i % 2:
            pair.reverse()
        for (kernel, code), sink in pair:
            sink.append(kernel.ok(code).seconds)
    return xs, ys


# Writing into memory freed a moment ago is faster than into memory handed back to the
# host (bench/README): both sides of a comparison free a buffer of big's size first.
# It does not mention big: a cell mentioning a name makes a checkout's checkpoint hash
# it again (measured apart, in 3).
RELEASE = "_d = np.ones(_n); del _d"


def main() -> None:
    def options(p: Any) -> None:
        p.add_argument("--size-mib", type=int, default=1024, help="size of big")
        p.add_argument("--no-kishu", action="store_true", help="leave Kishu out")

    args = parse_args(__doc__ or "", options)
    size_mib = 32 if args.quick else args.size_mib
    n = 20 if args.quick else 100
    reps = 2 if args.quick else 3
    print_header(f"kernel state: a namespace holding {size_mib} MiB, {n} interleaved cells", args.quick)
    setup = (
        f"import numpy as np\n_n = {size_mib * MiB // 8}\nbig = np.ones(_n)\n"
        "small = 0\nnames = ['a', 'b']\nx = 0"
    )
    with scratch("kernel-state") as tmp:
        project = tmp / "project"
        nb_plain = make_notebook(project / "plain.ipynb")
        nb_state = make_notebook(project / "state.ipynb")
        age([nb_plain, nb_state])
        plain = start_tracking_kernel(project, nb_plain)
        stateful = start_tracking_kernel(project, nb_state)
        try:
            for k in (plain, stateful):
                k.ok(setup)
            rows: list[list[str]] = []
            cell = "%%track\nx = 1"
            interleave((plain, cell), (stateful, cell), 5)
            off_a, off_b = interleave((plain, cell), (stateful, cell), max(10, n // 4))
            offset = median(off_b) - median(off_a)
            stateful.ok("%dotnb state on")
            first_id, _first_s = tracked(stateful, "x = 1")
            first_store = wait_state(project, first_id)
            interleave((plain, cell), (stateful, cell), 5)
            clocks = (HookClock(plain), HookClock(stateful))
            for clock in clocks:
                clock.reset()
            base, with_state = interleave((plain, cell), (stateful, cell), n)
            hooks_plain, hooks_state = (clock.collect()[0] for clock in clocks)
            added = median(with_state) - median(base) - offset
            hooks_added = median(hooks_state) - median(hooks_plain)
            rows.append(["tracked x = 1, no state (plain kernel)", str(n), ms(median(base)), "", "1.00x", ""])
            rows.append(
                [
                    "tracked x = 1, state on",
                    str(n),
                    ms(median(with_state)),
                    ms(added),
                    ratio(median(with_state) - offset, median(base)),
                    f"{verdict(added, 0.002)} (≤ 2 ms)",
                ]
            )
            rows.append(["kernel offset (both without state)", str(len(off_a)), "", ms(offset), "", ""])
            rows.append(
                ["in the kernel, dotnb's hooks, no state", str(n), ms(median(hooks_plain), 3), "", "", ""]
            )
            rows.append(
                [
                    "in the kernel, dotnb's hooks, state on",
                    str(n),
                    ms(median(hooks_state), 3),
                    ms(hooks_added, 3),
                    "",
                    f"{verdict(hooks_added, 0.002)} (≤ 2 ms)",
                ]
            )
            print_table(
                "1. per tracked cell changing one small name (client round trip)",
                ["cell", "n", "median ms", "added ms", "vs no state", "goal"],
                rows,
            )
            print(
                f"   the first capture of the namespace (all of big): stored {first_store:.2f} s "
                "after the cell"
            )

            # 2. a cell changing big in place
            untracked = [plain.ok("y = 1").seconds for _ in range(10)]
            rows = []
            path_plain, path_state, next_cell, stored, saves, saves_sync = [], [], [], [], [], []
            for _ in range(reps):
                plain.ok(RELEASE)
                path_plain.append(plain.ok("%%track\nbig += 1").seconds)
                stateful.ok(RELEASE)
                run_id, seconds = tracked(stateful, "big += 1")
                sent = time.perf_counter()
                next_cell.append(stateful.ok("y = 1").seconds)
                stored.append(wait_state(project, run_id) + (time.perf_counter() - sent) * 0)
                path_state.append(seconds)
                plain.ok(RELEASE)
                saves.append(in_kernel(plain, "np.save('saved.npy', big)"))
                plain.ok(RELEASE)
                saves_sync.append(
                    in_kernel(
                        plain,
                        "with open('saved_sync.npy', 'wb') as _f:\n    np.save(_f, big)\n"
                        "    _f.flush()\n    import os as _os\n    _os.fsync(_f.fileno())",
                    )
                )
            on_path = median(path_state) - median(path_plain) - offset
            rows.append(["tracked big += 1, no state", str(reps), ms(median(path_plain)), "", ""])
            rows.append(
                [
                    "tracked big += 1, state on: added on the cell's path",
                    str(reps),
                    ms(median(path_state)),
                    ms(on_path),
                    "",
                ]
            )
            next_added = median(next_cell) - median(untracked)
            rows.append(
                [
                    "next cell (y = 1) right after it: added vs idle",
                    str(reps),
                    ms(median(next_cell)),
                    ms(next_added),
                    f"{verdict(next_added, 0.050)} (≤ 50 ms)",
                ]
            )
            rows.append(
                [
                    "state stored, after the cell's end",
                    str(reps),
                    ms(median(stored)),
                    "",
                    f"{ratio(median(stored), median(saves))} np.save, "
                    f"{ratio(median(stored), median(saves_sync))} np.save+fsync; "
                    f"{verdict(median(stored), 1.5 * median(saves))} (≤ 1.5× np.save)",
                ]
            )
            rows.append(["np.save(big) in the kernel", str(reps), ms(median(saves)), "", ""])
            rows.append(["np.save(big) + fsync in the kernel", str(reps), ms(median(saves_sync)), "", ""])
            print_table(
                f"2. a cell changing big ({size_mib} MiB) in place",
                ["what", "n", "median ms", "added ms", "goal"],
                rows,
            )

            # 3. checkouts
            r1, _ = tracked(stateful, "small = 1\nnames = ['c']")
            r2, _ = tracked(stateful, "small = 2\nnames = ['d', 'e']")
            wait_state(project, r2)
            small_times = []
            for i in range(2 * reps):
                small_times.append(
                    in_kernel(
                        stateful, f"get_ipython().run_line_magic('dotnb', 'checkout {(r1, r2)[i % 2]}')"
                    )
                )
            undo_times = []
            for _ in range(reps):
                stateful.ok(f"%dotnb checkout {r1}")
                undo_times.append(
                    in_kernel(stateful, "get_ipython().run_line_magic('dotnb', 'checkout --undo')")
                )
            mentioned_times = []
            for i in range(reps):
                stateful.ok("float(big[0])")  # big may have changed: the checkpoint hashes it again
                mentioned_times.append(
                    in_kernel(
                        stateful, f"get_ipython().run_line_magic('dotnb', 'checkout {(r1, r2)[i % 2]}')"
                    )
                )
            ra, _ = tracked(stateful, "big += 1")
            rb, _ = tracked(stateful, "big += 1")
            wait_state(project, rb)
            full_times, loads = [], []
            for i in range(reps):
                stateful.ok(RELEASE)
                full_times.append(
                    in_kernel(
                        stateful, f"get_ipython().run_line_magic('dotnb', 'checkout {(ra, rb)[i % 2]}')"
                    )
                )
                plain.ok(RELEASE)
                loads.append(in_kernel(plain, "_l = np.load('saved.npy')\ndel _l"))
            rows = [
                [
                    "checkout: 2 small names differ, big unchanged",
                    str(len(small_times)),
                    ms(median(small_times)),
                    f"{verdict(median(small_times), 0.100)} (≤ 100 ms)",
                ],
                [
                    "checkout: big differs (full load)",
                    str(reps),
                    ms(median(full_times)),
                    f"{ratio(median(full_times), median(loads))} np.load; "
                    f"{verdict(median(full_times), 1.5 * median(loads))} (≤ 1.5× np.load)",
                ],
                ["np.load of big in the kernel", str(reps), ms(median(loads)), ""],
                [
                    "checkout --undo of a checkout of 2 small names (from its stored checkpoint)",
                    str(reps),
                    ms(median(undo_times)),
                    "",
                ],
                [
                    "checkout: 2 small names differ, after a cell that read big "
                    "(big may have changed: hashed again for the checkpoint)",
                    str(reps),
                    ms(median(mentioned_times)),
                    "",
                ],
            ]
            print_table(
                "3. %dotnb checkout, timed inside the kernel", ["what", "n", "median ms", "goal"], rows
            )

            # 4. storage
            before = store_bytes(project)
            last = ""
            for i in range(10):
                last, _ = tracked(stateful, f"small = {100 + i}")
                wait_state(project, last)
            grown = store_bytes(project) - before
            print_table(
                "4. storage: ten runs changing one small name, big unchanged",
                ["what", "bytes", "goal"],
                [
                    [
                        "store growth (objects, packs, refs, state refs)",
                        f"{grown:,}",
                        f"{verdict(grown, MiB)} (≤ 1 MiB)",
                    ]
                ],
            )
            ours = {
                "cell_added": added,
                "hooks_added": hooks_added,
                "big_cell": median(path_state),
                "next_added": next_added,
                "checkout_small": median(small_times),
                "checkout_full": median(full_times),
                "storage": grown,
            }
        finally:
            plain.shutdown()
            stateful.shutdown()
        if not args.no_kishu:
            # After dotnb's kernels are gone: their background writes do not land in Kishu's cells.
            kishu = measure_kishu(tmp, setup, n, reps)
            print_kishu(ours, kishu, size_mib)


if __name__ == "__main__":
    main()
