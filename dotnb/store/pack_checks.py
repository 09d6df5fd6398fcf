"""What ``dotnb fsck`` checks in packs, and the orphans it and ``dotnb gc`` remove."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dotnb.store.errors import StoreFormatError
from dotnb.store.hashing import hash_bytes
from dotnb.store.packs import PackSet

# A pack file without its index younger than this may be a writer's, between its
# two renames (microseconds apart): it is left alone.
ORPHAN_GRACE_S = 60.0


@dataclass
class PackReport:
    checked: int = 0
    corrupted: list[str] = field(default_factory=list)
    damaged: list[dict[str, str]] = field(default_factory=list)


def check_packs(packs: PackSet, progress: Callable[[int], None] | None = None) -> PackReport:
    """Re-hash every packed object against its name.

    An object whose bytes differ, or that a pack cut short no longer holds whole,
    is corrupted; a pack whose index cannot be read is damaged (its objects are
    then missing for every run that uses them).
    """
    report = PackReport()
    for name in packs.names():
        try:
            for digest, data in packs.iter_objects(name):
                if hash_bytes(data) != digest:
                    report.corrupted.append(digest)
                report.checked += 1
                if progress is not None:
                    progress(1)
        except FileNotFoundError as exc:
            if os.path.exists(packs.index_path(name)):  # not repacked away meanwhile
                report.damaged.append({"pack": name, "error": f"{exc.strerror}: {exc.filename}"})
        except StoreFormatError as exc:
            report.damaged.append({"pack": name, "error": str(exc)})
    return report


def remove_orphan_packs(packs: PackSet, grace_s: float = ORPHAN_GRACE_S, dry_run: bool = False) -> list[str]:
    """Remove pack files without their index older than ``grace_s``; their names."""
    removed: list[str] = []
    now = time.time()
    for path in packs.orphans():
        try:
            if now - path.stat().st_mtime < grace_s:
                continue
            if not dry_run:
                Path(path).unlink()
        except FileNotFoundError:
            continue
        removed.append(path.name)
    return removed
