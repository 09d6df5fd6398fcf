"""Memory shared between pandas objects and numpy arrays survives a checkout (real
ipykernel kernels, pandas with copy-on-write)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.capture.test_kernel_state import state_of, tracked, value
from tests.kernel_client import Kernel

pytestmark = pytest.mark.kernel


def test_pandas_objects_keep_sharing_memory_with_numpy_arrays(kernel: Kernel, project: Path) -> None:
    kernel.ok("%dotnb state on\nimport numpy as np, pandas as pd")
    first = tracked(
        kernel,
        # 1.6 MB: its memory is an out-of-band buffer, stored once for both names
        "a = np.arange(200_000.0).reshape(-1, 4)\ndf = pd.DataFrame(a, copy=False)\n"
        "prices = pd.DataFrame({'x': [1.0, 2.0], 'y': [3.0, 4.0]})\nv = prices.values\n"
        "b = np.arange(5.0)\ns = pd.Series(b, copy=False)\n"
        "frames = {'wide': df}\n"
        "base = pd.DataFrame({'q': [1.0, 2.0]})\ncol = base['q']\n",
    )
    state = state_of(project, first)["variables"]
    assert state["a"]["group"] == state["df"]["group"] == state["frames"]["group"]
    assert state["v"]["group"] == state["prices"]["group"] and state["b"]["group"] == state["s"]["group"]
    # Sharing only between pandas objects is not kept (see co_variable_groups).
    assert state["base"]["group"] != state["col"]["group"]

    tracked(kernel, "a = df = prices = v = b = s = frames = base = col = None")
    out = kernel.ok(f"%dotnb checkout {first}").stdout
    assert "9 loaded" in out, out
    assert (
        value(
            kernel,
            "np.shares_memory(a, df.values), frames['wide'] is df, np.shares_memory(v, prices.values), "
            "v.flags.writeable, np.shares_memory(b, s.values)",
        )
        == "(True, True, True, False, True)"
    )
    # Writes through numpy show in pandas, as before the checkout.
    assert (
        value(kernel, "a[1, 2] = -7.0; b[0] = 42.0; float(df.iloc[1, 2]), float(s.iloc[0])") == "(-7.0, 42.0)"
    )
    # A column taken from a frame is a copy under copy-on-write: writing it leaves the frame alone.
    assert value(kernel, "col.iloc[0] = 99.0; float(base['q'].iloc[0])") == "1.0"
