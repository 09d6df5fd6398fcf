"""``c.Dotnb.state_max_variable_size``, ``state_max_run_size`` and ``state_ignore`` reach
the kernels the server starts (as ``c.Dotnb.max_file_size`` does), in a session kernel."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from dotnb.store import Store
from dotnb.store.kernel_state import STATE_FORMAT, read_document, read_state_ref
from tests.server.session_kernels import execute, run_bundle, session_kernel


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
    async with session_kernel(jp_fetch, jp_serverapp, "nb.ipynb") as (_, kc):
        code = "%%track\nbig = bytes(200_000)\nsecret_token = 'abc'\nsmall = [1]\n"
        run = run_bundle(await execute(kc, code))
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
