"""``POST runs/{run}/restore`` with ``kernel``: the server restores the files, then has
the notebook's running kernel (found through the sessions API) check out the run's
variables, recomputing what the run could not store from the restored data (a real
jupyter_server and a real session kernel)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

from dotnb.store import Store
from dotnb.store.kernel_state import (
    STATE_FORMAT,
    put_document,
    read_document,
    read_state_ref,
    write_state_ref,
)
from tests.manifests import new_manifest
from tests.server.session_kernels import execute, printed, run_bundle, session_kernel
from tests.server.test_spec import component


async def test_restore_checks_the_variables_out_in_the_notebooks_kernel(
    jp_fetch: Any, jp_serverapp: Any, jp_root_dir: Path, api: Any
) -> None:
    (jp_root_dir / "sub").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), str(jp_root_dir / "sub" / "nb.ipynb"))
    (jp_root_dir / "sub" / "data.csv").write_text("a\nb\n")
    # The test's client shares the manager's session (and zmq identity), which the
    # server's checkout must not take over: the test reads from it afterwards.
    async with session_kernel(jp_fetch, jp_serverapp, "sub/nb.ipynb") as (session, kc):
        # handle cannot be stored (an open file): only recomputing brings it back.
        code = "%%track\nrows = [r.strip() for r in open('data.csv')]\nx = [1, 2]\nhandle = open('data.csv')"
        run = run_bundle(await execute(kc, code))["id"]
        await execute(kc, "%%track\nx = None\nhandle.close()\nopen('data.csv', 'w').write('z\\n')")

        restored = await api(
            "runs",
            run,
            "restore",
            method="POST",
            body={"notebook": False, "kernel": {"checkout": True}},
            request_timeout=120,
        )
        assert restored["written"] == ["sub/data.csv"]
        assert (jp_root_dir / "sub" / "data.csv").read_text() == "a\nb\n"
        component("RestoreResult").validate(restored)
        kernel = restored["kernel"]
        assert kernel["checked_out"] is True and kernel["status"] == "ok", kernel
        assert kernel["kernel_id"] == session["kernel"]["id"] and kernel["notebook"] == "sub/nb.ipynb"
        assert kernel["reason"] is None
        assert "kernel variables checked out from" in kernel["report"], kernel
        assert "recomputed: handle" in kernel["report"], kernel
        # The same kernel now holds the run's values; handle was re-opened on the restored file.
        out = printed(await execute(kc, "print(x, rows, handle.read().split())"))
        assert out.strip() == "[1, 2] ['a', 'b'] ['a', 'b']"

        # Undo through the API alone too: the variables of before the checkout.
        undone = await api(
            "runs",
            run,
            "restore",
            method="POST",
            body={"data": False, "notebook": False, "kernel": {"undo": True}},
            request_timeout=120,
        )
        assert undone["written"] == [] and undone["kernel"]["checked_out"] is True, undone
        assert "checkout undone" in undone["kernel"]["report"]
        assert printed(await execute(kc, "print(x)")).strip() == "None"

        # Someone else's state is refused without trust: said in the answer, not an error.
        again = await api(
            "runs",
            run,
            "restore",
            method="POST",
            body={"data": False, "notebook": False, "kernel": {"undo": True}},
        )
        assert again["kernel"]["checked_out"] is False and again["kernel"]["status"] == "refused"
        assert "no checkout to undo" in again["kernel"]["reason"]

        # A state recorded by someone else (as a pulled run's) loads only with trust.
        store = Store(jp_root_dir)
        try:
            digest = read_state_ref(store.dir, run)
            assert digest is not None
            manifest = read_document(store.objects, digest, STATE_FORMAT)
            forged = put_document(store.objects, {**manifest, "author": "someone@elsewhere"})
            write_state_ref(store.dir, run, forged)
        finally:
            store.close()
        body: dict[str, Any] = {"data": False, "notebook": False, "kernel": {"checkout": True}}
        refused = (await api("runs", run, "restore", method="POST", body=body, request_timeout=120))["kernel"]
        assert refused["status"] == "refused" and "recorded by someone@elsewhere" in refused["reason"]
        assert printed(await execute(kc, "print(x)")).strip() == "None"
        body["kernel"]["trust"] = True
        trusted = (await api("runs", run, "restore", method="POST", body=body, request_timeout=120))["kernel"]
        assert trusted["checked_out"] is True, trusted
        assert printed(await execute(kc, "print(x)")).strip() == "[1, 2]"

        # An error in the kernel (simulated: the magic raises) is said, not a 500.
        await execute(
            kc,
            "import dotnb.capture.magic as _m\n_real = _m._checkout_command\n"
            "_m._checkout_command = lambda *a: 1 / 0",
        )
        failed = (await api("runs", run, "restore", method="POST", body=body, request_timeout=120))["kernel"]
        assert failed["status"] == "error" and failed["checked_out"] is False, failed
        assert failed["reason"] == "the kernel raised ZeroDivisionError: division by zero"
        # What the kernel raised or printed names files under the project root-relative.
        await execute(kc, "import os\n_m._checkout_command = lambda *a: open(os.path.abspath('gone.csv'))")
        named = (await api("runs", run, "restore", method="POST", body=body, request_timeout=120))["kernel"]
        assert named["status"] == "error", named
        assert named["reason"] == (
            "the kernel raised FileNotFoundError: [Errno 2] No such file or directory: 'sub/gone.csv'"
        )
        assert "'sub/gone.csv'" in named["report"]
        answer = json.dumps(named)
        assert str(jp_root_dir) not in answer and os.path.realpath(jp_root_dir) not in answer
        await execute(kc, "_m._checkout_command = _real")

    # No kernel runs that notebook any more: the files are restored all the same.
    (jp_root_dir / "sub" / "data.csv").write_text("changed\n")
    alone = await api("runs", run, "restore", method="POST", body={"kernel": {"checkout": True}})
    assert (jp_root_dir / "sub" / "data.csv").read_text() == "a\nb\n"
    assert "sub/data.csv" in alone["written"]
    component("RestoreResult").validate(alone)
    assert alone["kernel"] == {
        "action": "checkout",
        "notebook": "sub/nb.ipynb",
        "kernel_id": None,
        "checked_out": False,
        "status": "no_kernel",
        "report": "",
        "reason": "no running kernel for sub/nb.ipynb",
    }


async def test_kernel_option_is_checked_and_needs_credentials(
    jp_fetch: Any, jp_root_dir: Path, api: Any
) -> None:
    store = Store(jp_root_dir)
    try:
        (jp_root_dir / "data.csv").write_text("1\n")
        run = store.commit_run(new_manifest("nb.ipynb", outputs=store.snapshot_files(["data.csv"])))["id"]
    finally:
        store.close()
    for bad, why in (
        ({"checkout": "yes"}, "kernel.checkout must be true or false"),
        ({"checkout": True, "undo": True}, "exclude each other"),
        ({"checkout": True, "notebook": "../elsewhere.ipynb"}, ""),
        ({"checkout": True, "notebook": "data.csv"}, "must be the path of a notebook"),
        ({"restart": True}, "unknown members: restart"),
        ([], "kernel must be an object"),
    ):
        with pytest.raises(HTTPClientError) as err:
            await api("runs", run, "restore", method="POST", body={"kernel": bad})
        assert err.value.code == 400 and why in json.loads(err.value.response.body)["message"], bad
    (jp_root_dir / "data.csv").write_text("2\n")
    # A dry run says which kernel it would be, and changes nothing.
    plan = await api(
        "runs", run, "restore", method="POST", body={"dry_run": True, "kernel": {"checkout": True}}
    )
    assert plan["kernel"]["status"] == "no_kernel" and plan["written"] == []
    assert (jp_root_dir / "data.csv").read_text() == "2\n"
    # Without valid credentials: 403, and nothing restored.
    for headers in ({"Authorization": "token not-the-token"}, {"Authorization": ""}):
        response = await jp_fetch(
            "dotnb",
            "api",
            "runs",
            run,
            "restore",
            method="POST",
            body=json.dumps({"kernel": {"checkout": True}}),
            headers=headers,
            raise_error=False,
        )
        assert response.code == 403, headers
    assert (jp_root_dir / "data.csv").read_text() == "2\n"
