"""``c.Dotnb.kernel_checkout_timeout``: a restore whose notebook's kernel is busy
answers in time, saying so, instead of waiting for the kernel (a real session kernel)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.server.test_kernel_checkout_api import _printed
from tests.server.test_sessions import _execute, _run_bundle


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"dotnb": True}}, "Dotnb": {"kernel_checkout_timeout": 2}}


async def test_a_busy_kernel_is_said_after_the_timeout(
    jp_fetch: Any, jp_serverapp: Any, jp_root_dir: Path, api: Any
) -> None:
    nbformat.write(nbformat.v4.new_notebook(), str(jp_root_dir / "nb.ipynb"))
    body = {"path": "nb.ipynb", "name": "nb.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    session = json.loads((await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))).body)
    kc = jp_serverapp.kernel_manager.get_kernel(session["kernel"]["id"]).client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        await _execute(kc, "%load_ext dotnb\n%dotnb state on")
        run = _run_bundle(await _execute(kc, "%%track\nx = 1"))["id"]
        busy = kc.execute("import time\ntime.sleep(8)\nx = 2")  # a long cell, not awaited
        started = time.monotonic()
        answer = await api(
            "runs",
            run,
            "restore",
            method="POST",
            body={"data": False, "notebook": False, "kernel": {"checkout": True}},
            request_timeout=60,
        )
        elapsed = time.monotonic() - started
        kernel = answer["kernel"]
        assert kernel["status"] == "timeout" and kernel["checked_out"] is False, kernel
        assert kernel["reason"].startswith("the kernel did not answer within 2 s"), kernel
        # It did not even answer kernel_info (shell is busy): the checkout was never sent.
        assert kernel["reason"].endswith("nothing was asked of it; restore again once it is free")
        assert elapsed < 6, elapsed  # the timeout, not the cell's 8 s
        reply = await kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == busy and reply["content"]["status"] == "ok"
        assert _printed(await _execute(kc, "print(x)")).strip() == "2"  # nor did it happen later
    finally:
        kc.stop_channels()
        await jp_fetch("api", "sessions", session["id"], method="DELETE")
