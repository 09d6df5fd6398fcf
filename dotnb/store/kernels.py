"""Which notebook each server-started kernel belongs to: ``.dotnb/kernels/<kernel id>``.

The server writes the notebook's root-relative path whenever a session is
created or changed (a rename or move in JupyterLab updates the session), and a
kernel reads it when it records a run, so runs carry the notebook's current
path even after a rename.  ``JPY_SESSION_NAME``, fixed at kernel start, is only
the fallback.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from dotnb.store.paths import check_relpath

_KERNEL_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def _path(store_dir: Path, kernel_id: str) -> Path | None:
    if not _KERNEL_ID.match(kernel_id) or kernel_id.startswith("."):
        return None
    return store_dir / "kernels" / kernel_id


def write_kernel_notebook(store_dir: Path, kernel_id: str, rel: str) -> None:
    path = _path(store_dir, kernel_id)
    if path is None:
        return
    check_relpath(rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{kernel_id}.{os.getpid()}.tmp")
    tmp.write_text(rel, "utf-8")
    os.replace(tmp, path)


def read_kernel_notebook(store_dir: Path, kernel_id: str) -> str | None:
    path = _path(store_dir, kernel_id)
    if path is None:
        return None
    try:
        rel = path.read_text("utf-8")
        return check_relpath(rel)
    except (OSError, ValueError):
        return None


def forget_kernel(store_dir: Path, kernel_id: str) -> None:
    path = _path(store_dir, kernel_id)
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
