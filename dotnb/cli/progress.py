"""Progress on stderr: one line per executed cell, and status lines for long transfers and checks.

On a terminal a status line is redrawn in place; elsewhere (CI logs, a notebook's
``!dotnb``) a line is written every few seconds, so logs stay readable.
"""

from __future__ import annotations

import time

from dotnb.cli.output import isatty
from dotnb.cli.text import clean, display_width, human_duration, human_size, truncate

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

PROGRESS_TTY_INTERVAL_S = 0.1
PROGRESS_LINE_INTERVAL_S = 5.0
# A push or pull says nothing before this: small transfers finish first.
TRANSFER_QUIET_S = 1.0
CELL_LINE_WIDTH = 48


class CellProgress:
    """One stderr line per executed cell, ``[3/9] first line   ok 1.32s``, then the runs it recorded.

    On a terminal the line is started before the cell runs (cell output goes into
    the notebook, not the terminal) and finished after it; elsewhere (CI logs, a
    notebook's ``!dotnb``) each line is written whole when its cell ends.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = isatty(stream)
        self.open = False

    def _head(self, cell: Any) -> str:
        from dotnb.headless.notebooks import first_line

        counter = f"[{cell.number:>{len(str(cell.total))}}/{cell.total}]"
        text = truncate(clean(first_line(cell.source, CELL_LINE_WIDTH)), CELL_LINE_WIDTH)
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
            self.stream.write(f"    {clean(str(run.get('line', '')))}\n")
        self.stream.flush()
        self.open = False

    def abort(self) -> None:
        """End a half-written line (the kernel failed, or the user interrupted)."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


class StatusLine:
    """A status line on stderr: redrawn in place on a terminal, else a line every few
    seconds; nothing before ``delay`` seconds (short work finishes first)."""

    def __init__(self, stream: TextIO, delay: float = 0.0) -> None:
        self.stream = stream
        self.tty = isatty(stream)
        self.delay = delay
        self.started = time.monotonic()
        self.last_shown: float | None = None
        self.done = 0

    def __call__(self, amount: int) -> None:
        self.done += amount
        self.update()

    def update(self, final: bool = False) -> None:
        """Show the line if the last one is old enough (a ``final`` state at once)."""
        now = time.monotonic()
        if now - self.started < self.delay:
            return
        interval = PROGRESS_TTY_INTERVAL_S if self.tty else PROGRESS_LINE_INTERVAL_S
        if not final and self.last_shown is not None and now - self.last_shown < interval:
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
        if self.changed_since_shown():
            self._show(time.monotonic())
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def changed_since_shown(self) -> bool:
        return True

    def text(self, elapsed: float) -> str:  # pragma: no cover - overridden
        raise NotImplementedError


class ByteProgress(StatusLine):
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


class CountProgress(StatusLine):
    def __init__(self, label: str, what: str, stream: TextIO, delay: float = 0.0) -> None:
        super().__init__(stream, delay)
        self.label = label
        self.what = what

    def text(self, elapsed: float) -> str:
        return f"{self.label}: {self.done} {self.what} ({elapsed:.0f} s)"


class TransferLine(StatusLine):
    """Progress of a push, pull or remote fsck: items and bytes per phase."""

    def __init__(self, label: str, stream: TextIO) -> None:
        super().__init__(stream, delay=TRANSFER_QUIET_S)
        self.label = label
        self.latest: Any = None
        self.shown: Any = None

    def __call__(self, p: Any) -> None:  # a TransferProgress, not a count
        self.latest = p
        self.update(final=p.done == p.total)

    def changed_since_shown(self) -> bool:
        return self.shown != self.latest

    def text(self, elapsed: float) -> str:
        p = self.shown = self.latest
        text = f"{self.label}: {p.phase} {p.done}/{p.total}"
        if p.total_bytes or p.done_bytes:
            rate = p.done_bytes / max(elapsed, 1e-6)
            total = f" / {human_size(p.total_bytes)}" if p.total_bytes else ""
            text += f"  {human_size(p.done_bytes)}{total}  {human_size(int(rate))}/s"
        return text
