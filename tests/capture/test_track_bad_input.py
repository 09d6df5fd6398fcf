"""Bad input while tracking: a clear record or a clear message, and the cell's result stands."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dotnb.store import Store
from tests.conftest import validate_manifest
from tests.kernel_client import Kernel

pytestmark = pytest.mark.kernel


def test_invalid_notebook_huge_file_and_deleted_input(project: Path) -> None:
    (project / "analysis.ipynb").write_text("{not json")
    (project / "big.bin").write_bytes(b"x" * 5000)
    (project / "doomed.txt").write_text("soon gone")
    k = Kernel(project, project / "analysis.ipynb", {"DOTNB_MAX_FILE_SIZE": "4096"})
    try:
        k.ok("%load_ext dotnb")
        res = k.ok(
            "%%track\nimport os\nopen('big.bin','rb').read()\n"
            "open('doomed.txt').read()\nos.remove('doomed.txt')\n"
        )
    finally:
        k.shutdown()
    store = Store(project)
    m = store.manifest(res.run["id"])  # type: ignore[index]
    validate_manifest(m)
    assert "not valid JSON" in m["notebook_snapshot"]["unavailable"]
    ins = {e["path"]: e for e in m["inputs"]}
    assert ins["big.bin"]["hash"] is None and "limit" in ins["big.bin"]["skipped"]
    assert ins["big.bin"]["size"] == 5000
    assert ins["doomed.txt"].get("missing") is True


def test_kernel_without_notebook_asks_for_it(tmp_path: Path) -> None:
    k = Kernel(tmp_path, None)
    try:
        k.ok("%load_ext dotnb")
        res = k.ok("%%track\nx = 1\n")
        assert "--notebook" in res.stderr and res.run is not None
        assert res.run["notebook"] is None
        named = k.ok("%%track --notebook 'my nb.ipynb'\ny = 2\n")
        assert named.run is not None and named.run["notebook"] == "my nb.ipynb"
    finally:
        k.shutdown()


def test_interrupted_cell_is_recorded_as_interrupted(kernel: Kernel, project: Path) -> None:
    msg_id = kernel.kc.execute("%%track\nimport time\nfor _ in range(600):\n    time.sleep(0.05)\n")
    time.sleep(1.5)
    kernel.km.interrupt_kernel()
    deadline = time.time() + 30
    while time.time() < deadline:
        msg = kernel.kc.get_iopub_msg(timeout=30)
        mine = msg["parent_header"].get("msg_id") == msg_id
        if mine and msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    while kernel.kc.get_shell_msg(timeout=30)["parent_header"].get("msg_id") != msg_id:
        pass
    store = Store(project)
    runs = store.list_runs()
    assert [r["status"] for r in runs] == ["interrupted"]
    assert store.manifest(runs[0]["id"])["error"]["type"] == "KeyboardInterrupt"


def test_api_outside_a_tracked_cell_is_harmless(kernel: Kernel) -> None:
    res = kernel.ok("import dotnb\nv = dotnb.param('lr', 0.5)\ndotnb.metric('m', 1.0)\nprint(v)")
    assert res.stdout.strip() == "0.5"
    assert "not recorded" in res.stderr
    bad = kernel.execute("%%track\nimport dotnb\ndotnb.metric('acc', 'high')\n")
    assert bad.status == "error" and bad.error is not None and bad.error["ename"] == "TypeError"
    assert bad.run is not None and bad.run["status"] == "error"


def test_odd_file_names(kernel: Kernel, project: Path) -> None:
    names = ["with space.csv", "ünïcode.txt", "-leading-dash.txt", "new\nline.txt"]
    for n in names:
        (project / n).write_text(n)
    code = "%%track\nfor n in " + repr(names) + ":\n    open(n).read()\n    open('out-' + n, 'w').write(n)\n"
    res = kernel.ok(code)
    assert res.run is not None
    assert sorted(res.run["inputs"]) == sorted(names)
    assert sorted(res.run["outputs"]) == sorted("out-" + n for n in names)
