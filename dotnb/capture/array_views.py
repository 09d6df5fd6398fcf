"""numpy views pickled as views: ``v = a[2:]`` shares ``a``'s memory again after a
load (plain pickling copies a view into an array of its own).

A view whose base array owns contiguous memory is reduced to ``view_of(base,
offset, shape, strides, dtype, writeable)``; pickled in the same stream as ``base``
(the capture groups them, see :mod:`dotnb.capture.namespace`), the loaded view
points into the loaded base.  A read-only view stays read-only (pandas hands out
``df.values`` read-only under copy-on-write).  The same holds for the arrays inside
pandas blocks, which pandas pickles as arrays.  ``view_of`` is what the pickles
name: keep it importable, and its old signature loadable.
"""

from __future__ import annotations

import sys
from typing import Any


def view_of(
    base: Any,
    offset: int,
    shape: tuple[int, ...],
    strides: tuple[int, ...],
    dtype: Any,
    writeable: bool = True,
) -> Any:
    import numpy as np

    view = np.ndarray(shape, dtype=dtype, buffer=base, offset=offset, strides=strides)
    if not writeable:
        view.flags.writeable = False
    return view


def reduce_view(obj: Any) -> Any:
    """The reduction of a numpy view of another array, or NotImplemented."""
    np = sys.modules.get("numpy")
    if np is None or type(obj) is not np.ndarray:
        return NotImplemented
    base = obj.base
    if type(base) is not np.ndarray:
        return NotImplemented
    while type(base.base) is np.ndarray:
        base = base.base
    if base.base is not None or not base.flags.c_contiguous or obj.dtype.hasobject:
        return NotImplemented
    offset = obj.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    if offset < 0:
        return NotImplemented
    if obj.flags.writeable:
        return view_of, (base, offset, obj.shape, obj.strides, obj.dtype)
    return view_of, (base, offset, obj.shape, obj.strides, obj.dtype, False)
