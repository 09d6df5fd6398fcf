"""What the commands share: the help formatter, the common options, argument types, and the
store and RUN arguments.

Each command module adds its sub-parsers through :class:`Commands` and opens the
store with :func:`open_store`; :mod:`dotnb.cli.app` builds the parser around them.
"""

from __future__ import annotations

import argparse
import contextlib
import os

from dotnb.cli.output import terminal_columns
from dotnb.cli.text import dedent

# For type checking only: importing typing, or pathlib (it imports urllib.parse),
# costs milliseconds of every start, much of a ``dotnb log``.  mypy reads any name
# TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from dotnb.store.listing import IndexReader
    from dotnb.store.repo import Store

    RunLister = Store | IndexReader
    Handler = Callable[[argparse.Namespace], int]

# The metavars of dotnb's lists of subcommands (dotnb's commands, ``dotnb remote``'s
# actions): HelpFormatter knows those lists by them.
COMMAND_METAVAR = "COMMAND"
REMOTE_ACTION_METAVAR = "ACTION"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (dedented as their parser is built), and
    subcommands measured at the indent they are listed at.

    argparse (3.11) measures the subcommands of a list one indent less deep than it
    lists them, which put the help of a 9-letter command (``reproduce``) on a line of
    its own.  The lists are recognised by their metavars, which no argument uses.
    """

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
    ) -> None:
        # argparse would measure the terminal with shutil, whose import (zlib, bz2, lzma)
        # costs milliseconds of every start: add_argument makes a formatter to check
        # each option, even when no help is shown.  Same width, without it.
        if width is None:
            width = terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)

    def add_argument(self, action: argparse.Action) -> None:
        if action.metavar not in (COMMAND_METAVAR, REMOTE_ACTION_METAVAR):
            super().add_argument(action)
            return
        # Measured one level deeper, where the subcommands are listed (no public API
        # sets the indent argparse measures at).
        self._indent()
        super().add_argument(action)
        self._dedent()


class Commands:
    """Where each command module adds its sub-parsers, with the options they share.

    ``root``, ``json`` and ``notebook`` are parent parsers for :meth:`add`: --root is
    accepted after the command too (SUPPRESS keeps the subcommand from overwriting a
    global --root), --json asks for JSON, --notebook picks '#N' and 'latest' in a
    notebook.
    """

    def __init__(self, add_parser: Callable[..., argparse.ArgumentParser]) -> None:
        self._add_parser = add_parser
        self.root = argparse.ArgumentParser(add_help=False, formatter_class=HelpFormatter)
        self.root.add_argument("--root", metavar="DIR", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        self.json = argparse.ArgumentParser(add_help=False, formatter_class=HelpFormatter)
        self.json.add_argument("--json", action="store_true", help="print JSON for machines instead of text")
        self.notebook = argparse.ArgumentParser(add_help=False, formatter_class=HelpFormatter)
        self.notebook.add_argument(
            "--notebook",
            metavar="NB",
            default=None,
            help="notebook path (relative to the working folder or the root); picks '#N' and 'latest' in it",
        )

    def add(
        self,
        name: str,
        handler: Handler,
        summary: str,
        description: str,
        epilog: str,
        *parents: argparse.ArgumentParser,
    ) -> argparse.ArgumentParser:
        """The sub-parser of command ``name``; ``handler`` runs it.  ``description`` and
        ``epilog`` may be written indented."""
        p = self._add_parser(
            name,
            help=summary,
            description=dedent(description),
            epilog=dedent(epilog),
            formatter_class=HelpFormatter,
            parents=[self.root, *parents],
            allow_abbrev=False,
        )
        p.set_defaults(handler=handler)
        return p


# ---------------------------------------------------------------------------
# argument types


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more: {text!r}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def param_option(text: str) -> tuple[str, Any]:
    from dotnb.capture.params import parse_param_option

    try:
        return parse_param_option(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ---------------------------------------------------------------------------
# the store and RUN arguments


def root_arg(args: argparse.Namespace) -> str | None:
    """The project root the command line names: --root, else $DOTNB_ROOT (None: find it)."""
    return getattr(args, "root", None) or os.environ.get("DOTNB_ROOT")


def store_for(args: argparse.Namespace) -> Store:
    """The store the command line names, opened (the caller closes it)."""
    from pathlib import Path

    from dotnb.store.repo import Store

    root = root_arg(args)
    store = Store(Path(root)) if root else Store.discover(Path.cwd())
    if (store.dir / "remotes.json").exists():
        from dotnb.remote.ondemand import attach

        attach(store)  # pulled runs' objects are fetched when read
    return store


@contextlib.contextmanager
def open_store(args: argparse.Namespace) -> Iterator[Store]:
    store = store_for(args)
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def open_for_listing(args: argparse.Namespace) -> Iterator[RunLister]:
    """What ``log`` lists runs from: the index read directly when opening the store would
    change nothing in it (most of the time; it spares importing and opening the store),
    else the store.  Both list with the same query (dotnb.store.listing)."""
    from dotnb.store.listing import open_current_index

    # An index found damaged by the listing itself: the store is opened, and sets it aside.
    reader = open_current_index(root_arg(args), os.getcwd(), fallback=lambda: store_for(args))
    if reader is None:
        with open_store(args) as store:
            yield store
        return
    try:
        yield reader
    finally:
        reader.close()


def resolve_run(store: Store, args: argparse.Namespace, ref: str) -> str:
    """The run id a RUN argument names, '#N' and 'latest' in --notebook if given."""
    return store.resolve(ref, store.notebook_arg(getattr(args, "notebook", None)))
