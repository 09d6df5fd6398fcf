"""Kernel state: variables recorded with runs and checked out into a live kernel
(real ipykernel kernels through jupyter_client)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from dotnb.store import Store
from dotnb.store.kernel_state import (
    GROUP_FORMAT,
    STATE_FORMAT,
    put_document,
    read_document,
    read_state_ref,
    write_state_ref,
)
from tests.kernel_client import Kernel

pytestmark = pytest.mark.kernel


def state_of(project: Path, run_id: str, timeout: float = 30) -> dict[str, Any]:
    """The run's state manifest, once the capture child has written it."""
    deadline = time.monotonic() + timeout
    store = Store(project)
    try:
        while (digest := read_state_ref(store.dir, run_id)) is None:
            assert time.monotonic() < deadline, f"no kernel state for run {run_id}"
            time.sleep(0.05)
        return read_document(store.objects, digest, STATE_FORMAT)
    finally:
        store.close()


def value(kernel: Kernel, expr: str) -> str:
    res = kernel.ok(expr)
    return str(res.results[0]["text/plain"])


def tracked(kernel: Kernel, code: str) -> str:
    res = kernel.ok("%%track\n" + code)
    assert res.run is not None, res.stderr
    return str(res.run["id"])


def test_checkout_restores_values_sharing_functions_classes_and_undo(kernel: Kernel, project: Path) -> None:
    kernel.ok("%dotnb state on")
    kernel.ok("import numpy as np, pandas as pd\nfrom sklearn.linear_model import LinearRegression")
    first = tracked(
        kernel,
        "a = np.arange(10)\nv = a[2:]\n"
        "shared = [1, 2]\nd = {'x': shared, 'y': [shared]}\n"
        "class P:\n    def __init__(self):\n        self.items = shared\n    def total(self):\n"
        "        return sum(self.items) * factor\n"
        "p = P()\nfactor = 3\n"
        "def scale(k):\n    return k * factor\n"
        "df = pd.DataFrame({'x': [1.0, 2.0, 3.0], 'y': [2.0, 4.0, 6.0]})\n"
        "model = LinearRegression().fit(df[['x']], df['y'])\n"
        "alias = scale\n",
    )
    state = state_of(project, first)["variables"]
    # Names sharing objects are one group; unrelated ones are not.
    assert state["a"]["group"] == state["v"]["group"]
    assert state["shared"]["group"] == state["d"]["group"] == state["p"]["group"]
    assert state["scale"]["group"] == state["alias"]["group"] != state["a"]["group"]
    assert state["P"]["status"] == "stored" and state["p"]["type"] == "P"
    assert "np" not in state and "In" not in state  # modules and IPython's names are not variables

    second = tracked(kernel, "a[0] = 99\nshared.append(3)\nfactor = 10\nnew_name = 'x'\ndel v\n")
    after = state_of(project, second)["variables"]
    # Unchanged values are not serialized again: the same group objects.
    assert after["df"]["group"] == state["df"]["group"] and after["model"]["group"] == state["model"]["group"]
    assert after["a"]["group"] != state["a"]["group"] and "v" not in after

    out = kernel.ok(f"%dotnb checkout {first}").stdout
    assert "loaded" in out and "removed: new_name" in out, out
    # df, model, scale, P were not touched by the second cell: not loaded again.
    assert "unchanged" in out and "df" not in out.split("loaded:")[1].split("\n")[0], out
    assert value(kernel, "int(a[0]), v[:2].tolist(), np.shares_memory(a, v)") == "(0, [2, 3], True)"
    assert value(kernel, "d['x'] is shared and d['y'][0] is shared and p.items is shared") == "True"
    assert value(kernel, "shared, factor, scale(2), p.total(), type(p) is P, alias is scale") == (
        "([1, 2], 3, 6, 9, True, True)"
    )
    # The restored function sees the kernel's globals, not a frozen copy.
    assert value(kernel, "factor = 5; scale(2)") == "10"
    assert value(kernel, "round(float(model.predict(pd.DataFrame({'x': [4.0]}))[0]), 6)") == "8.0"
    assert value(kernel, "'new_name' in dir()") == "False"
    a_writable = value(kernel, "a[1] = 7; int(a[1])")
    assert a_writable == "7"

    undo = kernel.ok("%dotnb checkout --undo").stdout
    assert "checkout undone" in undo
    assert value(kernel, "int(a[0]), shared, new_name, 'v' in dir()") == "(99, [1, 2, 3], 'x', False)"


def test_deleted_variable_unpicklable_and_state_off(kernel: Kernel, project: Path) -> None:
    off = tracked(kernel, "before = 1")
    assert not (project / ".dotnb" / "kernel-state").exists()  # off by default
    assert "no recorded kernel state" in kernel.ok(f"%dotnb checkout {off}").stdout

    kernel.ok("%dotnb state on")
    first = tracked(kernel, "keep = {'k': 1}\nhandle = open('notes.txt', 'w')\ngen = (i for i in range(3))")
    state = state_of(project, first)["variables"]
    assert state["handle"]["status"] == "unpicklable"
    assert "open file (TextIOWrapper)" in state["handle"]["reason"]
    assert state["gen"]["status"] == "unpicklable" and state["handle"]["cell"] == 5
    tracked(kernel, "del keep\nhandle.close()\ndel handle")
    out = kernel.ok(f"%dotnb checkout {first} --no-recompute").stdout
    assert value(kernel, "keep") == "{'k': 1}"
    assert "not restored: handle (unpicklable" in out and "last set by cell [5]" in out, out
    assert "not restored: gen" in out and "not recomputed (--no-recompute)" in out, out


def test_corrupted_value_is_refused_and_namespace_untouched(kernel: Kernel, project: Path) -> None:
    kernel.ok("%dotnb state on\nimport numpy as np")
    first = tracked(kernel, "big = np.ones(400_000)\nsmall = 1")  # 3.2 MB: an out-of-band buffer
    group = state_of(project, first)["variables"]["big"]["group"]
    tracked(kernel, "big[:] = 2\nsmall = 2")
    store = Store(project)
    try:
        buffer_hash = read_document(store.objects, group, GROUP_FORMAT)["buffers"][0][0]
        path = store.objects.path_for(buffer_hash)
    finally:
        store.close()
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00garbage")
    out = kernel.ok(f"%dotnb checkout {first}").stdout
    assert "checkout refused" in out and "corrupted" in out, out
    assert value(kernel, "float(big[0]), small") == "(2.0, 2)"


def test_state_from_another_author_needs_trust(kernel: Kernel, project: Path) -> None:
    kernel.ok("%dotnb state on")
    first = tracked(kernel, "x = [1, 2, 3]")
    tracked(kernel, "x = None")
    manifest = state_of(project, first)
    store = Store(project)
    try:
        # As a pulled run's state would be: recorded by someone else, elsewhere.
        forged = put_document(store.objects, {**manifest, "author": "someone@elsewhere"})
        write_state_ref(store.dir, first, forged)
    finally:
        store.close()
    refused = kernel.ok(f"%dotnb checkout {first}").stdout
    assert "recorded by someone@elsewhere" in refused and "--trust" in refused
    assert value(kernel, "repr(x)") == "'None'"
    kernel.ok(f"%dotnb checkout {first} --trust")
    assert value(kernel, "x") == "[1, 2, 3]"


def test_a_cell_changing_nothing_reuses_the_state(kernel: Kernel, project: Path) -> None:
    kernel.ok("%dotnb state on")
    first = tracked(kernel, "x = [1]\ndef bump():\n    x.append(len(x))")
    second = tracked(kernel, "print('nothing')")
    third = tracked(kernel, "bump()")  # changes x through a notebook function's global
    store = Store(project)
    try:
        s1, s2, s3 = (state_of(project, r) for r in (first, second, third))
        assert read_state_ref(store.dir, first) == read_state_ref(store.dir, second)
        assert s3["variables"]["x"]["group"] != s1["variables"]["x"]["group"]
        assert s2 == s1 and s3["variables"]["bump"]["status"] == "stored"
        # Small immutable values are pickled in the kernel, without a fork.
        fourth = tracked(kernel, "n = 5\nlabel = 'a'\nflags = (True, False)")
        s4 = state_of(project, fourth)["variables"]
        assert s4["x"] == s3["variables"]["x"] and s4["n"]["status"] == "stored"
        assert s4["flags"]["group"] != s4["n"]["group"]
        out = kernel.ok(f"%dotnb checkout {fourth}").stdout
        assert "0 loaded" in out and "5 unchanged" in out, out
        out = kernel.ok(f"%dotnb checkout {first}").stdout
        assert "removed: flags, label, n" in out, out
        assert value(kernel, "x, 'n' in dir()") == "([1], False)"
    finally:
        store.close()


def test_recompute_reruns_the_cells_producing_unstored_values(kernel: Kernel, project: Path) -> None:
    (project / "notes.txt").write_text("hello")
    kernel.ok("%dotnb state on")
    kernel.ok("path = 'notes.txt'")
    first = tracked(
        kernel,
        "handle = open(path)\nkeep = [1]\n"
        "exec(\"lock = __import__('threading').Lock()\")\n"
        "pending = (c for c in handle.readline())",
    )
    assert state_of(project, first)["variables"]["pending"]["status"] == "unpicklable"
    tracked(kernel, "handle.close()\ndel handle, pending\nkeep.append(2)\npath = 'other.txt'")
    out = kernel.ok(f"%dotnb checkout {first}").stdout  # recomputing is the default
    # handle: re-run its cell (with the run's path); pending needs handle: the same cell.
    assert "recomputed: handle (re-ran cell [4]" in out and "recomputed: pending" in out, out
    # lock is bound by exec of a string: no lineage cell binds it.
    assert "not restored: lock" in out and "no cell of the run's lineage assigns it" in out, out
    assert (
        value(kernel, "handle.closed, ''.join(pending), keep, path") == "(False, 'hello', [1], 'notes.txt')"
    )
    kernel.ok("%dotnb checkout --undo")
    assert value(kernel, "'handle' in dir(), keep, path") == "(False, [1, 2], 'other.txt')"


def test_unstored_values_are_recomputed_unless_told_not_to(kernel: Kernel, project: Path) -> None:
    (project / "rows.csv").write_text("a\nb\n")
    kernel.ok("%dotnb state on")
    first = tracked(
        kernel,
        "handle = open('rows.csv')\nrows = (line.strip() for line in handle)\n_ids = (id(handle), id(rows))",
    )
    state = state_of(project, first)["variables"]
    assert state["handle"]["status"] == state["rows"]["status"] == "unpicklable"
    # The kernel still holds the run's very objects: nothing is re-run for them.
    out = kernel.ok(f"%dotnb checkout {first}").stdout
    assert "recomputed" not in out and "not restored" not in out and "2 unchanged" in out, out
    assert value(kernel, "_ids == (id(handle), id(rows))") == "True"
    tracked(kernel, "handle.close()\nrows = None")

    # No flag: both come back by re-running the cell that made them, from the data file.
    out = kernel.ok(f"%dotnb checkout {first}").stdout
    assert "recomputed: handle (re-ran cell [" in out and "recomputed: rows" in out, out
    assert "not restored" not in out, out
    assert value(kernel, "handle.closed, list(rows)") == "(False, ['a', 'b'])"

    # --no-recompute: listed as not restored, with the reason; the current value stays.
    tracked(kernel, "handle.close()\nrows = None")
    out = kernel.ok(f"%dotnb checkout {first} --no-recompute").stdout
    assert "not restored: rows (unpicklable: " in out and "generator" in out, out
    assert "not restored: handle (unpicklable: PicklingError: an open file" in out, out
    assert "not recomputed (--no-recompute)" in out and "recomputed:" not in out, out
    assert value(kernel, "handle.closed, rows") == "(True, None)"

    # --recompute, the old way to ask, is still accepted (and is the default).
    out = kernel.ok(f"%dotnb checkout {first} --recompute").stdout
    assert "recomputed: rows" in out, out
    assert value(kernel, "list(rows)") == "['a', 'b']"
    res = kernel.execute(f"%dotnb checkout {first} --recompute --no-recompute")
    assert res.status == "error" and "contradict each other" in res.stderr, res


def test_interrupted_checkout_changes_nothing_and_undo_works(kernel: Kernel, project: Path) -> None:
    kernel.ok("%dotnb state on")
    first = tracked(kernel, "a = [1]\nb = {'k': 'v'}")
    tracked(kernel, "a = [2]\nb = None\nc = 3")
    # An interrupt arriving while the checkout loads values (simulated: raised by the
    # reader of the second object it loads).
    kernel.ok(
        "import dotnb.capture.state_checkout as _m\n_real = _m.read_blob\n_calls = []\n"
        "def _interrupting(*args):\n    _calls.append(1)\n    if len(_calls) == 2:\n"
        "        raise KeyboardInterrupt\n    return _real(*args)\n_m.read_blob = _interrupting"
    )
    res = kernel.execute(f"%dotnb checkout {first}")
    assert res.status == "error" and res.error is not None and res.error["ename"] == "KeyboardInterrupt"
    assert value(kernel, "a, b, c") == "([2], None, 3)"  # nothing was assigned
    kernel.ok("_m.read_blob = _real")
    kernel.ok(f"%dotnb checkout {first}")
    assert value(kernel, "a, b, 'c' in dir()") == "([1], {'k': 'v'}, False)"
    kernel.ok("%dotnb checkout --undo")
    assert value(kernel, "a, b, c") == "([2], None, 3)"
    assert "no checkout to undo" in kernel.ok("%dotnb checkout --undo").stdout


def test_track_all_records_state_for_every_cell(kernel: Kernel, project: Path) -> None:
    kernel.ok("%dotnb state on")
    kernel.ok("%dotnb track all")
    res = kernel.ok("q = [1, 2]\nr = {'q': q}")
    assert res.run is not None
    state = state_of(project, str(res.run["id"]))["variables"]
    assert state["q"]["group"] == state["r"]["group"] and state["q"]["status"] == "stored"
    assert "kernel state capture: on" in kernel.ok("%dotnb status").stdout


def test_a_value_that_no_longer_loads_refuses_the_checkout(kernel: Kernel, project: Path) -> None:
    (project / "shapes.py").write_text("class Square:\n    side = 2\n")
    kernel.ok("%dotnb state on\nimport shapes")
    first = tracked(kernel, "sq = shapes.Square()\nn = 1")
    tracked(kernel, "n = 2")
    (project / "shapes.py").unlink()
    kernel.ok("import sys\ndel sys.modules['shapes'], shapes\nsq = None")
    out = kernel.ok(f"%dotnb checkout {first}").stdout
    assert "checkout refused: sq could not be loaded (ModuleNotFoundError" in out, out
    assert value(kernel, "sq, n") == "(None, 2)"


def test_a_new_name_for_an_element_of_another_variable_keeps_sharing(kernel: Kernel, project: Path) -> None:
    kernel.ok("%dotnb state on")
    first = tracked(kernel, "rows = [[1, 2], [3]]")
    second = tracked(kernel, "t = rows[0]")  # a small list, but an element of rows
    state = state_of(project, second)["variables"]
    assert state["t"]["group"] == state["rows"]["group"]
    tracked(kernel, "del t\nrows = None")
    kernel.ok(f"%dotnb checkout {second}")
    assert value(kernel, "t is rows[0]") == "True"
    kernel.ok(f"%dotnb checkout {first}")
    assert value(kernel, "rows, 't' in dir()") == "([[1, 2], [3]], False)"
