"""Time a tracked cell adds when it reads many small files: first snapshot and unchanged re-run.

A folder of 10,000 files of 4 KiB (1,000 with ``--quick``), written before the
kernel starts with mtimes 30 s in the past, is read by one cell (a loop of
``open().read()``).  Warm cache throughout.

- First snapshot: tracked − median untracked, against copying the folder in
  this run: ``cp -r``, ``cp -r`` + ``sync -f`` (one syncfs), and a Python loop
  that copies and fsyncs each file (the least a durable content store does).
- Unchanged re-run: 3 interleaved pairs; the added time (round trip, and
  inside dotnb's hooks) against a bare ``os.stat`` loop over the same files in
  this process (the least a stat-cache check must do).

The issue sets no numeric goal here; the ratios are the figures to watch.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness import (
    PHASE_HEADERS,
    RERUN_HEADERS,
    HookClock,
    HotPages,
    KernelHotPages,
    KernelPhases,
    age,
    check_run,
    make_notebook,
    median,
    ms,
    parse_args,
    percentile,
    print_header,
    print_table,
    ratio,
    remove_tree,
    rerun_rows,
    run_cmd,
    scratch,
    start_tracking_kernel,
    timed,
    write_small_files,
)

FILE_SIZE = 4096
SETUP = "import os\n_names = sorted(os.path.join('data/many', n) for n in os.listdir('data/many'))"
READ = "for _n in _names:\n    with open(_n, 'rb') as _f:\n        _f.read()"
TRACKED = "%%track\n" + READ


def copy_baselines(
    src: Path, dest: Path, reps: int, fsync_loop: bool, hot: HotPages
) -> dict[str, list[float]]:
    def cp_r() -> None:
        run_cmd(["cp", "-r", str(src), str(dest)])

    def cp_r_sync() -> None:
        run_cmd(["cp", "-r", str(src), str(dest)])
        run_cmd(["sync", "-f", str(dest)])

    def copy_fsync_each() -> None:
        dest.mkdir()
        for entry in os.scandir(src):
            target = dest / entry.name
            shutil.copyfile(entry.path, target)
            fd = os.open(target, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dest, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    steps = [("cp -r", cp_r), ("cp -r + sync -f", cp_r_sync)]
    found: dict[str, list[float]] = {}
    if fsync_loop:
        steps.append(("copy + fsync each file (Python)", copy_fsync_each))
    for turn in range(reps):
        for label, fn in steps[turn % 2 :] + steps[: turn % 2]:
            hot.release()
            found.setdefault(label, []).append(timed(fn))
            remove_tree(dest)
            hot.refill()
    return found


def stat_loop(paths: list[str]) -> None:
    for p in paths:
        os.stat(p)


def main() -> None:
    args = parse_args(__doc__ or "")
    count = 1_000 if args.quick else 10_000
    reruns = 3
    print_header(
        f"many files: {count:,} files of {FILE_SIZE // 1024} KiB read by one tracked cell", args.quick
    )
    with scratch("many-files") as tmp:
        project = tmp / "project"
        folder = project / "data" / "many"
        paths = write_small_files(folder, count, FILE_SIZE)
        notebook = make_notebook(project / "many.ipynb")
        age([*paths, notebook])
        abs_paths = [str(p) for p in paths]

        kernel = start_tracking_kernel(project, notebook)
        try:
            kernel.ok(SETUP)
            phases = KernelPhases(kernel)
            base = [kernel.ok(READ).seconds for _ in range(3)]
            hot = HotPages(tmp, 4 * count * FILE_SIZE)
            hot.refill()
            kernel_hot = KernelHotPages(kernel, hot, [("dotnb.store.objects", "ObjectStore._tempfile")])
            copies = copy_baselines(folder, tmp / "copy", 1, False, hot)

            phases.reset()
            kernel_hot.arm()
            first = kernel.ok(TRACKED)
            released = kernel_hot.spent()
            first.seconds -= released
            first_line = check_run(first, "first tracked read")
            first_inputs = len((first.run or {}).get("inputs") or [])
            first_phases = phases.rows(1)
            hot.refill()

            base += [kernel.ok(READ).seconds for _ in range(3)]
            for label, values in copy_baselines(folder, tmp / "copy", 1, True, hot).items():
                copies.setdefault(label, []).extend(values)

            kernel.ok(TRACKED)  # the first re-run: the stat cache is read for the first time
            clock = HookClock(kernel)
            phases.reset()
            clock.reset()
            rerun_tracked: list[float] = []
            rerun_base: list[float] = []
            stats: list[float] = []
            for i in range(reruns):
                pair = [(TRACKED, rerun_tracked), (READ, rerun_base)]
                if i % 2:
                    pair.reverse()
                for code, sink in pair:
                    sink.append(kernel.ok(code).seconds)
                stats.append(timed(lambda: stat_loop(abs_paths)))
            rerun_phases = phases.rows(reruns)
            rerun_hooks = clock.collect()
            rerun_res = kernel.ok(TRACKED)
            rerun_line = check_run(rerun_res, "tracked re-read")
        finally:
            kernel.shutdown()

    untracked = median(base)
    added_first = first.seconds - untracked
    rows = [
        [f"untracked read (median of {len(base)})", ms(untracked, 1), "", ""],
        ["tracked read, first snapshot", ms(first.seconds, 1), ms(added_first, 1), ""],
    ]
    for label, values in copies.items():
        rows.append(
            [
                f"baseline: {label} (median of {len(values)})",
                ms(median(values), 1),
                "",
                ratio(added_first, median(values)),
            ]
        )
    print_table(
        f"first snapshot of {count:,} new files ({first_inputs:,} inputs recorded)",
        ["", "ms", "added ms", "added / baseline"],
        rows,
    )
    print(f"   ballast deletion inside the cell, subtracted: {ms(released, 1)} ms")
    print()
    print_table("  where the first snapshot's time goes (in the kernel)", PHASE_HEADERS, first_phases)

    stat_median = median(stats)
    rows = rerun_rows(rerun_tracked, rerun_base, rerun_hooks, None)
    for row in rows[2:]:
        row[4] = ratio(float(row[3]) / 1000, stat_median) if row[3] else ""
    rows.append(
        [f"baseline: os.stat loop over {count:,} files", ms(stat_median), ms(percentile(stats, 90)), "", ""]
    )
    print_table(
        f"unchanged re-run ({reruns} interleaved pairs)",
        [*RERUN_HEADERS[:4], "added / stat loop"],
        rows,
    )
    print_table(
        f"  where the re-run's time goes (in the kernel, {reruns} cells)", PHASE_HEADERS, rerun_phases
    )
    print(f"first run:  {first_line}")
    print(f"re-run:     {rerun_line}")


if __name__ == "__main__":
    main()
