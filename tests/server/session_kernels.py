"""Kernels started the way JupyterLab starts them (``POST api/sessions``), and what
the tests of the REST API ask of them: run code, find the run a cell displayed."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any


async def start_session(jp_fetch: Any, path: str) -> dict[str, Any]:
    """A session (and its kernel) for the notebook at server-relative ``path``."""
    body = {"path": path, "name": Path(path).name, "type": "notebook", "kernel": {"name": "python3"}}
    session: dict[str, Any] = json.loads(
        (await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))).body
    )
    return session


@contextlib.asynccontextmanager
async def session_kernel(
    jp_fetch: Any, jp_serverapp: Any, path: str, setup: str = "%load_ext dotnb\n%dotnb state on"
) -> AsyncIterator[tuple[dict[str, Any], Any]]:
    """``(session, client)`` of a new session kernel for ``path``, ready and having run
    ``setup``; its channels stopped and the session deleted afterwards.  The client
    shares the kernel manager's session (and zmq identity), as a front end's does."""
    session = await start_session(jp_fetch, path)
    kc = jp_serverapp.kernel_manager.get_kernel(session["kernel"]["id"]).client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        if setup:
            await execute(kc, setup)
        yield session, kc
    finally:
        kc.stop_channels()
        await jp_fetch("api", "sessions", session["id"], method="DELETE")


async def execute(kc: Any, code: str) -> list[dict[str, Any]]:
    """Run ``code`` (it must succeed); its outputs, each with its message type."""
    outputs: list[dict[str, Any]] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("display_data", "stream", "error", "execute_result"):
            outputs.append({"type": msg["msg_type"], **msg["content"]})

    reply = await kc.execute_interactive(code, timeout=60, output_hook=hook)
    assert reply["content"]["status"] == "ok", outputs
    return outputs


def run_bundle(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run a tracked cell displayed."""
    for out in outputs:
        data = out.get("data") or {}
        if "application/vnd.dotnb.run+json" in data:
            bundle: dict[str, Any] = data["application/vnd.dotnb.run+json"]
            return bundle
    raise AssertionError(f"no run displayed: {outputs}")


def printed(outputs: list[dict[str, Any]]) -> str:
    """What the code printed."""
    return "".join(str(o.get("text", "")) for o in outputs if o["type"] == "stream")
