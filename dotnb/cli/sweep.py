"""``dotnb sweep``: the command-line face of :mod:`dotnb.sweep`."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

from dotnb.cli.args import Commands, non_negative_int, open_store, positive_float, root_arg
from dotnb.cli.exits import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, error
from dotnb.cli.output import emit_json, out
from dotnb.cli.progress import StatusLine

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator
    from typing import Any, TextIO

    from dotnb.store.repo import Store
    from dotnb.sweep.driver import SweepReport

# Defaults a site can set once for every sweep (a cluster the team shares).
SCHEDULER_ENV = "DOTNB_SWEEP_SCHEDULER"
WORKERS_ENV = "DOTNB_SWEEP_WORKERS"
MEMORY_ENV = "DOTNB_SWEEP_MEMORY_LIMIT"


def add_sweep(commands: Commands) -> None:
    p = commands.add(
        "sweep",
        cmd_sweep,
        "run a notebook for many parameter values on a Dask cluster",
        """
        Execute NOTEBOOK, or the notebook of a past RUN with that run's exact input
        bytes, once per point of a parameter space, each point as `dotnb run -p` would
        run it in a clean work folder on a Dask worker.  The tracked cells' runs are
        recorded in this store with the point's values as params and the tag
        sweep:<id>, so `dotnb log --tag sweep:<id>` lists a sweep.

        -p NAME=V1,V2,… gives a list of values (Python literals), -p NAME=A:B:N N
        values evenly spaced from A to B, -p NAME=A:B:log:N N values evenly spaced in
        log scale.  Every NAME must be assigned by the notebook's cell tagged
        'parameters'.  --grid (the default) runs every combination; --random N runs N
        distinct random points (ranges sampled continuously), reproducible with --seed.

        Without --scheduler a local Dask cluster of worker processes is started (one
        per core, or --workers N) and they record into this store directly.
        --scheduler ADDRESS uses a running cluster (dask-jobqueue, dask-kubernetes,
        a hosted service); with --remote NAME its workers share no disk with this
        machine: they read inputs from that team remote (hash-checked), push their
        runs to it, and the runs are pulled here as points finish.  Without --remote
        the workers must see this project's folder (a shared file system).

        A progress line on stderr shows done, failed and running points and the best
        value of --metric so far.  A point whose cell fails is recorded (status error)
        and counts against --max-failures; past it, the points not yet finished are
        cancelled.  Ctrl-C cancels what has not finished.  A worker that dies has its
        point run again elsewhere, without a second run being recorded.
        """,
        f"""
        exit status: 0 every point ran; 1 a point failed or was cancelled; 2 the sweep
        could not start (bad -p, unknown param, empty space, no such notebook or run,
        unreachable scheduler, unknown remote); 130 interrupted.

        Defaults for --scheduler, --workers and --memory-limit come from
        ${SCHEDULER_ENV}, ${WORKERS_ENV} and ${MEMORY_ENV}, else from
        c.Dotnb.sweep_scheduler, sweep_workers and sweep_memory_limit in the Jupyter
        server's configuration (jupyter_server_config.py or .json).

        examples:
          dotnb sweep train.ipynb -p lr=1e-4:1e-1:log:4 -p depth=2,4,8
          dotnb sweep '#12' --notebook train.ipynb -p C=0.1,1,10 --workers 2
          dotnb sweep latest -p lr=1e-4:1e-1:log:5 -p batch=32,64 --random 6 --seed 1
          dotnb sweep latest -p seed=0,1,2,3 --scheduler tcp://10.0.0.5:8786 --remote origin
          dotnb sweep train.ipynb -p lr=0.1,0.3 --json | jq .best
        """,
        commands.json,
        commands.notebook,
    )
    p.add_argument(
        "source", metavar="NOTEBOOK|RUN", help="a notebook file, or a run whose notebook and inputs to use"
    )
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="values of a parameter: V1,V2,… or A:B:N or A:B:log:N (repeatable)",
    )
    space = p.add_mutually_exclusive_group()
    space.add_argument("--grid", action="store_true", help="every combination of the values (default)")
    space.add_argument("--random", metavar="N", type=non_negative_int, help="N distinct random points")
    p.add_argument(
        "--seed", metavar="S", type=int, default=None, help="seed of --random (default: a new one)"
    )
    cluster = p.add_mutually_exclusive_group()
    cluster.add_argument(
        "--workers", metavar="N", type=non_negative_int, help="local worker processes (default: one per core)"
    )
    cluster.add_argument("--scheduler", metavar="ADDRESS", help="address of a running Dask scheduler")
    p.add_argument(
        "--memory-limit",
        metavar="SIZE",
        help="memory limit per local worker, e.g. 2GiB (default: a share of RAM)",
    )
    p.add_argument(
        "--remote", metavar="NAME", help="team remote the --scheduler workers exchange runs through"
    )
    p.add_argument(
        "--max-failures",
        metavar="K",
        type=non_negative_int,
        help="cancel the rest once more than K points fail",
    )
    p.add_argument(
        "--metric", metavar="NAME", help="metric to rank points by (default: the first one reported)"
    )
    p.add_argument("--minimize", action="store_true", help="lower --metric is better (default: higher)")
    p.add_argument("--kernel", metavar="NAME", help="kernel to use (default: the notebook's kernelspec)")
    p.add_argument(
        "--timeout", metavar="SECONDS", type=positive_float, help="stop a cell running longer than this"
    )


COMMANDS = {"sweep": add_sweep}


class SweepProgress(StatusLine):
    """``sweep 3/8 done, 1 failed, 2 running, best acc=0.93 (lr=0.1)``."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.report: SweepReport | None = None
        self.shown = ""

    def __call__(self, report: Any) -> None:  # a SweepReport, not a count
        self.report = report
        # The final state is shown by finish(); a line is redrawn only when it changed.
        if self.changed_since_shown():
            self.update()

    def changed_since_shown(self) -> bool:
        return self._line() != self.shown

    def text(self, elapsed: float) -> str:
        self.shown = self._line()
        return self.shown

    def _line(self) -> str:
        from dotnb.cli.render import format_sweep_line

        report = self.report
        return "" if report is None else format_sweep_line(report.as_json(), len(report.running))


def cmd_sweep(args: argparse.Namespace) -> int:
    from dotnb.cli.render import format_sweep
    from dotnb.remote.config import get_remote
    from dotnb.store.errors import DotnbError
    from dotnb.store.vocabulary import EXIT_COULD_NOT_RUN
    from dotnb.sweep.driver import BadSweep, plan_sweep, run_sweep
    from dotnb.sweep.settings import jupyter_settings

    # An option, else an environment variable, else c.Dotnb.sweep_* of the Jupyter config.
    configured = jupyter_settings()
    scheduler = args.scheduler or (
        None if args.workers else os.environ.get(SCHEDULER_ENV) or configured.scheduler
    )
    workers = args.workers or _int_env(WORKERS_ENV) or configured.workers
    memory_limit = args.memory_limit or os.environ.get(MEMORY_ENV) or configured.memory_limit
    progress = SweepProgress(sys.stderr)
    report = None
    try:
        with _sweep_store(args) as store:
            base, points = plan_sweep(store, args.source, args.param, args.random, args.seed)
            remote = None
            if args.remote or scheduler:
                remote = get_remote(store, args.remote) if args.remote else None
            if remote is not None and not scheduler:
                raise BadSweep("--remote needs --scheduler: local workers share this store")
            report_box: list[SweepReport] = []

            def changed(r: SweepReport) -> None:
                if not report_box:
                    report_box.append(r)
                    if r.dashboard and not args.json:
                        print(
                            f"sweep {r.sweep_id}: {len(r.points)} points, dashboard {r.dashboard}",
                            file=sys.stderr,
                        )
                progress(r)

            cancel = threading.Event()
            try:
                with _ctrl_c_cancels(cancel):
                    report = run_sweep(
                        store,
                        base,
                        points,
                        scheduler=scheduler,
                        workers=workers,
                        memory_limit=memory_limit,
                        remote=remote,
                        max_failures=args.max_failures,
                        metric=args.metric,
                        goal="min" if args.minimize else "max",
                        kernel_name=args.kernel,
                        timeout=args.timeout,
                        on_change=changed,
                        cancel=cancel,
                    )
            except KeyboardInterrupt:
                progress.finish()
                if report_box:
                    _emit(args, report_box[0], format_sweep)
                raise
    except (DotnbError, OSError) as exc:
        progress.finish()
        from dotnb.cli.exits import os_error_message

        error(os_error_message(exc) if isinstance(exc, OSError) else str(exc))
        return EXIT_COULD_NOT_RUN
    progress.finish()
    _emit(args, report, format_sweep)
    if report.stopped == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_OK if report.count("ok") == len(report.points) else EXIT_ERROR


@contextlib.contextmanager
def _ctrl_c_cancels(cancel: threading.Event) -> Iterator[None]:
    """Ctrl-C sets ``cancel``: the sweep cancels its unfinished points and ends as
    interrupted.  A KeyboardInterrupt raised wherever the main thread happens to be
    (inside Dask's client, waiting on its event loop) could leave the client unable
    to cancel or close, and the command hung.  A second Ctrl-C raises at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def asked(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("dotnb sweep: cancelling the points not finished (Ctrl-C again to stop now)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, asked)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _sweep_store(args: argparse.Namespace) -> Iterator[Store]:
    """The store: a notebook's as ``dotnb run`` finds it (created if need be), else as any
    command finds it."""
    from pathlib import Path

    if not args.source.endswith(".ipynb"):
        with open_store(args) as store:
            yield store
        return
    from dotnb.headless.execute import project_root
    from dotnb.store.repo import Store

    root = root_arg(args)
    store = Store.init(project_root(Path(os.path.abspath(args.source)), Path(root) if root else None))
    try:
        yield store
    finally:
        store.close()


def _emit(args: argparse.Namespace, report: SweepReport, format_sweep: Any) -> None:
    doc = report.as_json()
    if args.json:
        emit_json(doc)
    else:
        for line in format_sweep(doc):
            out(line)


def _int_env(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None
