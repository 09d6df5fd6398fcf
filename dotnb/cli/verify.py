"""``dotnb verify`` (every writer's chain of runs, and their signatures) and
``dotnb config`` (the store's settings: the signing key, the allowed signers)."""

from __future__ import annotations

from dotnb.cli.args import Commands, open_store
from dotnb.cli.exits import EXIT_ERROR, EXIT_OK, EXIT_USAGE, error
from dotnb.cli.output import emit_json, out
from dotnb.cli.render import format_verify
from dotnb.cli.text import clean

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable


def add_verify(commands: Commands) -> None:
    p = commands.add(
        "verify",
        cmd_verify,
        "check that no recorded run was deleted, edited or reordered",
        """
        Every run records the process that recorded it (its writer: a kernel, a
        dotnb command, the server) and the hash of that writer's previous run.
        verify re-hashes every run's manifest and walks every writer's chain: a run
        deleted from the middle of a chain, a manifest edited or replaced, runs
        reordered, a ref moved or two runs claiming one place are each reported as
        a break, with the runs around it.  Runs recorded before dotnb chained runs
        are counted as unchained, not as breaks.  It also checks each run's SSH
        signature (see dotnb config signing.key) against the allowed-signers file
        (dotnb config signing.allowed_signers).

        What a chain cannot show: a writer's newest runs deleted together (nothing
        links to them yet) or all of a writer's runs deleted; sign runs and keep a
        pushed copy to notice those.

        Exit status: 0 every chain is whole and no signature is bad (with
        --require-signed: every run has a good signature); 1 a break, a bad
        signature, or with --require-signed a run unsigned or signed by a key not
        in the allowed signers; 2 bad input (no such remote, an unreadable
        allowed-signers file).
        """,
        """
        examples:
          dotnb verify
          dotnb verify --require-signed          # in CI: every run signed by an allowed signer
          dotnb verify --remote origin --json
        """,
        commands.json,
    )
    p.add_argument(
        "--remote", metavar="NAME", help="verify the runs on this remote instead of the local store"
    )
    p.add_argument(
        "--require-signed",
        action="store_true",
        help="fail (exit 1) unless every run has a good signature by an allowed signer",
    )


def add_config(commands: Commands) -> None:
    from dotnb.cli.text import dedent
    from dotnb.store.settings import SETTINGS

    names = "".join(f"  {name}\n      {text}\n" for name, text in SETTINGS.items())
    description = (
        dedent(
            """
            Read or change a setting of this store (kept in .dotnb/config.json), as git
            config does.  With NAME only, print its value (exit 1 when it is not set);
            with NAME VALUE, set it; --unset removes it; --list prints every setting.
            A path setting must name a readable file.

            settings:
            """
        )
        + "\n"
        + names
        + "\n"
        + dedent(
            """
            With signing.key set, each run recorded from then on has its manifest hash
            signed with `ssh-keygen -Y sign -n dotnb` (a kernel signs off the cell's
            path, in its background thread).  A key in ssh-agent works: name its .pub.
            """
        )
    )
    p = commands.add(
        "config",
        cmd_config,
        "read or change the store's settings (the signing key)",
        description,
        """
        examples:
          dotnb config signing.key ~/.ssh/id_ed25519
          dotnb config signing.allowed_signers ~/.config/dotnb/allowed_signers
          dotnb config signing.key
          dotnb config --unset signing.key
          dotnb config --list --json
        """,
        commands.json,
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="the setting (see above)")
    p.add_argument("value", metavar="VALUE", nargs="?", help="its new value")
    p.add_argument("--unset", action="store_true", help="remove the setting NAME")
    p.add_argument("--list", action="store_true", help="print every setting that is set")


# The sub-parsers this module adds, by command (dotnb.cli.app.COMMANDS orders them).
COMMANDS: dict[str, Callable[[Commands], None]] = {
    "verify": add_verify,
    "config": add_config,
}


def cmd_verify(args: argparse.Namespace) -> int:
    from dotnb.remote.errors import NoRemoteConfigured, UnknownRemote
    from dotnb.store.settings import SettingError

    with open_store(args) as store:
        try:
            if args.remote:
                from dotnb.remote.verify import verify_remote

                report = verify_remote(store, args.remote, args.require_signed)
            else:
                from dotnb.store.verify import verify_store

                report = verify_store(store, args.require_signed)
        except (UnknownRemote, NoRemoteConfigured, SettingError) as exc:
            error(str(exc))
            return EXIT_USAGE
    if args.json:
        emit_json(report)
    else:
        for line in format_verify(report):
            out(line)
    return EXIT_OK if report["ok"] else EXIT_ERROR


def cmd_config(args: argparse.Namespace) -> int:
    from dotnb.store.settings import get_setting, read_settings, set_setting

    with open_store(args) as store:
        if args.list:
            if args.name or args.unset:
                error("--list takes no NAME")
                return EXIT_USAGE
            settings = read_settings(store.dir)
            if args.json:
                emit_json(settings)
            else:
                for name, text in sorted(settings.items()):
                    out(f"{name}={clean(text)}")
            return EXIT_OK
        if not args.name:
            error("name a setting (or --list); see dotnb config --help")
            return EXIT_USAGE
        if args.unset:
            if args.value is not None:
                error("--unset takes no VALUE")
                return EXIT_USAGE
            set_setting(store.dir, args.name, None)
            return EXIT_OK
        if args.value is not None:
            set_setting(store.dir, args.name, args.value)
            if args.json:
                emit_json({args.name: args.value})
            return EXIT_OK
        value = get_setting(store.dir, args.name)
    if args.json:
        emit_json({args.name: value})
        return EXIT_OK
    if value is None:
        return EXIT_ERROR
    out(clean(value))
    return EXIT_OK
