"""The kernel half of ``POST runs/{run}/restore`` with ``kernel``: after the files are
restored, the running kernel of the run's notebook checks out the run's variables
(``%dotnb checkout RUN``) or undoes its last checkout (``%dotnb checkout --undo``).

The server never unpickles a value itself: loading runs code from the pickles, and
only the notebook's own kernel (with ``--trust`` for another author's state, the
same rule as typing the magic) may do that.  The server finds that kernel through
jupyter_server's sessions, sends it the magic over a kernel client of its own, and
returns what the kernel printed; anything that keeps it from happening (no kernel
for that notebook, a timeout, an error in the kernel, a refused checkout) is a
field of the answer, not an HTTP error: the files were restored either way.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dotnb.store.kernel_state import CHECKOUT_REFUSED


class KernelOptionError(ValueError):
    """The request's ``kernel`` option is malformed (a 400)."""


@dataclass(frozen=True)
class KernelRequest:
    """What the ``kernel`` option of a restore asks of the notebook's kernel."""

    action: Literal["checkout", "undo"]
    notebook: str  # relative to the project root, as runs record it
    trust: bool = False
    recompute: bool = True

    def code(self, run_id: str) -> str:
        """``%dotnb checkout …`` as Python: dotnb loaded first, quietly when it is already
        (a kernel restarted since its runs has not loaded it)."""
        if self.action == "undo":
            args = "checkout --undo"
        else:
            flags = (" --trust" if self.trust else "") + ("" if self.recompute else " --no-recompute")
            args = f"checkout {run_id}{flags}"
        return (
            "get_ipython().extension_manager.load_extension('dotnb')\n"
            f"get_ipython().run_line_magic('dotnb', {args!r})\n"
        )


def parse_kernel_option(value: Any, run_notebook: str | None, check_path: Any) -> KernelRequest | None:
    """The ``kernel`` member of a restore body (None: absent, or nothing asked).
    ``run_notebook``: the run's notebook, the default; ``check_path`` confines a
    notebook the request names to the project root."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise KernelOptionError('kernel must be an object such as {"checkout": true}')
    unknown = set(value) - {"checkout", "undo", "trust", "recompute", "notebook"}
    if unknown:
        raise KernelOptionError(f"kernel has unknown members: {', '.join(sorted(unknown))}")
    flags: dict[str, bool] = {}
    for key, default in (("checkout", False), ("undo", False), ("trust", False), ("recompute", True)):
        flag = value.get(key, default)
        if not isinstance(flag, bool):
            raise KernelOptionError(f"kernel.{key} must be true or false")
        flags[key] = flag
    if flags["checkout"] and flags["undo"]:
        raise KernelOptionError("kernel.checkout and kernel.undo exclude each other")
    if not flags["checkout"] and not flags["undo"]:
        return None
    notebook = value.get("notebook", run_notebook)
    if notebook is None:
        raise KernelOptionError("the run has no notebook: name the one whose kernel to use (kernel.notebook)")
    if not isinstance(notebook, str) or not notebook.endswith(".ipynb"):
        raise KernelOptionError("kernel.notebook must be the path of a notebook (.ipynb)")
    return KernelRequest(
        "undo" if flags["undo"] else "checkout",
        str(check_path(notebook)),
        trust=flags["trust"],
        recompute=flags["recompute"],
    )


async def find_kernel(
    session_manager: Any, server_root: Path, project_root: Path, notebook: str
) -> str | None:
    """The id of a running kernel of ``notebook`` (relative to ``project_root``), from the
    server's sessions (whose paths are relative to ``server_root``); None when none runs."""
    found: list[tuple[bool, str]] = []
    for model in await session_manager.list_sessions():
        kernel = model.get("kernel") or {}
        path = model.get("path")
        if not kernel.get("id") or not path:
            continue
        absolute = (server_root / str(path).lstrip("/")).resolve()
        rel = os.path.relpath(absolute, project_root).replace(os.sep, "/")
        if rel == notebook and kernel.get("execution_state") != "dead":
            # The notebook's own session first; a console opened on it comes after.
            found.append((model.get("type") != "notebook", kernel["id"]))
    return min(found)[1] if found else None


@dataclass
class KernelReply:
    status: str  # the execute_reply status: ok, error, aborted
    text: str  # what the kernel printed (stdout and stderr), and its error if any
    error: str | None = None  # "ename: evalue" of an error


class KernelTimeout(TimeoutError):
    """The kernel did not answer in time; ``sent``: whether the code was sent to it
    (then it may still run once the kernel is free)."""

    def __init__(self, sent: bool) -> None:
        super().__init__("the kernel did not answer in time")
        self.sent = sent


async def execute(kernel_manager: Any, kernel_id: str, code: str, timeout: float) -> KernelReply:
    """Run ``code`` in the kernel through a client of the server's own (the notebook's
    client does not see it); :class:`KernelTimeout` past ``timeout`` seconds."""
    manager = kernel_manager.get_kernel(kernel_id)
    # A session of its own, with an id of its own: the kernel routes shell replies by
    # the client's zmq identity, which is the session id, and hands an identity over to
    # the newest connection; sharing the manager's would steal the replies of another
    # client using it (and a shared digest history drops iopub messages as replays).
    session = manager.session.clone()
    session.session = str(uuid.uuid4())
    client = manager.client(session=session)
    client.start_channels()
    said: list[str] = []
    error: list[str] = []
    sent = False

    def hook(msg: dict[str, Any]) -> None:
        content = msg.get("content") or {}
        if msg.get("msg_type") == "stream":
            said.append(str(content.get("text", "")))
        elif msg.get("msg_type") == "error":
            error.append(f"{content.get('ename')}: {content.get('evalue')}")

    async def run() -> dict[str, Any]:
        nonlocal sent
        # Until the kernel answers on shell, iopub may not be subscribed yet: its output
        # would be lost (ZMQ's slow joiner).  A busy kernel answers after its cell.
        await client.wait_for_ready(timeout=timeout)
        sent = True
        # silent: not a cell of the notebook (no execution count, no history, no run of
        # its own under %dotnb track all); what it prints still comes on iopub.
        reply: dict[str, Any] = await client.execute_interactive(
            code, silent=True, store_history=False, allow_stdin=False, output_hook=hook, timeout=timeout
        )
        return reply

    try:
        reply = await asyncio.wait_for(run(), timeout)
    except (asyncio.TimeoutError, TimeoutError):
        raise KernelTimeout(sent) from None
    except RuntimeError as exc:
        # wait_for_ready's own timeout (its deadline is the same as ours).
        if "didn't respond" in str(exc):
            raise KernelTimeout(False) from None
        raise
    finally:
        client.stop_channels()
    content = reply.get("content") or {}
    status = str(content.get("status", "error"))
    if status == "error" and not error:  # the reply names it even if iopub did not
        error.append(f"{content.get('ename')}: {content.get('evalue')}")
    text = "".join(said).strip()
    if error:
        text = "\n".join(t for t in (text, *error) if t)
    return KernelReply(status, text, error[0] if error else None)


async def checkout_in_kernel(
    settings: Any,
    project_root: Path,
    run_id: str,
    request: KernelRequest,
    timeout: float,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Carry out ``request`` in the notebook's running kernel; the ``kernel`` member of
    the restore's answer (``settings``: the tornado application's).  A dry run only
    says which kernel it would be."""
    answer: dict[str, Any] = {
        "action": request.action,
        "notebook": request.notebook,
        "kernel_id": None,
        "checked_out": False,
        "status": "no_kernel",
        "report": "",
        "reason": None,
    }
    server_root = Path(settings["server_root_dir"]).expanduser().resolve()
    kernel_id = await find_kernel(settings["session_manager"], server_root, project_root, request.notebook)
    if kernel_id is None:
        answer["reason"] = f"no running kernel for {request.notebook}"
        return answer
    answer["kernel_id"] = kernel_id
    if dry_run:
        answer["status"] = "dry_run"
        answer["reason"] = "a dry run changes nothing"
        return answer
    code = request.code(run_id)
    try:
        reply = await execute(settings["kernel_manager"], kernel_id, code, timeout)
    except KernelTimeout as exc:
        answer["status"] = "timeout"
        then = (
            "the checkout may still happen when it is free"
            if exc.sent
            else "nothing was asked of it; restore again once it is free"
        )
        answer["reason"] = f"the kernel did not answer within {timeout:g} s (busy with a cell?); {then}"
        return answer
    except Exception as exc:  # a dead kernel, a closed connection: said, not a 500
        answer["status"] = "error"
        answer["reason"] = f"the kernel could not be reached: {type(exc).__name__}: {exc}"
        return answer
    answer["report"] = reply.text
    if reply.status != "ok":
        answer["status"] = "error"
        raised = f"raised {reply.error}" if reply.error else f"answered {reply.status}"
        answer["reason"] = f"the kernel {raised}"
    elif CHECKOUT_REFUSED in reply.text:
        answer["status"] = "refused"
        answer["reason"] = reply.text[reply.text.index(CHECKOUT_REFUSED) + len(CHECKOUT_REFUSED) :].strip()
    else:
        answer["status"] = "ok"
        answer["checked_out"] = True
    return answer
