"""Push and Pull in the Runs sidebar, in a real JupyterLab and Chromium, with a
``file://`` team remote: this project's run goes out, a colleague's comes in
and shows who recorded it and where it came from."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from dotnb.remote.config import add_remote
from dotnb.remote.transfer import push
from dotnb.store.manifest import iso_time
from dotnb.store.repo import Store

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
Lab = Any  # conftest.Lab

pytestmark = pytest.mark.timeout(120)


def _run(store: Store, name: str, user: str, host: str, outputs: list[dict[str, Any]]) -> str:
    manifest = {
        "kind": "run",
        "name": name,
        "notebook": "nb.ipynb",
        "code": "acc = 0.9\n",
        "lineage": [],
        "params": {"lr": 0.1},
        "metrics": {"acc": 0.9},
        "metric_series": {},
        "inputs": [],
        "outputs": outputs,
        "status": "ok",
        "error": None,
        "started_at": iso_time(time.time()),
        "duration_s": 0.5,
        "environment": {"user": user, "host": host},
    }
    return str(store.commit_run(manifest)["id"])


@pytest.fixture
def team_remote(tmp_path: Path) -> Path:
    """A shared folder holding one run Ada pushed from her own project."""
    remote = tmp_path / "team-remote"
    remote.mkdir()
    ada = Store.init(tmp_path / "ada-project")
    try:
        digest, size = ada.objects.put_bytes(b'{"acc": 0.9}\n')
        output = {"path": "out/metrics.json", "hash": digest, "size": size}
        _run(ada, "ada's train", "ada", "gpu-box", [output])
        add_remote(ada, "origin", remote.as_uri())
        assert push(ada)["runs_pushed"] == 1
    finally:
        ada.close()
    return remote


@pytest.fixture
def project(project: Path, team_remote: Path) -> Path:
    """conftest's project, with one run of its own and the team remote configured."""
    store = Store.init(project)
    try:
        _run(store, "my train", "me", "laptop", [])
        add_remote(store, "origin", team_remote.as_uri())
    finally:
        store.close()
    return project


def test_push_and_pull_from_the_sidebar(page: Any, lab: Lab, team_remote: Path) -> None:
    started = time.monotonic()
    page.goto(lab.url("lab"))
    sidebar = page.locator(".jp-dotnb-Sidebar")  # opens by itself the first time
    sidebar.locator(".jp-dotnb-Row").first.wait_for(timeout=60_000)
    assert sidebar.locator(".jp-dotnb-Row").count() == 1
    assert sidebar.locator(".jp-dotnb-Row-author").inner_text() == "me@laptop"

    # The store has a remote: Push and Pull are offered.
    push_button = sidebar.locator(".jp-dotnb-PushButton")
    push_button.wait_for()
    assert sidebar.locator(".jp-dotnb-RemoteName").inner_text() == "origin"
    push_button.click()
    note = sidebar.locator(".jp-dotnb-RemoteBar .jp-dotnb-Message")
    note.wait_for()
    assert "Pushed 1 run" in note.inner_text() and "to origin" in note.inner_text()
    mine = lab.api("runs?author=me")["runs"][0]["id"]
    assert (team_remote / "runs" / mine).is_file()

    # Pull: Ada's run arrives in the list, with her name and where it came from.
    sidebar.locator(".jp-dotnb-PullButton").click()
    page.wait_for_function(
        "() => document.querySelector('.jp-dotnb-RemoteBar .jp-dotnb-Message')"
        "?.textContent.includes('Pulled 1 run')"
    )
    pulled = sidebar.locator(".jp-dotnb-Row", has=page.locator(".jp-dotnb-Row-remote"))
    pulled.wait_for()
    assert pulled.locator(".jp-dotnb-Row-remote").inner_text() == "from origin"
    assert pulled.locator(".jp-dotnb-Row-author").inner_text() == "ada@gpu-box"
    assert sidebar.locator(".jp-dotnb-Row").count() == 2

    # The author filter asks the server for Ada's runs only.
    sidebar.locator("select[aria-label='Author']").select_option("ada@gpu-box")
    page.wait_for_function("() => document.querySelectorAll('.jp-dotnb-Row').length === 1")
    assert "ada's train" in sidebar.locator(".jp-dotnb-Row").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sidebar.screenshot(path=str(ARTIFACTS / "remotes-panel.png"))

    # Its details say who and where; its stored file is fetched from the remote on demand.
    sidebar.locator(".jp-dotnb-Row").click()
    details = sidebar.locator(".jp-dotnb-Details")
    details.wait_for()
    assert details.locator(".jp-dotnb-Details-author").inner_text() == "ada@gpu-box"
    assert details.locator(".jp-dotnb-Details-remote").inner_text() == "from origin"
    href = details.locator("[data-path='out/metrics.json'] .jp-dotnb-Hash").get_attribute("href")
    body = page.evaluate("async (url) => (await fetch(url)).text()", href)
    assert body == '{"acc": 0.9}\n'
    sidebar.screenshot(path=str(ARTIFACTS / "remotes-details.png"))

    assert not page.errors, page.errors  # type: ignore[attr-defined]
    print(f"push/pull journey took {time.monotonic() - started:.1f} s")
