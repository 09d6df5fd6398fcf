"""The ``dotnb`` console script: a thin face over :mod:`dotnb.store`.

Every command turns its arguments into one store call and formats the result,
for people by default and as JSON with ``--json``.  The REST API is the second
face of the same operations, so nothing here decides anything a handler would
also need: that belongs in the store.  What lives here is argument parsing,
path arguments relative to the working folder, tables, progress on stderr and
the mapping of errors to exit codes.

Exit codes: 0 success; 1 an error dotnb reports (or ``fsck`` found problems);
2 usage error; 3 unexpected internal error; 130 interrupted; 141 stdout closed
early (``dotnb log | head``).  ``run``: 1 a cell failed, 2 the notebook could not
be run.  ``reproduce``: 0 reproduced, 1 differs, 2 could not run.

``import dotnb.cli`` stays cheap: the store (SQLite, BLAKE3) is imported by the
commands that need it.  The console script enters through :mod:`dotnb.entry`, which
answers the common ``dotnb log --json`` forms without importing this module.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

# For type checking only: importing typing, or pathlib (it imports urllib.parse),
# costs milliseconds of every start, much of a ``dotnb log``.  mypy reads any name
# TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from typing import Any, TextIO

    from dotnb.store.listing import IndexReader
    from dotnb.store.repo import Store

    RunLister = Store | IndexReader

    Handler = Callable[[argparse.Namespace], int]

PROG = "dotnb"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what a shell reports for a process killed by SIGPIPE

LOG_DEFAULT_LIMIT = 50
# A restore shows a progress line when it writes more than this.
PROGRESS_MIN_BYTES = 64 * 1024 * 1024
# fsck shows progress only once it has run this long (small stores finish first).
FSCK_PROGRESS_DELAY_S = 1.0
PROGRESS_TTY_INTERVAL_S = 0.1
PROGRESS_LINE_INTERVAL_S = 5.0
CAT_CHUNK = 1024 * 1024
SHORT_HASH = 12
SHORT_ID = 10
NAME_WIDTH = 32
GC_LIST_MAX = 20
# reproduce: numpy.isclose's defaults, familiar to the people who set them in CI.
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8
CELL_LINE_WIDTH = 48
TRACEBACK_LINES = 30


# ---------------------------------------------------------------------------
# entry point


def main(argv: list[str] | None = None) -> int:
    """Run the ``dotnb`` command line; returns the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(only=_command_in(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return _exit_status(exc.code)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        status = handler(args)
        sys.stdout.flush()  # a closed pipe must surface here, not at interpreter exit
        return status
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _report_exception(exc)


def _exit_status(code: Any) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_ERROR


def _report_exception(exc: Exception) -> int:
    # Only an imported store can have raised a DotnbError; importing it here could fail again.
    errors = sys.modules.get("dotnb.store.errors")
    if errors is not None and isinstance(exc, errors.DotnbError):
        _error(str(exc))
        return int(getattr(exc, "exit_code", EXIT_ERROR))
    if isinstance(exc, OSError):
        _error(_os_error_message(exc))
        return EXIT_ERROR
    if os.environ.get("DOTNB_DEBUG"):
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    else:
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {_clean(str(exc))} "
            "(set DOTNB_DEBUG=1 to see the traceback)",
            file=sys.stderr,
        )
    return EXIT_INTERNAL


def _error(message: str) -> None:
    print(f"{PROG}: error: {_clean(message)}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {_clean(message)}", file=sys.stderr)


def _os_error_message(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {os.fsdecode(exc.filename)}"
    return str(exc)


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (tests capture stdout in memory)


# ---------------------------------------------------------------------------
# the parser


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse lists subcommands one indent deeper than it measures them, which put the
    help of a 9-letter command (``reproduce``) on a line of its own; measure them there."""

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
    ) -> None:
        # argparse would measure the terminal with shutil, whose import (zlib, bz2, lzma)
        # costs milliseconds of every start: add_argument makes a formatter to check
        # each option, even when no help is shown.  Same width, without it.
        if width is None:
            width = terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        # Descriptions and epilogs are written indented in the source.  Dedenting them
        # here, when help is shown, keeps textwrap's import out of every other start.
        return super()._fill_text(_dedent(text), width, indent)

    def add_argument(self, action: argparse.Action) -> None:
        if not isinstance(action, argparse._SubParsersAction):
            super().add_argument(action)
            return
        self._indent()
        super().add_argument(action)
        self._dedent()


REMOTE_COMMANDS = ("remote", "push", "pull")  # their parsers and handlers are in dotnb.cli_remote
COMMANDS = (
    "init", "log", "show", "diff", "restore", "cat", "fsck", "gc",
    *REMOTE_COMMANDS, "run", "reproduce",
)  # fmt: skip


def _command_in(argv: list[str]) -> str | None:
    """The command ``argv`` names, when it is plain to see (else None: build every parser)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--root":
            skip = True
        elif arg.startswith("--root="):
            continue
        elif arg.startswith("-"):
            return None  # --help, --version or a mistake: the full parser answers
        else:
            return arg if arg in COMMANDS else None
    return None


class _Skipped:
    """Stands in for the parser of a command that is not being run: every call is a no-op.

    Building all thirteen sub-parsers costs more than the rest of ``dotnb log``
    (argparse formats and translates each option as it is added)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``dotnb`` parser; with ``only``, the other commands' sub-parsers are left out."""
    from dotnb import __version__
    from dotnb.store.vocabulary import RUN_KINDS, RUN_STATUSES

    formatter = _HelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Reproducible Jupyter notebooks: list, inspect, compare and restore the runs\n"
            "recorded by tracked cells (%%track) in the store under .dotnb/; run notebooks\n"
            "headlessly and check that a run reproduces."
        ),
        epilog="""
            RUN arguments accept a full run id, an unambiguous id prefix, '#N' (the
            per-notebook run number; quote it, '#' starts a shell comment; pass
            --notebook when several notebooks have a #N) or 'latest'.

            The store is found with --root, else $DOTNB_ROOT, else the nearest folder
            above the working folder that holds .dotnb/.  Set DOTNB_DEBUG=1 to see
            tracebacks of unexpected errors.

            examples:
              dotnb log --limit 10
              dotnb show latest
              dotnb diff '#3' '#4' --notebook train.ipynb
              dotnb restore '#3' --dry-run
              dotnb run train.ipynb -p lr=0.3
              dotnb reproduce latest
              dotnb remote add origin s3://team-bucket/project
              dotnb push && dotnb pull
            """,
        formatter_class=formatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=None,
        help="project root holding .dotnb/ (default: $DOTNB_ROOT, else the nearest parent with .dotnb/)",
    )

    # Options shared by several commands.  --root is accepted after the command
    # too; SUPPRESS keeps the subcommand from overwriting a global --root.
    root_opt = argparse.ArgumentParser(add_help=False, formatter_class=formatter)
    root_opt.add_argument("--root", metavar="DIR", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    json_opt = argparse.ArgumentParser(add_help=False, formatter_class=formatter)
    json_opt.add_argument("--json", action="store_true", help="print JSON for machines instead of text")
    nb_opt = argparse.ArgumentParser(add_help=False, formatter_class=formatter)
    nb_opt.add_argument(
        "--notebook",
        metavar="NB",
        default=None,
        help="notebook path (relative to the working folder or the root); picks '#N' and 'latest' in it",
    )

    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(
        name: str, handler: Handler, summary: str, description: str, epilog: str, *parents: Any
    ) -> Any:
        if only is not None and name != only:
            return _Skipped()
        p = sub.add_parser(
            name,
            help=summary,
            description=description,
            epilog=epilog,
            formatter_class=formatter,
            parents=[root_opt, *parents],
            allow_abbrev=False,
        )
        p.set_defaults(handler=handler)
        return p

    p = command(
        "init",
        cmd_init,
        "create a store",
        """
        Create an empty dotnb store (.dotnb/) in DIR, the --root folder or the working
        folder.  Running it on an existing store changes nothing.  Tracked cells create
        the store on their own; init is a convenience for scripts.
        """,
        """
        examples:
          dotnb init
          dotnb init ~/projects/churn --json
        """,
        json_opt,
    )
    p.add_argument(
        "dir", metavar="DIR", nargs="?", help="project root (default: --root or the working folder)"
    )

    p = command(
        "log",
        cmd_log,
        "list runs, newest first",
        """
        List recorded runs, newest first: number, id, start time (local), status,
        name, duration, params and metrics.
        """,
        f"""
        --limit defaults to {LOG_DEFAULT_LIMIT} for the table and to every run with --json;
        --limit 0 lists every run.

        examples:
          dotnb log
          dotnb log --notebook train.ipynb --status error
          dotnb log --kind checkpoint --limit 5
          dotnb log --metric 'acc>0.9' --search adam
          dotnb log --author alice
          dotnb log --json | jq '.[0].metrics'
        """,
        nb_opt,
        json_opt,
    )
    p.add_argument("--kind", choices=RUN_KINDS, help="only runs of this kind")
    p.add_argument("--status", choices=RUN_STATUSES, help="only runs with this status")
    p.add_argument("--limit", metavar="N", type=_non_negative_int, help="show at most N runs (0: all)")
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="COND",
        help="only runs whose summary metric meets COND, e.g. 'acc>0.9' (repeatable; all must hold)",
    )
    p.add_argument("--search", metavar="TEXT", help="only runs whose name, params or code contain TEXT")
    p.add_argument("--author", metavar="NAME", help="only runs by NAME (a user, or user@host)")

    p = command(
        "show",
        cmd_show,
        "show one run",
        """
        Show everything recorded for a run: header, code, params, metrics, inputs and
        outputs, external inputs, environment, lineage and warnings.  --json prints
        the whole manifest with each lineage cell's code included ("code": null and
        "code_missing": true when its object is not in the store).
        """,
        """
        examples:
          dotnb show latest
          dotnb show 01HXYZ
          dotnb show '#12' --notebook train.ipynb --json
        """,
        nb_opt,
        json_opt,
    )
    p.add_argument("run", metavar="RUN", help="run id, id prefix, '#N' or 'latest'")

    p = command(
        "diff",
        cmd_diff,
        "compare two runs",
        """
        Compare two runs: a unified diff of the code, then the params, metrics,
        inputs, outputs and environment that differ, as 'name: first → second'.
        """,
        """
        examples:
          dotnb diff '#3' latest
          dotnb diff 01HXA 01HXB --json
        """,
        nb_opt,
        json_opt,
    )
    p.add_argument("first", metavar="RUN", help="the first run")
    p.add_argument("second", metavar="RUN", help="the second run")

    p = command(
        "restore",
        cmd_restore,
        "bring data files and the notebook back to a run",
        """
        Restore the data files (the run's outputs, and the inputs it did not
        overwrite) and the notebook to their state right after RUN.  The plan is
        printed first: path, current → target hash, size and action.  Every path
        that changes is checkpointed before it is written, so a restore can be
        undone by restoring the checkpoint it prints (which also removes the files
        the restore created).  Nothing is ever written outside the project root or
        through a symlink leading out of it.
        """,
        """
        dotnb never prompts; --yes is accepted for scripts written for tools that do.

        examples:
          dotnb restore '#3' --dry-run
          dotnb restore 01HXYZ --data-only
          dotnb restore latest --notebook-only --notebook train.ipynb
        """,
        nb_opt,
        json_opt,
    )
    p.add_argument("run", metavar="RUN", help="run to restore")
    part = p.add_mutually_exclusive_group()
    part.add_argument("--data-only", action="store_true", help="restore the data files, not the notebook")
    part.add_argument("--notebook-only", action="store_true", help="restore the notebook, not the data files")
    p.add_argument("--dry-run", action="store_true", help="print the plan and write nothing")
    p.add_argument("--yes", "-y", action="store_true", help="accepted for scripts (dotnb never prompts)")

    p = command(
        "cat",
        cmd_cat,
        "write a stored input or output to stdout",
        """
        Write the stored bytes of one input or output of RUN to stdout, exactly.
        PATH is relative to the working folder or to the project root.  When the run
        both read and wrote PATH, the output is written unless --input is given.
        The object is verified before the first byte is written.
        """,
        """
        Put '--' before a PATH that starts with '-'.

        examples:
          dotnb cat latest results/metrics.csv | head
          dotnb cat '#3' data/train.parquet > /tmp/train-3.parquet
          dotnb cat 01HXYZ --input data/raw.csv
          dotnb cat latest -- -odd-name.txt
        """,
        nb_opt,
    )
    p.add_argument("run", metavar="RUN", help="run whose file to print")
    p.add_argument("path", metavar="PATH", help="an input or output path of the run")
    p.add_argument("--input", action="store_true", help="the bytes the run read, not the bytes it wrote")

    p = command(
        "fsck",
        cmd_fsck,
        "check the store",
        """
        Re-hash every object and check every run: reports corrupted and missing
        objects with the runs they affect, unreadable runs, and index rows out of
        step with the runs.  Exits 1 when anything is wrong.  --rebuild-index first
        rebuilds .dotnb/index.sqlite (a cache) from the run manifests.

        --remote NAME checks a remote instead: every object there is downloaded
        and re-hashed (nothing is stored locally), and every run's manifest and
        objects must be present.
        """,
        """
        examples:
          dotnb fsck
          dotnb fsck --rebuild-index
          dotnb fsck --json
          dotnb fsck --remote origin
        """,
        json_opt,
    )
    fsck_what = p.add_mutually_exclusive_group()
    fsck_what.add_argument(
        "--rebuild-index", action="store_true", help="rebuild the index from the manifests before checking"
    )
    fsck_what.add_argument("--remote", metavar="NAME", help="check this remote instead of the local store")

    p = command(
        "gc",
        cmd_gc,
        "remove objects no run refers to",
        """
        Remove objects that no run refers to and that are older than the grace
        period (a run being recorded right now has written its data objects but not
        yet its manifest), and stale temp files.
        """,
        """
        examples:
          dotnb gc --dry-run
          dotnb gc --grace 0
          dotnb gc --json
        """,
        json_opt,
    )
    p.add_argument("--dry-run", action="store_true", help="report what would be removed, remove nothing")
    p.add_argument(
        "--grace",
        metavar="SECONDS",
        type=_non_negative_float,
        default=None,
        help="keep unreferenced objects younger than this (default: 3600)",
    )
    if only is None or only in REMOTE_COMMANDS:  # its module costs the other commands' start-up
        from dotnb.cli_remote import add_commands

        add_commands(command, root_opt, json_opt)

    p = command(
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
        json_opt,
    )
    p.add_argument("notebook", metavar="NOTEBOOK", help="the .ipynb file to execute")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        type=_param_option,
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
        type=_positive_float,
        help="stop a cell that runs longer than this (default: no limit)",
    )

    p = command(
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
        nb_opt,
        json_opt,
    )
    p.add_argument("run", metavar="RUN", help="the run to reproduce")
    p.add_argument(
        "--rtol",
        metavar="R",
        type=_non_negative_float,
        default=DEFAULT_RTOL,
        help=f"relative tolerance for metrics and table values (default: {DEFAULT_RTOL:g})",
    )
    p.add_argument(
        "--atol",
        metavar="A",
        type=_non_negative_float,
        default=DEFAULT_ATOL,
        help=f"absolute tolerance for metrics and table values (default: {DEFAULT_ATOL:g})",
    )
    p.add_argument("--workdir", metavar="DIR", help="work folder to use and keep (default: a temporary one)")
    p.add_argument("--kernel", metavar="NAME", help="kernel to use (default: the run's notebook kernelspec)")
    p.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_float,
        help="stop a cell that runs longer than this (default: no limit)",
    )
    return parser


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).strip("\n")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more: {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _param_option(text: str) -> tuple[str, Any]:
    from dotnb.capture.params import parse_param_option

    try:
        return parse_param_option(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ---------------------------------------------------------------------------
# the store, RUN and path arguments


def _root_arg(args: argparse.Namespace) -> str | None:
    return getattr(args, "root", None) or os.environ.get("DOTNB_ROOT")


@contextlib.contextmanager
def _open_store(args: argparse.Namespace) -> Iterator[Store]:
    from pathlib import Path

    from dotnb.store.repo import Store

    root = _root_arg(args)
    store = Store(Path(root)) if root else Store.discover(Path.cwd())
    if (store.dir / "remotes.json").exists():
        from dotnb.remote.ondemand import attach

        attach(store)  # pulled runs' objects are fetched when read
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def _open_for_listing(args: argparse.Namespace) -> Iterator[RunLister]:
    """What ``log`` lists runs from: the index read directly when opening the store would
    change nothing in it (most of the time; it spares importing and opening the store),
    else the store.  Both list with the same query (dotnb.store.listing)."""
    from dotnb.store.listing import open_current_index

    reader = open_current_index(_root_arg(args), os.getcwd())
    if reader is None:
        with _open_store(args) as store:
            yield store
        return
    try:
        yield reader
    finally:
        reader.close()


def _resolve(store: Store, args: argparse.Namespace, ref: str) -> str:
    return store.resolve(ref, store.notebook_arg(getattr(args, "notebook", None)))


# ---------------------------------------------------------------------------
# commands


def cmd_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dotnb.store.repo import STORE_DIR, Store, find_root

    target = Path(args.dir or getattr(args, "root", None) or os.environ.get("DOTNB_ROOT") or Path.cwd())
    existed = target.is_dir() and find_root(target) == target.resolve()
    store = Store.init(target)
    try:
        if args.json:
            _emit_json({"root": str(store.root), "store": str(store.dir), "created": not existed})
        elif existed:
            _out(f"dotnb store already exists in {store.root / STORE_DIR}")
        else:
            _out(f"initialised an empty dotnb store in {store.root / STORE_DIR}")
    finally:
        store.close()
    return EXIT_OK


def cmd_log(args: argparse.Namespace) -> int:
    from dotnb.store.query import parse_metric_condition

    conditions = [parse_metric_condition(text) for text in args.metric]
    with _open_for_listing(args) as store:
        notebook = store.notebook_arg(args.notebook)
        limit: int | None = args.limit
        if limit is None and not args.json:
            limit = LOG_DEFAULT_LIMIT
        if limit == 0:
            limit = None
        # One row more than shown tells whether the listing was cut.
        rows = store.list_runs(
            notebook=notebook,
            kind=args.kind,
            status=args.status,
            text=args.search,
            author=args.author,
            metrics=conditions,
            limit=None if limit is None else limit + 1,
        )
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    if args.json:
        _emit_json(rows)
        return EXIT_OK
    if not rows:
        _out("no runs recorded" + (f" for {_clean(notebook)}" if notebook else ""))
        return EXIT_OK
    for line in format_log(rows):
        _out(line)
    if more:
        print(
            f"(showing the newest {limit}; --limit N shows more, --limit 0 all)",
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        run_id = _resolve(store, args, args.run)
        manifest = store.manifest(run_id)
        if args.json:
            _emit_json(_with_lineage_code(store, manifest))
            return EXIT_OK
        origin = store.read_ref_origin(run_id)[1]
        expanded = dict(manifest, lineage=store.lineage(manifest))
        lines = format_show(expanded, _distribution_count(store, manifest), origin)
    for line in lines:
        _out(line)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from dotnb.store.diff import diff_runs

    with _open_store(args) as store:
        first = _resolve(store, args, args.first)
        second = _resolve(store, args, args.second)
        result = diff_runs(store, first, second)
    if args.json:
        _emit_json(result)
        return EXIT_OK
    for line in format_diff(result):
        _out(line)
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from dotnb.store.restore import restore

    data, notebook = not args.notebook_only, not args.data_only
    with _open_store(args) as store:
        run_id = _resolve(store, args, args.run)
        bars: list[ByteProgress] = []

        def show_plan(plan: dict[str, Any]) -> ByteProgress | None:
            if not args.json:
                for line in format_plan(plan, store.manifest(run_id)):
                    _out(line)
                sys.stdout.flush()
            total = int(plan["bytes_to_write"])
            if args.dry_run or total <= PROGRESS_MIN_BYTES:
                return None
            bars.append(ByteProgress("restoring", total, sys.stderr))
            return bars[-1]

        try:
            result = restore(
                store, run_id, data=data, notebook=notebook, dry_run=args.dry_run, on_plan=show_plan
            )
        finally:
            for bar in bars:
                bar.finish()
    if args.json:
        _emit_json(result)
        return EXIT_OK
    if args.dry_run:
        _out("dry run: nothing was written")
        return EXIT_OK
    if result["checkpoint"] is None:
        _out("nothing to restore: the files already match the run")
        return EXIT_OK
    written = len(result["written"])
    _out(f"restored {written} path{'s' if written != 1 else ''}")
    _out(f"checkpoint {result['checkpoint']} holds the previous state")
    _out(f"undo with: dotnb restore {result['checkpoint']}")
    return EXIT_OK


def cmd_cat(args: argparse.Namespace) -> int:
    from dotnb.store.errors import DotnbError, ObjectCorrupt, ObjectMissing
    from dotnb.store.vocabulary import no_content_reason

    with _open_store(args) as store:
        run_id = _resolve(store, args, args.run)
        manifest = store.manifest(run_id)
        entry = _file_entry(store.root, manifest, args.path, want_input=args.input)
        digest = entry.get("hash")
        if not digest:
            reason = no_content_reason(entry)
            raise DotnbError(f"{entry['path']!r} has no stored content in run {run_id}: {reason}")
        # Fetch (pulled runs) and verify first: a corrupted object must not reach a pipe half-written.
        store.objects.ensure([digest])
        if not store.objects.verify(digest):
            if not store.objects.has(digest):
                raise ObjectMissing(
                    f"object {digest[:SHORT_HASH]} for {entry['path']!r} is missing from the store"
                )
            raise ObjectCorrupt(
                f"object {digest[:SHORT_HASH]} for {entry['path']!r} is corrupted (run `dotnb fsck`)"
            )
        out = sys.stdout.buffer
        with store.objects.open(digest) as src:
            while chunk := src.read(CAT_CHUNK):
                _write_all(out, chunk)
        out.flush()
    return EXIT_OK


def cmd_fsck(args: argparse.Namespace) -> int:
    from dotnb.store.fsck import fsck

    with _open_store(args) as store:
        if args.remote:
            return _fsck_remote(store, args)
        rebuilt = store.rebuild_index() if args.rebuild_index else None
        progress = CountProgress("fsck", "objects checked", sys.stderr, delay=FSCK_PROGRESS_DELAY_S)
        try:
            report = fsck(store, progress=progress)
        finally:
            progress.finish()
    if args.json:
        _emit_json({**report, "rebuilt_index_runs": rebuilt} if rebuilt is not None else report)
    else:
        if rebuilt is not None:
            _out(f"rebuilt the index: {rebuilt} run{'s' if rebuilt != 1 else ''}")
        for line in format_fsck(report):
            _out(line)
    return EXIT_OK if report["ok"] else EXIT_ERROR


def _fsck_remote(store: Store, args: argparse.Namespace) -> int:
    from dotnb.cli_remote import TransferLine
    from dotnb.remote.check import fsck_remote

    meter = TransferLine("fsck", sys.stderr)
    try:
        report = fsck_remote(store, args.remote, progress=meter)
    finally:
        meter.finish()
    if args.json:
        _emit_json(report)
    else:
        _out(f"remote {_clean(report['remote'])} ({_clean(report['url'])}): {report['runs_checked']} runs")
        for line in format_fsck(report):
            _out(line)
        if report["unjournaled_runs"]:
            count = len(report["unjournaled_runs"])
            _out(
                f"note: {count} run{'s' if count != 1 else ''} not yet announced to pulls (a push was "
                "interrupted); pushing again or `dotnb pull --full` completes them"
            )
    return EXIT_OK if report["ok"] else EXIT_ERROR


def cmd_gc(args: argparse.Namespace) -> int:
    from dotnb.store.fsck import DEFAULT_GC_GRACE_S, gc

    grace = DEFAULT_GC_GRACE_S if args.grace is None else args.grace
    with _open_store(args) as store:
        result = gc(store, dry_run=args.dry_run, grace_s=grace)
    if args.json:
        _emit_json(result)
        return EXIT_OK
    verb = "would remove" if result["dry_run"] else "removed"
    count = len(result["removed"])
    _out(
        f"{verb} {count} unreferenced object{'s' if count != 1 else ''} ({human_size(result['bytes_freed'])})"
    )
    for digest in result["removed"][:GC_LIST_MAX]:
        _out(f"    {digest}")
    if count > GC_LIST_MAX:
        _out(f"    … and {count - GC_LIST_MAX} more (--json lists them all)")
    if result["kept_within_grace"]:
        _out(f"kept {result['kept_within_grace']} unreferenced objects younger than {grace:g} s")
    if result["temp_files_removed"]:
        _out(f"{verb} {result['temp_files_removed']} stale temp files")
    if result["dry_run"]:
        _out("dry run: nothing was removed")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dotnb.headless.execute import run_notebook
    from dotnb.store.errors import DotnbError
    from dotnb.store.vocabulary import EXIT_COULD_NOT_RUN

    root = getattr(args, "root", None) or os.environ.get("DOTNB_ROOT")
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
        _error(_os_error_message(exc) if isinstance(exc, OSError) else str(exc))
        return EXIT_COULD_NOT_RUN
    finally:
        progress.abort()
    doc = result.as_json()
    for warning in result.warnings:
        _warn(warning)
    if args.json:
        _emit_json(doc)
    else:
        for line in format_run(doc):
            _out(line)
    failed = result.failed
    if failed is None:
        return EXIT_OK
    sys.stdout.flush()
    for line in format_cell_failure(failed, doc, args.timeout):
        print(line, file=sys.stderr)
    return EXIT_COULD_NOT_RUN if failed.status == "kernel died" else EXIT_ERROR


def cmd_reproduce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dotnb.headless.reproduce import new_report, reproduce
    from dotnb.headless.verdicts import Tolerance
    from dotnb.store.errors import DotnbError
    from dotnb.store.vocabulary import EXIT_COULD_NOT_RUN

    tolerance = Tolerance(rtol=args.rtol, atol=args.atol)
    progress = CellProgress(sys.stderr)
    try:
        with _open_store(args) as store:
            run_id = _resolve(store, args, args.run)
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
        message = _os_error_message(exc) if isinstance(exc, OSError) else str(exc)
        if args.json:
            _emit_json({**new_report(args.run, tolerance), "error": message})
        else:
            _error(message)
        return EXIT_COULD_NOT_RUN
    finally:
        progress.abort()
    if args.json:
        _emit_json(report)
    else:
        for line in format_reproduce(report):
            _out(line)
        failed = report.get("failed_cell")
        if failed and failed.get("traceback"):
            sys.stdout.flush()
            for line in _traceback_tail(failed["traceback"]):
                print(line, file=sys.stderr)
    return int(report["exit_code"])


# ---------------------------------------------------------------------------
# reading what a command shows (small look-ups over a manifest)


def _with_lineage_code(store: Store, manifest: dict[str, Any]) -> dict[str, Any]:
    from dotnb.store.views import with_lineage_code

    return with_lineage_code(store, manifest)


def _distribution_count(store: Store, manifest: dict[str, Any]) -> int | None:
    from dotnb.store.views import distributions

    dists = distributions(store, manifest)
    return None if dists is None else len(dists)


def _file_entry(root: Path, manifest: dict[str, Any], text: str, want_input: bool) -> dict[str, Any]:
    """The manifest entry ``cat`` prints for a PATH argument (outputs win unless ``want_input``)."""
    from dotnb.store.errors import DotnbError
    from dotnb.store.paths import path_candidates
    from dotnb.store.views import file_entry

    candidates = path_candidates(root, text)
    for rel in candidates:
        entry = file_entry(manifest, rel, want_input)
        if entry is not None:
            return entry
    what = "an input" if want_input else "an input or output"
    shown = candidates[0] if candidates else text
    raise DotnbError(f"{shown!r} is not {what} of run {manifest['id']}")


# ---------------------------------------------------------------------------
# formatting (pure)


def format_log(rows: list[dict[str, Any]], width: int | None = None) -> list[str]:
    """The ``dotnb log`` table, one line per run, truncated to the terminal width."""
    width = terminal_width() if width is None else width
    several_notebooks = len({r.get("notebook") for r in rows}) > 1
    # Authors matter once runs come from a team: with one author the column is noise.
    team = any(r.get("remote") for r in rows) or len({(r.get("user"), r.get("host")) for r in rows}) > 1
    headers = ["#", "ID", "STARTED", "STATUS"]
    if team:
        headers.append("BY")
    if several_notebooks:
        headers.append("NOTEBOOK")
    headers += ["NAME", "DURATION", "PARAMS | METRICS"]
    table: list[list[str]] = []
    for r in rows:
        name = r.get("name") or ""
        if r.get("kind") == "checkpoint":
            name = f"[checkpoint] {name}".strip()
        cells = [
            f"#{r.get('number')}",
            str(r["id"])[:SHORT_ID],
            local_time(r.get("started_at")),
            r.get("status") or "",
        ]
        if team:
            by = r.get("user") or "?"
            cells.append(f"{by} ({r['remote']})" if r.get("remote") else by)
        if several_notebooks:
            cells.append(r.get("notebook") or "")
        cells += [truncate(_clean(name), NAME_WIDTH), human_duration(r.get("duration_s")), _params_metrics(r)]
        table.append([_clean(c) for c in cells])
    return [truncate(line, width) if width else line for line in _align([headers, *table])]


def _params_metrics(row: dict[str, Any]) -> str:
    params = " ".join(f"{k}={short_value(v)}" for k, v in (row.get("params") or {}).items())
    metrics = " ".join(f"{k}={short_value(v)}" for k, v in (row.get("metrics") or {}).items())
    if params and metrics:
        return f"{params} | {metrics}"
    return params or (f"| {metrics}" if metrics else "")


def _align(rows: list[list[str]]) -> list[str]:
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        padded = [c + " " * (widths[i] - display_width(c)) for i, c in enumerate(r[:-1])]
        lines.append("  ".join([*padded, r[-1]]).rstrip())
    return lines


def format_show(
    manifest: dict[str, Any], distributions: int | None = None, origin: str | None = None
) -> list[str]:
    m = manifest
    env = m.get("environment") or {}
    lines: list[str] = []

    def field(label: str, value: Any) -> None:
        if value not in (None, ""):
            lines.append(f"{label:<10}{_clean(str(value))}")

    where = f" in {m['notebook']}" if m.get("notebook") else ""
    field("run", f"{m['id']}  (#{m.get('number')}{where})")
    field("name", m.get("name"))
    field("kind", m.get("kind", "run"))
    status = m.get("status", "ok")
    error = m.get("error")
    if isinstance(error, dict):
        status += f" — {error.get('type')}: {error.get('message')}"
    field("status", status)
    field("started", f"{local_time(m.get('started_at'))} (local)  {m.get('started_at')}")
    field("duration", human_duration(m.get("duration_s")))
    who = "@".join(x for x in (env.get("user"), env.get("host")) if x)
    field("by", who)
    field("from", origin and f"remote {origin} (pulled)")
    field("parent", m.get("parent"))
    field("reproduces", m.get("reproduces"))
    field("saved", m.get("checkpoint_of") and f"before restoring {m['checkpoint_of']}")
    snap = m.get("notebook_snapshot")
    if isinstance(snap, dict) and snap.get("hash"):
        source = f"  (from {m['notebook_source']})" if m.get("notebook_source") else ""
        field("snapshot", f"{snap['hash'][:SHORT_HASH]}  {human_size(snap.get('size'))}{source}")
    elif isinstance(snap, dict):
        field("snapshot", f"unavailable: {snap.get('unavailable')}")

    code = m.get("code") or ""
    if code.strip():
        lines += ["", "code"]
        lines += ["    " + _clean(line) for line in code.splitlines()]

    params = m.get("params") or {}
    if params:
        overridden = set(m.get("param_overrides") or [])
        lines += ["", "params"]
        rows = [
            [k, _json_value(v) + ("  (overridden)" if k in overridden else "")] for k, v in params.items()
        ]
        lines += ["    " + line for line in _align([[_clean(a), _clean(b)] for a, b in rows])]

    metrics = m.get("metrics") or {}
    series = m.get("metric_series") or {}
    if metrics or series:
        lines += ["", "metrics"]
        rows = []
        for name in dict.fromkeys([*metrics, *series]):
            points = series.get(name) or []
            extra = f"  (series: {len(points)} points)" if points else ""
            rows.append([_clean(name), _clean(_json_value(metrics.get(name))) + extra])
        lines += ["    " + line for line in _align(rows)]

    for key, title in (("inputs", "inputs"), ("outputs", "outputs")):
        entries = m.get(key) or []
        if entries:
            lines += ["", f"{title} ({len(entries)})"]
            lines += ["    " + line for line in _file_table(entries)]

    absent = m.get("absent") or []
    if absent:
        lines += ["", f"absent before the restore ({len(absent)}, removed when this checkpoint is restored)"]
        lines += [f"    {_clean(rel)}" for rel in absent]

    external = m.get("external_inputs") or []
    if external:
        lines += ["", f"external inputs ({len(external)})"]
        lines += [f"    {_clean(e.get('path', ''))}  {human_size(e.get('size'))}".rstrip() for e in external]

    lines += ["", "environment"]
    lines.append("    " + _environment_line(env, distributions))

    lineage = m.get("lineage") or []
    tracked = sum(1 for c in lineage if c.get("tracked"))
    failed = sum(1 for c in lineage if c.get("status") == "error")
    extra = f", {failed} failed" if failed else ""
    lines += [
        "",
        f"lineage   {len(lineage)} cell{'s' if len(lineage) != 1 else ''} ({tracked} tracked{extra})",
    ]

    warnings = m.get("warnings") or []
    if warnings:
        lines += ["", "warnings"]
        lines += [f"    - {_clean(w)}" for w in warnings]
    return lines


def _file_table(entries: list[dict[str, Any]]) -> list[str]:
    rows = [["PATH", "SIZE", "HASH", "FLAGS"]]
    for e in entries:
        flags = [
            flag
            for flag, on in (
                ("pre-write", e.get("pre_write")),
                ("changed", e.get("changed")),
                ("missing", e.get("missing")),
                ("declared", e.get("declared")),
            )
            if on
        ]
        if e.get("skipped"):
            flags.append(f"skipped: {e['skipped']}")
        if e.get("produced_by"):
            flags.append(f"from run {str(e['produced_by'])[:SHORT_ID]}")
        digest = e.get("hash")
        rows.append(
            [
                _clean(e.get("path", "")),
                human_size(e.get("size")),
                digest[:SHORT_HASH] if digest else "-",
                _clean(", ".join(flags)),
            ]
        )
    return _align(rows)


def _environment_line(env: dict[str, Any], distributions: int | None) -> str:
    parts = []
    if env.get("python"):
        parts.append(f"python {str(env['python']).splitlines()[0]}")
    if env.get("platform"):
        parts.append(str(env["platform"]))
    git = env.get("git")
    if isinstance(git, dict) and git.get("commit"):
        branch = f" on {git['branch']}" if git.get("branch") else ""
        parts.append(f"git {str(git['commit'])[:SHORT_ID]}{branch}{' (dirty)' if git.get('dirty') else ''}")
    if distributions is not None:
        parts.append(f"{distributions} distribution{'s' if distributions != 1 else ''}")
    elif env.get("distributions"):
        parts.append("distributions list unavailable")
    shown = {"python", "platform", "git", "distributions", "user", "host"}
    for key, value in env.items():
        if key not in shown and value not in (None, "", {}, []):
            parts.append(f"{key} {_json_value(value)}")
    return _clean(" · ".join(parts)) if parts else "(not recorded)"


def format_diff(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if result.get("code"):
        lines.append("code")
        lines += [_clean(line) for line in str(result["code"]).splitlines()]
    files = {"inputs", "outputs"}
    for section in ("params", "metrics", "inputs", "outputs", "environment"):
        changes = result.get(section) or {}
        if not changes:
            continue
        if lines:
            lines.append("")
        lines.append(section)
        for name, (a, b) in changes.items():
            if section in files:
                left, right = _hash_or_absent(a), _hash_or_absent(b)
            else:
                left, right = _value_or_absent(a), _value_or_absent(b)
            lines.append(f"    {_clean(name)}: {_clean(left)} → {_clean(right)}")
    return lines or ["no differences"]


def _hash_or_absent(digest: Any) -> str:
    return str(digest)[:SHORT_HASH] if digest else "(absent)"


def _value_or_absent(value: Any) -> str:
    return "(absent)" if value is None else _json_value(value)


def format_plan(plan: dict[str, Any], manifest: dict[str, Any] | None) -> list[str]:
    lines = []
    if manifest is not None:
        where = f" in {manifest['notebook']}" if manifest.get("notebook") else ""
        lines.append(_clean(f"restore plan for run {manifest['id']} (#{manifest.get('number')}{where})"))
    changing = [i for i in plan["items"] if i["action"] != "unchanged"]
    rows = []
    for item in changing:
        current = item["current"][:SHORT_HASH] if item["current"] else "(absent)"
        target = item["target"][:SHORT_HASH] if item["target"] else "(remove)"
        size = human_size(item["size"]) if item["target"] else ""
        rows.append([_clean(item["path"]), current, "→", target, size, item["action"]])
    if rows:
        lines += [
            "    " + line for line in _align([["PATH", "CURRENT", "", "TARGET", "SIZE", "ACTION"], *rows])
        ]
    unchanged = len(plan["items"]) - len(changing)
    if unchanged:
        lines.append(f"{unchanged} path{'s' if unchanged != 1 else ''} already match the run")
    for skipped in plan.get("skipped") or []:
        lines.append(_clean(f"not restored: {skipped['path']} ({skipped['reason']})"))
    if changing:
        lines.append(f"to write: {human_size(plan['bytes_to_write'])}")
    return lines


def format_fsck(report: dict[str, Any]) -> list[str]:
    lines = [f"checked {report['objects_checked']} objects"]

    def objects(title: str, found: list[dict[str, Any]]) -> None:
        if found:
            lines.append(f"{title} ({len(found)}):")
            for item in found:
                runs = ", ".join(item["runs"]) or "no run"
                lines.append(f"    {item['object']}  used by {runs}")

    objects("corrupted objects", report.get("corrupted") or [])
    objects("missing objects", report.get("missing") or [])
    on_remote = report.get("on_remote") or []
    if on_remote:
        count = len(on_remote)
        lines.append(
            f"{count} object{'s' if count != 1 else ''} of pulled runs not downloaded yet (fetched on "
            "demand; `dotnb pull --with-data` fetches them, `dotnb fsck --remote NAME` checks them)"
        )
    damaged = report.get("damaged_runs") or []
    if damaged:
        lines.append(f"unreadable runs ({len(damaged)}):")
        lines += [_clean(f"    {d['run']}: {d['error']}") for d in damaged]
    for key, title in (
        ("unindexed_runs", "runs missing from the index"),
        ("stale_index_rows", "index rows without a run"),
    ):
        ids = report.get(key) or []
        if ids:
            lines.append(f"{title} ({len(ids)}): {', '.join(ids)}  (fix: dotnb fsck --rebuild-index)")
    lines.append("store is healthy" if report["ok"] else "problems found")
    return lines


def format_run(doc: dict[str, Any]) -> list[str]:
    """What ``dotnb run`` prints on stdout: cells run, the runs recorded, the executed copy."""
    cells = doc["cells"]
    ran = sum(1 for c in cells if c["status"] in ("ok", "expected error"))
    took = human_duration(doc["duration_s"])
    lines = [
        _clean(
            f"ran {ran} of {doc['code_cells']} cells of {doc['notebook']} in {took} (kernel {doc['kernel']})"
        )
    ]
    runs = doc["runs"]
    if runs:
        lines.append(f"recorded {len(runs)} run{'s' if len(runs) != 1 else ''}:")
        lines += ["    " + line for line in format_log(runs)]
    else:
        lines.append("recorded no runs (no %%track cells; --track-all records every cell)")
    if doc.get("output"):
        lines.append(_clean(f"executed notebook: {doc['output']}"))
    return lines


def format_cell_failure(cell: Any, doc: dict[str, Any], timeout: float | None) -> list[str]:
    """The stderr report of the cell that stopped ``dotnb run``, with its traceback."""
    from dotnb.headless.notebooks import first_line

    where = f"cell {cell.number} of {cell.total} ({first_line(cell.source)})"
    error = cell.error or {}
    if cell.status == "timeout":
        what = f"{where} did not finish within {timeout:g} s and was interrupted"
    elif cell.status == "kernel died":
        what = f"the kernel died during {where}"
    else:
        what = f"{where} raised {error.get('ename')}: {error.get('evalue')}"
    lines = [f"{PROG}: error: {_clean(what)}"]
    lines += _traceback_tail(error.get("traceback") or [])
    recorded = [r for r in doc["runs"] if r["id"] in {run.get("id") for run in cell.runs}]
    if not recorded and doc["runs"] and cell.status == "timeout":
        recorded = [r for r in doc["runs"] if r.get("status") == "interrupted"]
    for run in recorded:
        lines.append(
            _clean(f"the failure is recorded as run #{run['number']} ({run['id']}, status {run['status']})")
        )
    return lines


def _traceback_tail(traceback: list[str]) -> list[str]:
    import re

    text = "\n".join(traceback)
    lines = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line) for line in text.splitlines()]
    if len(lines) > TRACEBACK_LINES:
        lines = ["…", *lines[-TRACEBACK_LINES:]]
    return ["    " + _clean(line) for line in lines]


def format_reproduce(report: dict[str, Any]) -> list[str]:
    """The ``dotnb reproduce`` table, environment differences, causes and the verdict."""
    lines: list[str] = []
    where = f" in {report['notebook']}" if report.get("notebook") else ""
    name = f" {report['name']!r}" if report.get("name") else ""
    head = f"run {report['run']}"
    if report.get("number") is not None:
        head += f" (#{report['number']}{name}{where})"
    if report.get("reproduction"):
        head += f"  →  reproduction {report['reproduction']} (#{report.get('reproduction_number')})"
    lines.append(_clean(head))
    rows = report.get("rows") or []
    if rows:
        table = [["WHAT", "NAME", "ORIGINAL", "REPRODUCED", "VERDICT"]]
        for r in rows:
            verdict = r["verdict"] + (f" ({r['detail']})" if r.get("detail") else "")
            table.append(
                [
                    r["kind"],
                    _truncate_left(_clean(r["name"]), NAME_WIDTH + 8),
                    _compared_value(r["kind"], r["original"]),
                    _compared_value(r["kind"], r["reproduced"]),
                    _clean(verdict),
                ]
            )
        width = terminal_width()
        lines += [""] + [truncate(line, width) if width else line for line in _align(table)]
    environment = report.get("environment") or {}
    if environment:
        lines += ["", "environment differences"]
        for key, (a, b) in environment.items():
            lines.append(_clean(f"    {key}: {_value_or_absent(a)} → {_value_or_absent(b)}"))
    elif rows:
        lines += ["", "environment: same Python, platform and package versions"]
    causes = report.get("causes") or []
    if causes:
        title = "why it may not reproduce" if report["verdict"] != "reproduced" else "notes"
        lines += ["", title]
        lines += [_clean(f"    - {cause}") for cause in causes]
    for warning in report.get("warnings") or []:
        lines.append(_clean(f"warning: {warning}"))
    lines.append("")
    verdict = report["verdict"]
    if verdict == "reproduced":
        lines.append(_clean(f"reproduced: run {report['reproduction']} reproduces {report['run']}"))
    elif verdict == "differs":
        bad = sum(1 for r in rows if not r["ok"])
        lines.append(
            _clean(
                f"differs: {bad} of {len(rows)} compared items differ "
                f"(the reproduction is recorded as run {report['reproduction']})"
            )
        )
    else:
        lines.append(_clean(f"could not run: {report.get('error') or 'unknown error'}"))
        if report.get("reproduction"):
            lines.append(_clean(f"the attempt is recorded as run {report['reproduction']}"))
    if report.get("workdir"):
        lines.append(_clean(f"work folder kept: {report['workdir']}"))
    return lines


def _truncate_left(text: str, width: int) -> str:
    """Keep the end of a long path: its file name tells more than its first folders."""
    if display_width(text) <= width:
        return text
    return "…" + truncate(text[::-1], width - 1)[:-1][::-1]


def _compared_value(kind: str, value: Any) -> str:
    if value is None:
        return "-"
    if kind in ("input", "output") and isinstance(value, str):
        return value[:SHORT_HASH]
    if kind == "external":
        return human_size(value)
    if kind == "metric" and isinstance(value, float):
        return f"{value:.6g}"
    return truncate(_clean(_json_value(value)), 24)


def local_time(iso: Any) -> str:
    """A manifest's UTC ISO time in the local zone, to the second."""
    from datetime import datetime

    if not isinstance(iso, str):
        return "-"
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def human_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def human_size(size: Any) -> str:
    if not isinstance(size, int):
        return "-"
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def short_value(value: Any, limit: int = 24) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else _json_value(value)
    return truncate(_clean(text), limit)


def _json_value(value: Any) -> str:
    import json

    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _clean(text: str) -> str:
    """Escape control and format characters so names and paths cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def display_width(text: str) -> int:
    import unicodedata

    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def truncate(text: str, width: int) -> str:
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def terminal_width() -> int | None:
    """Columns to truncate tables to: the terminal's, or $COLUMNS; None when piped."""
    if "COLUMNS" not in os.environ and not _isatty(sys.stdout):
        return None
    return max(20, terminal_columns())


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns`` without importing shutil (see _HelpFormatter):
    $COLUMNS, else the width of the terminal on stdout, else 80."""
    with contextlib.suppress(KeyError, ValueError):
        columns = int(os.environ["COLUMNS"])
        if columns > 0:
            return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _write_all(out: Any, data: bytes) -> None:
    """Write every byte: a buffered stdout may report a short write (a pipe closed mid-write)
    instead of raising, and only the next write raises BrokenPipeError."""
    view = memoryview(data)
    while view:
        written = out.write(view)
        view = view[written if written is not None else len(view) :]


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _emit_json(doc: Any) -> None:
    """Every ``--json`` output (``dotnb log --json`` is also printed by dotnb.entry.fast_log)."""
    import json

    from dotnb.entry import json_ensure_ascii

    text = json.dumps(doc, indent=2, ensure_ascii=json_ensure_ascii(sys.stdout))
    sys.stdout.write(text + "\n")


# ---------------------------------------------------------------------------
# progress on stderr


class CellProgress:
    """One stderr line per executed cell, ``[3/9] first line   ok 1.32s``, then the runs it recorded.

    On a terminal the line is started before the cell runs (cell output goes into
    the notebook, not the terminal) and finished after it; elsewhere (CI logs, a
    notebook's ``!dotnb``) each line is written whole when its cell ends.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = _isatty(stream)
        self.open = False

    def _head(self, cell: Any) -> str:
        from dotnb.headless.notebooks import first_line

        counter = f"[{cell.number:>{len(str(cell.total))}}/{cell.total}]"
        text = truncate(_clean(first_line(cell.source, CELL_LINE_WIDTH)), CELL_LINE_WIDTH)
        return f"{counter} {text}{' ' * (CELL_LINE_WIDTH - display_width(text))}  "

    def start(self, cell: Any) -> None:
        if self.tty:
            self.stream.write(self._head(cell))
            self.stream.flush()
            self.open = True

    def end(self, cell: Any) -> None:
        head = "" if self.open else self._head(cell)
        self.stream.write(f"{head}{cell.status} {human_duration(cell.duration_s)}\n")
        for run in cell.runs:
            self.stream.write(f"    {_clean(str(run.get('line', '')))}\n")
        self.stream.flush()
        self.open = False

    def abort(self) -> None:
        """End a half-written line (the kernel failed, or the user interrupted)."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


class _Progress:
    """A status line on stderr: redrawn in place on a terminal, else a line every few seconds."""

    def __init__(self, stream: TextIO, delay: float = 0.0) -> None:
        self.stream = stream
        self.tty = _isatty(stream)
        self.delay = delay
        self.started = time.monotonic()
        self.last_shown: float | None = None
        self.done = 0

    def __call__(self, amount: int) -> None:
        self.done += amount
        now = time.monotonic()
        if now - self.started < self.delay:
            return
        interval = PROGRESS_TTY_INTERVAL_S if self.tty else PROGRESS_LINE_INTERVAL_S
        if self.last_shown is not None and now - self.last_shown < interval:
            return
        self._show(now)

    def _show(self, now: float) -> None:
        self.last_shown = now
        text = self.text(now - self.started)
        self.stream.write(f"\r{text}\x1b[K" if self.tty else f"{text}\n")
        self.stream.flush()

    def finish(self) -> None:
        """Show the final state, if anything was shown, and end the line."""
        if self.last_shown is None:
            return
        self._show(time.monotonic())
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def text(self, elapsed: float) -> str:  # pragma: no cover - overridden
        raise NotImplementedError


class ByteProgress(_Progress):
    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        super().__init__(stream)
        self.label = label
        self.total = total

    def text(self, elapsed: float) -> str:
        rate = self.done / elapsed / 1024**2 if elapsed > 0 else 0.0
        pct = 100 * self.done / self.total if self.total else 100.0
        return (
            f"{self.label}: {human_size(self.done)} / {human_size(self.total)} ({pct:.0f}%)  {rate:.1f} MiB/s"
        )


class CountProgress(_Progress):
    def __init__(self, label: str, what: str, stream: TextIO, delay: float = 0.0) -> None:
        super().__init__(stream, delay)
        self.label = label
        self.what = what

    def text(self, elapsed: float) -> str:
        return f"{self.label}: {self.done} {self.what} ({elapsed:.0f} s)"
