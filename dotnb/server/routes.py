"""Every route the extension serves under ``/dotnb/api/``: the runs API
(:mod:`dotnb.server.handlers`) and the Experiments view's (:mod:`dotnb.server.experiments`)."""

from __future__ import annotations

from dotnb.server import experiments, handlers, sweeps

ROUTES: list[tuple[str, type[handlers.DotnbHandler]]] = [
    *handlers.ROUTES,
    *experiments.ROUTES,
    *sweeps.ROUTES,
]
