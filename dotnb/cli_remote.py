"""``dotnb remote`` / ``push`` / ``pull``: the command-line face of :mod:`dotnb.remote`.

Kept apart from :mod:`dotnb.cli` so that its parser and handlers stay readable;
:func:`add_commands` is called from :func:`dotnb.cli.build_parser`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from dotnb.cli import (
    EXIT_OK,
    EXIT_USAGE,
    PROGRESS_LINE_INTERVAL_S,
    PROGRESS_TTY_INTERVAL_S,
    _clean,
    _emit_json,
    _isatty,
    _open_store,
    _out,
    _resolve,
    human_size,
)


def add_commands(command: Any, root_opt: argparse.ArgumentParser, json_opt: argparse.ArgumentParser) -> None:
    p = command(
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
    sub = p.add_subparsers(title="remote commands", metavar="ACTION")

    def action(name: str, handler: Any, summary: str, *parents: argparse.ArgumentParser) -> Any:
        q = sub.add_parser(
            name, help=summary, description=summary, parents=[root_opt, *parents], allow_abbrev=False
        )
        q.set_defaults(handler=handler)
        return q

    q = action("add", cmd_remote_add, "add a remote", json_opt)
    q.add_argument("name", metavar="NAME", help="a short name, e.g. origin")
    q.add_argument("url", metavar="URL", help="s3://BUCKET/PREFIX or file:///ABSOLUTE/PATH")
    q.add_argument(
        "--endpoint-url", metavar="URL", help="S3-compatible endpoint (MinIO, SeaweedFS, Ceph, R2…)"
    )
    q.add_argument("--region", metavar="REGION", help="S3 region (default: from the AWS environment)")
    q.add_argument("--profile", metavar="NAME", help="AWS profile from ~/.aws/config to use")
    q.add_argument("--default", action="store_true", help="make it the default remote")
    q = action("list", cmd_remote_list, "list the remotes", json_opt)
    q = action("remove", cmd_remote_remove, "remove a remote (nothing on the remote is deleted)")
    q.add_argument("name", metavar="NAME", help="the remote to remove")

    p = command(
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
        json_opt,
    )
    p.add_argument("targets", metavar="[REMOTE] [RUN ...]", nargs="*", help="remote name, then runs")
    p.add_argument(
        "--notebook",
        metavar="NB",
        default=None,
        help="notebook for '#N' and 'latest' RUN arguments",
    )

    p = command(
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
        json_opt,
    )
    p.add_argument(
        "remote", metavar="REMOTE", nargs="?", help="remote to pull from (default: the default remote)"
    )
    p.add_argument("--with-data", action="store_true", help="also download the pulled runs' objects")
    p.add_argument(
        "--full", action="store_true", help="re-read every run on the remote, not only new entries"
    )


# ---------------------------------------------------------------------------
# handlers


def cmd_remote_help(args: argparse.Namespace) -> int:
    """``dotnb remote`` without an action: its help, as a usage error."""
    args.remote_parser.print_help(sys.stderr)
    return EXIT_USAGE


def cmd_remote_add(args: argparse.Namespace) -> int:
    from dotnb.remote.config import add_remote

    with _open_store(args) as store:
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
        _emit_json(entry)
    else:
        default = " (default)" if entry["default"] else ""
        _out(f"added remote {_clean(entry['name'])}{default}: {_clean(entry['url'])}")
    return EXIT_OK


def cmd_remote_list(args: argparse.Namespace) -> int:
    from dotnb.remote.config import list_remotes

    with _open_store(args) as store:
        remotes = list_remotes(store)
    if args.json:
        _emit_json(remotes)
        return EXIT_OK
    if not remotes:
        _out("no remotes (add one with `dotnb remote add NAME URL`)")
    for r in remotes:
        extra = "".join(f"  {k}={r[k]}" for k in ("endpoint_url", "region", "profile") if r.get(k))
        mark = "*" if r["default"] else " "
        _out(_clean(f"{mark} {r['name']}  {r['url']}{extra}"))
    return EXIT_OK


def cmd_remote_remove(args: argparse.Namespace) -> int:
    from dotnb.remote.config import remove_remote

    with _open_store(args) as store:
        remove_remote(store, args.name)
    _out(f"removed remote {_clean(args.name)} (its data on the remote is untouched)")
    return EXIT_OK


def cmd_push(args: argparse.Namespace) -> int:
    from dotnb.remote.config import list_remotes
    from dotnb.remote.transfer import push

    with _open_store(args) as store:
        names = {r["name"] for r in list_remotes(store)}
        targets = list(args.targets)
        remote = targets.pop(0) if targets and targets[0] in names else None
        runs = [_resolve(store, args, t) for t in targets] if targets else None
        meter = TransferLine("push", sys.stderr)
        try:
            result = push(store, remote, runs, progress=meter)
        finally:
            meter.finish()
    if args.json:
        _emit_json(result)
    else:
        _out(
            f"pushed {_plural(result['runs_pushed'], 'run')} to {_clean(result['remote'])} "
            f"({_plural(result['objects_uploaded'], 'object')}, {human_size(result['bytes_uploaded'])}); "
            f"{result['runs_already']} already there"
        )
        for c in result["conflicts"]:
            _out(f"  conflict {c['id']}: {_clean(c['reason'])}")
    return EXIT_OK if not result["conflicts"] else 1


def cmd_pull(args: argparse.Namespace) -> int:
    from dotnb.remote.transfer import pull

    with _open_store(args) as store:
        meter = TransferLine("pull", sys.stderr)
        try:
            result = pull(store, args.remote, with_data=args.with_data, full=args.full, progress=meter)
        finally:
            meter.finish()
    if args.json:
        _emit_json(result)
    else:
        line = f"pulled {_plural(result['runs_new'], 'new run')} from {_clean(result['remote'])}"
        if args.with_data:
            line += (
                f"; downloaded {_plural(result['objects_downloaded'], 'object')}"
                f" ({human_size(result['bytes_downloaded'])})"
            )
        _out(line)
        for r in result["runs_rejected"]:
            _out(f"  rejected {_clean(str(r['id']))}: {_clean(r['reason'])}")
    return EXIT_OK


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class TransferLine:
    """Progress of a push or pull on stderr: items and bytes per phase, throttled."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label = label
        self.stream = stream
        self.tty = _isatty(stream)
        self.started = time.monotonic()
        self.last: float | None = None
        self.latest: Any = None
        self.shown: Any = None

    def __call__(self, p: Any) -> None:
        self.latest = p
        now = time.monotonic()
        # Small transfers finish before the first line is due: say nothing for them.
        if now - self.started < 1.0:
            return
        interval = PROGRESS_TTY_INTERVAL_S if self.tty else PROGRESS_LINE_INTERVAL_S
        if self.last is not None and now - self.last < interval and p.done != p.total:
            return
        self._show(now)

    def _show(self, now: float) -> None:
        p = self.shown = self.latest
        self.last = now
        text = f"{self.label}: {p.phase} {p.done}/{p.total}"
        if p.total_bytes or p.done_bytes:
            rate = p.done_bytes / max(now - self.started, 1e-6)
            total = f" / {human_size(p.total_bytes)}" if p.total_bytes else ""
            text += f"  {human_size(p.done_bytes)}{total}  {human_size(int(rate))}/s"
        self.stream.write(f"\r{text}\x1b[K" if self.tty else f"{text}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.last is None:
            return
        if self.shown != self.latest:
            self._show(time.monotonic())
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
