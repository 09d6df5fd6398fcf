"""The undo of a kernel checkout is a checkpoint run in the store: it survives a
kernel restart and can be looked at like any run (real ipykernel kernels)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotnb.store import Store
from dotnb.store.kernel_state import state_summary
from tests.capture.test_kernel_state import tracked, value
from tests.kernel_client import Kernel

pytestmark = pytest.mark.kernel


def test_undo_after_a_kernel_restart_uses_the_stored_checkpoint(kernel: Kernel, project: Path) -> None:
    kernel.ok("%dotnb state on\nimport numpy as np")
    first = tracked(kernel, "a = np.arange(5)\nrows = [[1], [2]]\nfirst_row = rows[0]")
    tracked(kernel, "a = a * 10\nrows.append([3])\nlater = 'x'")
    kernel.ok("note = 'set by an untracked cell'")  # not captured yet: pickled by the checkpoint
    out = kernel.ok(f"%dotnb checkout {first}").stdout
    assert "undo: %dotnb checkout --undo (checkpoint #3 holds the variables as they were)" in out, out
    assert value(kernel, "a.tolist(), len(rows), 'later' in dir(), 'note' in dir()") == (
        "([0, 1, 2, 3, 4], 2, False, False)"
    )

    store = Store(project)
    try:
        checkpoint = store.resolve("#3", "analysis.ipynb")
        manifest = store.manifest(checkpoint)
        assert manifest["kind"] == "checkpoint" and manifest["checkpoint_of"] == first
        assert manifest["name"] == "kernel variables before checking out #1"
        summary = state_summary(store.dir, store.objects, checkpoint)
        assert summary is not None and set(summary["variables"]) == {
            "a",
            "rows",
            "first_row",
            "later",
            "note",
        }
    finally:
        store.close()

    kernel.shutdown()
    again = Kernel(project, project / "analysis.ipynb")
    try:
        again.ok("%load_ext dotnb\nimport numpy as np")
        out = again.ok("%dotnb checkout --undo").stdout
        assert "checkout undone; back to the checkpoint" in out, out
        assert value(again, "a.tolist(), len(rows), later, note, first_row is rows[0]") == (
            "([0, 10, 20, 30, 40], 3, 'x', 'set by an untracked cell', True)"
        )
        assert "no checkout to undo" in again.ok("%dotnb checkout --undo").stdout
    finally:
        again.shutdown()


def test_undo_in_the_same_kernel_puts_back_what_the_checkpoint_could_not_store(
    kernel: Kernel, project: Path
) -> None:
    kernel.ok("%dotnb state on")
    first = tracked(kernel, "x = 1")
    tracked(kernel, "x = 2\nhandle = open('notes.txt', 'w')\nkept_id = id(handle)")
    kernel.ok(f"%dotnb checkout {first}")
    assert value(kernel, "x, 'handle' in dir()") == "(1, False)"  # the run had no handle
    out = kernel.ok("%dotnb checkout --undo").stdout
    assert "put back from this kernel's memory: handle" in out, out
    assert value(kernel, "x, id(handle) == kept_id, handle.closed") == "(2, True, False)"


def test_an_interrupted_checkout_leaves_the_previous_undo(kernel: Kernel, project: Path) -> None:
    kernel.ok("%dotnb state on")
    first = tracked(kernel, "a = [1]")
    second = tracked(kernel, "a = [2]")
    tracked(kernel, "a = [3]")
    kernel.ok(f"%dotnb checkout {second}")
    assert value(kernel, "a") == "[2]"
    out = kernel.ok(f"%dotnb checkout {second}").stdout  # changes nothing: no checkpoint
    assert "0 loaded" in out and "undo:" not in out, out
    # An interrupt while the checkpoint of the next checkout is written (simulated:
    # raised by the function that commits it).
    kernel.ok(
        "import dotnb.capture.state_checkout as _m\n_real = _m.commit_checkpoint\n"
        "def _interrupting(*args):\n    raise KeyboardInterrupt\n_m.commit_checkpoint = _interrupting"
    )
    res = kernel.execute(f"%dotnb checkout {first}")
    assert res.status == "error" and res.error is not None and res.error["ename"] == "KeyboardInterrupt"
    kernel.ok("_m.commit_checkpoint = _real")
    assert value(kernel, "a") == "[2]"
    kernel.ok("%dotnb checkout --undo")  # the undo of the checkout that stood
    assert value(kernel, "a") == "[3]"


def test_a_name_mentioned_but_unchanged_is_not_loaded_again(kernel: Kernel, project: Path) -> None:
    kernel.ok("%dotnb state on\nimport numpy as np")
    first = tracked(kernel, "big = np.ones(300_000)\nsmall = 1")
    tracked(kernel, "small = 2")
    kernel.ok("total = float(big.sum())")  # mentions big without changing it
    out = kernel.ok(f"%dotnb checkout {first}").stdout
    # The checkpoint hashed big again and found the run's value: only small is loaded.
    assert "loaded: small\n" in out and "removed: total" in out, out
    assert value(kernel, "small, float(big[0])") == "(1, 1.0)"
    kernel.ok("%dotnb checkout --undo")
    assert value(kernel, "small, total") == "(2, 300000.0)"
