"""Storing the current content of the project's files (a run's inputs and outputs,
what a restore will overwrite), through the stat cache so that unchanged files are
never re-hashed."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dotnb.store.index import Index, StatKey
from dotnb.store.objects import SMALL_FILE, ObjectStore
from dotnb.store.paths import Confiner


def snapshot_files(
    root: Path,
    objects: ObjectStore,
    index: Index,
    max_file_size: int,
    rels: Iterable[str],
    progress: Callable[[int], None] | None = None,
    enforce_limit: bool = True,
) -> list[dict[str, Any]]:
    """Store the current content of root-relative files; returns ``{path, hash, size}`` each.

    Unchanged files are found in the stat cache and never re-hashed.  Files
    above ``max_file_size`` are recorded with ``"skipped"`` and no hash; files
    that vanished are recorded with ``"missing": true``.  Checkpoints pass
    ``enforce_limit=False``: a file about to be overwritten is kept whatever its size.
    """
    confined = Confiner(root)
    entries: list[dict[str, Any] | None] = []
    found: list[tuple[int, str, str, StatKey]] = []  # (entry, rel, path, key) to store
    for rel in rels:
        path = confined.path(rel)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            entries.append({"path": rel, "hash": None, "size": None, "missing": True})
            continue
        if enforce_limit and st.st_size > max_file_size:
            entries.append(
                {
                    "path": rel,
                    "hash": None,
                    "size": st.st_size,
                    "skipped": f"larger than the {max_file_size}-byte limit",
                }
            )
            continue
        found.append((len(entries), rel, path, StatKey.of(st)))
        entries.append(None)
    known = index.stat_lookup_many([(rel, key) for _, rel, _, key in found])
    small: list[tuple[int, str, str, StatKey]] = []
    stored: list[tuple[int, str, str, StatKey, tuple[str, int] | None]] = []
    for i, rel, path, key in found:
        digest = known.get(rel)
        if digest is not None and objects.reuse(digest):
            entries[i] = {"path": rel, "hash": digest, "size": key.size}
        elif key.size <= SMALL_FILE:
            small.append((i, rel, path, key))
        else:
            try:
                got: tuple[str, int] | None = objects.put_file(path, progress=progress)
            except FileNotFoundError:
                got = None
            stored.append((i, rel, path, key, got))
    if small:
        results = objects.put_small_files([path for _, _, path, _ in small], progress)
        stored += [(*item, got) for item, got in zip(small, results, strict=True)]
    fresh: list[tuple[str, StatKey, str]] = []
    for i, rel, path, key, got in stored:
        if got is None:
            entries[i] = {"path": rel, "hash": None, "size": None, "missing": True}
            continue
        digest, size = got
        with contextlib.suppress(OSError):
            if StatKey.of(os.stat(path)) == key:  # unchanged while it was read
                fresh.append((rel, key, digest))
        entries[i] = {"path": rel, "hash": digest, "size": size}
    index.stat_record(fresh, time.time_ns())
    return [e for e in entries if e is not None]


def snapshot_one(objects: ObjectStore, max_file_size: int, path: Path) -> tuple[str, int] | None:
    """Copy one file's current bytes into the store (used before an overwrite)."""
    try:
        if os.stat(path).st_size > max_file_size:
            return None
        return objects.put_file(path)
    except OSError:
        return None
