"""A real ipykernel for tests, driven through jupyter_client.

Each kernel runs in its own project folder with ``JPY_SESSION_NAME`` set to the
notebook path, as jupyter_server does for JupyterLab kernels.
"""

from __future__ import annotations

import json
import os
import queue
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager


@dataclass
class CellResult:
    status: str
    stdout: str = ""
    stderr: str = ""
    displays: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None

    @property
    def run(self) -> dict[str, Any] | None:
        """The ``application/vnd.dotnb.run+json`` bundle the cell displayed, if any."""
        for d in self.displays:
            if "application/vnd.dotnb.run+json" in d:
                bundle: dict[str, Any] = d["application/vnd.dotnb.run+json"]
                return bundle
        return None

    @property
    def run_line(self) -> str | None:
        for d in self.displays:
            if "application/vnd.dotnb.run+json" in d:
                return str(d["text/plain"])
        return None


class Kernel:
    def __init__(self, cwd: Path, notebook: Path | None, extra_env: dict[str, str] | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "DOTNB_"))}
        if notebook is not None:
            env["JPY_SESSION_NAME"] = str(notebook)
        env.update(extra_env or {})
        env.setdefault("DOTNB_DEBUG", "1")
        # The suite runs once per file-event source (scripts/test): kernels use the one under test.
        if os.environ.get("DOTNB_TEST_FILE_EVENTS"):
            env.setdefault("DOTNB_FILE_EVENTS", os.environ["DOTNB_TEST_FILE_EVENTS"])
        self.km = KernelManager(kernel_name="python3")
        # Run the kernel with the interpreter running the tests (the project venv).
        self.km.kernel_spec.argv[0] = sys.executable  # type: ignore[union-attr]
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def execute(self, code: str, timeout: float = 60) -> CellResult:
        msg_id = self.kc.execute(code, store_history=True)
        result = CellResult(status="?")
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no kernel output within {timeout}s for:\n{code}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind == "display_data":
                result.displays.append(content["data"])
            elif kind == "execute_result":
                result.results.append(content["data"])
            elif kind == "error":
                result.error = content
            elif kind == "status" and content["execution_state"] == "idle":
                break
        # Skip replies to other requests (wait_for_ready may leave a kernel_info reply behind).
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        result.status = reply["content"]["status"]
        return result

    def ok(self, code: str, timeout: float = 60) -> CellResult:
        """Execute and require success (shows the kernel's error otherwise)."""
        res = self.execute(code, timeout)
        if res.status != "ok":
            raise AssertionError(
                f"cell failed: {json.dumps(res.error, indent=1)[:3000]}\nstderr: {res.stderr}"
            )
        return res

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
