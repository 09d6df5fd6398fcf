"""Which notebook a kernel runs, where its project root is, and its on-disk snapshot."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["detect_notebook_path", "find_project_root", "read_notebook_snapshot"]

STORE_DIR_NAME = ".dotnb"

# Where a kernel learns its notebook, most authoritative first:
# - JPY_SESSION_NAME: set by jupyter_server in the kernel's environment (an
#   absolute path: the notebook's directory joined with its name); our headless
#   runner and tests set it for nbclient kernels too;
# - __session__: ipykernel copies JPY_SESSION_NAME into the namespace, and the
#   VS Code Jupyter extension sets it itself;
# - __vsc_ipynb_file__: older VS Code Jupyter extensions set only this one.
_USER_NS_KEYS = ("__session__", "__vsc_ipynb_file__")


def _as_notebook_path(value: Any) -> Path | None:
    """``value`` as an absolute notebook path, or None when it is not one.

    Consoles and other documents get a session name too (``Console 1``,
    ``script.py``); those are not notebooks.
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or "\x00" in value or not value.lower().endswith(".ipynb"):
        return None
    path = Path(value)
    if path.is_absolute():
        return Path(os.path.normpath(path))
    cwd = Path.cwd()
    resolved = Path(os.path.normpath(cwd / path))
    if not resolved.exists() and (cwd / path.name).exists():
        # A server-relative API path ("dir/nb.ipynb") given to a kernel started in
        # the notebook's own directory (jupyter_server does this when the client
        # sends no name): the file is next to the kernel, not below it.
        return Path(os.path.normpath(cwd / path.name))
    return resolved


def detect_notebook_path(user_ns: Mapping[str, Any], environ: Mapping[str, str]) -> Path | None:
    """The absolute path of the notebook this kernel runs, or None if unknown.

    Tries ``environ["JPY_SESSION_NAME"]``, then ``user_ns["__session__"]``, then
    ``user_ns["__vsc_ipynb_file__"]``; the first value that is a path ending in
    ``.ipynb`` wins (so a console's session name gives None).  Relative values
    are resolved against the current directory.  The file need not exist (an
    unsaved, renamed or deleted notebook is still this kernel's notebook).

    Caveat: JPY_SESSION_NAME is fixed when the kernel starts, so after the
    notebook is renamed in JupyterLab it names the old path; the frontend's
    explicit path must win over this guess.
    """
    candidates = [environ.get("JPY_SESSION_NAME")]
    candidates += [user_ns.get(key) for key in _USER_NS_KEYS]
    for value in candidates:
        path = _as_notebook_path(value)
        if path is not None:
            return path
    return None


def find_project_root(start: Path) -> Path:
    """The nearest of ``start`` and its ancestors holding a ``.dotnb/`` directory.

    Like git finding ``.git``: a notebook anywhere below a project uses that
    project's store.  When no ancestor has one, ``start`` itself is the root (a
    new store would be created there).  ``start`` is made absolute first; if it
    is an existing file (e.g. the notebook), its directory is used.  A ``.dotnb``
    that is a plain file does not count.
    """
    start = Path(os.path.abspath(start))
    if start.is_file():
        start = start.parent
    for d in (start, *start.parents):
        if (d / STORE_DIR_NAME).is_dir():
            return d
    return start


def read_notebook_snapshot(path: Path, max_bytes: int) -> tuple[bytes | None, str | None]:
    """``(content, None)`` for a readable JSON notebook file, else ``(None, reason)``.

    Reasons: ``"missing"``, ``"not a file"``, ``"too large (N bytes)"`` (over
    ``max_bytes``), ``"unreadable: ..."``, ``"not valid JSON: ..."``, ``"not a
    notebook (JSON is not an object)"``.  Only JSON validity is checked, not the
    nbformat schema (nbformat is not a kernel dependency).
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    # Checked before open(): opening a FIFO or device could block the kernel.
    if not stat.S_ISREG(st.st_mode):
        return None, "not a file"
    if st.st_size > max_bytes:
        return None, f"too large ({st.st_size} bytes)"
    try:
        with open(path, "rb") as f:
            # Read at most one byte past the limit: the file may grow meanwhile.
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    if len(data) > max_bytes:
        return None, f"too large (over {max_bytes} bytes)"
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        return None, f"not valid JSON: {exc}"
    except RecursionError:
        return None, "not valid JSON: nested too deeply"
    if not isinstance(doc, dict):
        return None, "not a notebook (JSON is not an object)"
    return data, None
