"""Peer tools for the benchmarks, in a virtualenv of their own (``<repo>/.venv-peers``).

DVC pulls in many dependencies; it must not enter the project's own ``.venv``.
:func:`dvc` creates ``.venv-peers`` on first use (``pip install dvc==3.67.1``,
about a minute) and returns the path of its ``dvc`` executable.

    .venv/bin/python bench/peers.py        # create it ahead of time; prints the dvc path and version
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS_VENV = REPO / ".venv-peers"
DVC_VERSION = "3.67.1"


def _bin(name: str) -> Path:
    return PEERS_VENV / "bin" / name


def dvc() -> Path:
    """The ``dvc`` executable of ``.venv-peers``, installed there if missing."""
    exe = _bin("dvc")
    if exe.exists() and dvc_version(exe) == DVC_VERSION:
        return exe
    if not _bin("python").exists():
        print(f"   creating {PEERS_VENV} for DVC (once) …", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(PEERS_VENV)
    print(f"   pip install dvc=={DVC_VERSION} into {PEERS_VENV} (once, about a minute) …", flush=True)
    proc = subprocess.run(
        [
            str(_bin("python")),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"dvc=={DVC_VERSION}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"pip install dvc=={DVC_VERSION} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        )
    return exe


def dvc_version(exe: Path) -> str:
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


if __name__ == "__main__":
    path = dvc()
    print(path, dvc_version(path))
    sys.exit(0)
