"""Notebook snapshots attached to a run after it was recorded.

A kernel records the notebook as it is on disk (``"notebook_source": "disk"``);
JupyterLab then sends the live model, unsaved edits included, which replaces it
(``"frontend"``).  A frontend snapshot is final: a second one is refused, so a
late or replayed request cannot overwrite what the user had at run time.
"""

from __future__ import annotations

from typing import Any

from dotnb.store.errors import DotnbError
from dotnb.store.repo import Store
from dotnb.store.vocabulary import RUN

SOURCES = ("disk", "frontend", "headless")


class SnapshotRefused(DotnbError):
    pass


def attach_notebook_snapshot(store: Store, run_id: str, data: bytes, source: str) -> dict[str, Any]:
    """Store ``data`` (notebook JSON bytes, already validated) as the run's snapshot."""
    if source not in SOURCES:
        raise ValueError(f"unknown notebook source {source!r}")
    manifest = store.manifest(run_id)
    if manifest.get("kind") != RUN:
        raise SnapshotRefused(f"run {run_id} is a {manifest.get('kind')}, not a tracked run")
    if manifest.get("notebook_source") in ("frontend", "headless"):
        raise SnapshotRefused(f"run {run_id} already has a {manifest['notebook_source']} notebook snapshot")
    digest, size = store.objects.put_bytes(data)
    manifest["notebook_snapshot"] = {"hash": digest, "size": size}
    manifest["notebook_source"] = source
    store.update_manifest(manifest)
    return {"run": run_id, "hash": digest, "size": size, "notebook_source": source}
