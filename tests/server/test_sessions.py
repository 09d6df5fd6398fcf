"""Kernels started through the sessions API (as JupyterLab starts them) record runs
under the right notebook path, also after the notebook is renamed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat

from dotnb.store import Store
from tests.server.session_kernels import execute, run_bundle, session_kernel


async def test_session_kernel_runs_follow_notebook_renames(
    jp_fetch: Any, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    (jp_root_dir / "sub").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), str(jp_root_dir / "sub" / "nb.ipynb"))
    async with session_kernel(jp_fetch, jp_serverapp, "sub/nb.ipynb", setup="%load_ext dotnb") as (
        session,
        kc,
    ):
        first = run_bundle(await execute(kc, "%%track\nopen('out.txt', 'w').write('1')\n"))
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
        second = run_bundle(await execute(kc, "%%track\nx = 2\n"))
        assert second["notebook"] == "sub/renamed.ipynb"
        assert second["number"] == 1  # numbering is per notebook
    store = Store(jp_root_dir)
    runs = {r["notebook"]: r for r in store.list_runs()}
    assert set(runs) == {"sub/nb.ipynb", "sub/renamed.ipynb"}
    snap = store.manifest(runs["sub/renamed.ipynb"]["id"])["notebook_snapshot"]
    assert snap.get("hash"), snap  # the renamed file on disk was snapshotted
