"""What the index holds for a run, derived from its manifest: the summary ``dotnb log``
prints, the search text, the outputs' rows."""

from __future__ import annotations

import json
from typing import Any

from dotnb.store.index import Index
from dotnb.store.vocabulary import RUN


def run_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """The row ``dotnb log --json`` prints for a run (also cached in the index)."""
    env = manifest.get("environment") or {}
    return {
        "id": manifest["id"],
        "number": manifest["number"],
        "notebook": manifest.get("notebook"),
        "name": manifest.get("name"),
        "kind": manifest.get("kind", RUN),
        "status": manifest.get("status", "ok"),
        "started_at": manifest["started_at"],
        "duration_s": manifest.get("duration_s"),
        "params": manifest.get("params") or {},
        "metrics": manifest.get("metrics") or {},
        "inputs": len(manifest.get("inputs") or []),
        "outputs": len(manifest.get("outputs") or []),
        "user": env.get("user"),
        "host": env.get("host"),
        # The remote a run was pulled from (None: recorded here); set by index_run.
        "remote": None,
        "reproduces": manifest.get("reproduces"),
        "checkpoint_of": manifest.get("checkpoint_of"),
    }


def index_run(
    tx: Any, manifest_hash: str, manifest: dict[str, Any], origin: str | None = None, new: bool = False
) -> dict[str, Any]:
    """Write a run's index rows in the write transaction ``tx``; returns its summary."""
    summary = run_summary(manifest)
    summary["remote"] = origin
    outputs = output_rows(manifest)
    # Through the class attribute: crash tests replace Index.insert_run.
    Index.insert_run(tx, manifest_hash, summary, search_text(manifest), outputs, new=new)
    return summary


_PARAMS_JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps(..., ensure_ascii=False), made once


def output_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """The (hash, path) rows the ``outputs`` table holds for a run."""
    return [(e["hash"], e["path"]) for e in manifest.get("outputs") or [] if e.get("hash")]


def search_text(manifest: dict[str, Any]) -> str:
    """What ``dotnb log --text`` searches in a run: its name, params and code, lowercased."""
    parts = [
        manifest.get("name") or "",
        _PARAMS_JSON.encode(manifest.get("params") or {}),
        manifest.get("code") or "",
    ]
    return "\n".join(parts).lower()
