"""``dotnb run``: execute a notebook headlessly, its ``%%track`` cells recorded as runs.

The kernel runs as JupyterLab would run it: working folder = the notebook's
folder, ``JPY_SESSION_NAME`` = the notebook's absolute path (nbclient does not
set it), and ``DOTNB_ROOT`` = the store root the CLI chose, so the kernel and the
CLI agree on the store.  ``-p`` values reach the kernel twice: as the papermill
``injected-parameters`` cell, which sets the variables, and as
``DOTNB_RUN_PARAMS``, which records them as params of every run of this
execution (see :mod:`dotnb.capture.session`).

Afterwards each new run of this execution (found through the store's change
cursor, and told apart from other kernels' runs by notebook and kernel pid) gets
the executed notebook as its snapshot, ``"notebook_source": "headless"``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotnb.headless import CouldNotRun
from dotnb.headless.kernel import CellOutcome, Execution, executable_cells, execute_cells
from dotnb.headless.notebooks import inject_parameters, notebook_bytes, read_notebook, write_notebook
from dotnb.store.repo import Store, find_root
from dotnb.store.vocabulary import RUN

# Variables a kernel must not inherit from the process that starts it: they describe
# that process's own kernel (when `!dotnb run` is called from a notebook) or run.
_INHERITED_NOT = ("JPY_", "DOTNB_ROOT", "DOTNB_REPRODUCES", "DOTNB_RUN_PARAMS")


def kernel_env(
    base: Mapping[str, str],
    *,
    root: Path,
    notebook: Path | None,
    params: Mapping[str, Any] | None = None,
    reproduces: str | None = None,
) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith(_INHERITED_NOT)}
    env["DOTNB_ROOT"] = str(root)
    if notebook is not None:
        env["JPY_SESSION_NAME"] = str(notebook)
    if params:
        env["DOTNB_RUN_PARAMS"] = json.dumps(dict(params), sort_keys=True)
    if reproduces:
        env["DOTNB_REPRODUCES"] = reproduces
    # The kernel runs on this interpreter (jupyter_client puts sys.executable in place
    # of "python"), so `!dotnb …` and other scripts of its environment are found as in
    # an activated virtualenv, also when dotnb was started as .venv/bin/dotnb.
    scripts = os.path.dirname(sys.executable)
    path = env.get("PATH", "")
    if scripts and scripts not in path.split(os.pathsep):
        env["PATH"] = os.pathsep.join(p for p in (scripts, path) if p)
    return env


@dataclass
class RunResult:
    notebook: str  # root-relative
    root: Path
    execution: Execution
    runs: list[dict[str, Any]] = field(default_factory=list)  # summaries, oldest first
    output: Path | None = None
    warnings: list[str] = field(default_factory=list)
    duration_s: float = 0.0  # wall time, the kernel's start included

    @property
    def failed(self) -> CellOutcome | None:
        return self.execution.failed

    def as_json(self) -> dict[str, Any]:
        failed = self.failed
        return {
            "notebook": self.notebook,
            "root": str(self.root),
            "kernel": self.execution.kernel_name,
            "status": "ok" if failed is None else "failed",
            "duration_s": round(self.duration_s, 3),
            "code_cells": len(executable_cells(self.execution.notebook)),
            "cells": [cell_json(c) for c in self.execution.cells],
            "failed_cell": cell_json(failed) if failed is not None else None,
            "runs": self.runs,
            "output": str(self.output) if self.output else None,
            "warnings": self.warnings,
        }


def cell_json(cell: CellOutcome) -> dict[str, Any]:
    error = cell.error
    return {
        "number": cell.number,
        "index": cell.index,
        "status": cell.status,
        "duration_s": round(cell.duration_s, 6),
        "runs": [r.get("id") for r in cell.runs],
        "error": {"ename": error["ename"], "evalue": error["evalue"]} if error else None,
    }


def project_root(notebook: Path, root: Path | None) -> Path:
    """The store root for a notebook: ``root`` if given, else found as a kernel would find it."""
    if root is not None:
        return Path(os.path.realpath(root))
    return find_root(notebook.parent) or Path(os.path.realpath(notebook.parent))


def run_notebook(
    notebook: Path,
    *,
    params: Mapping[str, Any] | None = None,
    track_all: bool = False,
    output: Path | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
    root: Path | None = None,
    on_start: Callable[[CellOutcome], None] | None = None,
    on_end: Callable[[CellOutcome], None] | None = None,
) -> RunResult:
    """Execute ``notebook`` in a fresh kernel; the notebook file itself is not changed."""
    from dotnb.store.paths import to_relpath
    from dotnb.store.snapshots import attach_notebook_snapshot

    nb_path = Path(os.path.abspath(notebook))
    nb = read_notebook(nb_path)
    warnings = inject_parameters(nb, dict(params)) if params else []
    root_path = project_root(nb_path, root)
    rel = to_relpath(root_path, nb_path)
    if rel is None:
        raise CouldNotRun(f"{nb_path} is outside the project root {root_path}")

    store = Store.init(root_path)
    try:
        cursor = store.change_cursor()
        began = time.monotonic()
        env = kernel_env(os.environ, root=store.root, notebook=nb_path, params=params)
        execution = execute_cells(
            nb,
            cwd=nb_path.parent,
            env=env,
            kernel_name=kernel_name,
            timeout=timeout,
            track_all=track_all,
            on_start=on_start,
            on_end=on_end,
        )
        result = RunResult(
            notebook=rel,
            root=store.root,
            execution=execution,
            warnings=warnings,
            duration_s=time.monotonic() - began,
        )
        data = notebook_bytes(execution.notebook)
        shown = [str(r["id"]) for c in execution.cells for r in c.runs if r.get("id")]
        for run_id in new_runs(store, cursor, rel, execution.kernel_pid, shown):
            if len(data) > store.max_file_size:
                result.warnings.append(
                    f"run {run_id}: the executed notebook ({len(data)} bytes) is over the size "
                    "limit; it keeps the notebook as it was on disk"
                )
            else:
                attach_notebook_snapshot(store, run_id, data, "headless")
            result.runs.append(_summary(store, run_id))
        if output is not None:
            write_notebook(execution.notebook, Path(os.path.abspath(output)))
            result.output = Path(os.path.abspath(output))
        return result
    finally:
        store.close()


def new_runs(
    store: Store, cursor: int, notebook: str, kernel_pid: int | None, shown: Collection[str] = ()
) -> list[str]:
    """Runs of this execution, oldest first: of ``notebook``, recorded after ``cursor``, and
    either shown by its cells (``shown``) or recorded by the kernel process ``kernel_pid``.

    A cell that timed out shows nothing (its output stops being read), so the pid
    finds its run; a kernel started through a wrapper has another pid, so the
    shown ids find the others.  Another kernel of the same notebook (JupyterLab)
    recording meanwhile matches neither.
    """
    found: list[str] = []
    while True:
        rows, cursor_after = store.changes(cursor)
        if not rows:
            return found
        cursor = cursor_after
        for row in rows:
            if row.get("kind") != RUN or row.get("notebook") != notebook or row["id"] in found:
                continue
            if row["id"] not in shown:
                pid = (store.manifest(row["id"]).get("kernel") or {}).get("pid")
                if kernel_pid is None or pid != kernel_pid:
                    continue
            found.append(row["id"])


def _summary(store: Store, run_id: str) -> dict[str, Any]:
    from dotnb.store.repo import run_summary

    return run_summary(store.manifest(run_id))
