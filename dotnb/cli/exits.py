"""Exit statuses of ``dotnb``, and how errors reach stderr.

0 success; 1 an error dotnb reports (or ``fsck`` found problems); 2 usage error;
3 unexpected internal error; 130 interrupted; 141 stdout closed early
(``dotnb log | head``).  ``run``: 1 a cell failed, 2 the notebook could not be
run.  ``reproduce``: 0 reproduced, 1 differs, 2 could not run (both take
``EXIT_COULD_NOT_RUN`` from :mod:`dotnb.store.vocabulary`, as headless does).
"""

from __future__ import annotations

import os
import sys

from dotnb.cli.text import clean

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PROG = "dotnb"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what a shell reports for a process killed by SIGPIPE


def exit_status(code: Any) -> int:
    """The exit status of a ``SystemExit`` code (argparse's --help, --version, usage errors)."""
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_ERROR


def report_exception(exc: Exception) -> int:
    """Print an exception a command raised, in dotnb's words; returns the exit status."""
    # Only an imported store can have raised a DotnbError; importing it here could fail again.
    errors = sys.modules.get("dotnb.store.errors")
    if errors is not None and isinstance(exc, errors.DotnbError):
        error(str(exc))
        return int(getattr(exc, "exit_code", EXIT_ERROR))
    if isinstance(exc, OSError):
        error(os_error_message(exc))
        return EXIT_ERROR
    if os.environ.get("DOTNB_DEBUG"):
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    else:
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {clean(str(exc))} "
            "(set DOTNB_DEBUG=1 to see the traceback)",
            file=sys.stderr,
        )
    return EXIT_INTERNAL


def report_interrupted() -> int:
    print(f"{PROG}: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def error(message: str) -> None:
    print(f"{PROG}: error: {clean(message)}", file=sys.stderr)


def warn(message: str) -> None:
    print(f"{PROG}: warning: {clean(message)}", file=sys.stderr)


def os_error_message(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {os.fsdecode(exc.filename)}"
    return str(exc)
