"""The dotnb CLI run inside the test process (a new process pays seconds of imports),
in a given folder, with the environment a user's shell would have."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from dotnb.cli.app import main


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def dotnb(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> Outcome:
    """Run the CLI in this process, in ``cwd``, without the test run's ``DOTNB_*`` and
    ``JPY_*`` variables and with ``env`` added; the process is left as it was."""
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith(("DOTNB_", "JPY_"))]:
        del os.environ[key]
    os.environ.update(env or {})
    here = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)
    return Outcome(code, out.getvalue(), err.getvalue())
