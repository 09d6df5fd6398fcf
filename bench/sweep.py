"""``dotnb sweep``: what a point costs beyond ``dotnb run``, and what two workers gain.

1. Scheduling overhead per task.  A notebook whose cells do nothing (a parameters
   cell and one ``%%track`` cell ``y = x``): ``run_notebook`` in this process
   (what ``dotnb run`` does once its imports are done), median of N, against a
   sweep of N points on an already started ``LocalCluster`` of one worker
   process, so the points run one after another: the sweep's wall time per
   point.  The difference is what the sweep adds per task (submit, a work
   folder, the run imported into the project's store and tagged, the result
   back).  The cluster's start is shown apart: it is paid once per sweep.
   Goal: ≤ 150 ms per task.
2. Eight CPU-bound points (a cell summing squares, about a second each) as a
   ``dotnb sweep --workers 2`` process (the cluster's start included) against
   eight ``dotnb run -p`` processes one after another.  Goal on this 2-core
   machine: ≤ 0.6× the sequential time.
3. Remote requests and bytes per task, for ``--scheduler … --remote``: points run
   one after another in this process (``run_point`` as a worker runs it; the
   requests are the same on any worker) against a ``file://`` remote whose
   backend calls are counted, a listing counted as one S3 LIST per 1,000 keys.
   The base run (a notebook reading a 1 MiB input) is pushed first.  The first
   and the last point are shown apart: each task pulls the remote's runs into a
   scratch store, so its requests grow with the runs already there.  The
   client's pull after each point is counted too.  No goal: the figures feed the
   cost model in docs/sweeps.md.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness import median, ms, parse_args, print_header, print_table, ratio, run_cmd, scratch, verdict

from dotnb.headless.execute import run_notebook
from dotnb.store.repo import Store
from dotnb.sweep.driver import run_sweep, sweep_base

OVERHEAD_GOAL_S = 0.150
SPEEDUP_GOAL = 0.6
DOTNB = str(Path(sys.executable).with_name("dotnb"))


def notebook(path: Path, body: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("x = 0\nwork = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(f"%%track\n{body}\n"),
    ]
    nbformat.write(nb, path)
    return path


def overhead(root: Path, points: int) -> None:
    from distributed import LocalCluster

    nb = notebook(root / "noop.ipynb", "y = x")
    Store.init(root).close()
    run_notebook(nb, params={"x": -1}, root=root)  # warm the page cache and imports
    alone = [time_run(nb, root, i) for i in range(points)]

    began = time.perf_counter()
    cluster = LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    )
    started = time.perf_counter() - began
    try:
        store = Store(root)
        try:
            base, _ = sweep_base(store, str(nb))
            run_sweep(store, base, [{"x": -2}], scheduler=cluster.scheduler_address)  # the worker's imports
            report = run_sweep(
                store, base, [{"x": i} for i in range(points)], scheduler=cluster.scheduler_address
            )
        finally:
            store.close()
    finally:
        cluster.close()
    assert report.count("ok") == points, report.as_json()
    per_task = report.duration_s / points
    in_task = statistics.median(o.duration_s for o in report.outcomes.values())
    added = per_task - median(alone)
    print_table(
        f"1. a no-op notebook: {points} runs alone, then {points} points on one worker",
        ["what", "ms", "vs run alone"],
        [
            ["run_notebook alone (median)", ms(median(alone), 0), "1.00x"],
            ["sweep, wall time per point", ms(per_task, 0), ratio(per_task, median(alone))],
            ["  of which inside the task (median)", ms(in_task, 0), ratio(in_task, median(alone))],
            ["LocalCluster start (once per sweep)", ms(started, 0), "-"],
        ],
    )
    goal = f"goal: ≤ {ms(OVERHEAD_GOAL_S, 0)} ms"
    print(f"added per task: {ms(added, 0)} ms   {goal}   {verdict(added, OVERHEAD_GOAL_S)}")
    print()


def time_run(nb: Path, root: Path, i: int) -> float:
    began = time.perf_counter()
    result = run_notebook(nb, params={"x": i}, root=root)
    assert result.failed is None and result.runs
    return time.perf_counter() - began


def speedup(root: Path, points: int, work: int) -> None:
    nb = notebook(
        root / "cpu.ipynb", "import dotnb\ntotal = sum(i * i for i in range(int(work)))\ndotnb.metric('t', x)"
    )
    Store.init(root).close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOTNB_", "JPY_"))}
    began = time.perf_counter()
    for i in range(points):
        run_cmd([DOTNB, "run", str(nb), "-p", f"x={i}", "-p", f"work={work}"], cwd=root, env=env)
    sequential = time.perf_counter() - began

    values = ",".join(str(i) for i in range(points))
    began = time.perf_counter()
    proc = run_cmd(
        [DOTNB, "sweep", str(nb), "-p", f"x={values}", "-p", f"work={work}", "--workers", "2", "--json"],
        cwd=root,
        env=env,
    )
    swept = time.perf_counter() - began
    doc = json.loads(proc.stdout)
    assert doc["ok"] == points, doc
    share = swept / sequential
    print_table(
        f"2. {points} CPU-bound points (work={work:,})",
        ["what", "s", "vs sequential"],
        [
            [f"{points} x dotnb run, one after another", f"{sequential:.2f}", "1.00x"],
            ["dotnb sweep --workers 2 (cluster start included)", f"{swept:.2f}", ratio(swept, sequential)],
        ],
    )
    print(f"sweep / sequential: {share:.2f}x   goal: ≤ {SPEEDUP_GOAL}x   {verdict(share, SPEEDUP_GOAL)}")
    print()


class RequestCounter:
    """Counts the remote backend's requests and bytes (every ``Backend`` method wrapped)."""

    def __init__(self) -> None:
        from dotnb.remote.backend import LocalBackend

        self.requests: dict[str, int] = {}
        self.bytes_in = 0
        self.bytes_out = 0
        counter = self

        def wrap(name: str, size_of: Callable[[tuple[Any, ...], Any], tuple[int, int]]) -> None:
            orig = getattr(LocalBackend, name)

            def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
                result = orig(self, *args, **kwargs)
                counter.add(name)
                down, up = size_of(args, result)
                counter.bytes_in += down
                counter.bytes_out += up
                return result

            setattr(LocalBackend, name, counted)

        def length(value: Any) -> int:
            return len(value) if isinstance(value, (bytes, bytearray)) else 0

        wrap("read", lambda a, r: (length(r), 0))
        wrap("read_range", lambda a, r: (length(r), 0))
        wrap("exists", lambda a, r: (0, 0))
        wrap("write", lambda a, r: (0, length(a[1])))
        wrap("upload", lambda a, r: (0, os.path.getsize(a[0])))
        wrap("download", lambda a, r: (os.path.getsize(a[1]) if r else 0, 0))
        orig_list = LocalBackend.list_sized

        def listed(self: Any, prefix: str, start_after: str | None = None) -> Iterator[tuple[str, int]]:
            keys = list(orig_list(self, prefix, start_after))
            counter.add("list", max(1, -(-len(keys) // 1000)))
            yield from keys

        LocalBackend.list_sized = listed  # type: ignore[method-assign]

    def add(self, name: str, n: int = 1) -> None:
        self.requests[name] = self.requests.get(name, 0) + n

    def take(self) -> tuple[dict[str, int], int, int]:
        taken = (dict(self.requests), self.bytes_in, self.bytes_out)
        self.requests, self.bytes_in, self.bytes_out = {}, 0, 0
        return taken


def remote_costs(root: Path, points: int) -> None:
    from dotnb.remote.config import add_remote, get_remote
    from dotnb.remote.transfer import pull, push
    from dotnb.sweep.task import PointTask, run_point

    project, remote = root / "project", root / "remote"
    remote.mkdir()
    (project / "data").mkdir(parents=True)
    (project / "data" / "base.bin").write_bytes(os.urandom(1024 * 1024))
    nb = notebook(
        project / "read.ipynb",
        "import dotnb\ndata = open('data/base.bin', 'rb').read()\ndotnb.metric('m', x)",
    )
    result = run_notebook(nb, params={"x": -1}, root=project)
    base_run = result.runs[-1]["id"]
    store = Store(project)
    counter = RequestCounter()
    rows = []
    try:
        add_remote(store, "team", remote.as_uri())
        spec = get_remote(store, "team")
        push(store, "team", runs=[base_run])
        counter.take()
        base, _ = sweep_base(store, base_run)
        for i in range(points):
            outcome = run_point(PointTask("bench", i, {"x": i}, base, remote=spec))
            assert outcome.status == "ok", outcome
            task = counter.take()
            pull(store, "team")
            client = counter.take()
            if i in (0, points - 1):
                rows.append((i, task, client))
    finally:
        store.close()
    table = []
    for i, (task_requests, task_in, task_out), (client_requests, client_in, _) in rows:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(task_requests.items()))
        table.append(
            [f"point {i + 1} task", sum(task_requests.values()), f"{task_in:,}", f"{task_out:,}", shown]
        )
        shown = ", ".join(f"{k} {v}" for k, v in sorted(client_requests.items()))
        table.append(
            [f"point {i + 1} client pull", sum(client_requests.values()), f"{client_in:,}", "0", shown]
        )
    print_table(
        f"3. remote requests per point, {points} points one after another (1 MiB input, 1 run per point)",
        ["what", "requests", "bytes down", "bytes up", "by kind"],
        table,
    )


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    print_header("dotnb sweep", args.quick)
    with scratch("sweep-overhead") as root:
        overhead(root, 3 if args.quick else 10)
    with scratch("sweep-speedup") as root:
        speedup(root, 2 if args.quick else 8, 100_000 if args.quick else 15_000_000)
    with scratch("sweep-remote") as root:
        remote_costs(root, 2 if args.quick else 10)


if __name__ == "__main__":
    main()
