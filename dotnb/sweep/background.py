"""Sweeps started by a long-running process (the Jupyter server's ``POST sweeps``), each
driven by a thread of its own; their state is kept in memory for ``GET sweeps/{id}``.

A request is read and checked before anything starts (:func:`~dotnb.sweep.driver.plan_sweep`
raises on a bad spec, an unknown param or run), so a refused sweep gets its error at
once; reaching the cluster happens in the thread, so an unreachable scheduler makes the
sweep ``failed`` with its message.  The thread opens a store of its own: a store is
used by one thread.  The runs themselves are in the store, tagged ``sweep:<id>``, and
outlive the process; this state does not.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotnb.store.ids import RunIdSource
from dotnb.store.paths import confine
from dotnb.store.repo import Store
from dotnb.sweep.driver import SweepReport, plan_sweep, run_sweep
from dotnb.sweep.task import sweep_tag

RUNNING = "running"
DONE = "done"
FAILED = "failed"
RECORDED = "recorded"  # not started by this process: what its runs in the store say


@dataclass
class SweepRequest:
    source: str  # a notebook path (root-relative) or a RUN reference
    params: list[str]  # NAME=SPEC, as `dotnb sweep -p`
    random_points: int | None = None
    seed: int | None = None
    max_failures: int | None = None
    metric: str | None = None
    minimize: bool = False
    remote: str | None = None
    # On a LocalCluster of this machine even when a scheduler is configured.
    local: bool = False


@dataclass
class _Entry:
    sweep_id: str
    points: int
    state: str = RUNNING
    report: SweepReport | None = None
    error: str | None = None
    thread: threading.Thread | None = field(default=None, repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)


class Sweeps:
    """The sweeps this process started.  ``scheduler``, ``workers`` and ``memory_limit``
    say where they run (see :func:`~dotnb.sweep.driver.open_client`)."""

    def __init__(
        self,
        root: Path,
        scheduler: str | None = None,
        workers: int | None = None,
        memory_limit: str | None = None,
    ) -> None:
        self.root = root
        self.scheduler = scheduler
        self.workers = workers
        self.memory_limit = memory_limit
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def start(self, request: SweepRequest) -> dict[str, Any]:
        from dotnb.remote.config import get_remote

        store = Store(self.root)
        try:
            # A notebook path comes from a request: confined to the root like every path.
            source = (
                str(confine(self.root, request.source))
                if request.source.endswith(".ipynb")
                else request.source
            )
            remote = get_remote(store, request.remote) if request.remote else None
            base, points = plan_sweep(store, source, request.params, request.random_points, request.seed)
        finally:
            store.close()
        sweep_id = RunIdSource().new()
        entry = _Entry(sweep_id, len(points))
        entry.thread = threading.Thread(
            target=self._run,
            args=(entry, base, points, remote, request),
            name=f"dotnb-sweep-{sweep_id}",
            daemon=True,
        )
        with self._lock:
            self._entries[sweep_id] = entry
        entry.thread.start()
        return self.state(sweep_id) or {}

    def _run(
        self, entry: _Entry, base: Any, points: list[dict[str, Any]], remote: Any, request: SweepRequest
    ) -> None:
        def changed(report: SweepReport) -> None:
            entry.report = report

        store = Store(self.root)
        try:
            entry.report = run_sweep(
                store,
                base,
                points,
                scheduler=None if request.local else self.scheduler,
                workers=self.workers,
                memory_limit=self.memory_limit,
                remote=remote,
                max_failures=request.max_failures,
                metric=request.metric,
                goal="min" if request.minimize else "max",
                sweep_id=entry.sweep_id,
                on_change=changed,
                cancel=entry.cancel,
            )
            entry.state = DONE
        except Exception as exc:  # reported through GET sweeps/{id}, never raised into the server
            entry.error = str(exc) or type(exc).__name__
            entry.state = FAILED
        finally:
            store.close()

    def state(self, sweep_id: str) -> dict[str, Any] | None:
        """The sweep's state, counts and results so far; None for a sweep not started here."""
        with self._lock:
            entry = self._entries.get(sweep_id)
        if entry is None:
            return None
        report = entry.report
        doc: dict[str, Any] = (
            report.as_json()
            if report is not None
            else {"sweep": sweep_id, "tag": sweep_tag(sweep_id), "points": entry.points, "results": []}
        )
        doc["state"] = entry.state
        doc["failure"] = entry.error  # why the sweep itself stopped (its points have "error")
        doc["running"] = len(report.running) if report is not None else 0
        return doc

    def cancel(self, sweep_id: str) -> dict[str, Any] | None:
        """Cancel the points of a running sweep that have not finished (as Ctrl-C does to
        ``dotnb sweep``); its state.  None for a sweep not started here; a sweep that
        has ended is left as it is."""
        with self._lock:
            entry = self._entries.get(sweep_id)
        if entry is None:
            return None
        if entry.state == RUNNING:
            entry.cancel.set()
        return self.state(sweep_id)

    def clusters(self) -> dict[str, Any]:
        """Where a sweep can run: local worker processes (how many), and the configured
        scheduler's address if there is one (the default then)."""
        import os

        return {"local": {"workers": self.workers or os.cpu_count() or 1}, "scheduler": self.scheduler}

    def wait(self, sweep_id: str, timeout: float | None = None) -> None:
        """Until the sweep's thread ends (for a process that shuts down)."""
        entry = self._entries.get(sweep_id)
        if entry is not None and entry.thread is not None:
            entry.thread.join(timeout)


def recorded_state(store: Store, sweep_id: str) -> dict[str, Any] | None:
    """A sweep this process did not start (``dotnb sweep``, another server), as the store
    knows it: its runs, tagged ``sweep:<id>``, one result each; None when it has none."""
    runs = list(reversed(store.list_runs(tags=[sweep_tag(sweep_id)])))
    if not runs:
        return None
    results = [
        {
            "index": i,
            "params": run.get("params") or {},
            "status": run.get("status"),
            "runs": [run["id"]],
            "metrics": run.get("metrics") or {},
            "error": None,
        }
        for i, run in enumerate(runs)
    ]
    return {
        "sweep": sweep_id,
        "tag": sweep_tag(sweep_id),
        "points": len(runs),
        "state": RECORDED,
        "failure": None,
        "running": 0,
        "results": results,
    }
