"""dotnb: reproducible Jupyter notebooks.

Every tracked cell execution becomes a *run*: the code and its execution lineage,
the notebook, params, metrics, the exact bytes of the files the cell read and
wrote, and the environment.  In a notebook::

    %load_ext dotnb

    %%track --metrics acc
    ...

Inside a tracked cell, ``dotnb.param``, ``dotnb.metric``, ``dotnb.input`` and
``dotnb.output`` add to what is recorded automatically.  The public functions are
imported lazily so that ``import dotnb`` stays cheap in a kernel.
"""

from __future__ import annotations

# Every ``dotnb`` command imports this package first: importing typing here would add
# milliseconds to each.  mypy reads any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

try:
    # Written by the build from package.json, the one version source of dotnb.
    from dotnb._version import __version__
except ImportError:  # a source tree that was never built or installed
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "input",
    "load_ipython_extension",
    "metric",
    "output",
    "param",
    "unload_ipython_extension",
]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """For `jupyter labextension develop`: where the built frontend lives."""
    return [{"src": "labextension", "dest": "dotnb"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """jupyter_server finds the REST API here (enabled by the shipped config file)."""
    return [{"module": "dotnb.server"}]


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext dotnb``."""
    from dotnb.capture.magic import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from dotnb.capture.magic import unload_ipython_extension as unload

    unload(ipython)


def param(name: str, value: Any) -> Any:
    """Record ``value`` as the param ``name`` of the current run and return it."""
    from dotnb.capture.api import param as _param

    return _param(name, value)


def metric(name: str, value: float, step: int | None = None) -> None:
    """Record a metric value; call repeatedly (with ``step``) for a series."""
    from dotnb.capture.api import metric as _metric

    _metric(name, value, step)


def input(path: str | Path) -> None:
    """Declare ``path`` as an input of the current run (added to what was detected)."""
    from dotnb.capture.api import declare_input

    declare_input(path)


def output(path: str | Path) -> None:
    """Declare ``path`` as an output of the current run (added to what was detected)."""
    from dotnb.capture.api import declare_output

    declare_output(path)
