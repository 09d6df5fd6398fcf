"""Parameter sweeps: one notebook (or past run) executed for many parameter points on a
Dask cluster, each point's runs recorded with a common sweep tag.

- :mod:`.space` — the parameter space: specs, grid and random points (pure);
- :mod:`.task` — one point on a worker: work folder, ``dotnb run``, runs recorded;
- :mod:`.driver` — the client: base, cluster, tasks, failures, cancellation.
"""
