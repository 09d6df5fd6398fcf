"""Time a tracked cell adds when it reads one large new input, and when it reads it again unchanged.

The input (512 MiB of random bytes; 32 MiB with ``--quick``) is written and
fsynced before the kernel starts, and its mtime is set 30 s in the past so the
stat cache's 2 s racy-clean window does not apply.  The cell reads it in 8 MiB
chunks (``readinto``, no hashing).  Every figure is warm-cache: the page cache
cannot be dropped here.

- First snapshot, once for each of 5 files (1 with ``--quick``): the tracked
  cell's added time (tracked − median untracked) against copying the same file
  in this run, before and after: ``shutil.copyfile`` + ``os.fsync``, ``cp`` +
  ``os.fsync``, and ``cp`` alone (order rotated).  Each copy, and dotnb's copy
  into the store, starts with just-freed pages (``harness.HotPages``).
  Goal: added ≤ 1.5× copyfile + fsync.
- Unchanged re-run: 15 interleaved pairs (3 with ``--quick``).  Reading 512 MiB
  varies by tens of ms, more than the goal, so the time inside dotnb's own
  hooks (tracked − untracked) is shown next to the round trips.
  Goal: added ≤ 5 ms.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness import (
    PHASE_HEADERS,
    PHASES,
    RERUN_HEADERS,
    BenchKernel,
    HookClock,
    HotPages,
    KernelHotPages,
    KernelPhases,
    MiB,
    age,
    check_run,
    fsync_path,
    make_notebook,
    median,
    merge_phases,
    ms,
    parse_args,
    phase_rows,
    print_header,
    print_table,
    ratio,
    rerun_rows,
    run_cmd,
    scratch,
    start_tracking_kernel,
    timed,
    verdict,
    write_random_file,
)

FIRST_GOAL_RATIO = 1.5
RERUN_GOAL_S = 0.005

# The harness's steps, plus the copy of each new file into the store (inside
# Store.snapshot_files, which also holds the ballast deletion subtracted below).
_AFTER = next((i + 1 for i, (_, attr, _) in enumerate(PHASES) if attr == "Store.snapshot_files"), len(PHASES))
STEPS = [
    *PHASES[:_AFTER],
    ("dotnb.store.objects", "copy_hashed", "    objects.copy_hashed (copy, hash, fsync of a new file)"),
    *PHASES[_AFTER:],
]


def read_cell(name: str, tracked: bool) -> str:
    code = (
        f"with open('data/{name}', 'rb', buffering=0) as _f:\n"
        "    while _f.readinto(_dotnb_bench_buf):\n"
        "        pass"
    )
    return "%%track\n" + code if tracked else code


COPY_LABELS = ("shutil.copyfile + fsync", "cp + fsync", "cp (no fsync)")


def copy_once(src: Path, dest_dir: Path, found: dict[str, list[float]], hot: HotPages, turn: int) -> None:
    """One copy of ``src`` per baseline (order rotated by ``turn``), each from the same start."""
    dest = dest_dir / "copy.bin"

    def copyfile_fsync() -> None:
        shutil.copyfile(src, dest)
        fsync_path(dest)

    def cp_fsync() -> None:
        run_cmd(["cp", str(src), str(dest)])
        fsync_path(dest)

    def cp_only() -> None:
        run_cmd(["cp", str(src), str(dest)])

    steps = list(zip(COPY_LABELS, (copyfile_fsync, cp_fsync, cp_only), strict=True))
    steps = steps[turn % len(steps) :] + steps[: turn % len(steps)]
    for label, fn in steps:
        hot.release()
        found.setdefault(label, []).append(timed(fn))
        dest.unlink()
        hot.refill()


def run_cells(kernel: BenchKernel, code: str, n: int) -> list[float]:
    return [kernel.ok(code).seconds for _ in range(n)]


def main() -> None:
    args = parse_args(__doc__ or "")
    size = 32 * MiB if args.quick else 512 * MiB
    files = 1 if args.quick else 5
    reruns = 3 if args.quick else 15
    print_header(
        f"large input: a new {size // MiB} MiB file read by a tracked cell "
        f"({files} file(s), one first snapshot each)",
        args.quick,
    )
    with scratch("large-input") as tmp:
        project, copies = tmp / "project", tmp / "copies"
        copies.mkdir()
        names = [f"big{i}.bin" for i in range(files)]
        for name in names:
            write_random_file(project / "data" / name, size)
        notebook = make_notebook(project / "large.ipynb")
        age([*(project / "data" / n for n in names), notebook])

        kernel = start_tracking_kernel(project, notebook)
        try:
            kernel.ok("_dotnb_bench_buf = bytearray(8 << 20)")
            hot = HotPages(tmp, size + size // 4)
            hot.refill()
            # Released when dotnb starts copying the input into the store.
            kernel_hot = KernelHotPages(kernel, hot, [("dotnb.store.objects", "ObjectStore._tempfile")])
            released: list[float] = []
            phases = KernelPhases(kernel, STEPS)
            untracked: list[float] = []
            tracked_first: list[float] = []
            added_first: list[float] = []
            copies_found: dict[str, list[float]] = {}
            first_phase_values: list[dict[str, list[float]]] = []
            first_line = ""
            # Per file: untracked reads, copies, the first snapshot, copies again:
            # each baseline is measured next to the operation it is compared with.
            for i, name in enumerate(names):
                base = run_cells(kernel, read_cell(name, tracked=False), 3)
                untracked += base
                copy_once(project / "data" / name, copies, copies_found, hot, 2 * i)
                phases.reset()
                kernel_hot.arm()
                first = kernel.ok(read_cell(name, tracked=True))
                released.append(kernel_hot.spent())
                first_line = check_run(first, f"first tracked read of {name}")
                first_phase_values.append(phases.collect())
                tracked_first.append(first.seconds - released[-1])
                added_first.append(tracked_first[-1] - median(base))
                hot.refill()
                copy_once(project / "data" / name, copies, copies_found, hot, 2 * i + 1)

            rerun_code, rerun_base_code = read_cell(names[0], True), read_cell(names[0], False)
            run_cells(kernel, rerun_code, 1)
            clock = HookClock(kernel)
            phases.reset()
            clock.reset()
            rerun_tracked: list[float] = []
            rerun_base: list[float] = []
            for i in range(reruns):
                pair = [(rerun_code, rerun_tracked), (rerun_base_code, rerun_base)]
                if i % 2:
                    pair.reverse()
                for code, sink in pair:
                    sink.append(kernel.ok(code).seconds)
            rerun_phases = phases.rows(reruns)
            rerun_hooks = clock.collect()
            rerun_line = check_run(kernel.ok(rerun_code), "tracked re-read")
        finally:
            kernel.shutdown()
        store_objects = sum(len(found) for _, _, found in os.walk(project / ".dotnb" / "objects"))

    copy_fsync = median(copies_found[COPY_LABELS[0]])
    added = median(added_first)
    rows = [
        [f"untracked read (median of {len(untracked)})", ms(median(untracked), 1), "", "", ""],
        [
            f"tracked read, first snapshot (median of {files})",
            ms(median(tracked_first), 1),
            ms(added, 1),
            "",
            "",
        ],
    ]
    for label, values in copies_found.items():
        reference = median(values)
        rows.append(
            [
                f"baseline: {label} (median of {len(values)})",
                ms(reference, 1),
                "",
                ratio(added, reference),
                "",
            ]
        )
    rows.append(
        [
            "goal: added ≤ 1.5× copyfile + fsync",
            "",
            ms(FIRST_GOAL_RATIO * copy_fsync, 1),
            ratio(added, copy_fsync),
            verdict(added, FIRST_GOAL_RATIO * copy_fsync),
        ]
    )
    print_table(
        f"first snapshot of a new {size // MiB} MiB input",
        ["", "ms", "added ms", "added / baseline", "goal"],
        rows,
    )
    print(f"   added per file: {', '.join(ms(a, 0) for a in added_first)} ms")
    print(f"   ballast deletion inside the cell, subtracted: {', '.join(ms(r, 0) for r in released)} ms")
    print()
    print_table(
        f"  where the first snapshot's time goes (in the kernel, {files} cells)",
        PHASE_HEADERS,
        phase_rows(merge_phases(first_phase_values), files, STEPS),
    )

    print_table(
        f"unchanged re-run ({reruns} interleaved pairs)",
        RERUN_HEADERS,
        rerun_rows(rerun_tracked, rerun_base, rerun_hooks, RERUN_GOAL_S),
    )
    print_table(
        f"  where the re-run's time goes (in the kernel, {reruns} cells)",
        PHASE_HEADERS,
        rerun_phases,
    )
    print(f"first run:  {first_line}")
    print(f"re-run:     {rerun_line}")
    print(f"objects in the store: {store_objects} ({files} input(s) once each, plus code and manifests)")


if __name__ == "__main__":
    main()
