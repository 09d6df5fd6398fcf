"""Functions users call inside a tracked cell: ``dotnb.param/metric/input/output``.

Outside a tracked cell they still work as plain functions (``param`` returns its
value) and say once that nothing is recorded, so a notebook runs the same with
or without dotnb tracking.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from dotnb.capture.params import to_jsonable
from dotnb.store.manifest import json_safe_number

_warned: set[str] = set()


def _active() -> Any:
    from dotnb.capture.magic import current_session

    session = current_session()
    return session.active if session is not None else None


def _note_untracked(what: str) -> None:
    if what not in _warned:
        _warned.add(what)
        print(f"dotnb: {what} outside a tracked cell is not recorded", file=sys.stderr)


def param(name: str, value: Any) -> Any:
    if not isinstance(name, str) or not name:
        raise ValueError("dotnb.param: name must be a non-empty string")
    run = _active()
    if run is None:
        _note_untracked("dotnb.param()")
        return value
    if name in run.overridden:
        # --param wins over the cell's own value, as it does for assignments.
        return run.overridden[name]
    try:
        run.params[name] = to_jsonable(value)
    except (TypeError, ValueError):
        run.params[name] = repr(value)
        run.warnings.append(f"param {name!r} is not JSON-serialisable; recorded its repr")
    return value


def metric(name: str, value: float, step: int | None = None) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError("dotnb.metric: name must be a non-empty string")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"dotnb.metric: {name!r} value must be a number, got {type(value).__name__}"
        ) from None
    if step is not None and not isinstance(step, int):
        try:
            step = int(step)
        except (TypeError, ValueError):
            raise TypeError("dotnb.metric: step must be an integer") from None
    run = _active()
    if run is None:
        _note_untracked("dotnb.metric()")
        return
    run.metric_series.setdefault(name, []).append(
        {"step": step, "value": json_safe_number(number), "time": round(time.time(), 3)}
    )


def _declare(path: str | os.PathLike[str], outputs: bool) -> None:
    from dotnb.capture.magic import current_session

    session = current_session()
    run = session.active if session is not None else None
    what = "dotnb.output()" if outputs else "dotnb.input()"
    if run is None or session is None or session.root is None:
        _note_untracked(what)
        return
    from dotnb.store.paths import to_relpath

    rel = to_relpath(session.root, Path(os.fspath(path)))
    if rel is None:
        run.warnings.append(f"{what}: {os.fspath(path)!r} is outside the project root; not recorded")
        return
    (run.declared_outputs if outputs else run.declared_inputs).append(rel)


def declare_input(path: str | os.PathLike[str]) -> None:
    _declare(path, outputs=False)


def declare_output(path: str | os.PathLike[str]) -> None:
    _declare(path, outputs=True)
