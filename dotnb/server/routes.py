"""Every route the extension serves under ``/dotnb/api/``: the runs API
(:mod:`dotnb.server.handlers`), the Experiments view's (:mod:`dotnb.server.experiments`),
sweeps (:mod:`dotnb.server.sweeps`), lineage (:mod:`dotnb.server.lineage`) and the
kernel state a run recorded (:mod:`dotnb.server.kernel_state`)."""

from __future__ import annotations

from dotnb.server import experiments, handlers, kernel_state, lineage, sweeps

ROUTES: list[tuple[str, type[handlers.DotnbHandler]]] = [
    *handlers.ROUTES,
    *experiments.ROUTES,
    *sweeps.ROUTES,
    *lineage.ROUTES,
    *kernel_state.ROUTES,
]
