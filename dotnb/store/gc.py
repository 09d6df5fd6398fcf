"""Garbage collection (``dotnb gc``): objects no run references, and leftover temp files."""

from __future__ import annotations

import os
import time
from typing import Any

from dotnb.store.layout import TMP_DIR
from dotnb.store.repo import Store

# Objects younger than this are never collected: a run being recorded right now
# has written its data objects but not yet the manifest that references them.
DEFAULT_GC_GRACE_S = 3600.0


def gc(store: Store, dry_run: bool = False, grace_s: float = DEFAULT_GC_GRACE_S) -> dict[str, Any]:
    """Remove objects no manifest references, older than the grace period.

    Refuses (raises) when some run cannot be read: the objects it uses are
    unknown and would otherwise be deleted as unreferenced.
    """
    refs = store.referenced_objects(strict=True)
    now = time.time()
    removed: list[str] = []
    kept_young = 0
    freed = 0
    for digest in store.objects.iter_digests():
        if digest in refs:
            continue
        path = store.objects.path_for(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if now - st.st_mtime < grace_s:
            kept_young += 1
            continue
        removed.append(digest)
        freed += st.st_size
        if not dry_run:
            store.objects.remove(digest)
    # Leftover temp files from crashed writers, past the same grace period.
    tmp_removed = 0
    tmp_dir = store.dir / TMP_DIR
    if tmp_dir.exists():
        for name in os.listdir(tmp_dir):
            p = tmp_dir / name
            try:
                if now - p.stat().st_mtime >= grace_s:
                    tmp_removed += 1
                    if not dry_run:
                        p.unlink()
            except FileNotFoundError:
                continue
    return {
        "dry_run": dry_run,
        "removed": removed,
        "bytes_freed": freed,
        "kept_within_grace": kept_young,
        "temp_files_removed": tmp_removed,
    }
