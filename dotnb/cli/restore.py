"""``dotnb restore``: data files and the notebook back to a run, checkpointed first."""

from __future__ import annotations

import sys

from dotnb.cli.args import Commands, open_store, resolve_run
from dotnb.cli.exits import EXIT_OK, warn
from dotnb.cli.output import emit_json, out
from dotnb.cli.progress import ByteProgress
from dotnb.cli.render import format_plan

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

# A restore shows a progress line when it writes more than this.
PROGRESS_MIN_BYTES = 64 * 1024 * 1024


def add_restore(commands: Commands) -> None:
    p = commands.add(
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
        commands.notebook,
        commands.json,
    )
    p.add_argument("run", metavar="RUN", help="run to restore")
    part = p.add_mutually_exclusive_group()
    part.add_argument("--data-only", action="store_true", help="restore the data files, not the notebook")
    part.add_argument("--notebook-only", action="store_true", help="restore the notebook, not the data files")
    p.add_argument("--dry-run", action="store_true", help="print the plan and write nothing")
    p.add_argument("--yes", "-y", action="store_true", help="accepted for scripts (dotnb never prompts)")


# The sub-parsers this module adds, by command (dotnb.cli.app.COMMANDS orders them).
COMMANDS: dict[str, Callable[[Commands], None]] = {
    "restore": add_restore,
}


def cmd_restore(args: argparse.Namespace) -> int:
    from dotnb.store.restore import restore

    data, notebook = not args.notebook_only, not args.data_only
    with open_store(args) as store:
        run_id = resolve_run(store, args, args.run)
        bars: list[ByteProgress] = []

        def show_plan(plan: dict[str, Any]) -> ByteProgress | None:
            if not args.json:
                for line in format_plan(plan, store.manifest(run_id)):
                    out(line)
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
        emit_json(result)
        return EXIT_OK
    if args.dry_run:
        out("dry run: nothing was written")
        return EXIT_OK
    if result["checkpoint"] is None:
        out("nothing to restore: the files already match the run")
        return EXIT_OK
    written = len(result["written"])
    out(f"restored {written} path{'s' if written != 1 else ''}")
    out(f"checkpoint #{result['checkpoint_number']} ({result['checkpoint']}) holds the previous state")
    out(f"undo with: dotnb restore {result['checkpoint']}")
    for rel in result.get("checkpoint_lost") or []:
        # A process that had the old file open wrote to it while it was being replaced.
        warn(f"the checkpoint could not keep the previous bytes of {rel!r}: they changed during the restore")
    return EXIT_OK
