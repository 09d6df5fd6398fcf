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
from dotnb.store.trees import is_tree, tree_files

_UNKNOWN = "unknown"

# A folder recorded as a tree: at most this many rows for its files that are not the
# same (its row counts them all); a folder of 100,000 deleted files is one short answer.
FOLDER_ROWS = 500


def file_status(store: Store, manifest: dict[str, Any], folders: bool = False) -> list[dict[str, Any]]:
    """``[{path, role, recorded, current, state}]`` for outputs, inputs and the notebook.

    With ``folders``, a folder recorded as a tree is one row, ``{path, role,
    recorded: its tree, current: None, state, files, differing}`` (state ``same``
    when every file in it is, else ``modified``), followed by rows for the first
    :data:`FOLDER_ROWS` of its files that are not the same; without, every file
    has its row.
    """
    wanted: list[tuple[str, str, str | None, int | None]] = []  # rel, role, hash, folder row
    folder_rows: list[dict[str, Any]] = []
    for role, key in (("output", "outputs"), ("input", "inputs")):
        for entry in manifest.get(key) or []:
            if not is_tree(entry):
                wanted.append((entry["path"], role, entry.get("hash"), None))
                continue
            slot: int | None = None
            if folders:
                slot = len(folder_rows)
                folder_rows.append(
                    {
                        "path": entry["path"],
                        "role": role,
                        "recorded": entry["tree"],
                        "current": None,
                        "state": "same",
                        "files": int(entry.get("files") or 0),
                        "differing": 0,
                    }
                )
            for f in tree_files(entry, store.objects.read_bytes):
                wanted.append((f["path"], role, f["hash"], slot))
    snapshot = manifest.get("notebook_snapshot")
    if manifest.get("notebook") and isinstance(snapshot, dict) and snapshot.get("hash"):
        wanted.append((manifest["notebook"], "notebook", snapshot["hash"], None))

    recorded: list[tuple[str, StatKey, str]] = []
    hashes = _current_hashes(store, [rel for rel, _, _, _ in wanted], recorded)
    result: list[dict[str, Any]] = []
    differing: list[list[dict[str, Any]]] = [[] for _ in folder_rows]
    for rel, role, digest, slot in wanted:
        state: str
        now = hashes[rel]
        if now == _UNKNOWN:
            state, now = _UNKNOWN, None
        elif not digest:
            state = "not-stored"
        elif now is None:
            state = "missing"
        else:
            state = "same" if now == digest else "modified"
        row = {"path": rel, "role": role, "recorded": digest, "current": now, "state": state}
        if slot is None:
            result.append(row)
        elif state != "same":
            differing[slot].append(row)
    for folder, rows in zip(folder_rows, differing, strict=True):
        if rows:
            folder["state"], folder["differing"] = "modified", len(rows)
        result += [folder, *rows[:FOLDER_ROWS]]
    store.index.stat_record(recorded, time.time_ns())
    return result


def _current_hashes(
    store: Store, rels: list[str], recorded: list[tuple[str, StatKey, str]]
) -> dict[str, str | None]:
    """The hash of the regular file at each path now: None when there is none,
    ``unknown`` for a path that leaves the root (also through a symlink), a folder
    or special file, or an unreadable one.  The stat cache is asked once for them
    all; files hashed here are appended to ``recorded`` for it."""
    found: dict[str, str | None] = {}
    present: list[tuple[str, str, StatKey]] = []
    root = store.root
    for rel in dict.fromkeys(rels):
        try:
            path = confine(root, rel)
            if path.is_symlink() and not readable_inside(root, path):
                raise PathOutsideRoot(rel)
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            found[rel] = None
            continue
        except (PathOutsideRoot, OSError):
            found[rel] = _UNKNOWN
            continue
        if not stat.S_ISREG(st.st_mode):
            found[rel] = _UNKNOWN
            continue
        present.append((rel, str(path), StatKey.of(st)))
    known = store.index.stat_lookup_many([(rel, key) for rel, _, key in present])
    for rel, full, key in present:
        digest = known.get(rel)
        if digest is None:
            try:
                digest = hash_file(full)[0]
            except OSError:
                found[rel] = _UNKNOWN
                continue
            recorded.append((rel, key, digest))
        found[rel] = digest
    return found
