"""The kernel of a restore's notebook is found when the project root (``c.Dotnb.root``)
is a folder below the server's root: session paths are relative to the server's
root, run notebooks to the project's (a real session kernel)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.server.test_kernel_checkout_api import _printed
from tests.server.test_sessions import _execute, _run_bundle


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
    body = {"path": "proj/nb.ipynb", "name": "nb.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    session = json.loads((await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))).body)
    kc = jp_serverapp.kernel_manager.get_kernel(session["kernel"]["id"]).client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        await _execute(kc, "%load_ext dotnb\n%dotnb state on")
        run = _run_bundle(await _execute(kc, "%%track\nx = [1]"))
        assert run["notebook"] == "nb.ipynb"  # relative to the project root
        await _execute(kc, "x = None")
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
        assert _printed(await _execute(kc, "print(x)")).strip() == "[1]"
    finally:
        kc.stop_channels()
        await jp_fetch("api", "sessions", session["id"], method="DELETE")
