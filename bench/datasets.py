"""Real datasets (issue 16): many small files read by a cell, and restores of large and many files.

Everything goes through dotnb's public seams: kernels through the harness
(this tree's dotnb, ``code_root``), the ``dotnb`` CLI (a subprocess running
this tree's dotnb, bytecode cached as an installed dotnb is), its ``--json``
outputs, and the disk usage of ``.dotnb/``.  Nothing reads the store's
internals, so the script measures any store format.

1. **Small files**: 100,000 files of 1 KiB (100 folders of 1,000), read by
   one cell with a plain ``os.walk`` + ``open().read()`` loop.
   - the untracked cell (median of 4: three before the first run, one after);
   - the first tracked run, its added time against ``cp -r`` of the folder
     and ``cp -r`` + ``sync -f`` (goal: added ≤ 1.5× ``cp -r`` + ``sync -f``);
   - the same cell re-run unchanged: interleaved pairs, the added time as a
     % of the untracked cell (goal ≤ 15%), and the kernel process's added CPU
     time (all its threads; steadier than the wall clock on a shared machine);
   - what the store holds: ``.dotnb/`` on disk after the first run, counted
     in blocks as ``du`` does, against the data's size (goal ≤ 1.3×); the
     bytes ``.dotnb/`` grows by per unchanged re-run (objects, refs,
     ``index.sqlite`` and its WAL; goal ≤ 16 KiB), and the size and time of
     ``dotnb show latest --json``.
2. ``--million``: the same with 1,000,000 files of 1 KiB in 1,000 folders,
   alone, without the copy baselines and DVC (goal: an unchanged re-run adds
   ≤ 2 s; the first run is reported).  9 to 47 minutes here, depending on how
   fast the disk creates and deletes files that day (a deletion has cost up
   to ~0.4 ms, the disk being mounted with ``discard``); needs ~10 GB free and
   2M inodes.
3. **Restore of a deleted 1 GiB file**: ``dotnb restore RUN --data-only``
   (CLI) against ``cp`` + ``sync FILE`` (goal ≤ 1.1×) and ``dvc checkout``
   (goal: faster).
4. **Restore of 10,000 modified files of 4 KiB**, checkpoint included,
   against ``cp -r`` + ``sync -f`` (goal ≤ 1.5×); and ``dvc checkout --force``
   (which discards the modified files: no checkpoint).
5. **DVC as the peer on the small files**: ``dvc add`` of the folder against
   dotnb's first run, ``dvc status`` (unchanged) against the unchanged re-run.

DVC 3.67.1 runs from its own virtualenv, ``.venv-peers`` (``bench/peers.py``
creates it on first use, about a minute), initialised with ``--no-scm`` and
``cache.type copy`` (no reflinks on this ext4): like dotnb, it copies data into
its cache.  ``--no-dvc`` leaves its rows out; ``--quick`` (1,000 small files,
32 MiB, 500 files) runs without DVC unless ``--dvc`` is given.

Every step that writes new data starts with just-freed memory
(``harness.HotPages``, released right before its timer starts).  Warm cache
throughout; data files get mtimes 30 s in the past.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import (
    REPO,
    BenchKernel,
    HookClock,
    HotPages,
    MiB,
    check_run,
    make_notebook,
    median,
    ms,
    parse_args,
    print_header,
    print_table,
    ratio,
    remove_tree,
    run_cmd,
    scratch,
    start_tracking_kernel,
    timed,
    write_random_file,
)

KiB = 1024
FLUSH_WAIT = 1.5  # a kernel writes a run's objects and ref within 1 s of the cell
AGE = 30.0

# The cell of scenarios 1 and 2: what a user writes to read a folder.
READ_TREE = """import os
for _root, _dirs, _files in os.walk('data/files'):
    for _name in _files:
        with open(os.path.join(_root, _name), 'rb') as _f:
            _f.read()"""
READ_MANY = """import os
for _name in os.listdir('data/many'):
    with open(os.path.join('data/many', _name), 'rb') as _f:
        _f.read()"""
READ_BIG = """with open('data/big.bin', 'rb') as _f:
    while _f.read(8 << 20):
        pass"""


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-dvc", action="store_true", help="leave out the DVC rows")
    parser.add_argument("--dvc", action="store_true", help="with --quick: include the DVC rows")
    parser.add_argument("--million", action="store_true", help="only the 1,000,000-file case (9-47 minutes)")
    parser.add_argument(
        "--part",
        choices=["small", "big", "many"],
        action="append",
        help="only these scenarios (small files, the 1 GiB restore, the 10,000-file restore); repeatable",
    )


# ---------------------------------------------------------------------------
# processes: this tree's dotnb CLI, and DVC


class Cli:
    """``python -m dotnb`` running this tree's dotnb, with bytecode cached (as an installed dotnb)."""

    def __init__(self, pycache: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOTNB_", "JPY_"))}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        self.env = env
        where = run_cmd([sys.executable, "-c", "import dotnb; print(dotnb.__file__)"], env=env)
        path = where.stdout.decode().strip()
        if not path.startswith(str(REPO)):
            raise SystemExit(f"the CLI would run dotnb from {path}, not from {REPO}")

    def run(self, project: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
        env = dict(self.env, DOTNB_ROOT=str(project))
        proc = subprocess.run(
            [sys.executable, "-m", "dotnb", *args], cwd=project, env=env, capture_output=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"dotnb {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}"
            )
        return proc

    def timed(self, project: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[bytes]]:
        start = time.perf_counter()
        proc = self.run(project, *args)
        return time.perf_counter() - start, proc


class Dvc:
    """DVC from ``.venv-peers``, one repository per project: ``--no-scm``, ``cache.type copy``."""

    def __init__(self, exe: Path, tmp: Path) -> None:
        self.exe = exe
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOTNB_", "JPY_", "PYTHON"))}
        # Its state database goes to a system-wide site cache unless told otherwise.
        env["DVC_SITE_CACHE_DIR"] = str(tmp / "dvc-site-cache")
        env["DVC_GLOBAL_CONFIG_DIR"] = str(tmp / "dvc-global")
        env["DVC_SYSTEM_CONFIG_DIR"] = str(tmp / "dvc-system")
        env["DVC_NO_ANALYTICS"] = "1"
        self.env = env
        self.version = run_cmd([str(exe), "--version"], env=env).stdout.decode().strip()

    def run(self, project: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [str(self.exe), *args], cwd=project, env=self.env, capture_output=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"dvc {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}"
            )
        return proc

    def init(self, project: Path) -> None:
        self.run(project, "init", "--no-scm")
        self.run(project, "config", "cache.type", "copy")
        self.run(project, "config", "core.analytics", "false")


LIKE_FOR_LIKE = "dvc init --no-scm, cache.type copy"


# ---------------------------------------------------------------------------
# data and disk usage


def write_tree(root: Path, folders: int, per_folder: int, size: int) -> int:
    """``folders`` × ``per_folder`` files of ``size`` random bytes, mtimes in the past; synced."""
    when = time.time() - AGE
    for d in range(folders):
        folder = root / f"d{d:04d}"
        folder.mkdir(parents=True)
        for i in range(per_folder):
            path = folder / f"f{i:04d}.bin"
            with open(path, "wb") as f:
                f.write(os.urandom(size))
            os.utime(path, (when, when))
    os.sync()
    return folders * per_folder


def write_flat(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    when = time.time() - AGE
    for i in range(count):
        path = folder / f"f{i:05d}.bin"
        path.write_bytes(os.urandom(size))
        os.utime(path, (when, when))
    os.sync()


def rewrite_all(folder: Path, size: int) -> None:
    """New bytes in every file of ``folder`` (a user's change), synced."""
    for entry in os.scandir(folder):
        with open(entry.path, "r+b") as f:
            f.write(os.urandom(size))
    os.sync()


@dataclass
class Usage:
    files: int = 0
    apparent: int = 0  # st_size
    disk: int = 0  # st_blocks × 512, as du counts


def usage(path: Path, only: Callable[[str], bool] | None = None) -> Usage:
    """Apparent size and disk usage of every file under ``path`` (``only``: filter on the relative path)."""
    found = Usage()
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            if only is not None and not only(os.path.relpath(full, path)):
                continue
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                continue
            found.files += 1
            found.apparent += st.st_size
            found.disk += st.st_blocks * 512
    return found


def settled_usage(store: Path) -> tuple[Usage, Usage]:
    """The store's usage (all of it, and ``index.sqlite*``) once a kernel's background flush of its
    last run is done: two walks a second apart agree."""
    time.sleep(FLUSH_WAIT)
    last = usage(store)
    for _ in range(30):
        time.sleep(1.0)
        now = usage(store)
        if now == last:
            break
        last = now
    return last, usage(store, is_index)


def is_index(rel: str) -> bool:
    return rel.startswith("index.sqlite")


def same_tree(a: Path, b: Path) -> bool:
    """Byte-for-byte equality of two folders (names and contents)."""
    for root, _dirs, files in os.walk(a):
        for name in files:
            left = os.path.join(root, name)
            right = os.path.join(b, os.path.relpath(left, a))
            try:
                with open(left, "rb") as f, open(right, "rb") as g:
                    if f.read() != g.read():
                        return False
            except FileNotFoundError:
                return False
    return sum(len(f) for _, _, f in os.walk(a)) == sum(len(f) for _, _, f in os.walk(b))


def same_file(a: Path, b: Path) -> bool:
    return run_cmd_ok(["cmp", "-s", str(a), str(b)])


def run_cmd_ok(argv: Sequence[str]) -> bool:
    return subprocess.run(list(argv), check=False).returncode == 0


def size_text(n: float) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"


def sec(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def pct(value: float, base: float) -> str:
    return f"{100 * value / base:.1f}%" if base > 0 else "-"


def judged(ok: bool, goal: str) -> str:
    return f"{'MET' if ok else 'NOT MET'} ({goal})"


# ---------------------------------------------------------------------------
# 1, 2 and 5: a folder of many small files read by one cell


def small_files(
    tmp: Path, cli: Cli, dvc_exe: Path | None, folders: int, per_folder: int, reruns: int, million: bool
) -> None:
    count = folders * per_folder
    size = KiB
    project = tmp / "project"
    data = project / "data" / "files"
    title = f"{count:,} files of 1 KiB in {folders:,} folders"
    generated = timed(lambda: write_tree(data, folders, per_folder, size))
    notebook = make_notebook(project / "datasets.ipynb")
    os.utime(notebook, (time.time() - AGE, time.time() - AGE))
    data_size = count * size
    data_disk = usage(data).disk
    print(
        f"   generated {title} in {generated:.1f} s ({size_text(data_size)}; {size_text(data_disk)} on disk)"
    )
    print()
    hot = HotPages(tmp, min(max(4 * data_size, 8 * MiB), 1024 * MiB))
    hot.refill()
    copy = tmp / "copy"

    def copy_folder() -> tuple[float, float]:
        hot.release()
        start = time.perf_counter()
        run_cmd(["cp", "-r", str(data), str(copy)])
        copied = time.perf_counter() - start
        run_cmd(["sync", "-f", str(copy)])
        synced = time.perf_counter() - start
        remove_tree(copy)
        os.sync()
        hot.refill()
        return copied, synced

    copies: list[tuple[float, float]] = []
    store = project / ".dotnb"
    kernel: BenchKernel = start_tracking_kernel(project, notebook, code_root=REPO)
    try:
        untracked = [kernel.ok(READ_TREE).seconds for _ in range(3)]
        if not million:  # a million copies, and deleting them, would add ~15 minutes
            copies.append(copy_folder())

        hot.release()
        first = kernel.ok("%%track\n" + READ_TREE, timeout=7200)
        first_line = check_run(first, "first tracked run")
        run_id = (first.run or {})["id"]
        hot.refill()
        store_first, _ = settled_usage(store)
        untracked.append(kernel.ok(READ_TREE).seconds)
        if not million:
            copies.append(copy_folder())

        shows = []
        show_out = b""
        for _ in range(1 if million else 3):
            seconds, proc = cli.timed(project, "show", "latest", "--json")
            shows.append(seconds)
            show_out = proc.stdout
        shown = json.loads(show_out)
        if shown.get("id") != run_id:
            raise RuntimeError(f"dotnb show latest gave run {shown.get('id')}, not the first run {run_id}")
        inputs = shown.get("inputs") or []
        n_inputs = len(inputs) if isinstance(inputs, list) else inputs

        # The first re-run reads the stat cache for the first time (the kernel's own reads).
        rerun_first = kernel.ok("%%track\n" + READ_TREE, timeout=7200)
        check_run(rerun_first, "first re-run")
        try:
            clock: HookClock | None = HookClock(kernel)
        except RuntimeError:
            clock = None  # in-kernel hook timing unavailable: the round trips still stand
        before, before_index = settled_usage(store)
        if clock is not None:
            clock.reset()
        rerun_line = ""
        tracked_rr: list[float] = []
        untracked_rr: list[float] = []
        cpu: dict[bool, list[float]] = {True: [], False: []}  # the kernel's CPU seconds per cell
        for i in range(reruns):
            pair = [("%%track\n" + READ_TREE, tracked_rr), (READ_TREE, untracked_rr)]
            if i % 2:
                pair.reverse()
            for code, sink in pair:
                res = kernel.ok(code, timeout=7200)
                if code.startswith("%%track"):
                    rerun_line = check_run(res, "unchanged re-run")
                sink.append(res.seconds)
                if res.cpu is not None:
                    cpu[sink is tracked_rr].append(res.cpu)
        hooks = clock.collect() if clock is not None else None
        after, after_index = settled_usage(store)
        rerun_show, proc = cli.timed(project, "show", "latest", "--json")
        rerun_show_size = len(proc.stdout)
    finally:
        kernel.shutdown()

    peer: dict[str, float] = {}
    dvc_version = ""
    if dvc_exe is not None:
        dvc = Dvc(dvc_exe, tmp)
        dvc_version = dvc.version
        dvc.init(project)
        hot.release()
        peer["add"] = timed(lambda: dvc.run(project, "add", "data/files"))
        hot.refill()
        statuses = []
        for _ in range(3):
            statuses.append(timed(lambda: dvc.run(project, "status")))
        out = dvc.run(project, "status").stdout.decode()
        if "up to date" not in out:
            raise RuntimeError(f"dvc status reports changes on unchanged data: {out[:500]}")
        peer["status"] = median(statuses)
        peer["cache"] = usage(project / ".dvc" / "cache").disk

    base = median(untracked)
    added_first = first.seconds - base
    rows = [
        [f"untracked cell (median of {len(untracked)})", sec(base), "", "", ""],
        ["tracked cell, first run", sec(first.seconds), sec(added_first), "", ""],
    ]
    if copies:
        cp_plain = median([c for c, _ in copies])
        cp_sync = median([s for _, s in copies])
        rows += [
            [
                f"baseline: cp -r of the folder (median of {len(copies)})",
                sec(cp_plain),
                "",
                ratio(added_first, cp_plain),
                "",
            ],
            [
                f"baseline: cp -r + sync -f (median of {len(copies)})",
                sec(cp_sync),
                "",
                ratio(added_first, cp_sync),
                judged(added_first <= 1.5 * cp_sync, "added ≤ 1.5× cp -r + sync -f"),
            ],
        ]
    else:
        rows.append(
            ["baseline: cp -r + sync -f (left out with --million; see the default run)", "", "", "", ""]
        )
    if "add" in peer:
        rows.append(
            [
                f"peer: dvc add data/files ({LIKE_FOR_LIKE})",
                sec(peer["add"]),
                "",
                ratio(added_first, peer["add"]),
                "",
            ]
        )
    elif dvc_exe is None:
        rows.append(["peer: dvc add (left out: --no-dvc, or --quick without --dvc)", "", "", "", ""])
    print_table(
        f"{title}: first run ({n_inputs:,} inputs recorded)",
        ["", "s", "added s", "dotnb added / row", "goal"],
        rows,
    )

    paired = median([t - u for t, u in zip(tracked_rr, untracked_rr, strict=True)])
    base_rr = median(untracked_rr)
    rerun_limit = 2.0 if million else 0.15 * base_rr
    rerun_goal = "added ≤ 2 s" if million else "added ≤ 15% of the untracked cell"
    rows = [
        [f"untracked cell (median of {len(untracked_rr)}, interleaved)", sec(base_rr), "", "", ""],
        [
            "tracked cell, first re-run (stat cache read for the first time)",
            sec(rerun_first.seconds),
            sec(rerun_first.seconds - base_rr),
            pct(rerun_first.seconds - base_rr, base_rr),
            "",
        ],
        [
            f"tracked cell, re-run (median of {len(tracked_rr)})",
            sec(median(tracked_rr)),
            sec(median(tracked_rr) - base_rr),
            pct(median(tracked_rr) - base_rr, base_rr),
            "",
        ],
        [
            "added: median of paired differences",
            "",
            sec(paired),
            pct(paired, base_rr),
            judged(paired <= rerun_limit, rerun_goal),
        ],
    ]
    if len(cpu[True]) == len(cpu[False]) == len(tracked_rr):
        cpu_added = median([t - u for t, u in zip(cpu[True], cpu[False], strict=True)])
        rows.append(
            [
                "  the kernel's CPU time: median of paired differences",
                "",
                sec(cpu_added),
                pct(cpu_added, median(cpu[False])),
                "",
            ]
        )
    if hooks is not None and hooks[0] and hooks[1]:
        in_hooks = median(hooks[0]) - median(hooks[1])
        rows.append(
            ["  of which in dotnb's pre/post_run_cell hooks", "", sec(in_hooks), pct(in_hooks, base_rr), ""]
        )
    if "status" in peer:
        rows.append(
            [
                f"peer: dvc status, unchanged (median of 3; {LIKE_FOR_LIKE})",
                sec(peer["status"]),
                "",
                f"dotnb {ratio(paired, peer['status'])}",
                "",
            ]
        )
    elif dvc_exe is None:
        rows.append(["peer: dvc status (left out)", "", "", "", ""])
    print_table(
        f"{title}: the same cell re-run unchanged", ["", "s", "added s", "added / untracked", "goal"], rows
    )

    grown = (after.apparent - before.apparent) / reruns
    grown_disk = (after.disk - before.disk) / reruns
    grown_index = (after_index.apparent - before_index.apparent) / reruns
    store_ratio = store_first.disk / data_size
    rows = [
        [f"data: {count:,} files × 1 KiB", size_text(data_size), size_text(data_disk), "", ""],
        [
            ".dotnb/ after the first run",
            size_text(store_first.apparent),
            size_text(store_first.disk),
            f"{store_ratio:.2f}x data",
            judged(store_ratio <= 1.3, "on disk ≤ 1.3× the data"),
        ],
        [
            f".dotnb/ growth per unchanged re-run (mean of {reruns})",
            size_text(grown),
            size_text(grown_disk),
            f"{(after.files - before.files) / reruns:+.1f} files",
            judged(grown <= 16 * KiB, "≤ 16 KiB"),
        ],
        ["  of which index.sqlite + WAL", size_text(grown_index), "", "", ""],
        [
            f"dotnb show latest --json, first run ({ms(median(shows), 0)} ms)",
            size_text(len(show_out)),
            "",
            "",
            "",
        ],
        [
            f"dotnb show latest --json, a re-run ({ms(rerun_show, 0)} ms)",
            size_text(rerun_show_size),
            "",
            "",
            "",
        ],
    ]
    if "cache" in peer:
        rows.append(
            [
                "peer: .dvc/cache after dvc add",
                "",
                size_text(peer["cache"]),
                f"{peer['cache'] / data_size:.2f}x data",
                "",
            ]
        )
    print_table(f"{title}: what the store holds", ["", "bytes", "on disk (du)", "", "goal"], rows)
    print(f"first run:  {first_line}")
    print(f"re-run:     {rerun_line}")
    if dvc_version:
        print(f"peer:       DVC {dvc_version}")
    print()


# ---------------------------------------------------------------------------
# 3: restore of a deleted large file


def recorded_read(
    project: Path, tmp: Path, cli: Cli, dvc_exe: Path | None, notebook: str, code: str, what: str, target: str
) -> tuple[str, Dvc | None]:
    """A tracked cell running ``code`` recorded in ``notebook``; the same data added to
    DVC when it is the peer.  Returns the run's id and the DVC repository (or None)."""
    kernel = start_tracking_kernel(project, make_notebook(project / notebook), code_root=REPO)
    try:
        res = kernel.ok("%%track\n" + code)
        check_run(res, what)
        run_id = str((res.run or {})["id"])
    finally:
        kernel.shutdown()
    cli.run(project, "restore", run_id, "--data-only", "--dry-run", "--json")  # warms the bytecode cache
    dvc = None
    if dvc_exe is not None:
        dvc = Dvc(dvc_exe, tmp)
        dvc.init(project)
        dvc.run(project, "add", target)
    os.sync()
    return run_id, dvc


def big_file(tmp: Path, cli: Cli, dvc_exe: Path | None, size: int, reps: int) -> None:
    project = tmp / "project"
    big = project / "data" / "big.bin"
    write_random_file(big, size)
    os.utime(big, (time.time() - AGE, time.time() - AGE))
    pristine = tmp / "big.copy"
    run_cmd(["cp", str(big), str(pristine)])
    run_cmd(["sync", str(pristine)])
    run_id, dvc = recorded_read(
        project, tmp, cli, dvc_exe, "big.ipynb", READ_BIG, "tracked read of the large file", "data/big.bin"
    )
    hot = HotPages(tmp, size + size // 4)
    hot.refill()
    found: dict[str, list[float]] = {}

    def step(label: str, fn: Callable[[], object]) -> None:
        big.unlink()
        hot.release()
        found.setdefault(label, []).append(timed(fn))
        if big.stat().st_size != size:
            raise RuntimeError(f"{label}: {big} has {big.stat().st_size} bytes, not {size}")
        hot.refill()

    dotnb_label = "dotnb restore RUN --data-only (CLI)"
    steps: list[tuple[str, Callable[[], object]]] = [
        (dotnb_label, lambda: cli.run(project, "restore", run_id, "--data-only", "--json")),
        (
            "baseline: cp + sync FILE",
            lambda: (run_cmd(["cp", str(pristine), str(big)]), run_cmd(["sync", str(big)])),
        ),
        ("baseline: cp (no sync)", lambda: run_cmd(["cp", str(pristine), str(big)])),
    ]
    if dvc is not None:
        steps.append(
            (
                f"peer: dvc checkout ({LIKE_FOR_LIKE})",
                lambda: dvc.run(project, "checkout", "data/big.bin.dvc"),
            )
        )
    for turn in range(reps):
        k = turn % len(steps)
        for label, fn in steps[k:] + steps[:k]:
            step(label, fn)
    big.unlink()
    cli.run(project, "restore", run_id, "--data-only", "--json")
    intact = same_file(big, pristine)

    restore_s = median(found[dotnb_label])
    synced = median(found["baseline: cp + sync FILE"])
    rows = []
    for label, values in found.items():
        value = median(values)
        goal = ""
        if label == dotnb_label:
            goal = judged(value <= 1.1 * synced, "≤ 1.1× cp + sync")
        elif label.startswith("peer"):
            goal = judged(restore_s < value, "dotnb faster than dvc checkout")
        rows.append(
            [
                f"{label} (median of {len(values)})",
                sec(value),
                ratio(value, synced),
                ratio(restore_s, value),
                goal,
            ]
        )
    if dvc is None:
        rows.append(["peer: dvc checkout (left out: --no-dvc, or --quick without --dvc)", "", "", "", ""])
    print_table(
        f"restore of a deleted {size // MiB} MiB file",
        ["", "s", "vs cp + sync", "dotnb / row", "goal"],
        rows,
    )
    print(f"   restored bytes equal the original: {'yes' if intact else 'NO'}")
    print()


# ---------------------------------------------------------------------------
# 4: restore of many modified small files


def many_modified(tmp: Path, cli: Cli, dvc_exe: Path | None, count: int) -> None:
    size = 4 * KiB
    project = tmp / "project"
    folder = project / "data" / "many"
    write_flat(folder, count, size)
    pristine = tmp / "many.copy"
    run_cmd(["cp", "-r", str(folder), str(pristine)])
    run_id, dvc = recorded_read(
        project, tmp, cli, dvc_exe, "many.ipynb", READ_MANY, "tracked read of the small files", "data/many"
    )
    hot = HotPages(tmp, 4 * count * size)
    hot.refill()
    copy = tmp / "copy"
    found: dict[str, list[float]] = {}
    intact: dict[str, bool] = {}

    def copy_step() -> None:
        hot.release()
        found.setdefault("baseline: cp -r + sync -f", []).append(
            timed(
                lambda: (run_cmd(["cp", "-r", str(pristine), str(copy)]), run_cmd(["sync", "-f", str(copy)]))
            )
        )
        remove_tree(copy)
        os.sync()
        hot.refill()

    def restore_step(label: str, fn: Callable[[], object]) -> None:
        rewrite_all(folder, size)
        hot.release()
        found.setdefault(label, []).append(timed(fn))
        hot.refill()
        intact[label] = same_tree(pristine, folder)

    dotnb_label = "dotnb restore RUN --data-only (CLI), checkpoint included"
    dvc_label = f"peer: dvc checkout --force ({LIKE_FOR_LIKE}; no checkpoint)"
    copy_step()
    restore_step(dotnb_label, lambda: cli.run(project, "restore", run_id, "--data-only", "--json"))
    if dvc is not None:
        restore_step(dvc_label, lambda: dvc.run(project, "checkout", "--force", "data/many.dvc"))
    copy_step()

    synced = median(found["baseline: cp -r + sync -f"])
    restore_s = median(found[dotnb_label])
    rows = []
    for label, values in found.items():
        value = median(values)
        goal = ""
        if label == dotnb_label:
            goal = judged(value <= 1.5 * synced, "≤ 1.5× cp -r + sync -f")
        rows.append(
            [
                f"{label} (median of {len(values)})",
                sec(value),
                ratio(value, synced),
                ratio(restore_s, value),
                goal,
            ]
        )
    if dvc is None:
        rows.append(["peer: dvc checkout (left out: --no-dvc, or --quick without --dvc)", "", "", "", ""])
    print_table(
        f"restore of {count:,} modified files of 4 KiB",
        ["", "s", "vs cp -r + sync -f", "dotnb / row", "goal"],
        rows,
    )
    print(
        "   restored bytes equal the original: "
        + ", ".join(f"{k.split(' (')[0]}: {'yes' if v else 'NO'}" for k, v in intact.items())
    )
    print()


# ---------------------------------------------------------------------------


def main() -> None:
    args = parse_args(__doc__ or "", extra_args)
    quick = args.quick
    use_dvc = not args.no_dvc and (args.dvc or not quick)
    if args.million:
        what = "1,000,000 files of 1 KiB in 1,000 folders"
    elif quick:
        what = "1,000 small files · 32 MiB · 500 files"
    else:
        what = "100,000 files of 1 KiB · 1 GiB · 10,000 files of 4 KiB"
    print_header(f"datasets: {what}", quick)
    if not use_dvc:
        print("   DVC rows left out (" + ("--no-dvc" if args.no_dvc else "--quick without --dvc") + ")")
    free = shutil.disk_usage(REPO)
    print(f"   free on the scratch disk: {size_text(free.free)}; dotnb CLI: python -m dotnb from {REPO}")
    dvc_exe = None
    if use_dvc:
        import peers

        dvc_exe = peers.dvc()
    print()
    start = time.perf_counter()
    with scratch("datasets") as tmp:
        cli = Cli(tmp / "pycache")
        if args.million:
            with_part(tmp, "million", lambda t: small_files(t, cli, None, 1000, 1000, 2, True))
        else:
            folders, per_folder = (10, 100) if quick else (100, 1000)
            parts = set(args.part or ["small", "big", "many"])
            if "small" in parts:
                with_part(
                    tmp,
                    "small",
                    lambda t: small_files(t, cli, dvc_exe, folders, per_folder, 2 if quick else 5, False),
                )
            if "big" in parts:
                with_part(
                    tmp, "big", lambda t: big_file(t, cli, dvc_exe, 32 * MiB if quick else 1024 * MiB, 2)
                )
            if "many" in parts:
                with_part(tmp, "many", lambda t: many_modified(t, cli, dvc_exe, 500 if quick else 10_000))
    print(f"total {time.perf_counter() - start:.0f} s, data created and deleted included")


def with_part(tmp: Path, name: str, fn: Callable[[Path], None]) -> None:
    """One scenario in a folder of its own, deleted before the next one starts (disk space)."""
    part = tmp / name
    part.mkdir()
    try:
        fn(part)
    finally:
        remove_tree(part)


if __name__ == "__main__":
    main()
