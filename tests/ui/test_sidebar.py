"""The Runs sidebar in a real JupyterLab and Chromium: one journey through
run → live list → badge → details → compare → chart → restore → undo, checked
on disk byte for byte against the store's objects."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.repo import Store

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
SCREENSHOTS = REPO / "docs" / "screenshots"
README_SHOTS = ("panel", "details", "compare", "chart", "restore-plan")
Lab = Any  # conftest.Lab: the running JupyterLab

pytestmark = pytest.mark.timeout(300)


def shot(page: Any, name: str, locator: Any = None) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    (locator or page).screenshot(path=str(path))
    return path


def wait_for(predicate: Any, timeout: float = 30, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.2)


def set_cell_source(page: Any, index: int, old: str, new: str) -> None:
    page.evaluate(
        """([index, old, next]) => {
            const cell = window.jupyterapp.shell.currentWidget.content.model.cells.get(index);
            const source = cell.sharedModel.getSource();
            if (!source.includes(old)) { throw new Error('cell ' + index + ' lacks ' + old); }
            cell.sharedModel.setSource(source.replace(old, next));
        }""",
        [index, old, new],
    )


def cell_source(page: Any, index: int) -> str:
    return str(
        page.evaluate(
            "(i) => window.jupyterapp.shell.currentWidget.content.model.cells.get(i).sharedModel.getSource()",
            index,
        )
    )


def run_cell(page: Any, index: int) -> None:
    page.evaluate(
        """async (index) => {
            const panel = window.jupyterapp.shell.currentWidget;
            panel.content.activeCellIndex = index;
            await window.jupyterapp.commands.execute('notebook:run-cell');
        }""",
        index,
    )


def widen_sidebar(page: Any, width: int) -> None:
    """Drag the left sidebar's edge (JupyterLab opens it narrow) so screenshots are readable."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    current = page.locator(".jp-dotnb-Sidebar").bounding_box()["width"]
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + width - current, y, steps=5)
    page.mouse.up()


def object_bytes(store: Store, digest: str) -> bytes:
    return store.objects.read_bytes(digest)


def run_by_number(lab: Lab, number: int) -> dict[str, Any]:
    return lab.api(f"runs/%23{number}?notebook=nb.ipynb")


def open_details(page: Any, number: int) -> Any:
    runs = page.locator(".jp-dotnb-Sidebar")
    back = runs.locator(".jp-dotnb-Back")
    if back.count():
        back.first.click()
    runs.locator(f".jp-dotnb-Row[data-run-number='{number}']").first.click()
    details = runs.locator(".jp-dotnb-Details")
    details.wait_for()
    return details


def test_runs_sidebar_journey(page: Any, lab: Lab) -> None:
    root = lab.root
    started = time.monotonic()
    page.goto(lab.url("lab/tree/nb.ipynb"))
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
        timeout=60_000,
    )

    # The Runs panel opens by itself the first time; before any run, its empty
    # state tells how to start.
    tab = page.locator(".jp-SideBar [data-id='dotnb-runs']")
    assert "Runs" in (tab.get_attribute("title") or "")
    sidebar = page.locator(".jp-dotnb-Sidebar")
    sidebar.locator(".jp-dotnb-EmptyState").wait_for()
    assert "%load_ext dotnb" in sidebar.inner_text()
    widen_sidebar(page, 360)

    # Run 1: lr = 0.1 on the first data. It appears without a reload.
    run_cell(page, 0)
    run_cell(page, 1)
    sidebar.locator(".jp-dotnb-Row[data-run-number='1']").wait_for()
    badge = page.locator(".jp-Cell").nth(1).locator(".jp-dotnb-Badge")
    badge.wait_for()
    assert "run #1" in badge.inner_text() and "1 input" in badge.inner_text()

    # Run 2: other params (edited in the notebook, unsaved) and other data.
    (root / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n5,6\n7,8\n")
    set_cell_source(page, 1, "lr = 0.1", "lr = 0.3")
    run_cell(page, 1)
    sidebar.locator(".jp-dotnb-Row[data-run-number='2']").wait_for()
    assert "lr=0.3" in sidebar.locator(".jp-dotnb-Row[data-run-number='2']").inner_text()

    # Run 3: lr = 0.2 on yet other data; then the cell says lr = 0.3 again.
    (root / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n5,6\n")
    set_cell_source(page, 1, "lr = 0.3", "lr = 0.2")
    run_cell(page, 1)
    sidebar.locator(".jp-dotnb-Row[data-run-number='3']").wait_for()
    set_cell_source(page, 1, "lr = 0.2", "lr = 0.3")
    (root / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n5,6\n7,8\n")

    # The live notebook snapshot reached each run (what JupyterLab had, unsaved edits included).
    first = wait_for(
        lambda: (m := run_by_number(lab, 1))["notebook_source"] == "frontend" and m,
        message="run #1's frontend notebook snapshot",
    )
    second = wait_for(
        lambda: (m := run_by_number(lab, 2))["notebook_source"] == "frontend" and m,
        message="run #2's frontend notebook snapshot",
    )
    assert first["params"]["lr"] == 0.1
    assert second["params"]["lr"] == 0.3
    shot(page, "panel", sidebar)

    # The badge opens its run in the sidebar.
    badge.click()
    details = sidebar.locator(".jp-dotnb-Details")
    details.wait_for()
    assert details.get_attribute("data-run-id") == run_by_number(lab, 3)["id"]

    # Details of run 1: params, metrics, files with their state on disk now.
    details = open_details(page, 1)
    details.locator(".jp-dotnb-FileState-modified").first.wait_for()
    text = details.inner_text()
    assert "train" in text and "lr" in text and "acc" in text
    assert "data/train.csv" in text and "out/model.txt" in text
    assert details.locator("[data-path='data/train.csv'] .jp-dotnb-FileState-modified").count() == 1
    assert details.locator(".jp-dotnb-SeriesChart svg").count() >= 1  # loss by step
    shot(page, "details", sidebar)

    # Compare 1 and 2: params with deltas, the code diff, files changed.
    sidebar.locator(".jp-dotnb-Back").click()
    for number in (1, 2):
        sidebar.locator(f".jp-dotnb-Row[data-run-number='{number}'] .jp-dotnb-Row-check").check()
    sidebar.locator(".jp-dotnb-CompareButton").click()
    compare = sidebar.locator(".jp-dotnb-Compare")
    compare.locator(".jp-dotnb-Diff").wait_for()
    diff_text = compare.locator(".jp-dotnb-Diff").inner_text()
    assert "-lr = 0.1" in diff_text and "+lr = 0.3" in diff_text
    assert "data/train.csv" in compare.inner_text()
    shot(page, "compare", sidebar)

    # Metric chart: acc across the notebook's runs; a click on a point selects its run.
    sidebar.locator(".jp-dotnb-Back").click()
    sidebar.locator(".jp-dotnb-ChartButton").click()
    chart = sidebar.locator(".jp-dotnb-ChartView")
    chart.locator("select[aria-label='Metric']").select_option("acc")
    points = chart.locator(".jp-dotnb-Chart svg .mark-symbol path")
    wait_for(lambda: points.count() == 3, message="three points in the acc chart")
    points.nth(0).click(force=True)
    chart.locator(".jp-dotnb-Selected").wait_for()
    assert "#1" in chart.locator(".jp-dotnb-Selected").inner_text()
    shot(page, "chart", sidebar)

    # Restore run 1 through the dialog: the plan first, then the files.
    store = Store(root)
    try:
        manifest1 = store.manifest(first["id"])
        details = open_details(page, 1)
        details.locator(".jp-dotnb-RestoreButton").click()
        dialog = page.locator(".jp-Dialog")
        dialog.locator(".jp-dotnb-PlanTable").wait_for()
        plan_text = dialog.locator(".jp-dotnb-PlanTable").inner_text()
        assert "data/train.csv" in plan_text and "nb.ipynb" in plan_text
        shot(page, "restore-plan", dialog.locator(".jp-Dialog-content"))
        dialog.get_by_role("button", name="Restore").click()
        result = page.locator(".jp-dotnb-RestoreResult")
        result.wait_for()
        command = result.locator(".jp-dotnb-CheckpointId").inner_text()
        assert command.startswith("dotnb restore ")
        checkpoint_id = command.removeprefix("dotnb restore ")
        number = result.locator(".jp-dotnb-CheckpointNumber").inner_text()
        shot(page, "restore-done", page.locator(".jp-Dialog-content"))

        # On disk, byte for byte: the data file, the output and the notebook of run 1.
        inputs = {e["path"]: e for e in manifest1["inputs"]}
        outputs = {e["path"]: e for e in manifest1["outputs"]}
        assert (root / "data" / "train.csv").read_bytes() == object_bytes(
            store, inputs["data/train.csv"]["hash"]
        )
        assert (root / "out" / "model.txt").read_bytes() == object_bytes(
            store, outputs["out/model.txt"]["hash"]
        )
        snapshot = store.manifest(first["id"])["notebook_snapshot"]
        assert (root / "nb.ipynb").read_bytes() == object_bytes(store, snapshot["hash"])
        # JupyterLab reloaded the notebook from disk: the cell says lr = 0.1 again.
        wait_for(lambda: "lr = 0.1" in cell_source(page, 1), message="the notebook reloaded")

        # Undo: the checkpoint's content comes back.
        checkpoint = store.manifest(checkpoint_id)
        assert checkpoint["kind"] == "checkpoint" and checkpoint["checkpoint_of"] == first["id"]
        # Named by what it is and by its own number, with who made it, like other runs.
        assert number == f"#{checkpoint['number']}"
        assert checkpoint["name"] == "checkpoint before restoring #1"
        assert checkpoint["environment"]["user"]
        page.get_by_role("button", name="Undo").click()
        page.locator(".jp-Dialog").get_by_text("Restore undone").first.wait_for()
        saved = {e["path"]: e for e in checkpoint["outputs"]}
        assert (root / "data" / "train.csv").read_bytes() == b"x,y\n1,2\n3,4\n5,6\n7,8\n"
        assert (root / "data" / "train.csv").read_bytes() == object_bytes(
            store, saved["data/train.csv"]["hash"]
        )
        assert (root / "nb.ipynb").read_bytes() == object_bytes(
            store, checkpoint["notebook_snapshot"]["hash"]
        )
        wait_for(lambda: "lr = 0.3" in cell_source(page, 1), message="the notebook reloaded after undo")
        page.locator(".jp-Dialog").get_by_role("button", name="Close").click()
    finally:
        store.close()

    assert not page.errors, page.errors  # type: ignore[attr-defined]
    print(f"journey took {time.monotonic() - started:.1f} s")
    # DOTNB_UPDATE_SCREENSHOTS=1 refreshes the README's pictures from this run.
    if os.environ.get("DOTNB_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name in README_SHOTS:
            shutil.copy(ARTIFACTS / f"{name}.png", SCREENSHOTS / f"{name}.png")


def seed_runs(root: Path, count: int) -> None:
    """``count`` runs in two notebooks, straight into the store (as many kernels would)."""
    from dotnb.store.manifest import iso_time

    store = Store(root)
    start = time.time() - count
    try:
        for i in range(count):
            store.commit_run(
                {
                    "kind": "run",
                    "name": f"sweep {i}",
                    "notebook": "sweep.ipynb" if i % 4 else "other.ipynb",
                    "code": f"lr = {i / count}\n",
                    "lineage": [],
                    "params": {"lr": round(i / count, 6)},
                    "metrics": {"acc": (i * 7919 % 1000) / 1000},
                    "metric_series": {},
                    "inputs": [],
                    "outputs": [],
                    "status": "error" if i % 97 == 0 else "ok",
                    "error": None,
                    "started_at": iso_time(start + i),
                    "duration_s": (i % 50) / 10,
                    "environment": {"user": "ci", "host": "ci"},
                },
                sync=False,
            )
        store.flush()
    finally:
        store.close()


def test_a_long_history_pages_in_and_stays_virtualized(page: Any, lab: Lab) -> None:
    count = 2000  # 10 pages of the panel's 200; 10,000 rows are covered by the unit tests
    seed_runs(lab.root, count)
    page.goto(lab.url("lab"))
    sidebar = page.locator(".jp-dotnb-Sidebar")
    sidebar.locator(".jp-dotnb-Row").first.wait_for()
    loaded = sidebar.locator(".jp-dotnb-RunCount")  # the section header scrolls out of the DOM
    # Paged, not loaded whole: a page of 200, or two if the short first page made
    # the list ask for the next one at once.
    first = loaded.inner_text()
    assert first in ("200+ runs", "400+ runs"), first

    # Scrolling to the end loads page after page; the DOM keeps only a window of rows.
    started = time.monotonic()
    listbox = sidebar.locator(".jp-dotnb-List")
    while loaded.inner_text() != f"{count:,} runs":
        listbox.evaluate("node => { node.scrollTop = node.scrollHeight; }")
        page.wait_for_timeout(50)
        assert time.monotonic() - started < 60, f"stuck at {loaded.inner_text()}"
    elapsed = time.monotonic() - started
    listbox.evaluate("node => { node.scrollTop = node.scrollHeight; }")
    sidebar.locator(".jp-dotnb-Row-name", has_text="sweep 0").wait_for()  # the oldest
    assert sidebar.locator(".jp-dotnb-Row").count() < 60
    print(f"scrolled through {count} runs in {elapsed:.1f} s")

    # Server-side text filter, then a client-side sort over every page.
    sidebar.locator(".jp-dotnb-Search input").fill("sweep 1234")
    wait_for(lambda: sidebar.locator(".jp-dotnb-Row").count() == 1, message="the filtered run")
    assert "sweep 1234" in sidebar.locator(".jp-dotnb-Row").inner_text()
    sidebar.locator(".jp-dotnb-Search input").fill("")
    sidebar.locator("select[aria-label='Sort']").select_option("metric:desc:acc")
    best = max(range(count), key=lambda i: ((i * 7919 % 1000), i))
    wait_for(
        lambda: "acc=0.999" in sidebar.locator(".jp-dotnb-Row").first.inner_text(),
        message=f"run 'sweep {best}' (acc 0.999) first",
    )
    assert not page.errors, page.errors  # type: ignore[attr-defined]
