"""``dotnb init``, ``fsck`` and ``gc``: creating, checking and cleaning a store."""

from __future__ import annotations

import sys

from dotnb.cli.args import Commands, non_negative_float, open_store, root_arg
from dotnb.cli.exits import EXIT_ERROR, EXIT_OK
from dotnb.cli.output import emit_json, out
from dotnb.cli.progress import CountProgress, TransferLine
from dotnb.cli.render import format_fsck
from dotnb.cli.text import clean, human_size

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from dotnb.store.repo import Store

# fsck shows progress only once it has run this long (small stores finish first).
FSCK_PROGRESS_DELAY_S = 1.0
GC_LIST_MAX = 20


# ---------------------------------------------------------------------------
# the commands' arguments


def add_init(commands: Commands) -> None:
    p = commands.add(
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
        commands.json,
    )
    p.add_argument(
        "dir", metavar="DIR", nargs="?", help="project root (default: --root or the working folder)"
    )


def add_fsck(commands: Commands) -> None:
    p = commands.add(
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
        commands.json,
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--rebuild-index", action="store_true", help="rebuild the index from the manifests before checking"
    )
    what.add_argument("--remote", metavar="NAME", help="check this remote instead of the local store")


def add_gc(commands: Commands) -> None:
    p = commands.add(
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
        commands.json,
    )
    p.add_argument("--dry-run", action="store_true", help="report what would be removed, remove nothing")
    p.add_argument(
        "--grace",
        metavar="SECONDS",
        type=non_negative_float,
        default=None,
        help="keep unreferenced objects younger than this (default: 3600)",
    )


# The sub-parsers this module adds, by command (dotnb.cli.app.COMMANDS orders them).
COMMANDS: dict[str, Callable[[Commands], None]] = {
    "init": add_init,
    "fsck": add_fsck,
    "gc": add_gc,
}


# ---------------------------------------------------------------------------
# handlers


def cmd_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dotnb.store.repo import STORE_DIR, Store, find_root

    target = Path(args.dir or root_arg(args) or Path.cwd())
    existed = target.is_dir() and find_root(target) == target.resolve()
    store = Store.init(target)
    try:
        if args.json:
            emit_json({"root": str(store.root), "store": str(store.dir), "created": not existed})
        elif existed:
            out(f"dotnb store already exists in {store.root / STORE_DIR}")
        else:
            out(f"initialised an empty dotnb store in {store.root / STORE_DIR}")
    finally:
        store.close()
    return EXIT_OK


def cmd_fsck(args: argparse.Namespace) -> int:
    from dotnb.store.fsck import fsck

    with open_store(args) as store:
        if args.remote:
            return _fsck_remote(store, args)
        rebuilt = store.rebuild_index() if args.rebuild_index else None
        progress = CountProgress("fsck", "objects checked", sys.stderr, delay=FSCK_PROGRESS_DELAY_S)
        try:
            report = fsck(store, progress=progress)
        finally:
            progress.finish()
    if args.json:
        emit_json({**report, "rebuilt_index_runs": rebuilt} if rebuilt is not None else report)
    else:
        if rebuilt is not None:
            out(f"rebuilt the index: {rebuilt} run{'s' if rebuilt != 1 else ''}")
        for line in format_fsck(report):
            out(line)
    return EXIT_OK if report["ok"] else EXIT_ERROR


def _fsck_remote(store: Store, args: argparse.Namespace) -> int:
    from dotnb.remote.check import fsck_remote

    meter = TransferLine("fsck", sys.stderr)
    try:
        report = fsck_remote(store, args.remote, progress=meter)
    finally:
        meter.finish()
    if args.json:
        emit_json(report)
    else:
        out(f"remote {clean(report['remote'])} ({clean(report['url'])}): {report['runs_checked']} runs")
        for line in format_fsck(report):
            out(line)
        if report["unjournaled_runs"]:
            count = len(report["unjournaled_runs"])
            out(
                f"note: {count} run{'s' if count != 1 else ''} not yet announced to pulls (a push was "
                "interrupted); pushing again or `dotnb pull --full` completes them"
            )
    return EXIT_OK if report["ok"] else EXIT_ERROR


def cmd_gc(args: argparse.Namespace) -> int:
    from dotnb.store.gc import DEFAULT_GC_GRACE_S, gc

    grace = DEFAULT_GC_GRACE_S if args.grace is None else args.grace
    with open_store(args) as store:
        result = gc(store, dry_run=args.dry_run, grace_s=grace)
    if args.json:
        emit_json(result)
        return EXIT_OK
    verb = "would remove" if result["dry_run"] else "removed"
    count = len(result["removed"])
    out(
        f"{verb} {count} unreferenced object{'s' if count != 1 else ''} ({human_size(result['bytes_freed'])})"
    )
    for digest in result["removed"][:GC_LIST_MAX]:
        out(f"    {digest}")
    if count > GC_LIST_MAX:
        out(f"    … and {count - GC_LIST_MAX} more (--json lists them all)")
    if result["kept_within_grace"]:
        out(f"kept {result['kept_within_grace']} unreferenced objects younger than {grace:g} s")
    if result["packs_removed"]:
        written = len(result["packs_written"])
        out(
            f"rewrote {len(result['packs_removed'])} pack files into {written} with the objects runs use"
            if written
            else f"removed {len(result['packs_removed'])} pack files no run uses"
        )
    if result["objects_packed"]:
        packing = "would pack" if result["dry_run"] else "packed"
        out(f"{packing} {len(result['objects_packed'])} small objects into one pack")
    for pack in result["damaged_packs_kept"]:
        out(f"kept pack {pack} as it is: an object a run uses fails its check in it (see `dotnb fsck`)")
    if result["orphan_packs_removed"]:
        out(f"{verb} {len(result['orphan_packs_removed'])} pack files an interrupted write left")
    if result["temp_files_removed"]:
        out(f"{verb} {result['temp_files_removed']} stale temp files")
    stray = result["stray_temp_files"]
    if stray:
        out(f"{verb} {len(stray)} temp file{'s' if len(stray) != 1 else ''} an interrupted restore left:")
        out_list = stray[:GC_LIST_MAX]
        for rel in out_list:
            out(f"    {clean(rel)}")
        if len(stray) > GC_LIST_MAX:
            out(f"    … and {len(stray) - GC_LIST_MAX} more (--json lists them all)")
    if result["dry_run"]:
        out("dry run: nothing was removed")
    return EXIT_OK
