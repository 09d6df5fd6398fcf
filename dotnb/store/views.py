"""Read-side views of a run shared by the CLI and the REST API."""

from __future__ import annotations

import itertools
import json
from typing import Any

from dotnb.store.errors import DotnbError, ObjectCorrupt, ObjectMissing
from dotnb.store.repo import Store
from dotnb.store.trees import find_file, find_folder, is_tree, tree_files


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


def run_detail(store: Store, run_id: str, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``dotnb show --json`` and ``GET runs/{run}`` return: the manifest (``manifest``
    when given: ``show --files`` expands its trees) with each lineage cell's code, and the
    run's ``signature`` (see :mod:`dotnb.store.signing`)."""
    doc = with_lineage_code(store, store.manifest(run_id) if manifest is None else manifest)
    doc["signature"] = store.signature(run_id)
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


def file_entry(
    store: Store, manifest: dict[str, Any], rel: str, want_input: bool = False
) -> dict[str, Any] | None:
    """The manifest entry of an input or output at ``rel`` (outputs win unless
    ``want_input``), found in a folder's tree if it is in one."""
    groups = ("inputs",) if want_input else ("outputs", "inputs")
    for key in groups:
        for entry in manifest.get(key) or []:
            if entry.get("path") == rel and not is_tree(entry):
                return dict(entry, role=key[:-1])
            if is_tree(entry) and rel.startswith(entry["path"] + "/"):
                found = find_file(entry, rel, store.objects.read_bytes)
                if found is not None:
                    return dict(found, role=key[:-1])
    return None


def folder_files(
    store: Store, manifest: dict[str, Any], role: str, path: str, offset: int = 0, limit: int = 200
) -> dict[str, Any] | None:
    """A page of the files a run recorded under folder ``path`` (an input or output
    folder recorded as a tree, or a folder inside one), in path order:
    ``{path, tree, files: [{path, hash, size}], offset, total}``; None when the run
    recorded no such folder."""
    key = f"{role}s"
    for entry in manifest.get(key) or []:
        if not is_tree(entry):
            continue
        base = entry["path"]
        if path == base or path.startswith(base + "/"):
            folder = entry if path == base else find_folder(entry, path, store.objects.read_bytes)
            if folder is None:
                break
            files = tree_files(folder, store.objects.read_bytes)
            page = [dict(e) for e in itertools.islice(files, offset, offset + limit)]
            total = int(folder["files"])
            return {"path": path, "tree": folder["tree"], "files": page, "offset": offset, "total": total}
    return None
