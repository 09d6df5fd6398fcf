"""Read-side views of a run shared by the CLI and the REST API."""

from __future__ import annotations

import json
from typing import Any

from dotnb.store.errors import DotnbError, ObjectCorrupt, ObjectMissing
from dotnb.store.repo import Store


def with_lineage_code(store: Store, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with each lineage cell's code read from its object."""
    doc = dict(manifest)
    cells = []
    for entry in store.lineage(manifest):
        cells.append(entry)
        if "code" in entry or not entry.get("code_hash"):
            continue  # from a segment: code inline (or a placeholder for a lost segment)
        try:
            # Cell code is stored as UTF-8 with surrogatepass; "replace" keeps the output valid text.
            entry["code"] = store.objects.read_bytes(entry["code_hash"]).decode("utf-8", "replace")
        except ObjectMissing:
            entry.update(code=None, code_missing=True)
        except ObjectCorrupt:
            entry.update(code=None, code_missing=True, code_corrupt=True)
    doc["lineage"] = cells
    return doc


def distributions(store: Store, manifest: dict[str, Any]) -> dict[str, str] | None:
    """Installed distributions (name → version) recorded for a run, or None if unknown."""
    digest = (manifest.get("environment") or {}).get("distributions")
    if not digest:
        return None
    try:
        dists = json.loads(store.objects.read_bytes(digest))
    except (DotnbError, ValueError):
        return None
    if not isinstance(dists, list):
        return None
    return {d["name"]: d["version"] for d in dists if isinstance(d, dict) and "name" in d}


def file_entry(manifest: dict[str, Any], rel: str, want_input: bool = False) -> dict[str, Any] | None:
    """The manifest entry of an input or output at ``rel`` (outputs win unless ``want_input``)."""
    groups = ("inputs",) if want_input else ("outputs", "inputs")
    for key in groups:
        for entry in manifest.get(key) or []:
            if entry.get("path") == rel:
                return dict(entry, role=key[:-1])
    return None
