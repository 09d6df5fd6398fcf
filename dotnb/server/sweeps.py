"""REST handlers of parameter sweeps: ``POST sweeps`` starts one (as ``dotnb sweep``, on
the cluster ``c.Dotnb.sweep_*`` configures), ``GET sweeps/{id}`` says how it goes.
Thin like :mod:`dotnb.server.handlers`; the work is :mod:`dotnb.sweep.background`."""

from __future__ import annotations

import asyncio
from typing import Any

from tornado import web

from dotnb.server.handlers import ApiError, DotnbHandler, json_errors
from dotnb.store.paths import confine
from dotnb.sweep.background import SweepRequest, Sweeps, recorded_state
from dotnb.sweep.driver import sweep_params


class _SweepsBase(DotnbHandler):
    @property
    def sweeps(self) -> Sweeps:
        sweeps = self.settings.get("dotnb_sweeps")
        if sweeps is None:
            config = self.dotnb_config
            sweeps = Sweeps(
                self.store.root,
                scheduler=config.sweep_scheduler or None,
                workers=config.sweep_workers or None,
                memory_limit=config.sweep_memory_limit or None,
            )
            self.settings["dotnb_sweeps"] = sweeps
        return sweeps


class SweepsHandler(_SweepsBase):
    """``POST sweeps`` ``{"source", "params", "random", "seed", "max_failures", "metric",
    "minimize", "remote", "cluster"}``: start a sweep; 202 with its id."""

    @web.authenticated
    @json_errors
    async def post(self) -> None:
        body = self.json_body()
        self.reply(self.sweeps.start(_request(body)), status=202)


class SweepHandler(_SweepsBase):
    """``GET sweeps/{id}``: a sweep's state, counts, best point and results so far; for a
    sweep started elsewhere, its runs in the store."""

    @web.authenticated
    @json_errors
    async def get(self, sweep_id: str) -> None:
        state = self.sweeps.state(sweep_id) or recorded_state(self.store, sweep_id)
        if state is None:
            raise ApiError(404, f"no sweep {sweep_id}: none was started here and no run carries its tag")
        self.reply(state)


class SweepParamsHandler(_SweepsBase):
    """``GET sweeps/params?source=``: the names a sweep of ``source`` (a notebook path or
    a run reference) can vary, with their values in its ``parameters`` cell."""

    @web.authenticated
    @json_errors
    async def get(self) -> None:
        source = self.get_query_argument("source", "")
        if not source:
            raise ApiError(400, "source is required: a notebook path or a run reference")
        # A notebook path comes from a request: confined to the root like every path.
        where = str(confine(self.store.root, source)) if source.endswith(".ipynb") else source
        notebook, params = await asyncio.to_thread(sweep_params, self.store, where)
        clusters = self.sweeps.clusters()
        self.reply({"source": source, "notebook": notebook, "params": params, "clusters": clusters})


class SweepCancelHandler(_SweepsBase):
    """``POST sweeps/{id}/cancel``: cancel the points of a running sweep that have not
    finished; its state (202).  A sweep that has ended is left as it is."""

    @web.authenticated
    @json_errors
    async def post(self, sweep_id: str) -> None:
        state = self.sweeps.cancel(sweep_id)
        if state is None:
            raise ApiError(404, f"no sweep {sweep_id} was started by this server")
        self.reply(state, status=202)


def _request(body: dict[str, Any]) -> SweepRequest:
    source, params = body.get("source"), body.get("params")
    if not isinstance(source, str) or not source:
        raise ApiError(400, "source must be a notebook path or a run reference")
    if not isinstance(params, list) or not params or not all(isinstance(p, str) for p in params):
        raise ApiError(400, 'params must be a non-empty list of "NAME=SPEC" strings')
    unknown = set(body) - {
        "source",
        "params",
        "random",
        "seed",
        "max_failures",
        "metric",
        "minimize",
        "remote",
        "cluster",
    }
    if unknown:
        raise ApiError(400, f"unknown field {sorted(unknown)[0]!r}")
    for name in ("random", "seed", "max_failures"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ApiError(400, f"{name} must be a whole number, 0 or more")
    for name in ("metric", "remote"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise ApiError(400, f"{name} must be a string")
    cluster = body.get("cluster")
    if cluster not in (None, "local", "scheduler"):
        raise ApiError(400, "cluster must be 'local' or 'scheduler'")
    return SweepRequest(
        source=source,
        params=params,
        random_points=body.get("random"),
        seed=body.get("seed"),
        max_failures=body.get("max_failures"),
        metric=body.get("metric"),
        minimize=bool(body.get("minimize")),
        remote=body.get("remote"),
        local=cluster == "local",
    )


_SWEEP = r"(?P<sweep_id>[^/]+)"
ROUTES: list[tuple[str, type[DotnbHandler]]] = [
    ("sweeps", SweepsHandler),
    ("sweeps/params", SweepParamsHandler),  # before sweeps/{id}, which would match it
    (rf"sweeps/{_SWEEP}", SweepHandler),
    (rf"sweeps/{_SWEEP}/cancel", SweepCancelHandler),
]
