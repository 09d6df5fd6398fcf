"""The ``dotnb`` console script's entry point (and ``python -m dotnb``'s).

``dotnb`` is a short-lived process: most of a quick command's wall time is the
interpreter starting and importing modules, not the work asked for.  Scripts and
editors call ``dotnb log --json`` often, and its work (one SQLite query over a
current index) takes a few milliseconds, while argparse and json (both import
``re``) and the sqlite3 package (``sqlite3.dbapi2`` imports datetime) take several
times that to import.  So :func:`main` first tries :func:`fast_log`, which answers
the common ``dotnb log --json`` forms importing only os, sys, ``_sqlite3`` and
import-light modules of dotnb (:mod:`dotnb.store.listing`,
:mod:`dotnb.store.vocabulary`, :mod:`dotnb.cli.output`), and hands everything else
to :func:`dotnb.cli.app.main`, the argparse CLI.

The fast path prints exactly what the argparse CLI prints, and only when it is sure
to: for anything it does not recognise (another command or option, ``--help``, a
value the CLI would refuse), a store it would have to open (a stale index) or any
error, it returns None before writing anything and the CLI does the whole command,
reporting errors in its own words.  This module must import nothing heavy:
``tests/cli/test_log_fastpath.py`` checks that argparse, json, re, typing, pathlib,
sqlite3 and datetime stay out of a fast ``dotnb log --json``.
"""

from __future__ import annotations

import os
import sys

from dotnb.cli.output import json_ensure_ascii
from dotnb.store.vocabulary import RUN_KINDS, RUN_STATUSES

# The options of ``dotnb log`` the fast path answers (each also as --opt=value), with
# their choices where argparse has some.  --root may also come before ``log``.
_LOG_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "--root": None,
    "--notebook": None,
    "--limit": None,
    "--kind": RUN_KINDS,
    "--status": RUN_STATUSES,
    "--search": None,
    "--author": None,
}


def main(argv: list[str] | None = None) -> int:
    """Run the ``dotnb`` command line; returns the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    status = fast_log(argv)
    if status is not None:
        return status
    from dotnb.cli.app import main as cli_main

    return cli_main(argv)


def log_json_options(argv: list[str]) -> dict[str, str] | None:
    """The options of a ``[--root DIR] log ... --json`` command line the fast path
    answers, by name (the last of repeated ones, as argparse keeps); None for any other
    command line, or one the argparse CLI would refuse."""
    options: dict[str, str] = {}
    in_log = as_json = False
    at = 0
    while at < len(argv):
        arg = argv[at]
        at += 1
        if not in_log and arg == "log":
            in_log = True
            continue
        if in_log and arg == "--json":
            as_json = True
            continue
        name, equals, value = arg.partition("=")
        if name not in _LOG_OPTIONS or (not in_log and name != "--root"):
            return None  # --help, --version, --metric, a positional, a mistake...
        if not equals:
            if at == len(argv):
                return None  # a missing value
            value = argv[at]
            at += 1
        # A value that starts with '-' may be read by argparse as an option (or refused).
        if value.startswith("-"):
            return None
        choices = _LOG_OPTIONS[name]
        if choices is not None and value not in choices:
            return None
        if name == "--limit" and not (value.isascii() and value.isdigit()):
            return None
        options[name] = value
    return options if in_log and as_json else None


def fast_log(argv: list[str]) -> int | None:
    """``dotnb log --json`` (:func:`log_json_options`) from a current index, as
    :func:`dotnb.cli.runs.cmd_log` prints it; returns the exit status, or None, having
    written nothing, when the argparse CLI must run the command instead."""
    options = log_json_options(argv)
    if options is None or sys.stdout is None:
        return None
    try:
        from dotnb.store.listing import indent_summaries, open_current_index

        # As dotnb.cli.args.root_arg (which imports argparse): --root, else $DOTNB_ROOT.
        root = options.get("--root") or os.environ.get("DOTNB_ROOT")
        reader = open_current_index(root, os.getcwd())
        if reader is None:
            return None  # the store must be opened (or reports an error)
        try:
            notebook = reader.notebook_arg(options.get("--notebook"))
            # With --json, every run unless --limit says otherwise; --limit 0: all.
            limit = int(options.get("--limit", "0")) or None
            texts = reader.list_run_texts(
                notebook=notebook,
                kind=options.get("--kind"),
                status=options.get("--status"),
                text=options.get("--search"),
                author=options.get("--author"),
                limit=limit,
            )
        finally:
            reader.close()
        ensure_ascii = json_ensure_ascii(sys.stdout)
        out = None
        # ensure_ascii escapes DEL too, which the index's texts hold as it is.
        if not ensure_ascii or all(t.isascii() and "\x7f" not in t for t in texts):
            out = indent_summaries(texts)
        if out is None:
            import json

            out = json.dumps([json.loads(t) for t in texts], indent=2, ensure_ascii=ensure_ascii) + "\n"
    except KeyboardInterrupt:
        return _interrupted()
    except Exception:  # PathOutsideRoot, an SQLite error...: the CLI reports it
        return None
    try:
        sys.stdout.write(out)
        sys.stdout.flush()  # a closed pipe must surface here, not at interpreter exit
    except BrokenPipeError:
        from dotnb.cli.exits import EXIT_BROKEN_PIPE
        from dotnb.cli.output import silence_stdout

        silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:
        from dotnb.cli.exits import report_exception

        return report_exception(exc)
    return 0  # dotnb.cli.exits.EXIT_OK


def _interrupted() -> int:
    from dotnb.cli.exits import report_interrupted

    return report_interrupted()
