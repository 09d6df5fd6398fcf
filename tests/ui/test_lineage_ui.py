"""The lineage view in a real JupyterLab and Chromium, over a pipeline of 40 runs
in 5 notebooks (200 nodes): opened from a run's details in the Runs panel and
from a file's context menu in the file browser; nodes open their run; a source
changed on disk is marked; file names holding markup stay text.

It measures, and prints (also to test-artifacts/ui/lineage-figures.txt), the
time from the click to the 200 nodes drawn. A figure, not an assertion: the
machine is shared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dotnb.store.repo import Store
from tests.manifests import new_manifest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
Lab = Any  # conftest.Lab

pytestmark = pytest.mark.timeout(300)

RUNS = 40
SOURCES = 3  # per run: 40 runs + 40 outputs + 120 sources = 200 nodes
XSS = "<img src=x onerror=window.__xss=1>"


def seed_pipeline(root: Path) -> list[str]:
    """Run i reads run i-1's output and three source files of its own, and writes one
    output; the first source's name holds markup."""
    store = Store.init(root)
    ids: list[str] = []
    try:
        previous: str | None = None
        for i in range(RUNS):
            reads = [previous] if previous else []
            for j in range(SOURCES):
                rel = f"raw/{i:02d}-{j}{' ' + XSS if i == 0 and j == 0 else ''}.csv"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(f"source {i} {j}\n")
                reads.append(rel)
            inputs = store.snapshot_files(reads)
            for entry in inputs:
                producer = store.producer_of(entry["hash"])
                if producer:
                    entry["produced_by"] = producer
            out = f"work/step{i:02d}.csv"
            (root / out).parent.mkdir(parents=True, exist_ok=True)
            (root / out).write_text(f"step {i}\n")
            outputs = store.snapshot_files([out])
            manifest = new_manifest(f"nb{i % 5}.ipynb", inputs=inputs, outputs=outputs, name=f"step {i}")
            ids.append(str(store.commit_run(manifest)["id"]))
            previous = out
    finally:
        store.close()
    return ids


DRAWN_JS = """([selector, count]) => new Promise(resolve => {
  const t0 = performance.now();
  const done = () => document.querySelectorAll(selector).length >= count;
  if (done()) { resolve(0); return; }
  const observer = new MutationObserver(() => {
    if (done()) { observer.disconnect(); resolve(performance.now() - t0); }
  });
  observer.observe(document.body, { childList: true, subtree: true });
  window.__dotnbClickLineage();
})"""


def test_lineage_view_journey(page: Any, lab: Lab) -> None:
    root = lab.root
    ids = seed_pipeline(root)
    (root / "raw" / "05-1.csv").write_text("edited after the run\n")  # a stale source

    page.goto(lab.url("lab"))
    page.wait_for_function("() => window.jupyterapp?.commands.hasCommand('dotnb:open-panel')")
    page.evaluate("() => window.jupyterapp.commands.execute('dotnb:open-panel')")
    sidebar = page.locator(".jp-dotnb-Sidebar")
    sidebar.locator(".jp-dotnb-Row", has_text="step 39").first.click()
    details = sidebar.locator(".jp-dotnb-Details")
    details.wait_for()

    # From the run's details: the whole pipeline, 200 nodes.
    button = details.locator(".jp-dotnb-DataLineageButton")
    button.evaluate("node => { window.__dotnbClickLineage = () => node.click(); }")
    ms = page.evaluate(DRAWN_JS, [".jp-dotnb-DataLineage .jp-dotnb-DataLineageNode", 200])
    view = page.locator(".jp-dotnb-DataLineage").first
    nodes = view.locator(".jp-dotnb-DataLineageNode")
    assert nodes.count() == 200
    assert view.locator(".jp-dotnb-DataLineageCount").inner_text() == "40 runs, 160 files"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    figure = f"lineage view: 200 nodes drawn {ms:.0f} ms after the click"
    (ARTIFACTS / "lineage-figures.txt").write_text(figure + "\n")
    print(figure)
    page.screenshot(path=str(ARTIFACTS / "lineage.png"))

    # The run asked about is the root; a source edited on disk is marked stale.
    root_node = view.locator(f"[data-node='run:{ids[-1]}']")
    assert "jp-mod-root" in (root_node.get_attribute("class") or "")
    stale = view.locator(".jp-dotnb-DataLineageNode.jp-mod-stale")
    assert stale.count() == 1
    assert "raw/05-1.csv" in stale.text_content()
    assert view.locator(".jp-dotnb-DataLineageNode.jp-mod-source").count() == 120  # the stale one too

    # Markup in a file name is text, in the node and in its details.
    evil = view.locator(".jp-dotnb-DataLineageNode", has_text="raw/00-0 <img")
    assert evil.count() == 1
    evil.dispatch_event("click")
    panel = view.locator(".jp-dotnb-DataLineageDetails")
    assert f"raw/00-0 {XSS}.csv" in panel.inner_text()
    assert view.locator("img").count() == 0
    assert page.evaluate("window.__xss") is None

    # Too wide to read whole: it opens on the run asked about, with an overview;
    # Fit shows the whole graph, and then the overview is not needed.
    assert page.locator(".lm-TabBar-tab", has_text="Lineage: run #8 step 39 (nb4.ipynb)").count() == 1
    overview = view.locator(".jp-dotnb-DataLineageOverview")
    assert overview.count() == 1
    assert overview.locator("rect").count() == 201  # the nodes and the visible part
    view.get_by_role("button", name="Fit").click()
    overview.wait_for(state="detached")

    # Zoom in: the graph's scale grows.
    graph = view.locator(".jp-dotnb-DataLineageGraph > g")
    before = graph.get_attribute("transform")
    view.get_by_role("button", name="Zoom in").click()
    assert graph.get_attribute("transform") != before

    # A run node opens its run in the Runs panel.
    view.locator(f"[data-node='run:{ids[3]}']").dispatch_event("click")
    panel.get_by_role("button", name="Open run").click()
    sidebar.locator(".jp-dotnb-Details", has_text="step 3").wait_for()

    # Collapsing a run hides what lies beyond it.
    view.locator(f"[data-node='run:{ids[20]}']").dispatch_event("click")
    panel.get_by_role("button", name="Collapse what lies beyond").click()
    collapsed = view.locator(".jp-dotnb-DataLineageNode.jp-mod-collapsed")
    collapsed.wait_for()
    assert nodes.count() < 200
    hidden = int(collapsed.locator(".jp-dotnb-DataLineageHidden").text_content().lstrip("+"))
    assert nodes.count() + hidden == 200

    # From the file browser: a file's context menu opens its lineage.
    page.locator(".jp-SideBar [data-id='filebrowser']").click()
    listing = page.locator(".jp-DirListing-content")
    listing.locator(".jp-DirListing-item[title^='Name: work']").dblclick()
    listing.locator(".jp-DirListing-item[title^='Name: step39.csv']").click(button="right")
    page.locator(".lm-Menu-item", has_text="Show Lineage (dotnb)").click()
    tab = page.locator(".lm-TabBar-tab", has_text="Lineage: work/step39.csv")
    tab.wait_for()
    file_view = page.locator(".jp-MainAreaWidget:not(.lm-mod-hidden) .jp-dotnb-DataLineage")
    file_view.locator(".jp-dotnb-DataLineageNode").nth(199).wait_for()
    root_file = file_view.locator(".jp-dotnb-DataLineageNode.jp-mod-root")
    assert "work/step39.csv" in root_file.text_content()
    assert "jp-mod-content" in (root_file.get_attribute("class") or "")
    assert page.errors == []  # type: ignore[attr-defined]
