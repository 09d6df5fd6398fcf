"""A run's recorded files compared with the files on disk now.

For each input, output and the notebook snapshot: the recorded hash, the hash
of the file at that path now, and a state — ``same``, ``modified``, ``missing``
(no file there now), ``not-stored`` (the run recorded no content for it) or
``unknown`` (the path cannot be checked: a folder is in the way, or it leads
outside the project root).  Unchanged files cost a stat: hashes come from the
stat cache, and a file hashed here is added to it.
"""

from __future__ import annotations

import os
import stat
import time
from typing import Any

from dotnb.store.errors import PathOutsideRoot
from dotnb.store.hashing import hash_file
from dotnb.store.index import StatKey
from dotnb.store.paths import confine, readable_inside
from dotnb.store.repo import Store

_UNKNOWN = "unknown"


def current_hash(store: Store, rel: str, recorded: list[tuple[str, StatKey, str]]) -> str | None:
    """Hash of the regular file at ``rel`` now, None when there is none.

    Raises :class:`PathOutsideRoot` for a path that leaves the root (also
    through a symlink) and :class:`IsADirectoryError` for a non-file.  Newly
    hashed files are appended to ``recorded`` for the stat cache.
    """
    path = confine(store.root, rel)
    if path.is_symlink() and not readable_inside(store.root, path):
        raise PathOutsideRoot(f"{rel!r} is a symlink leading outside the project root")
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(st.st_mode):
        raise IsADirectoryError(rel)
    key = StatKey.of(st)
    known = store.index.stat_lookup(rel, key)
    if known:
        return known
    digest, _ = hash_file(path)
    recorded.append((rel, key, digest))
    return digest


def file_status(store: Store, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{path, role, recorded, current, state}]`` for outputs, inputs and the notebook."""
    wanted: list[tuple[str, str, str | None]] = []
    for role, key in (("output", "outputs"), ("input", "inputs")):
        for entry in manifest.get(key) or []:
            wanted.append((entry["path"], role, entry.get("hash")))
    snapshot = manifest.get("notebook_snapshot")
    if manifest.get("notebook") and isinstance(snapshot, dict) and snapshot.get("hash"):
        wanted.append((manifest["notebook"], "notebook", snapshot["hash"]))

    hashes: dict[str, str | None] = {}
    recorded: list[tuple[str, StatKey, str]] = []
    result = []
    for rel, role, digest in wanted:
        state: str
        if rel not in hashes:
            try:
                hashes[rel] = current_hash(store, rel, recorded)
            except (PathOutsideRoot, OSError):
                hashes[rel] = _UNKNOWN
        now = hashes[rel]
        if now == _UNKNOWN:
            state, now = _UNKNOWN, None
        elif not digest:
            state = "not-stored"
        elif now is None:
            state = "missing"
        else:
            state = "same" if now == digest else "modified"
        result.append({"path": rel, "role": role, "recorded": digest, "current": now, "state": state})
    store.index.stat_record(recorded, time.time_ns())
    return result
