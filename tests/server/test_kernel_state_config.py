"""``c.Dotnb.state_max_variable_size``, ``state_max_run_size`` and ``state_ignore`` reach
the kernels the server starts (as ``c.Dotnb.max_file_size`` does), in a session kernel."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from dotnb.store import Store
from dotnb.store.kernel_state import STATE_FORMAT, read_document, read_state_ref
from tests.server.test_sessions import _execute, _run_bundle


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"dotnb": True}},
        "Dotnb": {
            "state_max_variable_size": 100_000,
            "state_max_run_size": 150_000,
            "state_ignore": ["secret_*"],
        },
    }


@pytest.fixture(autouse=True)
def _restore_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The extension passes settings to kernels through this process's environment.
    for name in ("DOTNB_STATE_MAX_VARIABLE_SIZE", "DOTNB_STATE_MAX_RUN_SIZE", "DOTNB_STATE_IGNORE"):
        monkeypatch.setenv(name, "")


async def test_state_limits_and_ignore_reach_session_kernels(
    jp_fetch: Any, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    nbformat.write(nbformat.v4.new_notebook(), str(jp_root_dir / "nb.ipynb"))
    body = {"path": "nb.ipynb", "name": "nb.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    session = json.loads((await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))).body)
    kc = jp_serverapp.kernel_manager.get_kernel(session["kernel"]["id"]).client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        await _execute(kc, "%load_ext dotnb\n%dotnb state on")
        code = "%%track\nbig = bytes(200_000)\nsecret_token = 'abc'\nsmall = [1]\n"
        run = _run_bundle(await _execute(kc, code))
    finally:
        kc.stop_channels()
    store = Store(jp_root_dir)
    try:
        deadline = time.monotonic() + 30
        while (digest := read_state_ref(store.dir, run["id"])) is None:
            assert time.monotonic() < deadline, "no kernel state recorded"
            time.sleep(0.05)
        state = read_document(store.objects, digest, STATE_FORMAT)["variables"]
    finally:
        store.close()
    assert set(state) == {"big", "small"}
    assert (
        state["big"]["status"] == "too_large"
        and "per-variable limit (100000 bytes)" in state["big"]["reason"]
    )
    assert state["small"]["status"] == "stored"
