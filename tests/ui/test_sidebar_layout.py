"""The sidebar as a new user first sees it, in a real JupyterLab and Chromium:
live as soon as the server answers, metric names with quotes and long names
charted, a disabled button that looks disabled, and compare tables that do not
break words in the middle. Runs are seeded through the store's public API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.manifest import iso_time
from dotnb.store.repo import Store

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
Lab = Any  # conftest.Lab

pytestmark = pytest.mark.timeout(150)

QUOTED = 'loss "train"'
LONG = "validation_balanced_accuracy"


def _run(store: Store, number_hint: int, inputs: list[dict[str, Any]]) -> str:
    manifest = {
        "kind": "run",
        "name": f"train {number_hint}",
        "notebook": "nb.ipynb",
        "code": f"acc = 0.{number_hint}\n",
        "lineage": [],
        "params": {"lr": 0.1 * number_hint},
        "metrics": {QUOTED: 1.0 / number_hint, LONG: 0.5 + number_hint / 10},
        "metric_series": {},
        "inputs": inputs,
        "outputs": [],
        "status": "ok",
        "error": None,
        "started_at": iso_time(time.time()),
        "duration_s": 0.5,
        "environment": {"user": "ada", "host": "laptop"},
    }
    return str(store.commit_run(manifest)["id"])


@pytest.fixture
def seeded(project: Path) -> Path:
    store = Store.init(project)
    try:
        for n in (1, 2):
            digest, size = store.objects.put_bytes(f"x,y\n{n},{n}\n".encode())
            _run(store, n, [{"path": "data.csv", "hash": digest, "size": size}])
    finally:
        store.close()
    return project


def test_sidebar_live_metric_names_and_whole_words(seeded: Path, page: Any, lab: Lab) -> None:
    page.goto(lab.url("lab"))
    sidebar = page.locator(".jp-dotnb-Sidebar")
    # The panel opens by itself the first time a workspace starts.
    sidebar.locator(".jp-dotnb-Row[data-run-number='2']").wait_for(timeout=60_000)
    # Live once the server answers, long before the events poll's 25 s timeout.
    sidebar.locator(".jp-dotnb-Live.jp-mod-live").wait_for(timeout=8_000)

    # A disabled Compare looks unlike an enabled one.
    button = sidebar.locator(".jp-dotnb-CompareButton")
    assert button.is_disabled()
    style = "el => [getComputedStyle(el).backgroundColor, getComputedStyle(el).cursor]"
    disabled_look = button.evaluate(style)
    for number in (1, 2):
        sidebar.locator(f".jp-dotnb-Row[data-run-number='{number}'] .jp-dotnb-Row-check").check()
    assert button.is_enabled()
    enabled_look = button.evaluate(style)
    assert disabled_look[0] != enabled_look[0] and disabled_look[1] == "not-allowed"

    # Compare at the default sidebar width: a short path stays on one line.
    button.click()
    files = sidebar.locator(".jp-dotnb-FileChanges")
    files.wait_for()
    row = files.locator("tr[data-path='data.csv']")
    path_cell, change_cell = row.locator("th"), row.locator("td")
    hashes = path_cell.locator(".jp-dotnb-HashChange")
    # The path's first line holds all of "data.csv"; its hashes follow on one line.
    first_line = path_cell.evaluate(
        "el => { const r = document.createRange(); r.setStart(el.firstChild, 0);"
        " r.setEnd(el.firstChild, el.firstChild.length); return r.getClientRects().length }"
    )
    assert first_line == 1, "data.csv broke over two lines"
    assert hashes.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), "a hash is cut"
    assert " → " in hashes.inner_text()
    assert change_cell.inner_text() == "input changed"
    assert change_cell.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), "the change label is cut"
    page.screenshot(path=str(ARTIFACTS / "compare-files.png"))
    sidebar.locator(".jp-dotnb-Back").click()

    # The chart of a metric named with quotes draws, and names it on the axis.
    page.evaluate("() => window.jupyterapp.commands.execute('dotnb:metric-chart')")
    view = sidebar.locator(".jp-dotnb-ChartView")
    view.wait_for()
    select = view.get_by_label("Metric", exact=True)
    select.select_option(QUOTED)
    view.locator(".jp-dotnb-Chart svg").wait_for()
    assert QUOTED in view.locator(".jp-dotnb-Chart svg").inner_html().replace("&quot;", '"')
    assert view.locator(".jp-dotnb-ChartError").count() == 0
    # A long name stays inside its own select.
    select.select_option(LONG)
    view.locator(".jp-dotnb-Chart svg").wait_for()
    metric_box = select.bounding_box()
    mark_box = view.get_by_label("Chart type").bounding_box()
    assert (
        metric_box["x"] + metric_box["width"] <= mark_box["x"] + 0.5
        or metric_box["y"] + metric_box["height"] <= mark_box["y"] + 0.5
    ), "the metric select runs over the chart type select"
    page.screenshot(path=str(ARTIFACTS / "metric-chart-long-name.png"))
    assert not page.errors  # type: ignore[attr-defined]
