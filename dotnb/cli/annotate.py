"""``dotnb tag``, ``untag`` and ``note``: tags and notes on recorded runs.

They are annotations kept apart from the run, which stays as recorded (see
:mod:`dotnb.store.annotations`); each change records who made it and when.
"""

from __future__ import annotations

from dotnb.cli.args import Commands, open_store, resolve_run
from dotnb.cli.exits import EXIT_OK
from dotnb.cli.output import emit_json, out
from dotnb.cli.render import format_annotations

# For type checking only: importing typing costs milliseconds of every start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable


def add_tag(commands: Commands) -> None:
    p = commands.add(
        "tag",
        cmd_tag,
        "tag a run",
        """
        Add tags to a run (e.g. baseline, bad-data).  Tags are kept beside the run,
        which stays as recorded; each change records who made it and when.  A tag
        has no spaces or commas and at most 64 characters.  `dotnb log --tag NAME`
        lists the runs that carry a tag; `dotnb push` and `pull` carry tags along.
        """,
        """
        examples:
          dotnb tag latest baseline
          dotnb tag '#12' bad-data rerun --notebook train.ipynb
        """,
        commands.notebook,
        commands.json,
    )
    p.add_argument("run", metavar="RUN", help="run id, id prefix, '#N' or 'latest'")
    p.add_argument("names", metavar="NAME", nargs="+", help="tags to add")


def add_untag(commands: Commands) -> None:
    p = commands.add(
        "untag",
        cmd_untag,
        "remove tags from a run",
        """
        Remove tags from a run.  Removing a tag the run does not carry is not an
        error.  The change is recorded (who, when) like adding one.
        """,
        """
        examples:
          dotnb untag latest baseline
        """,
        commands.notebook,
        commands.json,
    )
    p.add_argument("run", metavar="RUN", help="run id, id prefix, '#N' or 'latest'")
    p.add_argument("names", metavar="NAME", nargs="+", help="tags to remove")


def add_note(commands: Commands) -> None:
    p = commands.add(
        "note",
        cmd_note,
        "write a note on a run",
        """
        Set a run's note (free text, at most 10,000 characters), replacing the
        previous one; an empty TEXT removes it.  Earlier notes stay in the run's
        annotation history (`--json` shows it).
        """,
        """
        examples:
          dotnb note latest 'lr too high: diverges after epoch 3'
          dotnb note '#7' ''
        """,
        commands.notebook,
        commands.json,
    )
    p.add_argument("run", metavar="RUN", help="run id, id prefix, '#N' or 'latest'")
    p.add_argument("text", metavar="TEXT", help="the note ('' removes it)")


# The sub-parsers this module adds, by command (dotnb.cli.app.COMMANDS orders them).
COMMANDS: dict[str, Callable[[Commands], None]] = {
    "tag": add_tag,
    "untag": add_untag,
    "note": add_note,
}


def cmd_tag(args: argparse.Namespace) -> int:
    from dotnb.store.annotating import tag_run

    with open_store(args) as store:
        doc = tag_run(store, resolve_run(store, args, args.run), args.names)
    return _report(args, doc)


def cmd_untag(args: argparse.Namespace) -> int:
    from dotnb.store.annotating import untag_run

    with open_store(args) as store:
        doc = untag_run(store, resolve_run(store, args, args.run), args.names)
    return _report(args, doc)


def cmd_note(args: argparse.Namespace) -> int:
    from dotnb.store.annotating import note_run

    with open_store(args) as store:
        doc = note_run(store, resolve_run(store, args, args.run), args.text)
    return _report(args, doc)


def _report(args: argparse.Namespace, doc: dict[str, object]) -> int:
    if args.json:
        emit_json(doc)
        return EXIT_OK
    for line in format_annotations(doc):
        out(line)
    return EXIT_OK
