"""RUN arguments (``dotnb show RUN``, ``GET runs/{run}``): an id, a unique id prefix,
``#N`` or ``latest``, to a full run id."""

from __future__ import annotations

import re

from dotnb.store.errors import AmbiguousRun, RunNotFound
from dotnb.store.ids import id_prefix_ok
from dotnb.store.run_queries import RunQueries


def resolve_run(queries: RunQueries, ref: str, notebook: str | None = None) -> str:
    """A full run id from ``ref``: an id, a unique id prefix, ``#N`` or ``latest``."""
    ref = ref.strip()
    if not ref:
        raise RunNotFound("empty run reference")
    if ref == "latest":
        latest = queries.latest_run(notebook)
        if latest is None:
            where = f" for notebook {notebook}" if notebook else ""
            raise RunNotFound(f"no runs recorded{where}")
        return latest
    match = re.fullmatch(r"#?(\d+)", ref) if ref.startswith("#") else None
    if match:
        number = int(match.group(1))
        found = queries.numbered(number, notebook)
        if not found:
            where = f" in notebook {notebook}" if notebook else ""
            raise RunNotFound(f"no run #{number}{where}")
        if len(found) > 1:
            # Pulled runs keep their author's numbers: '#N' means this store's own run.
            local = [r for r in found if not r[2]]
            if len(local) == 1:
                return local[0][0]
            if len({r[1] for r in found}) > 1:
                names = ", ".join(sorted({r[1] or "(no notebook)" for r in found}))
                raise AmbiguousRun(f"#{number} exists in several notebooks ({names}); pass --notebook")
            shown = ", ".join(f"{r[0][:10]} by {r[3] or '?'}" for r in found[:5])
            if len(local) > 1:  # recorded here under one number: `dotnb fsck` reports it
                raise AmbiguousRun(f"#{number} names several runs of this store ({shown}); use an id prefix")
            raise AmbiguousRun(f"#{number} names several pulled runs ({shown}); use an id prefix")
        return found[0][0]
    if not id_prefix_ok(ref):
        raise RunNotFound(f"{ref!r} is not a run id, an id prefix, #N or 'latest'")
    matches = queries.ids_with_prefix(ref.upper(), 11)
    if not matches:
        raise RunNotFound(f"no run matches {ref!r}")
    if len(matches) > 1:
        shown = ", ".join(matches[:5])
        raise AmbiguousRun(f"{ref!r} matches several runs ({shown}…); use a longer prefix")
    return matches[0]
