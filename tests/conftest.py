from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.kernel_client import Kernel

SCHEMA = json.loads((Path(__file__).parent.parent / "dotnb/schema/manifest.schema.json").read_text())


def make_notebook(path: Path, cells: list[str] | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (cells or ["%load_ext dotnb"])]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    make_notebook(root / "analysis.ipynb")
    return root


@pytest.fixture
def kernel(project: Path) -> Iterator[Kernel]:
    k = Kernel(project, project / "analysis.ipynb")
    k.ok("%load_ext dotnb")
    try:
        yield k
    finally:
        k.shutdown()


def validate_manifest(manifest: dict[str, Any]) -> None:
    import jsonschema

    jsonschema.validate(manifest, SCHEMA, format_checker=jsonschema.FormatChecker())
