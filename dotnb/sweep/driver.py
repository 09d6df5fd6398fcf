"""The client side of ``dotnb sweep``: what the sweep starts from, the Dask cluster,
one task per point, and the runs brought back as tasks finish.

Without a scheduler address a :class:`distributed.LocalCluster` of worker
processes is started (one per core unless told; one thread each, since a point
is a kernel of its own) and the workers record into the project's store.  With
one, the client connects to that cluster (dask-jobqueue, dask-kubernetes, a
hosted service, or a ``LocalCluster`` started elsewhere); given a remote, the
workers exchange inputs and runs through it and the client pulls each point's
runs as it finishes, else they record into the project's store on a shared disk.

Failures: a point whose cell fails has its runs recorded with status ``error``;
a point whose task raised (the kernel died, the notebook could not run) has no
run and its error in the report.  Both count against ``max_failures``: past it,
points not yet finished are cancelled.  A worker that dies is Dask's business:
the scheduler gives the task to another worker, and the task's idempotence
(:mod:`dotnb.sweep.task`) keeps one run per point.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotnb.headless.notebooks import PARAMETERS_TAG, assigned_names, assigned_values, parse_notebook, tags
from dotnb.store.errors import DotnbError
from dotnb.store.ids import RunIdSource
from dotnb.store.paths import to_relpath
from dotnb.store.repo import Store
from dotnb.store.vocabulary import EXIT_COULD_NOT_RUN
from dotnb.sweep.task import ERROR, INTERRUPTED, OK, Base, PointOutcome, PointTask, run_point, sweep_tag


class BadSweep(DotnbError):
    """A sweep that cannot start: bad base, unknown param, no cluster (exit status 2)."""

    exit_code = EXIT_COULD_NOT_RUN


@dataclass
class SweepReport:
    sweep_id: str
    tag: str
    base: dict[str, Any]
    points: list[dict[str, Any]]
    outcomes: dict[int, PointOutcome] = field(default_factory=dict)
    running: set[int] = field(default_factory=set)
    dashboard: str | None = None
    stopped: str | None = None  # why points were cancelled: max-failures, interrupted
    duration_s: float = 0.0
    metric: str | None = None
    goal: str = "max"

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes.values() if o.status == status)

    @property
    def failures(self) -> int:
        return self.count(ERROR)

    def best(self) -> tuple[PointOutcome, float] | None:
        """The finished point with the best value of ``metric`` (in its last run)."""
        best: tuple[PointOutcome, float] | None = None
        for outcome in self.outcomes.values():
            if not outcome.runs or self.metric is None:
                continue
            value = (outcome.runs[-1].get("metrics") or {}).get(self.metric)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            better = best is None or (value > best[1] if self.goal == "max" else value < best[1])
            if better:
                best = (outcome, float(value))
        return best

    def as_json(self) -> dict[str, Any]:
        best = self.best()
        return {
            "sweep": self.sweep_id,
            "tag": self.tag,
            "base": self.base,
            "dashboard": self.dashboard,
            "points": len(self.points),
            "ok": self.count(OK),
            "error": self.count(ERROR),
            "interrupted": self.count(INTERRUPTED),
            "stopped": self.stopped,
            "duration_s": round(self.duration_s, 3),
            "metric": self.metric,
            "goal": self.goal,
            "best": None
            if best is None
            else {"index": best[0].index, "params": best[0].params, "value": best[1]},
            "results": [self.outcomes[i].as_json() for i in sorted(self.outcomes)],
        }


def sweep_base(store: Store, source: str) -> tuple[Base, bytes]:
    """What ``source`` (a notebook file, else a RUN reference) gives every point, and the
    notebook's bytes (to check the params against)."""
    path = Path(source)
    if source.endswith(".ipynb") and path.is_file():
        rel = to_relpath(store.root, Path(os.path.abspath(path)))
        name = rel if rel is not None else path.name
        data = path.read_bytes()
        return Base(notebook=name, notebook_bytes=data), data
    if source.endswith(".ipynb"):
        raise BadSweep(f"no notebook {source!r}")
    try:
        run_id = store.resolve(source)
    except DotnbError as exc:
        raise BadSweep(f"{source!r} is neither a notebook file nor a run of this store ({exc})") from None
    manifest = store.manifest(run_id)
    snap = manifest.get("notebook_snapshot")
    if not manifest.get("notebook") or not isinstance(snap, dict) or not snap.get("hash"):
        raise BadSweep(f"run {run_id} has no notebook snapshot to sweep")
    data = store.objects.read_bytes(snap["hash"])
    return Base(notebook=manifest["notebook"], run_id=run_id), data


def plan_sweep(
    store: Store, source: str, specs: list[str], random_points: int | None = None, seed: int | None = None
) -> tuple[Base, list[dict[str, Any]]]:
    """What a sweep starts from and its points, checked (:class:`BadSweep`, :class:`BadSpace`):
    the one reading of a sweep request, for the CLI and the REST API."""
    from dotnb.sweep.space import grid, parse_dimension, sample

    dimensions = [parse_dimension(text) for text in specs]
    points = grid(dimensions) if random_points is None else sample(dimensions, random_points, seed)
    if not points:
        raise BadSweep("the parameter space is empty")
    base, notebook = sweep_base(store, source)
    check_params(notebook, base.notebook, [d.name for d in dimensions])
    return base, points


def sweep_params(store: Store, source: str) -> tuple[str, dict[str, str | None]]:
    """What a sweep of ``source`` can vary: its notebook's path and the names its
    ``parameters`` cell assigns, each with the source text of its value there."""
    base, notebook = sweep_base(store, source)
    nb = parse_notebook(notebook, base.notebook)
    cell = next((c for c in nb.cells if PARAMETERS_TAG in tags(c)), None)
    if cell is None:
        raise BadSweep(f"{base.notebook} has no cell tagged 'parameters' to put the swept values after")
    values = assigned_values(cell.source)
    if values is None:
        raise BadSweep(f"the parameters cell of {base.notebook} is not plain Python")
    return base.notebook, values


def check_params(notebook: bytes, name: str, params: list[str]) -> None:
    """Every swept name must be one the notebook's parameters cell assigns."""
    nb = parse_notebook(notebook, name)
    cell = next((c for c in nb.cells if PARAMETERS_TAG in tags(c)), None)
    if cell is None:
        raise BadSweep(f"{name} has no cell tagged 'parameters' to put the swept values after")
    assigned = assigned_names(cell.source) or set()
    unknown = [p for p in params if p not in assigned]
    if unknown:
        known = ", ".join(sorted(assigned)) or "nothing"
        raise BadSweep(f"unknown param {unknown[0]!r}: the parameters cell of {name} assigns {known}")


def open_client(scheduler: str | None, workers: int | None, memory_limit: str | None) -> Any:
    """A Dask client: of ``scheduler``, else of a new LocalCluster of worker processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        # How long an address may take to answer is Dask's own setting (default 30 s):
        # distributed.comm.timeouts.connect, e.g. DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s.
        try:
            return Client(scheduler, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise BadSweep(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    cluster = LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        memory_limit=memory_limit or "auto",
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    return Client(cluster, set_as_default=False)


def run_sweep(
    store: Store,
    base: Base,
    points: list[dict[str, Any]],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    memory_limit: str | None = None,
    remote: dict[str, Any] | None = None,
    max_failures: int | None = None,
    metric: str | None = None,
    goal: str = "max",
    kernel_name: str | None = None,
    timeout: float | None = None,
    sweep_id: str | None = None,
    on_change: Callable[[SweepReport], None] | None = None,
    cancel: threading.Event | None = None,
) -> SweepReport:
    """Run every point; the report says what each became.  ``remote`` (a remote's spec)
    is used only with ``scheduler``: workers on one machine share the project's store.
    Setting ``cancel`` (from another thread) cancels the points not yet finished, as
    Ctrl-C does."""
    if not points:
        raise BadSweep("the sweep has no points")
    sweep_id = sweep_id or RunIdSource().new()
    report = SweepReport(
        sweep_id,
        sweep_tag(sweep_id),
        {"notebook": base.notebook, "run": base.run_id},
        points,
        metric=metric,
        goal=goal,
    )
    via_remote = remote if scheduler else None
    if via_remote is not None and base.run_id is not None:
        from dotnb.remote.transfer import push

        push(store, via_remote["name"], runs=[base.run_id])  # the workers read the base from there
    began = time.monotonic()
    client = open_client(scheduler, workers, memory_limit)
    report.dashboard = getattr(client, "dashboard_link", None)
    try:
        _drive(client, store, report, base, via_remote, max_failures, kernel_name, timeout, on_change, cancel)
    finally:
        report.duration_s = time.monotonic() - began
        cluster = None if scheduler else client.cluster
        client.close()
        if cluster is not None:
            cluster.close()
    return report


def _drive(
    client: Any,
    store: Store,
    report: SweepReport,
    base: Base,
    remote: dict[str, Any] | None,
    max_failures: int | None,
    kernel_name: str | None,
    timeout: float | None,
    on_change: Callable[[SweepReport], None] | None,
    cancel: threading.Event | None = None,
) -> None:
    from distributed import as_completed

    futures = {}
    for index, params in enumerate(report.points):
        task = PointTask(
            report.sweep_id,
            index,
            params,
            base,
            target_root=None if remote else str(store.root),
            remote=remote,
            kernel_name=kernel_name,
            timeout=timeout,
        )
        future = client.submit(run_point, task, key=f"dotnb-sweep-{report.sweep_id}-{index}", pure=False)
        futures[future.key] = (index, future)
    report.running = set(range(len(report.points)))
    if on_change:
        on_change(report)
    finished = threading.Event()
    if cancel is not None:
        threading.Thread(
            target=_cancel_when_asked,
            args=(cancel, finished, client, report, futures),
            name=f"dotnb-sweep-cancel-{report.sweep_id}",
            daemon=True,
        ).start()
    try:
        for future in as_completed([f for _, f in futures.values()], loop=client.loop):
            index, _ = futures[future.key]
            report.running.discard(index)
            if index in report.outcomes:  # cancelled while it waited
                continue
            try:
                outcome: PointOutcome = future.result()
            except Exception as exc:  # the task raised on its worker: no run recorded
                outcome = PointOutcome(
                    index, report.points[index], ERROR, error=f"{type(exc).__name__}: {exc}"
                )
            report.outcomes[index] = outcome
            if remote is not None and outcome.runs:
                from dotnb.remote.transfer import pull

                pull(store, remote["name"])
            if report.metric is None:
                report.metric = _first_metric(outcome)
            if max_failures is not None and report.failures > max_failures:
                report.stopped = "max-failures"
                _cancel(client, report, futures)
                break
            if on_change:
                on_change(report)
    except KeyboardInterrupt:
        report.stopped = "interrupted"
        _cancel(client, report, futures)
        raise
    finally:
        finished.set()
        if on_change:
            on_change(report)


def _cancel_when_asked(
    cancel: threading.Event,
    finished: threading.Event,
    client: Any,
    report: SweepReport,
    futures: dict[Any, tuple[int, Any]],
) -> None:
    """Cancel the sweep's unfinished points once ``cancel`` is set, unless it ended first.
    A point already running on a worker is not stopped there: Dask drops its result
    (and its run, if it records one, stays in the store)."""
    while not cancel.wait(0.2):
        if finished.is_set():
            return
    if not finished.is_set():
        report.stopped = "interrupted"
        _cancel(client, report, futures)


def _cancel(client: Any, report: SweepReport, futures: dict[Any, tuple[int, Any]]) -> None:
    # Marked before Dask hears of it: from another thread (Ctrl-C, REST), the loop
    # in _drive meets the cancelled futures as they come and must find them marked.
    pending = [(index, f) for index, f in futures.values() if index not in report.outcomes]
    for index, _ in pending:
        report.outcomes[index] = PointOutcome(index, report.points[index], INTERRUPTED, error="cancelled")
    report.running.clear()
    client.cancel([f for _, f in pending])


def _first_metric(outcome: PointOutcome) -> str | None:
    for run in reversed(outcome.runs):
        for name, value in (run.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(name)
    return None
