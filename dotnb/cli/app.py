"""The ``dotnb`` parser and :func:`main`: which commands exist, and how a handler's outcome
becomes an exit status.

The console script enters through :mod:`dotnb.cli.entry`, which answers the
common ``dotnb log --json`` forms without importing this module.
"""

from __future__ import annotations

import argparse
import signal
import sys

from dotnb.cli.args import COMMAND_METAVAR, Commands, HelpFormatter
from dotnb.cli.exits import (
    EXIT_BROKEN_PIPE,
    EXIT_USAGE,
    PROG,
    exit_status,
    report_exception,
    report_interrupted,
)
from dotnb.cli.output import silence_stdout
from dotnb.cli.text import dedent

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from dotnb.cli.args import Handler

# Every command, in the order ``dotnb --help`` lists them, with the module of dotnb.cli
# that holds it (its COMMANDS add the sub-parsers).  Only the module of the command
# being run is imported: each module imported is time of every start.
COMMANDS = {
    "init": "maintenance",
    "log": "runs",
    "show": "runs",
    "diff": "runs",
    "restore": "restore",
    "cat": "runs",
    "lineage": "lineage",
    "export": "lineage",
    "import": "lineage",
    "tag": "annotate",
    "untag": "annotate",
    "note": "annotate",
    "fsck": "maintenance",
    "verify": "verify",
    "gc": "maintenance",
    "remote": "remote",
    "push": "remote",
    "pull": "remote",
    "run": "headless",
    "reproduce": "headless",
    "sweep": "sweep",
    "config": "verify",
}

DESCRIPTION = (
    "Reproducible Jupyter notebooks: list, inspect, compare and restore the runs\n"
    "recorded by tracked cells (%%track) in the store under .dotnb/; run notebooks\n"
    "headlessly and check that a run reproduces."
)
EPILOG = """
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
      dotnb lineage models/model.pkl --upstream
      dotnb tag latest baseline
      dotnb run train.ipynb -p lr=0.3
      dotnb reproduce latest
      dotnb remote add origin s3://team-bucket/project
      dotnb push && dotnb pull
    """


def main(argv: list[str] | None = None) -> int:
    """Run the ``dotnb`` command line; returns the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(only=command_in(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exit_status(exc.code)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    # SIGTERM ends the command as Ctrl-C would, through its cleanup (a restore
    # removes the temp files it made), with the shell's status for it.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        status = handler(args)
        sys.stdout.flush()  # a closed pipe must surface here, not at interpreter exit
        return status
    except BrokenPipeError:
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return report_interrupted()
    except Exception as exc:
        return report_exception(exc)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def command_in(argv: list[str]) -> str | None:
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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``dotnb`` parser; with ``only``, the other commands' sub-parsers are left out
    (building all thirteen costs more than the rest of ``dotnb log``: argparse formats
    and translates each option as it is added)."""
    from dotnb import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=dedent(EPILOG),
        formatter_class=HelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=None,
        help="project root holding .dotnb/ (default: $DOTNB_ROOT, else the nearest parent with .dotnb/)",
    )
    from importlib import import_module

    commands = Commands(parser.add_subparsers(title="commands", metavar=COMMAND_METAVAR).add_parser)
    for name, group in COMMANDS.items():
        if only is None or name == only:
            import_module(f"dotnb.cli.{group}").COMMANDS[name](commands)
    return parser
