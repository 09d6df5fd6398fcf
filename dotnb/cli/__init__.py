"""The ``dotnb`` console script: a thin face over :mod:`dotnb.store`.

Every command turns its arguments into one store call and formats the result,
for people by default and as JSON with ``--json``.  The REST API is the second
face of the same operations, so nothing here decides anything a handler would
also need: that belongs in the store.  What lives here is argument parsing,
path arguments relative to the working folder, tables, progress on stderr and
the mapping of errors to exit codes.

Modules, from the entry point down (imports point down only):

- :mod:`.entry` — the console script; answers ``dotnb log --json`` itself, without
  argparse or json, and hands everything else to :mod:`.app`;
- :mod:`.app` — the parser and :func:`~dotnb.cli.app.main`: which commands exist,
  in which order, and how a handler's outcome becomes an exit status;
- one module per command group: :mod:`.runs` (log, show, diff, cat),
  :mod:`.restore`, :mod:`.maintenance` (init, fsck, gc), :mod:`.headless` (run,
  reproduce), :mod:`.remote` (remote, push, pull) — each its commands' arguments,
  help text and handlers;
- :mod:`.args` — what the commands share: the help formatter, the common options,
  argument types, the store and RUN arguments;
- :mod:`.render` — what each command prints, as pure functions from plain data to
  lines (testable without a parser), over :mod:`.text` (escaping, widths, sizes);
- :mod:`.progress` — progress lines on stderr; :mod:`.output` — stdout, JSON and
  the terminal; :mod:`.exits` — exit statuses and error messages.

This package's ``__init__`` imports nothing (``dotnb.cli.main`` is
:func:`dotnb.cli.app.main`, imported on first use): the fast path of :mod:`.entry`
goes through it.  ``import dotnb.cli.app`` stays cheap too: the store (SQLite, BLAKE3)
is imported by the commands that need it.
"""

from __future__ import annotations

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from dotnb.cli.app import main

__all__ = ["main"]


def __getattr__(name: str) -> object:
    # dotnb.cli.main, the argparse CLI, imported on first use (PEP 562) so that the
    # fast path of dotnb.cli.entry, which goes through this package, stays light.
    if name == "main":
        from dotnb.cli.app import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
