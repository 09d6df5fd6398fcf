"""``dotnb run`` and ``dotnb reproduce``: the command-line face of :mod:`dotnb.headless`."""

from __future__ import annotations

import sys

from dotnb.cli.args import (
    Commands,
    non_negative_float,
    open_store,
    param_option,
    positive_float,
    resolve_run,
    root_arg,
)
from dotnb.cli.exits import EXIT_ERROR, EXIT_OK, error, os_error_message, warn
from dotnb.cli.output import emit_json, out
from dotnb.cli.progress import CellProgress
from dotnb.cli.render import format_cell_failure, format_reproduce, format_run, format_traceback_tail

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

# reproduce: numpy.isclose's defaults, familiar to the people who set them in CI.
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8


# ---------------------------------------------------------------------------
# the commands' arguments


def add_run(commands: Commands) -> None:
    p = commands.add(
        "run",
        cmd_run,
        "execute a notebook headlessly, recording its tracked cells",
        """
        Execute NOTEBOOK from top to bottom in a fresh kernel (nbclient), as JupyterLab
        would run it: the working folder is the notebook's folder.  Cells that start
        with %%track are recorded as runs, each with the executed notebook as its
        snapshot (from "headless"); --track-all records every cell.  dotnb is loaded
        into the kernel before the first cell, so the notebook's own %load_ext dotnb
        is optional.  The notebook file is not changed; --output writes the executed
        copy.

        -p NAME=VALUE overrides a parameter the papermill way: the notebook needs a
        cell tagged 'parameters', and a cell setting the values is put right after
        it.  VALUE is a Python literal (0.1, [64, 32], 'adam', True; true, false and
        null work too; anything else is a string).  The values are recorded as params
        of every run of this execution, except in a cell that assigns the name itself.

        One progress line per cell goes to stderr, the recorded runs to stdout.  A
        failing cell stops the run with its error; the failure is recorded (the run of
        a tracked cell gets status error, a timed-out one status interrupted).  The
        store is the one the kernel uses: --root, $DOTNB_ROOT, else the nearest folder
        above the notebook that holds .dotnb/, else the notebook's folder.
        """,
        """
        exit status: 0 every cell ran; 1 a cell failed or timed out (recorded); 2 the
        notebook could not be run (not a valid notebook, no 'parameters' cell for -p,
        no such kernel, the kernel did not start or died, dotnb missing in the kernel).

        examples:
          dotnb run train.ipynb
          dotnb run train.ipynb -p C=0.1 -p solver=saga --output executed.ipynb
          dotnb run analysis.ipynb --track-all --timeout 600 --kernel python3
          dotnb run train.ipynb --json | jq -r '.runs[-1].id'
        """,
        commands.json,
    )
    p.add_argument("notebook", metavar="NOTEBOOK", help="the .ipynb file to execute")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        type=param_option,
        metavar="NAME=VALUE",
        help="override a parameter (repeatable; needs a cell tagged 'parameters')",
    )
    p.add_argument(
        "--track-all", action="store_true", help="record every cell as a run, not only %%%%track cells"
    )
    p.add_argument("--output", metavar="PATH", help="write the executed notebook to PATH")
    p.add_argument("--kernel", metavar="NAME", help="kernel to use (default: the notebook's kernelspec)")
    p.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=positive_float,
        help="stop a cell that runs longer than this (default: no limit)",
    )


def add_reproduce(commands: Commands) -> None:
    p = commands.add(
        "reproduce",
        cmd_reproduce,
        "re-execute a run and check that it reproduces",
        """
        Materialise RUN in a clean work folder (its notebook snapshot and input files,
        copied from the store and verified), re-execute its lineage (the cells its
        kernel had run, in order, up to and including its own cell) in a fresh kernel,
        record the result as a new run that reproduces RUN, and compare the two:
        status; params (identical); metrics (within tolerance); inputs and outputs (by
        hash; CSV and Parquet files whose bytes differ are compared as tables, numbers
        within tolerance).  A number is within tolerance when
        |reproduced - original| <= atol + rtol * |original|.

        The table lists what was compared with its verdict, then the environment
        differences (Python, platform, package versions) and what can make the run
        not reproduce: inputs that were not stored, files read outside the project
        root, the environment, or, when all of those match, unseeded randomness or
        other state inside the code.
        """,
        """
        exit status: 0 reproduced; 1 something differs; 2 could not run (no such run,
        missing or corrupted objects, a cell failed, the kernel did not start).
        A temporary work folder is removed afterwards; --workdir DIR (empty or new)
        keeps it.

        examples:
          dotnb reproduce latest
          dotnb reproduce 01HXYZ --rtol 1e-3 --atol 1e-6
          dotnb reproduce '#4' --notebook train.ipynb --workdir /tmp/repro
          dotnb reproduce latest --json | jq .verdict
        """,
        commands.notebook,
        commands.json,
    )
    p.add_argument("run", metavar="RUN", help="the run to reproduce")
    p.add_argument(
        "--rtol",
        metavar="R",
        type=non_negative_float,
        default=DEFAULT_RTOL,
        help=f"relative tolerance for metrics and table values (default: {DEFAULT_RTOL:g})",
    )
    p.add_argument(
        "--atol",
        metavar="A",
        type=non_negative_float,
        default=DEFAULT_ATOL,
        help=f"absolute tolerance for metrics and table values (default: {DEFAULT_ATOL:g})",
    )
    p.add_argument("--workdir", metavar="DIR", help="work folder to use and keep (default: a temporary one)")
    p.add_argument("--kernel", metavar="NAME", help="kernel to use (default: the run's notebook kernelspec)")
    p.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=positive_float,
        help="stop a cell that runs longer than this (default: no limit)",
    )


# The sub-parsers this module adds, by command (dotnb.cli.app.COMMANDS orders them).
COMMANDS: dict[str, Callable[[Commands], None]] = {
    "run": add_run,
    "reproduce": add_reproduce,
}


# ---------------------------------------------------------------------------
# handlers


def cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dotnb.headless.execute import run_notebook
    from dotnb.store.errors import DotnbError
    from dotnb.store.vocabulary import EXIT_COULD_NOT_RUN

    root = root_arg(args)
    progress = CellProgress(sys.stderr)
    try:
        result = run_notebook(
            Path(args.notebook),
            params=dict(args.param),  # a repeated NAME: the last value wins
            track_all=args.track_all,
            output=Path(args.output) if args.output else None,
            kernel_name=args.kernel,
            timeout=args.timeout,
            root=Path(root) if root else None,
            on_start=progress.start,
            on_end=progress.end,
        )
    except (DotnbError, OSError) as exc:
        progress.abort()
        error(os_error_message(exc) if isinstance(exc, OSError) else str(exc))
        return EXIT_COULD_NOT_RUN
    finally:
        progress.abort()
    doc = result.as_json()
    for warning in result.warnings:
        warn(warning)
    if args.json:
        emit_json(doc)
    else:
        for line in format_run(doc):
            out(line)
    failed = result.failed
    if failed is None:
        return EXIT_OK
    sys.stdout.flush()
    for line in format_cell_failure(failed, doc, args.timeout):
        print(line, file=sys.stderr)
    return EXIT_COULD_NOT_RUN if failed.status == "kernel died" else EXIT_ERROR


def cmd_reproduce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dotnb.comparison.verdicts import Tolerance
    from dotnb.headless.reproduce import new_report, reproduce
    from dotnb.store.errors import DotnbError
    from dotnb.store.vocabulary import EXIT_COULD_NOT_RUN

    tolerance = Tolerance(rtol=args.rtol, atol=args.atol)
    progress = CellProgress(sys.stderr)
    try:
        with open_store(args) as store:
            run_id = resolve_run(store, args, args.run)
            if not args.json:
                print(f"reproducing run {run_id}", file=sys.stderr)
            report = reproduce(
                store,
                run_id,
                tolerance=tolerance,
                workdir=Path(args.workdir) if args.workdir else None,
                kernel_name=args.kernel,
                timeout=args.timeout,
                on_start=progress.start,
                on_end=progress.end,
            )
    except (DotnbError, OSError) as exc:
        progress.abort()
        message = os_error_message(exc) if isinstance(exc, OSError) else str(exc)
        if args.json:
            emit_json({**new_report(args.run, tolerance), "error": message})
        else:
            error(message)
        return EXIT_COULD_NOT_RUN
    finally:
        progress.abort()
    if args.json:
        emit_json(report)
    else:
        for line in format_reproduce(report):
            out(line)
        failed = report.get("failed_cell")
        if failed and failed.get("traceback"):
            sys.stdout.flush()
            for line in format_traceback_tail(failed["traceback"]):
                print(line, file=sys.stderr)
    return int(report["exit_code"])
