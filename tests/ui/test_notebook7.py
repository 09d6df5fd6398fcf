"""dotnb's prebuilt extension in Jupyter Notebook 7 (the same extension, another front
end), in Debian's Chromium: a tracked cell shows its run badge, the Runs panel opens in
Notebook's left side panel and lists the run, and a restore from its details brings
the data file back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
Lab = Any  # conftest.Lab

pytestmark = pytest.mark.timeout(240)

RUN_CELL_JS = """async (index) => {
    const panel = window.jupyterapp.shell.currentWidget;
    panel.content.activeCellIndex = index;
    await window.jupyterapp.commands.execute('notebook:run-cell');
}"""


def test_track_list_and_restore_in_notebook_7(notebook7_page: Any, notebook7: Lab) -> None:
    page, root = notebook7_page, notebook7.root
    stacks: list[str] = []
    page.on("pageerror", lambda exc: stacks.append(exc.stack or str(exc)))
    page.goto(notebook7.url("notebooks/nb.ipynb"))
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
        timeout=60_000,
    )
    assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"

    # The tracked cell records a run; its output is the run badge (dotnb's renderer).
    page.evaluate(RUN_CELL_JS, 0)
    page.evaluate(RUN_CELL_JS, 1)
    badge = page.locator(".jp-Cell").nth(1).locator(".jp-dotnb-Badge")
    badge.wait_for(timeout=60_000)
    assert "#1" in badge.inner_text()

    # The Runs panel, in Notebook's left side panel, lists the run.
    page.evaluate("() => window.jupyterapp.commands.execute('dotnb:open-panel')")
    sidebar = page.locator(".jp-dotnb-Sidebar")
    sidebar.wait_for()
    row = sidebar.locator(".jp-dotnb-Row[data-run-number='1']")
    row.wait_for()
    page.screenshot(path=str(ARTIFACTS / "notebook7.png"))

    # Restore from the run's details brings the data file back, after a checkpoint.
    original = (root / "data" / "train.csv").read_bytes()
    (root / "data" / "train.csv").write_bytes(b"x,y\nchanged\n")
    row.click()
    sidebar.locator(".jp-dotnb-Details .jp-dotnb-RestoreButton").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jp-dotnb-PlanTable").wait_for()
    assert "data/train.csv" in dialog.locator(".jp-dotnb-PlanTable").inner_text()
    dialog.get_by_role("button", name="Restore").click()
    page.locator(".jp-dotnb-RestoreResult").wait_for()
    assert (root / "data" / "train.csv").read_bytes() == original
    assert notebook7.api("runs?kind=checkpoint")["runs"], "no checkpoint was recorded"
    # Notebook 7.6 itself raises one error while loading its settings, with or without
    # dotnb (its shortcuts plugin); none may come from dotnb's code.
    assert not [stack for stack in stacks if "extensions/dotnb/" in stack], stacks
