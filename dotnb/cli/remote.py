"""``dotnb remote``, ``push`` and ``pull``: the command-line face of :mod:`dotnb.remote`."""

from __future__ import annotations

import argparse
import sys

from dotnb.cli.args import REMOTE_ACTION_METAVAR, Commands, open_store, resolve_run
from dotnb.cli.exits import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from dotnb.cli.output import emit_json, out
from dotnb.cli.progress import TransferLine
from dotnb.cli.render import format_pull, format_push, format_remotes
from dotnb.cli.text import clean

# For type checking only: importing typing costs milliseconds of every start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from dotnb.cli.args import Handler


# ---------------------------------------------------------------------------
# the commands' arguments


def add_remote(commands: Commands) -> None:
    p = commands.add(
        "remote",
        cmd_remote_help,
        "add, list and remove team remotes",
        """
        Manage the remotes this store pushes to and pulls from: S3-compatible object
        storage (s3://BUCKET/PREFIX) or a shared folder (file:///ABSOLUTE/PATH).  A
        remote holds the same content-addressed format as .dotnb/.  The first remote
        added is the default one; push and pull use it when no remote is named.

        Credentials are never stored: S3 remotes use the standard AWS environment
        (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE,
        AWS_DEFAULT_REGION, AWS_ENDPOINT_URL) and ~/.aws/ config files.  Remotes are
        kept in .dotnb/remotes.json.
        """,
        """
        examples:
          dotnb remote add origin s3://team-bucket/churn
          dotnb remote add minio s3://runs --endpoint-url http://127.0.0.1:9000
          dotnb remote add shared file:///mnt/team/dotnb --default
          dotnb remote list
          dotnb remote remove minio
        """,
    )
    p.set_defaults(remote_parser=p)
    sub = p.add_subparsers(title="remote commands", metavar=REMOTE_ACTION_METAVAR)

    def action(
        name: str, handler: Handler, summary: str, *parents: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        q = sub.add_parser(
            name,
            help=summary,
            description=summary,
            parents=[commands.root, *parents],
            allow_abbrev=False,
        )
        q.set_defaults(handler=handler)
        return q

    q = action("add", cmd_remote_add, "add a remote", commands.json)
    q.add_argument("name", metavar="NAME", help="a short name, e.g. origin")
    q.add_argument("url", metavar="URL", help="s3://BUCKET/PREFIX or file:///ABSOLUTE/PATH")
    q.add_argument(
        "--endpoint-url", metavar="URL", help="S3-compatible endpoint (MinIO, SeaweedFS, Ceph, R2…)"
    )
    q.add_argument("--region", metavar="REGION", help="S3 region (default: from the AWS environment)")
    q.add_argument("--profile", metavar="NAME", help="AWS profile from ~/.aws/config to use")
    q.add_argument("--default", action="store_true", help="make it the default remote")
    action("list", cmd_remote_list, "list the remotes", commands.json)
    q = action("remove", cmd_remote_remove, "remove a remote (nothing on the remote is deleted)")
    q.add_argument("name", metavar="NAME", help="the remote to remove")


def add_push(commands: Commands) -> None:
    p = commands.add(
        "push",
        cmd_push,
        "upload runs to a remote",
        """
        Upload the runs the remote lacks, with every object they use (data files,
        notebook snapshots, code, manifests).  Without RUN arguments every run is
        pushed (checkpoints stay local unless named).  Content addressing makes a
        push idempotent and resumable: an interrupted push, run again, uploads only
        what is still missing.  A pushed run never changes on the remote; a run
        changed here after it was pushed is reported as a conflict and left as it is
        there.
        """,
        """
        If the first argument names a configured remote it is the remote; otherwise
        every argument is a RUN and the default remote is used.

        examples:
          dotnb push
          dotnb push origin
          dotnb push latest '#3' --notebook train.ipynb
          dotnb push origin 01HXYZ --json
        """,
        commands.json,
    )
    p.add_argument("targets", metavar="[REMOTE] [RUN ...]", nargs="*", help="remote name, then runs")
    p.add_argument(
        "--notebook",
        metavar="NB",
        default=None,
        help="notebook for '#N' and 'latest' RUN arguments",
    )
    p.add_argument(
        "--with-kernel-state",
        action="store_true",
        help="also send the runs' recorded kernel variables (left out by default: large, private)",
    )


def add_pull(commands: Commands) -> None:
    p = commands.add(
        "pull",
        cmd_pull,
        "bring a remote's runs into this store",
        """
        Add the runs pushed to the remote since the last pull to this store's
        history.  Only their manifests are downloaded: data stays on the remote
        until something needs it (restore, show, cat, reproduce fetch missing
        objects on demand, verifying each one's hash).  --with-data fetches every
        object of the pulled runs now, e.g. before going offline.

        A pull reads only the push journal entries it has not seen, so it stays fast
        on a remote with many runs.  --full re-reads the whole remote (runs whose
        push was interrupted before its journal entry, or pushers whose clocks are
        far off).  Runs with unsafe paths (absolute, '..') or damaged manifests are
        rejected and listed; nothing of them is written.
        """,
        """
        examples:
          dotnb pull
          dotnb pull origin --with-data
          dotnb pull --json | jq .runs_new
        """,
        commands.json,
    )
    p.add_argument(
        "remote", metavar="REMOTE", nargs="?", help="remote to pull from (default: the default remote)"
    )
    p.add_argument("--with-data", action="store_true", help="also download the pulled runs' objects")
    p.add_argument(
        "--full", action="store_true", help="re-read every run on the remote, not only new entries"
    )
    p.add_argument(
        "--with-kernel-state",
        action="store_true",
        help="also bring the pulled runs' kernel variables (a checkout of them needs --trust)",
    )


# The sub-parsers this module adds, by command (dotnb.cli.app.COMMANDS orders them).
COMMANDS: dict[str, Callable[[Commands], None]] = {
    "remote": add_remote,
    "push": add_push,
    "pull": add_pull,
}


# ---------------------------------------------------------------------------
# handlers


def cmd_remote_help(args: argparse.Namespace) -> int:
    """``dotnb remote`` without an action: its help, as a usage error."""
    args.remote_parser.print_help(sys.stderr)
    return EXIT_USAGE


def cmd_remote_add(args: argparse.Namespace) -> int:
    from dotnb.remote.config import add_remote

    with open_store(args) as store:
        entry = add_remote(
            store,
            args.name,
            args.url,
            endpoint_url=args.endpoint_url,
            region=args.region,
            profile=args.profile,
            default=args.default,
        )
    if args.json:
        emit_json(entry)
    else:
        default = " (default)" if entry["default"] else ""
        out(f"added remote {clean(entry['name'])}{default}: {clean(entry['url'])}")
    return EXIT_OK


def cmd_remote_list(args: argparse.Namespace) -> int:
    from dotnb.remote.config import list_remotes

    with open_store(args) as store:
        remotes = list_remotes(store)
    if args.json:
        emit_json(remotes)
        return EXIT_OK
    for line in format_remotes(remotes):
        out(line)
    return EXIT_OK


def cmd_remote_remove(args: argparse.Namespace) -> int:
    from dotnb.remote.config import remove_remote

    with open_store(args) as store:
        remove_remote(store, args.name)
    out(f"removed remote {clean(args.name)} (its data on the remote is untouched)")
    return EXIT_OK


def cmd_push(args: argparse.Namespace) -> int:
    from dotnb.remote.config import list_remotes
    from dotnb.remote.state_transfer import push_with_states
    from dotnb.remote.transfer import push

    with open_store(args) as store:
        names = {r["name"] for r in list_remotes(store)}
        targets = list(args.targets)
        remote = targets.pop(0) if targets and targets[0] in names else None
        runs = [resolve_run(store, args, t) for t in targets] if targets else None
        meter = TransferLine("push", sys.stderr)
        try:
            send = push_with_states if args.with_kernel_state else push
            result = send(store, remote, runs, progress=meter)
        finally:
            meter.finish()
    if args.json:
        emit_json(result)
    else:
        for line in format_push(result):
            out(line)
    return EXIT_OK if not result["conflicts"] else EXIT_ERROR


def cmd_pull(args: argparse.Namespace) -> int:
    from dotnb.remote.state_transfer import pull_with_states
    from dotnb.remote.transfer import pull

    with open_store(args) as store:
        meter = TransferLine("pull", sys.stderr)
        try:
            fetch = pull_with_states if args.with_kernel_state else pull
            result = fetch(store, args.remote, with_data=args.with_data, full=args.full, progress=meter)
        finally:
            meter.finish()
    if args.json:
        emit_json(result)
    else:
        for line in format_pull(result, with_data=args.with_data):
            out(line)
    return EXIT_OK
