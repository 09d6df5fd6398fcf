"""One point of a sweep, as a Dask worker runs it: a clean work folder, ``dotnb run``
with the point's params, and the new runs recorded into the project's store.

A task is plain data (:class:`PointTask`, picklable) and :func:`run_point` returns
plain data, so Dask can ship both to any worker.  The work folder is a project of
its own (as ``dotnb reproduce`` makes one, :mod:`dotnb.headless.workfolder`): the
base run's notebook snapshot and exact input bytes, or the notebook file's bytes.
Its runs are imported into the target store afterwards.

Which store the runs go to:

- ``target_root`` (one machine, or a shared file system): the project's own store;
  inputs are read from its objects, nothing is copied to a remote;
- ``remote`` (workers that share no disk with the client): a scratch store on the
  worker that pulls the remote's runs (manifests and tags), reads the base run's
  objects from the remote on demand (each hash-checked, as ``dotnb pull`` does),
  and pushes the point's runs and their ``sweep:`` tag back.

The sweep id is a tag, ``sweep:<id>``, through the annotations API: ``dotnb log
--tag sweep:<id>`` lists a sweep, the tag travels with push and pull, and the run
manifest stays what ``dotnb run`` records (the point's values are its params).

Idempotence: Dask runs a task again when its worker dies.  Before running, a task
looks for a run already tagged with its sweep whose params hold its point; if one
exists (an earlier attempt recorded it and then lost its worker), that run is the
task's result and nothing is recorded twice.  The window left is an attempt killed
between importing its run and tagging it, a few milliseconds long.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotnb.headless.execute import run_notebook
from dotnb.headless.workfolder import import_run, make_workdir, materialise, remove_workdir
from dotnb.store.annotating import tag_run
from dotnb.store.paths import confine
from dotnb.store.repo import Store

SWEEP_TAG_PREFIX = "sweep:"

OK = "ok"
ERROR = "error"
INTERRUPTED = "interrupted"


def sweep_tag(sweep_id: str) -> str:
    return f"{SWEEP_TAG_PREFIX}{sweep_id}"


@dataclass(frozen=True)
class Base:
    """What every point starts from: a past run of the store, or a notebook's bytes."""

    notebook: str  # root-relative path of the notebook
    run_id: str | None = None
    notebook_bytes: bytes | None = None


@dataclass(frozen=True)
class PointTask:
    sweep_id: str
    index: int
    params: dict[str, Any]
    base: Base
    target_root: str | None = None  # the project root, on a disk the worker shares
    remote: dict[str, Any] | None = None  # a remote's spec (get_remote), for workers apart
    kernel_name: str | None = None
    timeout: float | None = None


@dataclass
class PointOutcome:
    index: int
    params: dict[str, Any]
    status: str  # ok, error (a cell failed) or interrupted
    runs: list[dict[str, Any]] = field(default_factory=list)  # summaries in the target store
    error: str | None = None
    reused: bool = False  # an earlier attempt of this task had recorded its runs
    duration_s: float = 0.0
    worker: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "params": self.params,
            "status": self.status,
            "runs": [r.get("id") for r in self.runs],
            "metrics": self.runs[-1].get("metrics", {}) if self.runs else {},
            "error": self.error,
            "reused": self.reused,
            "duration_s": round(self.duration_s, 3),
            "worker": self.worker,
        }


def recorded_runs(store: Store, sweep_id: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs of sweep ``sweep_id`` already recorded for the point ``params``, oldest first."""
    found = []
    for summary in store.list_runs(tags=[sweep_tag(sweep_id)]):
        held = summary.get("params") or {}
        if all(name in held and held[name] == value for name, value in params.items()):
            found.append(summary)
    return list(reversed(found))


def run_point(task: PointTask) -> PointOutcome:
    """Run one point (on a worker); see the module docstring."""
    import time

    began = time.monotonic()
    scratch: Path | None = None
    if task.remote is not None:
        scratch = Path(os.path.realpath(tempfile.mkdtemp(prefix="dotnb-sweep-store-")))
        store = _remote_cache(scratch, task.remote)
    elif task.target_root is not None:
        store = Store(Path(task.target_root))
    else:
        raise ValueError("a point task needs a target_root or a remote")
    try:
        outcome = _run_in(store, task)
        if task.remote is not None and outcome.runs and not outcome.reused:
            from dotnb.remote.transfer import push

            push(store, task.remote["name"], runs=[r["id"] for r in outcome.runs])
        outcome.duration_s = time.monotonic() - began
        return outcome
    finally:
        store.close()
        if scratch is not None:
            remove_workdir(scratch)


def _remote_cache(folder: Path, spec: dict[str, Any]) -> Store:
    from dotnb.remote.config import add_remote
    from dotnb.remote.ondemand import attach
    from dotnb.remote.transfer import pull

    store = Store.init(folder)
    options = {k: spec.get(k) for k in ("endpoint_url", "region", "profile")}
    add_remote(store, spec["name"], spec["url"], **options, default=True)
    pull(store, spec["name"])  # manifests and tags; objects come when read
    attach(store, always=True)
    return store


def _run_in(store: Store, task: PointTask) -> PointOutcome:
    outcome = PointOutcome(task.index, dict(task.params), OK, worker=_worker_name())
    earlier = recorded_runs(store, task.sweep_id, task.params)
    if earlier:
        outcome.runs, outcome.reused = earlier, True
        outcome.status = ERROR if any(r.get("status") == ERROR for r in earlier) else OK
        return outcome
    workdir, _ = make_workdir(None)
    try:
        if task.base.run_id is not None:
            done = materialise(store, store.manifest(task.base.run_id), workdir)
            notebook = done.notebook or confine(workdir, task.base.notebook)
        else:
            notebook = confine(workdir, task.base.notebook)
            notebook.parent.mkdir(parents=True, exist_ok=True)
            notebook.write_bytes(task.base.notebook_bytes or b"")
        result = run_notebook(
            notebook,
            params=task.params,
            root=workdir,
            kernel_name=task.kernel_name,
            timeout=task.timeout,
        )
        work = Store(workdir)
        try:
            for summary in result.runs:
                imported = import_run(work, store, summary["id"])
                tag_run(store, imported["id"], [sweep_tag(task.sweep_id)])
                outcome.runs.append(imported)
        finally:
            work.close()
        failed = result.failed
        if failed is not None:
            outcome.status = ERROR
            error = failed.error or {}
            outcome.error = (
                f"cell {failed.number} {failed.status}: {error.get('ename', '')}: {error.get('evalue', '')}"
            )
        return outcome
    finally:
        remove_workdir(workdir)


def _worker_name() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None
