"""Peer tools for the benchmarks, in a virtualenv of their own (``<repo>/.venv-peers``).

DVC pulls in many dependencies; it must not enter the project's own ``.venv``.
:func:`dvc` creates ``.venv-peers`` on first use (``pip install dvc==3.67.1``,
about a minute) and returns the path of its ``dvc`` executable.  Kishu gets a
virtualenv of its own, ``<repo>/.venv-kishu`` (:func:`kishu_python`).

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


# Kishu (kernel state checkpoints, the peer of bench/kernel_state.py) pins old
# backports (dataclasses, typing) and pulls in Flask and ipylab: a venv of its own,
# apart from DVC's too.
KISHU_VENV = REPO / ".venv-kishu"
KISHU_VERSION = "0.3.4"


def kishu_python() -> Path:
    """The interpreter of ``.venv-kishu`` (kishu, ipykernel, numpy), installed there if missing."""
    python = KISHU_VENV / "bin" / "python"
    probe = [str(python), "-c", "import kishu, ipykernel, numpy; print(kishu.__version__)"]
    if python.exists():
        proc = subprocess.run(probe, capture_output=True, text=True, check=False)
        if proc.stdout.strip() == KISHU_VERSION:
            return python
    else:
        print(f"   creating {KISHU_VENV} for Kishu (once) …", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(KISHU_VENV)
    print(f"   pip install kishu=={KISHU_VERSION} into {KISHU_VENV} (once, about a minute) …", flush=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    proc = subprocess.run(
        [*pip, f"kishu=={KISHU_VERSION}", "ipykernel", "numpy"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"pip install kishu=={KISHU_VERSION} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        )
    return python


def dvc_version(exe: Path) -> str:
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


if __name__ == "__main__":
    path = dvc()
    print(path, dvc_version(path))
    sys.exit(0)
