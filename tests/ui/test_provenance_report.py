"""The HTML provenance report (``dotnb export --format html``) opened in Chromium with
the network cut off: it draws from the one file alone, and markup in file names,
params and code stays text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.repo import Store
from tests.manifests import new_manifest

pytestmark = pytest.mark.timeout(120)

PAYLOAD = "<img src=x onerror=window.__xss=1>"
SCRIPT = "</code><script>window.__xss=2</script>"


def test_the_report_reads_offline_and_keeps_markup_as_text(browser: Any, tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    source = root / "data" / f"{PAYLOAD}.csv"
    source.write_text("x\n1\n")
    store = Store.init(root)
    try:
        inputs = store.snapshot_files([f"data/{PAYLOAD}.csv"])
        (root / "model.txt").write_text("model\n")
        outputs = store.snapshot_files(["model.txt"])
        store.commit_run(
            new_manifest(
                f"{SCRIPT}.ipynb",
                inputs=inputs,
                outputs=outputs,
                name=PAYLOAD,
                params={PAYLOAD: SCRIPT},
                code=f"x = '{SCRIPT}'\n",
            )
        )
    finally:
        store.close()
    source.write_text("x\nedited\n")  # changed on disk since the run read it
    report = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "dotnb", "--root", str(root), "export", str(root / "model.txt"),
         "--format", "html", "-o", str(report)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    context = browser.new_context(offline=True)
    requested: list[str] = []
    context.route("**/*", lambda route: (requested.append(route.request.url), route.continue_()))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(report.as_uri())
        assert page.locator("h1").inner_text() == "Provenance of model.txt"
        text = page.locator("body").inner_text()
        assert f"data/{PAYLOAD}.csv" in text and SCRIPT in text
        assert "(source: no run wrote these bytes) (changed on disk since)" in text
        assert page.locator("img, script, iframe").count() == 0
        assert page.evaluate("window.__xss") is None
        # Only the file itself was loaded: no stylesheet, font or script from anywhere.
        assert requested == [report.as_uri()]
        assert errors == [] and dialogs == []
    finally:
        context.close()
