"""A run that read 100,000 files, in a real JupyterLab and Chromium: its details
open with the folder as one line, list its files a page at a time, and the page
never freezes (no task holds the main thread for seconds)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.manifest import iso_time
from dotnb.store.repo import Store

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
Lab = Any  # conftest.Lab

pytestmark = pytest.mark.timeout(240)

FOLDERS, PER_FOLDER = 100, 1000  # 100,000 files of a few bytes
# The longest main-thread task allowed while the details open and page in: a page
# that holds the thread longer than this is frozen to its user.
FROZEN_MS = 3000


@pytest.fixture
def seeded(project: Path) -> Path:
    """One run of ``nb.ipynb`` whose input is ``images/`` (100,000 files), stored as
    a kernel stores it: every file's bytes, the folder as a tree."""
    rels = []
    an_hour_ago = time.time() - 3600
    for d in range(FOLDERS):
        folder = project / "images" / f"class{d:03d}"
        folder.mkdir(parents=True)
        for i in range(PER_FOLDER):
            path = folder / f"{i:04d}.png"
            path.write_bytes(b"%d/%d" % (d, i))
            # Older than the stat cache's racy window: the check of the disk stats them.
            os.utime(path, (an_hour_ago, an_hour_ago))
            rels.append(f"images/class{d:03d}/{i:04d}.png")
    store = Store.init(project)
    try:
        inputs = store.snapshot_files(rels)
        store.commit_run(
            {
                "kind": "run",
                "name": "many files",
                "notebook": "nb.ipynb",
                "code": "for p in paths: open(p).read()\n",
                "lineage": [],
                "params": {},
                "metrics": {},
                "metric_series": {},
                "inputs": inputs,
                "outputs": [],
                "status": "ok",
                "error": None,
                "started_at": iso_time(time.time()),
                "duration_s": 2.0,
                "environment": {"user": "ada", "host": "laptop"},
            }
        )
    finally:
        store.close()
    os.utime(project / "images" / "class007" / "0042.png")  # touched, same bytes
    (project / "images" / "class009" / "0001.png").write_bytes(b"edited")
    return project


def test_details_of_a_run_of_100000_inputs_open_without_freezing(seeded: Path, page: Any, lab: Lab) -> None:
    page.goto(lab.url("lab"))
    # Every task longer than 50 ms that holds the main thread, from now on.
    page.evaluate(
        "() => { window.__longTasks = [];"
        " new PerformanceObserver(l => l.getEntries().forEach(e => window.__longTasks.push(e.duration)))"
        ".observe({type: 'longtask', buffered: true}); }"
    )
    sidebar = page.locator(".jp-dotnb-Sidebar")
    row = sidebar.locator(".jp-dotnb-Row[data-run-number='1']")
    row.wait_for(timeout=60_000)
    assert "100000 inputs" in (row.get_attribute("title") or "").replace(",", "")
    page.evaluate("() => { window.__longTasks = []; }")
    row.click()
    details = sidebar.locator(".jp-dotnb-Details")
    details.wait_for()
    folder = details.locator(".jp-dotnb-Folder[data-path='images']")
    folder.wait_for()
    assert "100,000" in details.inner_text() or "100000" in details.inner_text()
    assert "100000 files" in folder.inner_text().replace(",", "")
    # The check of the disk: one folder row; the edited file differs, the touched one not.
    folder.get_by_text("1 file differs on disk").wait_for(timeout=60_000)
    toggle = folder.locator(".jp-dotnb-Folder-toggle")
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    listed = folder.locator("li[data-path]")
    listed.nth(199).wait_for()
    assert listed.count() == 200
    assert listed.first.get_attribute("data-path") == "images/class000/0000.png"
    folder.get_by_text("Show 200 more of 99800").wait_for()
    folder.get_by_text("Show 200 more of 99800").click()
    listed.nth(399).wait_for()
    assert listed.count() == 400
    longest = max(page.evaluate("() => window.__longTasks"), default=0.0)
    print(f"longest main-thread task while opening and paging: {longest:.0f} ms")
    assert longest < FROZEN_MS, f"the page froze for {longest:.0f} ms"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "run-of-100000-inputs.png"))
    assert not page.errors  # type: ignore[attr-defined]
