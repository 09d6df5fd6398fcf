"""A parameter sweep started from a run's details in a real JupyterLab and Chromium:
the Sweep… dialog, the view that follows the sweep on the server's LocalCluster,
and the sweep's runs arriving in the Runs panel."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "sweep" / "score.ipynb"
Lab = Any  # conftest.Lab

pytestmark = pytest.mark.timeout(300)


def test_sweep_a_run_from_its_details(page: Any, lab: Lab) -> None:
    root = lab.root
    shutil.copyfile(FIXTURE, root / "score.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "dotnb", "run", "score.ipynb"], cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr

    page.goto(lab.url("lab"))
    page.wait_for_function("() => window.jupyterapp?.commands.hasCommand('dotnb:open-panel')")
    page.evaluate("() => window.jupyterapp.commands.execute('dotnb:open-panel')")
    sidebar = page.locator(".jp-dotnb-Sidebar")
    sidebar.locator(".jp-dotnb-Row").first.click()
    details = sidebar.locator(".jp-dotnb-Details")
    details.locator(".jp-dotnb-SweepButton").click()

    dialog = page.locator(".jp-Dialog")
    # No scheduler is configured: this machine's workers, one per core.
    assert "this machine:" in dialog.locator(".jp-dotnb-SweepCluster").inner_text()
    x = dialog.locator("#jp-dotnb-sweep-x")
    assert x.input_value() == "1.0"  # as the parameters cell has it
    x.fill("1,2")
    dialog.get_by_role("button", name="Start").click()

    view = page.locator(".jp-dotnb-Sweep")
    view.locator(".jp-dotnb-SweepState.jp-mod-done").wait_for(timeout=240_000)
    assert view.locator(".jp-dotnb-SweepCounts").inner_text() == "2 of 2 points done"
    assert "Best score = 0 at x=2" in view.locator(".jp-dotnb-SweepBest").inner_text()
    assert view.locator(".jp-dotnb-SweepResults tbody tr").count() == 2
    # The ranking metric against the swept param, drawn by JupyterLab's Vega renderer.
    view.locator(".jp-dotnb-SweepChart canvas, .jp-dotnb-SweepChart svg").first.wait_for()
    page.screenshot(path=str(REPO / "test-artifacts" / "ui" / "sweep.png"))

    # The sweep's two runs reach the Runs panel through its live feed.
    view.get_by_role("button", name="open its run").click()
    tag = sidebar.locator(".jp-dotnb-Details .jp-dotnb-Details-tagName", has_text="sweep:")
    tag.first.wait_for()
    assert tag.first.inner_text() == view.locator(".jp-dotnb-SweepHead strong").inner_text().replace(
        "Sweep ", "sweep:"
    )
    sidebar.locator(".jp-dotnb-Details", has_text="x").locator("text=(--param)").wait_for()
    assert page.errors == []  # type: ignore[attr-defined]
