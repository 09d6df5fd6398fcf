"""What the index holds for a run, derived from its manifest: the summary ``dotnb log``
prints, the search text, the outputs' and inputs' rows."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from dotnb.store.errors import DotnbError
from dotnb.store.index import Index
from dotnb.store.trees import Load, file_count, is_tree, tree_files
from dotnb.store.vocabulary import RUN

if TYPE_CHECKING:
    from dotnb.store.index import InputRow


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
        "inputs": file_count(manifest.get("inputs") or []),
        "outputs": file_count(manifest.get("outputs") or []),
        "user": env.get("user"),
        "host": env.get("host"),
        # The remote a run was pulled from (None: recorded here); set by index_run.
        "remote": None,
        "reproduces": manifest.get("reproduces"),
        "checkpoint_of": manifest.get("checkpoint_of"),
    }


def index_run(
    tx: Any,
    manifest_hash: str,
    manifest: dict[str, Any],
    origin: str | None = None,
    new: bool = False,
    outputs: list[tuple[str, str]] | None = None,
    load: Load | None = None,
    inputs: list[InputRow] | None = None,
) -> dict[str, Any]:
    """Write a run's index rows in the write transaction ``tx``; returns its summary.
    ``outputs`` and ``inputs``: its :func:`output_rows` and :func:`input_rows`, when the
    caller has them; else they are read from the manifest (``load`` reads the objects
    of its trees)."""
    summary = run_summary(manifest)
    summary["remote"] = origin
    if outputs is None:
        outputs = output_rows(manifest, load)
    if inputs is None:
        inputs = input_rows(manifest, load)
    # Through the class attribute: crash tests replace Index.insert_run.
    Index.insert_run(tx, manifest_hash, summary, search_text(manifest), outputs, new=new, inputs=inputs)
    return summary


_PARAMS_JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps(..., ensure_ascii=False), made once


def output_rows(manifest: dict[str, Any], load: Load | None = None) -> list[tuple[str, str]]:
    """The (hash, path) rows the ``outputs`` table holds for a run: one per file it
    wrote, so that any content a run wrote names that run (``produced_by``), in a
    folder's tree or not; and one per tree (a run reading the same whole folder).
    Without ``load`` a tree's files are not listed (the tree's own row is)."""
    rows = []
    for entry in manifest.get("outputs") or []:
        if is_tree(entry):
            rows.append((entry["tree"], entry["path"]))
            if load is not None:
                # A tree missing or damaged (fsck says so): its files name no producer.
                with contextlib.suppress(DotnbError, OSError):
                    rows += [(e["hash"], e["path"]) for e in tree_files(entry, load)]

        elif entry.get("hash"):
            rows.append((entry["hash"], entry["path"]))
    return rows


def input_rows(manifest: dict[str, Any], load: Load | None = None) -> list[InputRow]:
    """The rows the ``inputs`` table holds for a run: one per file it read (hash '' when
    its content was not stored), in a folder's tree or not, and one per external
    reference.  Lineage follows files, so a tree has no row of its own; without
    ``load`` a tree's files are not listed."""
    rows: list[InputRow] = []
    for entry in manifest.get("inputs") or []:
        if is_tree(entry):
            if load is not None:
                with contextlib.suppress(DotnbError, OSError):
                    rows += [
                        (e.get("hash") or "", e["path"], e.get("produced_by") or "", 0)
                        for e in tree_files(entry, load)
                    ]
        else:
            rows.append((entry.get("hash") or "", entry["path"], entry.get("produced_by") or "", 0))
    rows += [("", str(e["path"]), "", 1) for e in manifest.get("external_inputs") or [] if e.get("path")]
    return rows


def search_text(manifest: dict[str, Any]) -> str:
    """What ``dotnb log --text`` searches in a run: its name, params and code, lowercased."""
    parts = [
        manifest.get("name") or "",
        _PARAMS_JSON.encode(manifest.get("params") or {}),
        manifest.get("code") or "",
    ]
    return "\n".join(parts).lower()
