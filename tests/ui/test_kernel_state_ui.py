"""Time travel for the kernel in a real JupyterLab and Chromium: with kernel state
capture on, restore a past run with *Kernel variables* ticked, then run a cell that
prints them and see the past values; Undo puts the newer ones back."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
Lab = Any  # conftest.Lab

pytestmark = pytest.mark.timeout(240)

STEP = "%%track --name step\nx = {x}\nwords = ['w'] * x\n"


def notebook() -> dict[str, Any]:
    def code(source: str) -> dict[str, Any]:
        cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": []}
        return {**cell, "id": secrets.token_hex(4), "source": source}

    return {
        "cells": [
            code("%load_ext dotnb\nimport dotnb\n%dotnb state on"),
            code(STEP.format(x=1)),
            code("print('now', x, words)"),
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


RUN_CELL_JS = """async (index) => {
    const panel = window.jupyterapp.shell.currentWidget;
    panel.content.activeCellIndex = index;
    await window.jupyterapp.commands.execute('notebook:run-cell');
}"""
SOURCE_HAS_JS = """(text) =>
    window.jupyterapp.shell.currentWidget.content.model.cells.get(1).sharedModel.getSource().includes(text)"""
PRINTED_JS = """(text) =>
    document.querySelectorAll('.jp-Cell')[2].querySelector('.jp-OutputArea-output')?.innerText.includes(text)"""
SET_SOURCE_JS = """([index, source]) => {
    window.jupyterapp.shell.currentWidget.content.model.cells.get(index).sharedModel.setSource(source);
}"""


def printed(page: Any) -> str:
    """What the last cell printed, once it has run."""
    output = page.locator(".jp-Cell").nth(2).locator(".jp-OutputArea-output")
    output.wait_for()
    return str(output.inner_text()).strip()


def test_restore_brings_the_kernel_variables_back_and_undo_puts_them_back(page: Any, lab: Lab) -> None:
    (lab.root / "nb.ipynb").write_text(json.dumps(notebook(), indent=1) + "\n")
    page.goto(lab.url("lab/tree/nb.ipynb"))
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
        timeout=60_000,
    )
    page.evaluate(RUN_CELL_JS, 0)
    page.evaluate(RUN_CELL_JS, 1)  # run #1: x = 1
    sidebar = page.locator(".jp-dotnb-Sidebar")
    sidebar.locator(".jp-dotnb-Row[data-run-number='1']").wait_for(timeout=60_000)
    page.evaluate(SET_SOURCE_JS, [1, STEP.format(x=2)])
    page.evaluate(RUN_CELL_JS, 1)  # run #2: x = 2
    sidebar.locator(".jp-dotnb-Row[data-run-number='2']").wait_for(timeout=60_000)
    page.evaluate(RUN_CELL_JS, 2)
    assert printed(page) == "now 2 ['w', 'w']"

    # Restore run #1 with its kernel variables.
    back = sidebar.locator(".jp-dotnb-Back")
    if back.count():
        back.first.click()
    sidebar.locator(".jp-dotnb-Row[data-run-number='1']").click()
    sidebar.locator(".jp-dotnb-Details .jp-dotnb-RestoreButton").click()
    dialog = page.locator(".jp-Dialog")
    option = dialog.locator(".jp-dotnb-KernelState")
    option.wait_for()
    assert "bring back 2 variables" in option.inner_text()
    option.locator("input[type=checkbox]").first.check()
    table = dialog.locator(".jp-dotnb-KernelStateTable")
    assert "words" in table.inner_text() and "loaded" in table.inner_text()
    dialog.locator(".jp-dotnb-PlanTable, .jp-dotnb-Empty").first.wait_for()
    dialog.get_by_role("button", name="Restore").click()
    said = page.locator(".jp-dotnb-KernelResult pre")
    said.wait_for(timeout=60_000)
    assert "checkout" in said.inner_text(), said.inner_text()
    page.screenshot(path=str(ARTIFACTS / "kernel-state-restore.png"))

    # The restored notebook is reloaded; its last cell prints the past values.
    page.wait_for_function(SOURCE_HAS_JS, arg="x = 1")
    page.evaluate(RUN_CELL_JS, 2)
    page.wait_for_function(PRINTED_JS, arg="now 1")
    assert printed(page) == "now 1 ['w']"

    # Undo: the files and the notebook of before, and the variables of before.
    page.locator(".jp-Dialog").get_by_role("button", name="Undo").click()
    undone = page.locator(".jp-Dialog", has_text="Restore undone")
    undone.locator(".jp-dotnb-KernelResult pre", has_text="checkout undone").wait_for(timeout=60_000)
    undone.get_by_role("button", name="Close").click()
    page.wait_for_function(SOURCE_HAS_JS, arg="x = 2")
    page.evaluate(RUN_CELL_JS, 2)
    page.wait_for_function(PRINTED_JS, arg="now 2")
    assert printed(page) == "now 2 ['w', 'w']"
    assert page.errors == []  # type: ignore[attr-defined]
