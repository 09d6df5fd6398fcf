"""Every route the extension serves under ``/dotnb/api/``: the runs API
(:mod:`dotnb.server.handlers`), the Experiments view's (:mod:`dotnb.server.experiments`)
and lineage (:mod:`dotnb.server.lineage`)."""

from __future__ import annotations

from dotnb.server import experiments, handlers, lineage, sweeps

ROUTES: list[tuple[str, type[handlers.DotnbHandler]]] = [
    *handlers.ROUTES,
    *experiments.ROUTES,
    *sweeps.ROUTES,
    *lineage.ROUTES,
]
