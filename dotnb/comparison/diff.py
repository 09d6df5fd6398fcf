"""Differences between two runs, as maps from name or path to [first, second]."""

from __future__ import annotations

import difflib
from typing import Any

from dotnb.store.repo import Store
from dotnb.store.trees import diff_entries
from dotnb.store.views import distributions


def _map_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _file_diff(store: Store, a: dict[str, Any], b: dict[str, Any], key: str) -> dict[str, list[Any]]:
    changed = diff_entries(a.get(key) or [], b.get(key) or [], store.objects.read_bytes)
    return {path: [old, new] for path, (old, new) in changed.items()}


def environment_view(store: Store, manifest: dict[str, Any]) -> dict[str, Any]:
    """Flat view of an environment for comparison: summary fields plus ``pkg:NAME`` versions."""
    env = dict(manifest.get("environment") or {})
    env.pop("distributions", None)
    git = env.pop("git", None) or {}
    flat: dict[str, Any] = {k: v for k, v in env.items() if not isinstance(v, (dict, list))}
    for k, v in git.items():
        flat[f"git.{k}"] = v
    for name, version in (distributions(store, manifest) or {}).items():
        flat[f"pkg:{name}"] = version
    return flat


def diff_runs(store: Store, first: str, second: str) -> dict[str, Any]:
    a, b = store.manifest(first), store.manifest(second)
    code = "".join(
        difflib.unified_diff(
            (a.get("code") or "").splitlines(keepends=True),
            (b.get("code") or "").splitlines(keepends=True),
            fromfile=f"{a['id']} (#{a.get('number')})",
            tofile=f"{b['id']} (#{b.get('number')})",
        )
    )
    return {
        "runs": [a["id"], b["id"]],
        "code": code,
        "params": _map_diff(a.get("params") or {}, b.get("params") or {}),
        "metrics": _map_diff(a.get("metrics") or {}, b.get("metrics") or {}),
        # Folders recorded as trees are compared top-down: an equal sub-tree is not read.
        "inputs": _file_diff(store, a, b, "inputs"),
        "outputs": _file_diff(store, a, b, "outputs"),
        "environment": _map_diff(environment_view(store, a), environment_view(store, b)),
    }
