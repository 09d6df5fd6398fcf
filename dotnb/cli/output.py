"""What ``dotnb`` writes to stdout, and what it knows of the terminal.

Imported by the fast path of :mod:`dotnb.cli.entry`: os and sys only.
"""

from __future__ import annotations

import os
import sys

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def out(line: str) -> None:
    sys.stdout.write(line + "\n")


def emit_json(doc: Any) -> None:
    """Every ``--json`` output (``dotnb log --json`` is also printed by dotnb.cli.entry.fast_log)."""
    import json

    text = json.dumps(doc, indent=2, ensure_ascii=json_ensure_ascii(sys.stdout))
    sys.stdout.write(text + "\n")


def json_ensure_ascii(stream: Any) -> bool:
    """Whether JSON printed to ``stream`` must escape non-ASCII characters (its encoding
    is not UTF-8); the rule of every ``--json`` output."""
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return encoding != "utf8"


def write_all(stream: Any, data: bytes) -> None:
    """Write every byte: a buffered stdout may report a short write (a pipe closed mid-write)
    instead of raising, and only the next write raises BrokenPipeError."""
    view = memoryview(data)
    while view:
        written = stream.write(view)
        view = view[written if written is not None else len(view) :]


def silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (tests capture stdout in memory)


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def terminal_width() -> int | None:
    """Columns to truncate tables to: the terminal's, or $COLUMNS; None when piped."""
    if "COLUMNS" not in os.environ and not isatty(sys.stdout):
        return None
    return max(20, terminal_columns())


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns`` without importing shutil (its imports of
    zlib, bz2 and lzma cost milliseconds of every start): $COLUMNS, else the width of
    the terminal on stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80
