"""A minimal valid run manifest for tests that build runs through the store API."""

from __future__ import annotations

import time
from typing import Any

from dotnb.store.manifest import iso_time


def new_manifest(notebook: str | None = "nb.ipynb", **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "run",
        "name": None,
        "notebook": notebook,
        "code": "x = 1\n",
        "lineage": [],
        "params": {},
        "metrics": {},
        "metric_series": {},
        "inputs": [],
        "outputs": [],
        "status": "ok",
        "error": None,
        "started_at": iso_time(time.time()),
        "duration_s": 0.01,
        "environment": {"user": "tester", "host": "box"},
    }
    doc.update(fields)
    return doc
