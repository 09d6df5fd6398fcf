"""The kernel of a restore's notebook is found when the project root (``c.Dotnb.root``)
is a folder below the server's root: session paths are relative to the server's
root, run notebooks to the project's (a real session kernel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.server.session_kernels import execute, printed, run_bundle, session_kernel


@pytest.fixture
def jp_server_config(jp_root_dir: Path) -> dict[str, Any]:
    (jp_root_dir / "proj").mkdir(exist_ok=True)
    return {
        "ServerApp": {"jpserver_extensions": {"dotnb": True}},
        "Dotnb": {"root": str(jp_root_dir / "proj")},
    }


async def test_the_kernel_is_found_across_the_two_roots(
    jp_fetch: Any, jp_serverapp: Any, jp_root_dir: Path, api: Any
) -> None:
    nbformat.write(nbformat.v4.new_notebook(), str(jp_root_dir / "proj" / "nb.ipynb"))
    async with session_kernel(jp_fetch, jp_serverapp, "proj/nb.ipynb") as (session, kc):
        run = run_bundle(await execute(kc, "%%track\nx = [1]"))
        assert run["notebook"] == "nb.ipynb"  # relative to the project root
        await execute(kc, "x = None")
        answer = await api(
            "runs",
            run["id"],
            "restore",
            method="POST",
            body={"data": False, "notebook": False, "kernel": {"checkout": True}},
            request_timeout=120,
        )
        kernel = answer["kernel"]
        assert kernel["checked_out"] is True and kernel["notebook"] == "nb.ipynb", kernel
        assert kernel["kernel_id"] == session["kernel"]["id"]
        assert printed(await execute(kc, "print(x)")).strip() == "[1]"
