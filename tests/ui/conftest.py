"""Browser end-to-end tests: a real ``jupyter lab`` and Debian's Chromium.

Runs in its own pytest invocation (``--confcutdir=tests/ui``), like tests/server.
The fixtures start JupyterLab on a free loopback port with a token, in a
temporary project holding a notebook and a data file, with a settings folder
that turns the news toast off; Python Playwright drives ``/usr/bin/chromium``
(never a downloaded browser). Screenshots go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
CHROMIUM = os.environ.get("DOTNB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

TRAIN_CELL = """%%track --name train --metrics acc
lr = 0.1
text = open("data/train.csv").read()
rows = len(text.splitlines()) - 1
acc = round(0.5 + lr * rows / 10, 4)
for step in range(4):
    dotnb.metric("loss", round(1.0 / (step + 1 + lr), 4), step=step)
with open("out/model.txt", "w") as f:
    f.write(f"lr={lr} rows={rows} acc={acc}\\n")
"""


def notebook_json() -> dict[str, Any]:
    def code(source: str) -> dict[str, Any]:
        return {
            "cell_type": "code",
            "execution_count": None,
            "id": secrets.token_hex(4),
            "metadata": {},
            "outputs": [],
            "source": source,
        }

    return {
        "cells": [code("%load_ext dotnb\nimport dotnb"), code(TRAIN_CELL)],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """A running JupyterLab: its URL, token, project root and log."""

    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen[bytes], log: Path):
        self.root = root
        self.port = port
        self.token = token
        self.proc = proc
        self.log = log

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, route: str, method: str = "GET", body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base}/dotnb/api/{route}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium); "
            "scripts/test does this when it runs as root"
        )
    return CHROMIUM


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n")
    (root / "nb.ipynb").write_text(json.dumps(notebook_json(), indent=1) + "\n")
    return root


def serve(project: Path, tmp_path: Path, module: str, app: str) -> Iterator[Lab]:
    """Start ``python -m <module>`` (JupyterLab, or Notebook 7: the same server and
    extension system, ``app`` names its application class for the options) on the
    project, and stop it after the test."""
    settings = tmp_path / "settings"
    news = settings / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # Keep the user's own Jupyter config and runtime files out of the test.
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    env.pop("DOTNB_ROOT", None)
    port = _free_port()
    token = secrets.token_hex(16)
    log = tmp_path / f"{module}.log"
    argv = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--ServerApp.root_dir={project}",
        f"--IdentityProvider.token={token}",
        f"--{app}.user_settings_dir={settings}",
        f"--{app}.workspaces_dir={tmp_path / 'workspaces'}",
        f"--{app}.expose_app_in_browser=True",
        "--ServerApp.port_retries=0",
    ]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=project, env=env)
    server = Lab(project, port, token, proc, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.api("version")
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{module} did not start:\n{log.read_text()[-4000:]}") from None
                time.sleep(0.3)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Keep the server log with the screenshots: it explains a failure.
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, ARTIFACTS / log.name)


@pytest.fixture
def lab(project: Path, tmp_path: Path) -> Iterator[Lab]:
    yield from serve(project, tmp_path, "jupyterlab", "LabApp")


@pytest.fixture
def notebook7(project: Path, tmp_path: Path) -> Iterator[Lab]:
    """Jupyter Notebook 7 on the project (the same extension, another front end)."""
    yield from serve(project, tmp_path, "notebook", "JupyterNotebookApp")


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any, lab: Lab) -> Iterator[Any]:
    """A browser page for the test's JupyterLab (``lab``)."""
    yield from open_page(browser)


@pytest.fixture
def notebook7_page(browser: Any, notebook7: Lab) -> Iterator[Any]:
    """A browser page for the test's Notebook 7 (``notebook7``)."""
    yield from open_page(browser)


def open_page(browser: Any) -> Iterator[Any]:
    """A new browser context's page that records page errors (``page.errors``) and the
    console; a screenshot and the console are kept in test-artifacts/ui/."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    console: list[str] = []
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc.stack}"))
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on(
        "response",
        lambda r: r.status >= 400 and console.append(f"http {r.status}: {r.request.method} {r.url}"),
    )
    page.errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):  # the page may be gone already
            page.screenshot(path=str(ARTIFACTS / "last.png"))
        (ARTIFACTS / "console.log").write_text("\n".join(console + errors) + "\n")
        context.close()
