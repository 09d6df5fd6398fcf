"""The dotnb store: content-addressed objects, run manifests and the SQLite index.

This package is pure Python: it never imports IPython, tornado or jupyter_server.
It is the one place that knows the on-disk format.
"""

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
