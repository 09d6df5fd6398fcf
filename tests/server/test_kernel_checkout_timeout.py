"""``c.Dotnb.kernel_checkout_timeout``: a restore whose notebook's kernel is busy
answers in time, saying so, instead of waiting for the kernel (a real session kernel)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.server.session_kernels import execute, printed, run_bundle, session_kernel


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"dotnb": True}}, "Dotnb": {"kernel_checkout_timeout": 2}}


async def test_a_busy_kernel_is_said_after_the_timeout(
    jp_fetch: Any, jp_serverapp: Any, jp_root_dir: Path, api: Any
) -> None:
    nbformat.write(nbformat.v4.new_notebook(), str(jp_root_dir / "nb.ipynb"))
    async with session_kernel(jp_fetch, jp_serverapp, "nb.ipynb") as (_, kc):
        run = run_bundle(await execute(kc, "%%track\nx = 1"))["id"]
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
        assert printed(await execute(kc, "print(x)")).strip() == "2"  # nor did it happen later
