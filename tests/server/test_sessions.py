"""Kernels started through the sessions API (as JupyterLab starts them) record runs
under the right notebook path, also after the notebook is renamed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat

from dotnb.store import Store


async def _execute(kc: Any, code: str) -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("display_data", "stream", "error", "execute_result"):
            outputs.append({"type": msg["msg_type"], **msg["content"]})

    reply = await kc.execute_interactive(code, timeout=60, output_hook=hook)
    assert reply["content"]["status"] == "ok", outputs
    return outputs


def _run_bundle(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    for out in outputs:
        data = out.get("data") or {}
        if "application/vnd.dotnb.run+json" in data:
            bundle: dict[str, Any] = data["application/vnd.dotnb.run+json"]
            return bundle
    raise AssertionError(f"no run displayed: {outputs}")


async def test_session_kernel_runs_follow_notebook_renames(
    jp_fetch: Any, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    (jp_root_dir / "sub").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), str(jp_root_dir / "sub" / "nb.ipynb"))
    body = {"path": "sub/nb.ipynb", "name": "nb.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    session = json.loads((await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))).body)
    kernel_id = session["kernel"]["id"]
    km = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        await _execute(kc, "%load_ext dotnb")
        first = _run_bundle(await _execute(kc, "%%track\nopen('out.txt', 'w').write('1')\n"))
        assert first["notebook"] == "sub/nb.ipynb"
        assert first["outputs"] == ["sub/out.txt"]
        # Rename the notebook the way JupyterLab does: move the file, then update the session.
        await jp_fetch(
            "api",
            "contents",
            "sub",
            "nb.ipynb",
            method="PATCH",
            body=json.dumps({"path": "sub/renamed.ipynb"}),
        )
        await jp_fetch(
            "api", "sessions", session["id"], method="PATCH", body=json.dumps({"path": "sub/renamed.ipynb"})
        )
        second = _run_bundle(await _execute(kc, "%%track\nx = 2\n"))
        assert second["notebook"] == "sub/renamed.ipynb"
        assert second["number"] == 1  # numbering is per notebook
    finally:
        kc.stop_channels()
        await jp_fetch("api", "sessions", session["id"], method="DELETE")
    store = Store(jp_root_dir)
    runs = {r["notebook"]: r for r in store.list_runs()}
    assert set(runs) == {"sub/nb.ipynb", "sub/renamed.ipynb"}
    snap = store.manifest(runs["sub/renamed.ipynb"]["id"])["notebook_snapshot"]
    assert snap.get("hash"), snap  # the renamed file on disk was snapshotted
