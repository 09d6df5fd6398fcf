"""The dotnb store: content-addressed objects, run manifests and the SQLite index.

This package is pure Python: it never imports IPython, tornado or jupyter_server.
It is the one place that knows the on-disk format.

The names below are imported on first use (PEP 562): ``dotnb log`` imports light
modules of this package (:mod:`dotnb.store.listing`) without the store itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dotnb.store.errors import (
        AmbiguousRun,
        DotnbError,
        ObjectCorrupt,
        ObjectMissing,
        PathOutsideRoot,
        RunNotFound,
        StoreFormatError,
    )
    from dotnb.store.repo import FORMAT_VERSION, Store, find_root

__all__ = [
    "FORMAT_VERSION",
    "AmbiguousRun",
    "DotnbError",
    "ObjectCorrupt",
    "ObjectMissing",
    "PathOutsideRoot",
    "RunNotFound",
    "Store",
    "StoreFormatError",
    "find_root",
]


def __getattr__(name: str) -> object:
    if name in ("FORMAT_VERSION", "Store", "find_root"):
        from dotnb.store import repo

        return getattr(repo, name)
    if name in __all__:
        from dotnb.store import errors

        return getattr(errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
