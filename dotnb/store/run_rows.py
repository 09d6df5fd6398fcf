"""What the index holds for a run, derived from its manifest: the summary ``dotnb log``
prints, the search text, the outputs' and inputs' rows."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from dotnb.store.errors import DotnbError
from dotnb.store.index import Index, hash_prefix
from dotnb.store.trees import Load, file_count, is_tree, tree_files
from dotnb.store.vocabulary import RUN

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from dotnb.store.index import InputRow, TreeMembers


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
    trees: list[TreeMembers] | None = None,
) -> dict[str, Any]:
    """Write a run's index rows in the write transaction ``tx``; returns its summary.
    ``outputs``, ``inputs`` and ``trees``: its :func:`output_rows`, :func:`input_rows`
    and :func:`tree_members`, when the caller has them; else they are read from the
    manifest (``load`` reads the objects of its trees)."""
    summary = run_summary(manifest)
    summary["remote"] = origin
    if outputs is None:
        outputs = output_rows(manifest, load)
    if inputs is None:
        inputs = input_rows(manifest)
    if trees is None:
        trees = tree_members(manifest, lambda tree: Index.has_tree_members_tx(tx, tree), load)
    # Through the class attribute: crash tests replace Index.insert_run.
    Index.insert_run(
        tx, manifest_hash, summary, search_text(manifest), outputs, new=new, inputs=inputs, trees=trees
    )
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


# What an inputs row stands for (its kind column).
INPUT_FILE = 0
INPUT_EXTERNAL = 1
INPUT_TREE = 2


def input_rows(manifest: dict[str, Any]) -> list[InputRow]:
    """The rows the ``inputs`` table holds for a run: one per file it read (hash '' when
    its content was not stored), one per folder recorded as a tree (the tree's files are
    listed once per tree, by :func:`tree_members`), one per external reference."""
    rows: list[InputRow] = []
    for entry in manifest.get("inputs") or []:
        if is_tree(entry):
            rows.append((entry["tree"], entry["path"], "", INPUT_TREE))
        else:
            rows.append((entry.get("hash") or "", entry["path"], entry.get("produced_by") or "", INPUT_FILE))
    rows += [
        ("", str(e["path"]), "", INPUT_EXTERNAL)
        for e in manifest.get("external_inputs") or []
        if e.get("path")
    ]
    return rows


def tree_members(
    manifest: dict[str, Any],
    known: Callable[[str], bool],
    load: Load | None,
    files: Iterable[dict[str, Any]] = (),
) -> list[TreeMembers]:
    """The ``tree_members`` of the input trees of a manifest that ``known`` says are not
    listed yet: from ``files`` (the run's file entries before folders became trees)
    when they hold the tree's files, else read from the tree (``load``; without it, none)."""
    new = {e["path"]: e["tree"] for e in manifest.get("inputs") or [] if is_tree(e) and not known(e["tree"])}
    if not new:
        return []
    found: dict[str, list[int]] = {folder: [] for folder in new}
    for e in files:  # each file to the tree holding it: its nearest folder that is one
        folder = e["path"].rpartition("/")[0]
        while folder and folder not in new:
            folder = folder.rpartition("/")[0]
        if folder and e.get("hash"):
            found[folder].append(hash_prefix(e["hash"]))
    for folder, tree in new.items():
        if not found[folder] and load is not None:
            # A tree missing or damaged (fsck says so): its files name no reader.
            with contextlib.suppress(DotnbError, OSError):
                entry = {"path": folder, "tree": tree}
                found[folder] = [hash_prefix(e["hash"]) for e in tree_files(entry, load)]
    # Sorted: rows appended in key order fill their pages (random order leaves them half full).
    return [(tree, sorted(found[folder])) for folder, tree in new.items()]


def search_text(manifest: dict[str, Any]) -> str:
    """What ``dotnb log --text`` searches in a run: its name, params and code, lowercased."""
    parts = [
        manifest.get("name") or "",
        _PARAMS_JSON.encode(manifest.get("params") or {}),
        manifest.get("code") or "",
    ]
    return "\n".join(parts).lower()
