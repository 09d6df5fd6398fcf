"""One version for the Python package and the JupyterLab extension."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import dotnb

REPO = Path(__file__).resolve().parent.parent


def test_python_and_npm_versions_are_package_jsons() -> None:
    version = json.loads((REPO / "package.json").read_text())["version"]
    assert dotnb.__version__ == version
    assert importlib.metadata.version("dotnb") == version
