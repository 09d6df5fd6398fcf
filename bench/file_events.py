"""The two file-event sources side by side: dotnb's inotify reader and watchdog.

Three kernels in one project, each with dotnb loaded: ``DOTNB_FILE_EVENTS=inotify``,
``watchdog`` (watchdog's inotify observer, on Linux), and one that tracks nothing
(the baseline).  The same cells run in all three, interleaved (the order rotates
every round), and each kernel's added time is its round trip minus the baseline
kernel's in the same round (median of those differences):

1. a tracked cell that touches no file (``x = 1``); goal: watchdog ≤ 2× inotify;
2. a tracked cell writing 1,000 new files of 1 KiB; goal: watchdog ≤ 3× inotify.

A second table gives the drains themselves, timed inside each kernel: the median
``FileTracker.begin`` and ``FileTracker.end`` of the tracked cells (less swayed by
other processes than a round trip).

Both sources must record the same files: each tracked run's counts of inputs and
outputs (files, not the folders the run line shows) are compared across sources in
every round, and a round fails on any difference.
"""

from __future__ import annotations

from harness import (
    BenchKernel,
    KernelPhases,
    check_run,
    make_notebook,
    median,
    ms,
    parse_args,
    print_header,
    print_table,
    scratch,
)

SOURCES = ("inotify", "watchdog")
# The two drains of a tracked cell, timed inside the kernels.
DRAINS = [
    ("dotnb.capture.files", "FileTracker.begin", "begin"),
    ("dotnb.capture.files", "FileTracker.end", "end"),
]


def main() -> None:
    args = parse_args(__doc__ or "")
    rounds = 6 if args.quick else 30
    writes = 2 if args.quick else 8
    print_header("file events: the inotify reader and watchdog", args.quick)
    with scratch("file-events") as tmp:
        project = tmp / "project"
        project.mkdir()
        notebook = make_notebook(project / "bench.ipynb")
        kernels: dict[str, BenchKernel] = {}
        drains: dict[str, dict[str, dict[str, list[float]]]] = {}
        try:
            for source in SOURCES:  # the source is chosen by the environment the kernel starts with
                kernels[source] = BenchKernel(
                    project, notebook, {"DOTNB_ROOT": str(project), "DOTNB_FILE_EVENTS": source}
                )
                kernels[source].ok("%load_ext dotnb")
                check_run(kernels[source].ok("%%track\nwarm = 1"), f"{source} warm-up")
            base = BenchKernel(project, notebook, {"DOTNB_ROOT": str(project)})
            kernels["untracked"] = base
            base.ok("%load_ext dotnb")
            phases = {s: KernelPhases(kernels[s], DRAINS) for s in SOURCES}
            empty = measure(kernels, "x = 1", rounds, None, outputs=0)
            drains["empty"] = {s: phases[s].collect() for s in SOURCES}
            for source in SOURCES:
                phases[source].reset()
            many = measure(kernels, WRITE_CELL, writes, "folder = 'out/{name}_{round}'", outputs=1000)
            drains["many"] = {s: phases[s].collect() for s in SOURCES}
        finally:
            for kernel in kernels.values():
                kernel.shutdown()
    rows: list[list[str]] = []
    for title, found, goal in (
        ("a cell touching no file", empty, 2.0),
        ("a cell writing 1,000 files", many, 3.0),
    ):
        added = {s: median(found[s]) for s in SOURCES}
        if added["inotify"] > 0 and added["watchdog"] > 0:
            times = added["watchdog"] / added["inotify"]
            ratio_text = f"{times:.2f}x"
            verdict = f"{'MET' if times <= goal else 'NOT MET'} (watchdog ≤ {goal:g}× inotify)"
        else:
            # The untracked kernel was the slower one in most rounds: other processes.
            ratio_text, verdict = "-", "no verdict: an added time ≤ 0 (noise)"
        rows.append([title, ms(added["inotify"]), ms(added["watchdog"]), ratio_text, verdict])
    print_table(
        "added time over the untracked kernel (median of paired differences)",
        ["", "inotify ms", "watchdog ms", "watchdog / inotify", "goal"],
        rows,
    )
    print()
    print_table(
        "the drains inside the kernel (median ms of FileTracker.begin and .end per tracked cell)",
        ["", "inotify begin", "inotify end", "watchdog begin", "watchdog end"],
        [
            [title, *(ms(median(drains[case][s][step]), 3) for s in SOURCES for step in ("begin", "end"))]
            for title, case in (("a cell touching no file", "empty"), ("a cell writing 1,000 files", "many"))
        ],
    )


WRITE_CELL = """import os
os.makedirs(folder, exist_ok=True)
for i in range(1000):
    with open(os.path.join(folder, f"{i}.bin"), "wb") as f:
        f.write(b"x" * 1024)
"""


def measure(
    kernels: dict[str, BenchKernel], body: str, rounds: int, setup: str | None, outputs: int
) -> dict[str, list[float]]:
    """Added seconds per round for each source (its round trip minus the untracked one);
    ``setup`` (formatted with the kernel's name and the round) runs untimed before; every
    tracked run must record ``outputs`` outputs, and the same inputs count as the other's."""
    added: dict[str, list[float]] = {s: [] for s in SOURCES}
    order = [*SOURCES, "untracked"]
    for i in range(rounds):
        times: dict[str, float] = {}
        counts: dict[str, tuple[object, object]] = {}
        for name in order[i % len(order) :] + order[: i % len(order)]:
            if setup is not None:
                kernels[name].ok(setup.format(name=name, round=i))
            code = body if name == "untracked" else f"%%track\n{body}"
            res = kernels[name].ok(code)
            times[name] = res.seconds
            if name != "untracked":
                check_run(res, name)
                run = res.run or {}
                # The run line's lists collapse a folder into one entry: the counts are per file.
                counts[name] = (run.get("input_count"), run.get("output_count"))
        for source in SOURCES:
            added[source].append(times[source] - times["untracked"])
        if len(set(counts.values())) != 1 or any(found != outputs for _, found in counts.values()):
            raise RuntimeError(f"(inputs, outputs) recorded: {counts}; {outputs} outputs expected from each")
    return added


if __name__ == "__main__":
    main()
