"""``dotnb log``, ``show``, ``diff`` and ``cat``: reading the recorded runs."""

from __future__ import annotations

import sys

from dotnb.cli.args import Commands, non_negative_int, open_for_listing, open_store, resolve_run
from dotnb.cli.exits import EXIT_OK
from dotnb.cli.output import emit_json, out, write_all
from dotnb.cli.render import format_diff, format_log, format_show
from dotnb.cli.text import SHORT_HASH, clean

# For type checking only: importing typing or pathlib costs milliseconds of every start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from dotnb.store.repo import Store

LOG_DEFAULT_LIMIT = 50
CAT_CHUNK = 1024 * 1024


# ---------------------------------------------------------------------------
# the commands' arguments


def add_log(commands: Commands) -> None:
    from dotnb.store.vocabulary import RUN_KINDS, RUN_STATUSES

    p = commands.add(
        "log",
        cmd_log,
        "list runs, newest first",
        """
        List recorded runs, newest first: number, id, start time (local), status,
        name, tags, duration, params and metrics.
        """,
        f"""
        --limit defaults to {LOG_DEFAULT_LIMIT} for the table and to every run with --json;
        --limit 0 lists every run.

        examples:
          dotnb log
          dotnb log --notebook train.ipynb --status error
          dotnb log --kind checkpoint --limit 5
          dotnb log --metric 'acc>0.9' --search adam
          dotnb log --author alice
          dotnb log --tag baseline
          dotnb log --json | jq '.[0].metrics'
        """,
        commands.notebook,
        commands.json,
    )
    p.add_argument("--kind", choices=RUN_KINDS, help="only runs of this kind")
    p.add_argument("--status", choices=RUN_STATUSES, help="only runs with this status")
    p.add_argument("--limit", metavar="N", type=non_negative_int, help="show at most N runs (0: all)")
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="COND",
        help="only runs whose summary metric meets COND, e.g. 'acc>0.9' (repeatable; all must hold)",
    )
    p.add_argument("--search", metavar="TEXT", help="only runs whose name, params or code contain TEXT")
    p.add_argument("--author", metavar="NAME", help="only runs by NAME (a user, or user@host)")
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="NAME",
        help="only runs tagged NAME (repeatable; all must hold; see dotnb tag)",
    )
    p.add_argument(
        "--show-signature",
        action="store_true",
        help="check each run's SSH signature and show its status (good, bad, unknown key, unsigned); "
        "with --json, each row gets a 'signature' object",
    )


def add_show(commands: Commands) -> None:
    p = commands.add(
        "show",
        cmd_show,
        "show one run",
        """
        Show everything recorded for a run: header, code, params, metrics, inputs and
        outputs, external inputs, environment, lineage and warnings.  --json prints
        the whole manifest with each lineage cell's code included ("code": null and
        "code_missing": true when its object is not in the store).

        A folder the run read or wrote many files in is recorded as a tree and shown
        as one line (its path, file count, total size and tree hash); --files lists
        every file instead, also in --json.
        """,
        """
        examples:
          dotnb show latest
          dotnb show 01HXYZ
          dotnb show '#12' --notebook train.ipynb --json
          dotnb show latest --files
        """,
        commands.notebook,
        commands.json,
    )
    p.add_argument("run", metavar="RUN", help="run id, id prefix, '#N' or 'latest'")
    p.add_argument("--files", action="store_true", help="list every file of folders recorded as trees")


def add_diff(commands: Commands) -> None:
    p = commands.add(
        "diff",
        cmd_diff,
        "compare two runs",
        """
        Compare two runs: a unified diff of the code, then the params, metrics,
        inputs, outputs and environment that differ, as 'name: first → second'.
        """,
        """
        examples:
          dotnb diff '#3' latest
          dotnb diff 01HXA 01HXB --json
        """,
        commands.notebook,
        commands.json,
    )
    p.add_argument("first", metavar="RUN", help="the first run")
    p.add_argument("second", metavar="RUN", help="the second run")


def add_cat(commands: Commands) -> None:
    p = commands.add(
        "cat",
        cmd_cat,
        "write a stored input or output to stdout",
        """
        Write the stored bytes of one input or output of RUN to stdout, exactly.
        PATH is relative to the working folder or to the project root.  When the run
        both read and wrote PATH, the output is written unless --input is given.
        The object is verified before the first byte is written.
        """,
        """
        Put '--' before a PATH that starts with '-'.

        examples:
          dotnb cat latest results/metrics.csv | head
          dotnb cat '#3' data/train.parquet > /tmp/train-3.parquet
          dotnb cat 01HXYZ --input data/raw.csv
          dotnb cat latest -- -odd-name.txt
        """,
        commands.notebook,
    )
    p.add_argument("run", metavar="RUN", help="run whose file to print")
    p.add_argument("path", metavar="PATH", help="an input or output path of the run")
    p.add_argument("--input", action="store_true", help="the bytes the run read, not the bytes it wrote")


# The sub-parsers this module adds, by command (dotnb.cli.app.COMMANDS orders them).
COMMANDS: dict[str, Callable[[Commands], None]] = {
    "log": add_log,
    "show": add_show,
    "diff": add_diff,
    "cat": add_cat,
}


# ---------------------------------------------------------------------------
# handlers


def cmd_log(args: argparse.Namespace) -> int:
    from dotnb.store.query import parse_metric_condition

    conditions = [parse_metric_condition(text) for text in args.metric]
    if args.show_signature:
        return _log_with_signatures(args, conditions)
    with open_for_listing(args) as store:
        notebook = store.notebook_arg(args.notebook)
        limit: int | None = args.limit
        if limit is None and not args.json:
            limit = LOG_DEFAULT_LIMIT
        if limit == 0:
            limit = None
        # One row more than shown tells whether the listing was cut.
        rows = store.list_runs(
            notebook=notebook, **_log_filters(args, conditions), limit=None if limit is None else limit + 1
        )
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    if args.json:
        emit_json(rows)
        return EXIT_OK
    if not rows:
        out("no runs recorded" + (f" for {clean(notebook)}" if notebook else ""))
        return EXIT_OK
    for line in format_log(rows):
        out(line)
    if more:
        print(
            f"(showing the newest {limit}; --limit N shows more, --limit 0 all)",
            file=sys.stderr,
        )
    return EXIT_OK


def _log_filters(args: argparse.Namespace, conditions: list[Any]) -> dict[str, Any]:
    """``dotnb log``'s filters, as ``list_runs`` takes them."""
    return {
        "kind": args.kind,
        "status": args.status,
        "text": args.search,
        "author": args.author,
        "metrics": conditions,
        "tags": args.tag,
    }


def _log_with_signatures(args: argparse.Namespace, conditions: list[Any]) -> int:
    """``dotnb log --show-signature``: the store opened (signatures are checked in it)."""
    from dotnb.cli.render import format_signature

    with open_store(args) as store:
        notebook = store.notebook_arg(args.notebook)
        limit: int | None = args.limit
        if limit is None and not args.json:
            limit = LOG_DEFAULT_LIMIT
        rows = store.list_runs(notebook=notebook, **_log_filters(args, conditions), limit=limit or None)
        rows = store.with_signatures(rows)
    if args.json:
        emit_json(rows)
        return EXIT_OK
    if not rows:
        out("no runs recorded" + (f" for {clean(notebook)}" if notebook else ""))
        return EXIT_OK
    # As git log --show-signature: the signature line above each run's line.
    table = format_log(rows)
    out(table[0])
    for row, line in zip(rows, table[1:], strict=True):
        out(f"  {format_signature(row.get('signature'))}")
        out(line)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from dotnb.store.views import distributions, run_detail

    with open_store(args) as store:
        run_id = resolve_run(store, args, args.run)
        manifest = store.manifest(run_id)
        if args.files:
            manifest = store.expanded(manifest)
        if args.json:
            emit_json(run_detail(store, run_id, manifest))
            return EXIT_OK
        origin = store.read_ref_origin(run_id)[1]
        expanded = dict(manifest, lineage=store.lineage(manifest))
        dists = distributions(store, manifest)
        signature = store.signature(run_id, store.manifest_hash(run_id))
        lines = format_show(expanded, None if dists is None else len(dists), origin, signature)
    for line in lines:
        out(line)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from dotnb.comparison.diff import diff_runs

    with open_store(args) as store:
        first = resolve_run(store, args, args.first)
        second = resolve_run(store, args, args.second)
        result = diff_runs(store, first, second)
    if args.json:
        emit_json(result)
        return EXIT_OK
    for line in format_diff(result):
        out(line)
    return EXIT_OK


def cmd_cat(args: argparse.Namespace) -> int:
    from dotnb.store.errors import DotnbError, ObjectCorrupt, ObjectMissing
    from dotnb.store.vocabulary import no_content_reason

    with open_store(args) as store:
        run_id = resolve_run(store, args, args.run)
        manifest = store.manifest(run_id)
        entry = _file_entry(store, manifest, args.path, want_input=args.input)
        digest = entry.get("hash")
        if not digest:
            reason = no_content_reason(entry)
            raise DotnbError(f"{entry['path']!r} has no stored content in run {run_id}: {reason}")
        # Fetch (pulled runs) and verify first: a corrupted object must not reach a pipe half-written.
        store.objects.ensure([digest])
        if not store.objects.verify(digest):
            if not store.objects.has(digest):
                raise ObjectMissing(
                    f"object {digest[:SHORT_HASH]} for {entry['path']!r} is missing from the store"
                )
            raise ObjectCorrupt(
                f"object {digest[:SHORT_HASH]} for {entry['path']!r} is corrupted (run `dotnb fsck`)"
            )
        stdout = sys.stdout.buffer
        with store.objects.open(digest) as src:
            while chunk := src.read(CAT_CHUNK):
                write_all(stdout, chunk)
        stdout.flush()
    return EXIT_OK


def _file_entry(store: Store, manifest: dict[str, Any], text: str, want_input: bool) -> dict[str, Any]:
    """The manifest entry ``cat`` prints for a PATH argument (outputs win unless ``want_input``)."""
    from dotnb.store.errors import DotnbError
    from dotnb.store.paths import path_candidates
    from dotnb.store.views import file_entry

    candidates = path_candidates(store.root, text)
    for rel in candidates:
        entry = file_entry(store, manifest, rel, want_input)
        if entry is not None:
            return entry
    what = "an input" if want_input else "an input or output"
    shown = candidates[0] if candidates else text
    raise DotnbError(f"{shown!r} is not {what} of run {manifest['id']}")
