"""Executing a notebook's cells in a fresh kernel with dotnb loaded, one cell at a time.

nbclient starts the kernel and runs each cell; between cells the caller sees
progress.  Before the first cell, one *silent* request loads the extension
(and, if asked, turns on ``%dotnb track all``).  Silent requests fire no
``pre_run_cell``/``post_run_cell`` hooks and are not in the kernel's history, so
they are in no run's lineage and the notebook itself is not changed.  A
notebook's own ``%load_ext dotnb`` then finds the extension loaded and does
nothing.  After the last cell another silent request unloads it, which flushes
the runs' deferred fsyncs and closes the store before the kernel stops.

A failing cell stops execution, as in papermill; a cell tagged
``raises-exception`` may fail.  On a timeout the kernel is interrupted, so the
tracked cell ends as a run with status ``interrupted``.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING, Any, BinaryIO

from dotnb.headless import CouldNotRun
from dotnb.headless.notebooks import DEFAULT_KERNEL, kernel_name_of
from dotnb.store.vocabulary import RUN_MIME

if TYPE_CHECKING:
    from nbclient import NotebookClient
    from nbformat import NotebookNode

STARTUP_TIMEOUT_S = 60.0
# After a timeout: how long the interrupted cell gets to end (and record its run).
INTERRUPT_GRACE_S = 30.0
TEARDOWN_TIMEOUT_S = 30.0

_SETUP = """\
def __dotnb_setup(track_all):
    import contextlib, io
    import dotnb
    ip = get_ipython()
    dotnb.load_ipython_extension(ip)
    if track_all:
        with contextlib.redirect_stdout(io.StringIO()):
            ip.run_line_magic("dotnb", "track all")
__dotnb_setup({track_all!r})
del __dotnb_setup
"""
_TEARDOWN = "__import__('dotnb').unload_ipython_extension(get_ipython())\n"

# Statuses of an executed cell; the first two let execution go on.
OK = "ok"
EXPECTED_ERROR = "expected error"  # raised, and tagged raises-exception
ERROR = "error"
TIMEOUT = "timeout"
KERNEL_DIED = "kernel died"


@dataclass
class CellOutcome:
    number: int  # 1-based among the code cells that are executed
    total: int
    index: int  # position in the notebook's cells
    source: str
    status: str = OK
    duration_s: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)  # {"line", **run bundle} per run shown
    error: dict[str, Any] | None = None  # {"ename", "evalue", "traceback": [...]}

    @property
    def stopped(self) -> bool:
        return self.status not in (OK, EXPECTED_ERROR)


@dataclass
class Execution:
    notebook: NotebookNode
    kernel_name: str
    cells: list[CellOutcome] = field(default_factory=list)
    kernel_pid: int | None = None

    @property
    def failed(self) -> CellOutcome | None:
        return next((c for c in self.cells if c.stopped), None)


def executable_cells(nb: NotebookNode) -> list[int]:
    """Indexes of the cells nbclient sends to the kernel (code cells with some source)."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]


def execute_cells(
    nb: NotebookNode,
    *,
    cwd: Path,
    env: dict[str, str],
    kernel_name: str | None = None,
    timeout: float | None = None,
    track_all: bool = False,
    on_start: Callable[[CellOutcome], None] | None = None,
    on_end: Callable[[CellOutcome], None] | None = None,
) -> Execution:
    """Run ``nb``'s code cells in order in a fresh kernel; ``nb`` receives the outputs.

    Raises :class:`CouldNotRun` when the kernel does not start or dotnb cannot be
    loaded into it; a failing cell is reported in the returned :class:`Execution`.
    """
    try:
        from jupyter_client.kernelspec import NoSuchKernel
        from nbclient import NotebookClient
    except ImportError as exc:
        raise CouldNotRun(f"headless execution needs nbclient ({exc}); pip install nbclient") from None

    name = kernel_name or kernel_name_of(nb)
    log = logging.getLogger("dotnb.headless.nbclient")
    log.addHandler(logging.NullHandler())
    log.propagate = False  # nbclient logs timeouts as errors; we report them ourselves
    client = NotebookClient(
        nb,
        kernel_name=name,
        timeout=math.ceil(timeout) if timeout else None,  # nbclient counts whole seconds
        startup_timeout=int(STARTUP_TIMEOUT_S),
        allow_errors=False,
        interrupt_on_timeout=False,
        log=log,
    )
    execution = Execution(notebook=nb, kernel_name=name)
    started = False
    # The kernel process's own stdout/stderr (not the cells' output, which comes as
    # messages) would interleave with the progress lines; it is kept for error reports.
    with tempfile.TemporaryFile() as kernel_log:
        try:
            with client.setup_kernel(env=env, cwd=str(cwd), stdout=kernel_log, stderr=kernel_log):
                started = True
                _prepare(client, execution, track_all)
                _run_cells(client, execution, on_start, on_end, kernel_log)
                if not execution.cells or execution.cells[-1].status != KERNEL_DIED:
                    # Best effort: the runs are complete without it, only their fsync is deferred.
                    _silent(client, _TEARDOWN, TEARDOWN_TIMEOUT_S)
        except NoSuchKernel:
            hint = "pip install ipykernel; " if name == DEFAULT_KERNEL else ""
            raise CouldNotRun(
                f"no kernel named {name!r} is installed ({hint}`jupyter kernelspec list` shows them; "
                "--kernel picks another)"
            ) from None
        except CouldNotRun as exc:
            raise CouldNotRun(_with_log(str(exc), kernel_log)) from None
        except Exception as exc:
            if started:
                raise
            message = f"the {name} kernel did not start: {type(exc).__name__}: {exc}"
            raise CouldNotRun(_with_log(message, kernel_log)) from None
    return execution


def _log_tail(kernel_log: BinaryIO, lines: int = 12) -> list[str]:
    try:
        kernel_log.seek(0)
        text = kernel_log.read()[-16384:].decode("utf-8", "replace")
    except (OSError, ValueError):
        return []
    # ipykernel warns about unencrypted TCP on every start; that says nothing about a failure.
    kept = [line for line in text.splitlines() if line.strip() and "without encryption" not in line]
    return kept[-lines:]


def _with_log(message: str, kernel_log: BinaryIO) -> str:
    tail = _log_tail(kernel_log)
    return message + ("\nthe kernel's last output:\n  " + "\n  ".join(tail) if tail else "")


def _prepare(client: NotebookClient, execution: Execution, track_all: bool) -> None:
    assert client.kc is not None
    execution.kernel_pid = _kernel_pid(client)
    info = _silent(client, None, STARTUP_TIMEOUT_S)
    if info is not None and "language_info" in info["content"]:
        execution.notebook.metadata["language_info"] = info["content"]["language_info"]
    reply = _silent(client, _SETUP.format(track_all=track_all), STARTUP_TIMEOUT_S)
    if reply is None:
        raise CouldNotRun(f"the {execution.kernel_name} kernel did not answer while dotnb was loaded")
    content = reply["content"]
    if content.get("status") != "ok":
        raise CouldNotRun(
            f"dotnb could not be loaded in the {execution.kernel_name} kernel "
            f"({content.get('ename')}: {content.get('evalue')}); install dotnb in that kernel's "
            "environment or pick another kernel with --kernel"
        )


def _run_cells(
    client: NotebookClient,
    execution: Execution,
    on_start: Callable[[CellOutcome], None] | None,
    on_end: Callable[[CellOutcome], None] | None,
    kernel_log: BinaryIO,
) -> None:
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = execution.notebook
    indexes = executable_cells(nb)
    for number, index in enumerate(indexes, start=1):
        cell = nb.cells[index]
        outcome = CellOutcome(number=number, total=len(indexes), index=index, source=cell.source)
        execution.cells.append(outcome)
        if on_start is not None:
            on_start(outcome)
        began = time.perf_counter()
        try:
            client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
        except CellTimeoutError:
            outcome.status = TIMEOUT
            _interrupt_and_wait(client)
        except CellExecutionError:
            outcome.status = ERROR
        except DeadKernelError:
            outcome.status = KERNEL_DIED
        outcome.duration_s = time.perf_counter() - began
        outcome.error = _error_of(cell)
        if outcome.status == KERNEL_DIED and outcome.error is None:
            outcome.error = {
                "ename": "DeadKernelError",
                "evalue": "the kernel died",
                "traceback": _log_tail(kernel_log),
            }
        if outcome.status == OK and outcome.error is not None:
            outcome.status = EXPECTED_ERROR
        outcome.runs = _runs_of(cell)
        if on_end is not None:
            on_end(outcome)
        if outcome.stopped:
            return


def _interrupt_and_wait(client: NotebookClient) -> None:
    """Interrupt the cell that timed out and wait (bounded) until the kernel is idle again."""
    from jupyter_core.utils import ensure_async, run_sync

    assert client.km is not None

    async def interrupt() -> None:
        assert client.km is not None
        await ensure_async(client.km.interrupt_kernel())

    try:
        run_sync(interrupt)()
    except Exception:
        return
    # Requests are handled in order: the reply to a no-op means the interrupted cell ended.
    _silent(client, "pass", INTERRUPT_GRACE_S)


def _silent(client: NotebookClient, code: str | None, timeout: float) -> dict[str, Any] | None:
    """Send a silent execute request (``code``) or a kernel_info request (None); its reply or None."""
    from jupyter_core.utils import ensure_async, run_sync

    kc = client.kc
    assert kc is not None

    async def wait() -> dict[str, Any] | None:
        if code is None:
            msg_id = await ensure_async(kc.kernel_info())
        else:
            msg_id = await ensure_async(kc.execute(code, silent=True, store_history=False, allow_stdin=False))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                msg: dict[str, Any] = await ensure_async(
                    kc.shell_channel.get_msg(timeout=min(remaining, 1.0))
                )
            except Empty:
                if client.km is None or not await ensure_async(client.km.is_alive()):
                    return None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    result: dict[str, Any] | None = run_sync(wait)()
    return result


def _kernel_pid(client: NotebookClient) -> int | None:
    provisioner = getattr(client.km, "provisioner", None)
    pid = getattr(provisioner, "pid", None)
    return pid if isinstance(pid, int) else None


def _error_of(cell: Any) -> dict[str, Any] | None:
    for output in cell.get("outputs") or []:
        if output.get("output_type") == "error":
            return {
                "ename": str(output.get("ename", "")),
                "evalue": str(output.get("evalue", "")),
                "traceback": [str(line) for line in output.get("traceback") or []],
            }
    return None


def _runs_of(cell: Any) -> list[dict[str, Any]]:
    """The dotnb runs a cell displayed (its run line and bundle)."""
    found = []
    for output in cell.get("outputs") or []:
        data = output.get("data") or {}
        bundle = data.get(RUN_MIME)
        if isinstance(bundle, dict):
            found.append({**bundle, "line": str(data.get("text/plain", ""))})
    return found
