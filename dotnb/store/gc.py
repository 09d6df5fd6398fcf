"""Garbage collection (``dotnb gc``): objects no run references, and leftover temp files."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from dotnb.store import strays
from dotnb.store.hashing import is_hash
from dotnb.store.layout import TMP_DIR
from dotnb.store.pack_checks import remove_orphan_packs
from dotnb.store.packs import PACK_OBJECT_MAX
from dotnb.store.repack import pack_loose, repack, return_doomed_packs
from dotnb.store.repo import Store

# Objects younger than this are never collected: a run being recorded right now
# has written its data objects but not yet the manifest that references them.
DEFAULT_GC_GRACE_S = 3600.0


# An object gc is about to delete waits under this name in the store's tmp folder.
DOOMED_PREFIX = "gc-"


def gc(store: Store, dry_run: bool = False, grace_s: float = DEFAULT_GC_GRACE_S) -> dict[str, Any]:
    """Remove objects no manifest references, older than the grace period.

    Refuses (raises) when some run cannot be read: the objects it uses are
    unknown and would otherwise be deleted as unreferenced.

    A run recorded while gc runs may start using an object gc found unreferenced:
    its writer refreshes the object's mtime (``ObjectStore.reuse``) before it
    commits.  So an object is first renamed out of ``objects/`` (a writer that
    comes later finds it missing and writes it again) and its mtime read again
    under the new name (a writer that came earlier made it young): a young one
    goes back, an old one is deleted.  No writer can touch it between that check
    and the deletion.
    """
    return_doomed(store)
    refs = store.referenced_objects(strict=True)
    packed = repack(store.objects.packs, refs, store.dir / TMP_DIR, grace_s, dry_run)
    now = time.time()
    removed: list[str] = []
    kept_young = 0
    freed = 0
    tmp_dir = store.dir / TMP_DIR
    packable: list[str] = []  # small objects runs use, stored one file each
    for digest in store.objects.iter_loose():
        path = store.objects.path_for(digest)
        if digest in refs:
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                if st.st_size <= PACK_OBJECT_MAX and st.st_nlink == 1 and now - st.st_mtime >= grace_s:
                    packable.append(digest)
            continue
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if now - st.st_mtime < grace_s:
            kept_young += 1
            continue
        if not dry_run:
            size = _collect(path, tmp_dir / f"{DOOMED_PREFIX}{digest}", grace_s)
            if size is None:
                kept_young += 1
                continue
        removed.append(digest)
        freed += st.st_size
    packed_loose = pack_loose(store.objects, packable, dry_run)
    # Leftover temp files from crashed writers, past the same grace period.
    tmp_removed = 0
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
    # Temps a killed writer (a restore, a kernel) left beside the user's files or in
    # the store's tmp folder: dotnb's own name, their process gone.
    stray = strays.strays_under(str(store.root)) + strays.strays_in([str(tmp_dir)])
    if not dry_run:
        stray = strays.remove(stray)
    return {
        "dry_run": dry_run,
        "removed": removed + packed.removed,
        "bytes_freed": freed + packed.bytes_freed,
        "kept_within_grace": kept_young + packed.kept_within_grace,
        "packs_removed": packed.packs_removed,
        "packs_written": packed.packs_written + packed_loose.packs_written,
        # Small objects runs use, moved from files of their own into a pack.
        "objects_packed": packed_loose.packed,
        "damaged_packs_kept": packed.damaged_packs_kept,
        "orphan_packs_removed": remove_orphan_packs(store.objects.packs, dry_run=dry_run),
        "temp_files_removed": tmp_removed,
        "stray_temp_files": [os.path.relpath(p, store.root) for p in stray],
    }


def _collect(path: Path, doomed: Path, grace_s: float) -> int | None:
    """Delete the object at ``path`` unless a writer used it since gc looked; its
    size, or None when it was kept (see :func:`gc`)."""
    doomed.parent.mkdir(exist_ok=True)
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return None
    st = os.stat(doomed)
    if time.time() - st.st_mtime < grace_s:
        # Reused between gc's first look and the rename: it goes back (a writer
        # that wrote it again meanwhile wrote the same bytes).
        os.rename(doomed, path)
        return None
    os.unlink(doomed)
    return st.st_size


def return_doomed(store: Store) -> list[str]:
    """Put back objects (and packs) a gc that was killed left renamed in the tmp
    folder, if they are missing from ``objects/`` (a run may use one); the next gc
    decides again.  Returns their hashes (and the packs' names)."""
    tmp_dir = store.dir / TMP_DIR
    back: list[str] = return_doomed_packs(store.objects.packs, tmp_dir)
    try:
        names = os.listdir(tmp_dir)
    except FileNotFoundError:
        return back
    for name in names:
        digest = name.removeprefix(DOOMED_PREFIX)
        if not name.startswith(DOOMED_PREFIX) or not is_hash(digest):
            continue
        target = store.objects.path_for(digest)
        if target.exists():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_dir / name)
            continue
        target.parent.mkdir(exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.rename(tmp_dir / name, target)
            back.append(digest)
    return back
