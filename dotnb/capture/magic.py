"""IPython integration: ``%load_ext dotnb``, ``%%track`` and ``%dotnb``.

``%%track`` is handled by an input transformer rather than by executing the
body inside a cell magic: the transformer strips the ``%%track`` line, so the
body runs as an ordinary cell (same output, same exceptions, same display of
the last expression) while ``pre_run_cell``/``post_run_cell`` hooks record it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from dotnb.capture.options import TRACK_HELP, TrackUsageError, parse_track_line, split_track_cell
from dotnb.capture.session import Session

_session: Session | None = None

DOTNB_HELP = """\
%dotnb status        show the store location and what is being tracked
%dotnb track all     record every following cell as a run (no %%track needed)
%dotnb track off     record only cells that start with %%track
%dotnb state on|off  record the kernel's variables with each run (off by default)
%dotnb state ignore PATTERN   never record variables whose name matches PATTERN
%dotnb checkout RUN [--trust] [--no-recompute]
                     the kernel's variables back to RUN's recorded state; what it could
                     not store is recomputed by re-running the lineage cells producing it
                     (--no-recompute: only list it; --recompute, the default, is accepted)
%dotnb checkout --undo         the variables as they were before the last checkout (its stored checkpoint)
"""


def current_session() -> Session | None:
    return _session


def _track_transformer(lines: list[str]) -> list[str]:
    """Strip a leading ``%%track …`` line; turn bad options into a clear UsageError."""
    if not lines:
        return lines
    split = split_track_cell("".join(lines))
    if split is None:
        return lines
    options, body = split
    try:
        parse_track_line(options)
    except TrackUsageError as exc:
        message = str(exc).strip()
        return [
            "from IPython.core.error import UsageError as __dotnb_UsageError\n",
            f"raise __dotnb_UsageError({message!r})\n",
        ]
    return body.splitlines(keepends=True)


@magics_class
class DotnbMagics(Magics):
    @cell_magic
    def track(self, line: str, cell: str) -> None:
        """Record this cell as a dotnb run. Must be the first line of the cell."""
        # Reached only when the transformer did not run (e.g. %%track after other
        # text, or run_cell_magic called directly).
        raise TrackUsageError("%%track must be the first line of a cell\n\n" + TRACK_HELP)

    @line_magic
    def dotnb(self, line: str) -> None:
        """%dotnb status | track all | track off"""
        args = line.split()
        session = _session
        if session is None:
            print("dotnb is not loaded; run %load_ext dotnb")
            return
        if args in (["status"], []):
            print(session.status_text())
        elif args == ["track", "all"]:
            session.track_all = True
            print("dotnb: every following cell is recorded as a run (%dotnb track off to stop)")
        elif args == ["track", "off"]:
            session.track_all = False
            print("dotnb: only cells starting with %%track are recorded")
        elif args[:1] == ["state"]:
            print(_state_command(session, args[1:]))
        elif args[:1] == ["checkout"]:
            print(_checkout_command(session, args[1:]))
        elif args in (["help"], ["--help"], ["-h"]):
            print(DOTNB_HELP)
        else:
            from IPython.core.error import UsageError

            raise UsageError(f"unknown %dotnb command {line!r}\n\n{DOTNB_HELP}")


def _state_command(session: Session, args: list[str]) -> str:
    from IPython.core.error import UsageError

    state = session.state
    if args == ["on"]:
        import os

        if not hasattr(os, "fork"):
            return "dotnb: kernel state capture needs fork(), which this system lacks; it stays off"
        state.enabled = True
        state.forget()
        return "dotnb: each run records the kernel's variables (%dotnb state off to stop)"
    if args == ["off"]:
        state.enabled = False
        return "dotnb: runs no longer record the kernel's variables"
    if len(args) == 2 and args[0] == "ignore":
        state.ignore.add(args[1])
        return f"dotnb: variables matching {args[1]!r} are not recorded"
    if args in ([], ["status"]):
        state.ignore.set_root(session.root)
        return (
            f"kernel state capture: {'on' if state.enabled else 'off'}; "
            f"ignored names: {', '.join(state.ignore.patterns()) or 'none'}; "
            f"limits: {state.limits.max_variable} bytes per variable, {state.limits.max_run} per run"
        )
    raise UsageError(f"unknown %dotnb state command {' '.join(args)!r}\n\n{DOTNB_HELP}")


def _checkout_command(session: Session, args: list[str]) -> str:
    from IPython.core.error import UsageError

    from dotnb.capture.state_checkout import CheckoutRefused
    from dotnb.store.errors import DotnbError
    from dotnb.store.kernel_state import CHECKOUT_REFUSED

    try:
        if args == ["--undo"]:
            return session.undo_checkout()
        flags = ("--trust", "--recompute", "--no-recompute")
        if "--recompute" in args and "--no-recompute" in args:
            raise UsageError("--recompute and --no-recompute contradict each other")
        # --recompute is the default now; still accepted so older cells and notes keep working.
        trust, recompute = "--trust" in args, "--no-recompute" not in args
        refs = [a for a in args if a not in flags]
        if len(refs) != 1 or refs[0].startswith("--"):
            usage = "usage: %dotnb checkout RUN [--trust] [--no-recompute] | --undo"
            raise UsageError(f"{usage}\n\n{DOTNB_HELP}")
        return session.checkout_state(refs[0], trust=trust, recompute=recompute)
    except (CheckoutRefused, DotnbError) as exc:
        # Nothing changed in the namespace: said plainly, without a traceback.
        return f"{CHECKOUT_REFUSED}{exc}"


def load_ipython_extension(ip: Any) -> None:
    global _session
    if _session is not None and _session.ip is ip:
        return  # %load_ext twice is harmless
    _session = Session(ip)
    ip.register_magics(DotnbMagics)
    ip.input_transformers_cleanup.append(_track_transformer)
    ip.ast_transformers.append(_session.override)
    ip.events.register("pre_run_cell", _session.pre_run_cell)
    ip.events.register("post_run_cell", _session.post_run_cell)


def unload_ipython_extension(ip: Any) -> None:
    global _session
    session = _session
    if session is None:
        return
    for name, fn in (("pre_run_cell", session.pre_run_cell), ("post_run_cell", session.post_run_cell)):
        with contextlib.suppress(ValueError):
            ip.events.unregister(name, fn)
    if _track_transformer in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.remove(_track_transformer)
    if session.override in ip.ast_transformers:
        ip.ast_transformers.remove(session.override)
    session.close()
    _session = None
