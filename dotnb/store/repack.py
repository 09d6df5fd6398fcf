"""``dotnb gc`` for packed objects: packs holding objects no run uses are written anew.

A pack is never modified.  To free what no run references, the objects that
runs still use are copied (and checked) into one new pack, then each old pack
is removed by the protocol gc uses for loose objects: its index is moved into
the tmp folder (from then on no writer finds its objects, and one that needs
them stores them again), its mtime is read again under the new name (a writer
that reused one of its objects before that made it young: it goes back), and
only then is the pack deleted.  A killed gc leaves at most a moved index,
which :func:`return_doomed_packs` puts back while its pack is still there.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from dotnb.store.errors import StoreFormatError
from dotnb.store.hashing import hash_bytes
from dotnb.store.objects import ObjectStore
from dotnb.store.packs import INDEX_SUFFIX, PACK_MIN_OBJECTS, PackSet, PackWriter, is_pack_name

# Where gc moves a pack's index while it decides (in the store's tmp folder).
DOOMED_PACK_PREFIX = "gc-pack-"
# More live packs than this: every pack past its grace period is merged into one,
# even one with nothing to free (each lookup table load reads every index).
MAX_PACKS = 32


@dataclass
class RepackResult:
    removed: list[str] = field(default_factory=list)  # objects freed
    bytes_freed: int = 0
    kept_within_grace: int = 0  # unreferenced objects in packs too young to repack
    packs_removed: list[str] = field(default_factory=list)
    packs_written: list[str] = field(default_factory=list)
    # Packs left as they are because an object runs use failed its check in them.
    damaged_packs_kept: list[str] = field(default_factory=list)


def repack(
    packs: PackSet, referenced: Collection[str], tmp_dir: Path, grace_s: float, dry_run: bool = False
) -> RepackResult:
    """Free the packed objects not in ``referenced`` that are past ``grace_s``."""
    result = RepackResult()
    now = time.time()
    names = packs.names()
    merge_all = len(names) > MAX_PACKS
    chosen: list[tuple[str, list[tuple[str, int, int]]]] = []
    for name in names:
        try:
            records = packs.records(name)
            young = now - os.stat(packs.index_path(name)).st_mtime < grace_s
        except (FileNotFoundError, StoreFormatError):
            continue  # repacked by another gc, or damaged (fsck reports it)
        garbage = sum(1 for digest, _, _ in records if digest not in referenced)
        if young:
            result.kept_within_grace += garbage
        elif garbage or merge_all:
            chosen.append((name, records))
    if not chosen or (len(chosen) == 1 and all(d in referenced for d, _, _ in chosen[0][1])):
        return result
    if dry_run:
        for _, records in chosen:
            for digest, _, length in records:
                if digest not in referenced:
                    result.removed.append(digest)
                    result.bytes_freed += length
        return result
    drop: list[tuple[str, list[tuple[str, int, int]]]] = []
    writer = packs.writer()
    try:
        for name, records in chosen:
            try:
                intact = _copy_used(packs, name, referenced, writer)
            except FileNotFoundError:
                continue  # repacked by another gc meanwhile
            if intact:
                drop.append((name, records))
            else:
                result.damaged_packs_kept.append(name)
        written = writer.finish()
    finally:
        writer.abort()
    if written is not None:
        result.packs_written.append(written)
    for name, records in drop:
        if _collect(packs, name, tmp_dir, grace_s):
            result.packs_removed.append(name)
            for digest, _, length in records:
                if digest not in referenced:
                    result.removed.append(digest)
                    result.bytes_freed += length
        else:
            result.kept_within_grace += sum(1 for d, _, _ in records if d not in referenced)
    return result


@dataclass
class LoosePacked:
    packed: list[str] = field(default_factory=list)
    packs_written: list[str] = field(default_factory=list)


def pack_loose(objects: ObjectStore, digests: list[str], dry_run: bool = False) -> LoosePacked:
    """Move small objects stored one file each (``digests``: ones runs use, past the
    grace period, with no other link) into one new pack, when there are at least
    :data:`~dotnb.store.packs.PACK_MIN_OBJECTS`: a checkpoint's linked files, objects
    pulled one by one.  Each is checked on the way (one that fails stays as it is,
    for fsck); the files go only once the pack is live, so a reader finds every
    object in one place or the other at every moment."""
    result = LoosePacked()
    if len(digests) < PACK_MIN_OBJECTS:
        return result
    if dry_run:
        result.packed = sorted(digests)
        return result
    writer = objects.new_pack()
    try:
        for digest in sorted(digests):
            path = objects.loose_target(digest)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            if hash_bytes(data) == digest:
                writer.add(digest, data)
        written = writer.finish()
    finally:
        writer.abort()
    if written is None:
        return result
    result.packs_written.append(written)
    for digest in sorted(writer.records):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(objects.loose_target(digest))
        result.packed.append(digest)
    return result


def _copy_used(packs: PackSet, name: str, referenced: Collection[str], writer: PackWriter) -> bool:
    """Copy pack ``name``'s referenced objects into ``writer``, each checked; False
    when one fails its check (the pack is then kept, for fsck to report)."""
    intact = True
    for digest, data in packs.iter_objects(name):
        if digest not in referenced or digest in writer:
            continue
        if hash_bytes(data) != digest:
            intact = False
            continue
        writer.add(digest, data)
    return intact


def _collect(packs: PackSet, name: str, tmp_dir: Path, grace_s: float) -> bool:
    """Delete pack ``name`` unless a writer reused one of its objects since gc looked."""
    doomed = tmp_dir / f"{DOOMED_PACK_PREFIX}{name}{INDEX_SUFFIX}"
    tmp_dir.mkdir(exist_ok=True)
    try:
        os.rename(packs.index_path(name), doomed)
    except FileNotFoundError:
        return False
    if time.time() - os.stat(doomed).st_mtime < grace_s:
        os.rename(doomed, packs.index_path(name))
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(packs.pack_path(name))
    os.unlink(doomed)
    return True


def return_doomed_packs(packs: PackSet, tmp_dir: Path) -> list[str]:
    """Put back the indexes a killed gc left moved, while their pack is still there
    (the next gc decides again); drop those whose pack it had deleted."""
    back: list[str] = []
    try:
        names = os.listdir(tmp_dir)
    except FileNotFoundError:
        return back
    for entry in names:
        name = entry.removeprefix(DOOMED_PACK_PREFIX).removesuffix(INDEX_SUFFIX)
        if not entry.startswith(DOOMED_PACK_PREFIX) or not is_pack_name(name):
            continue
        with contextlib.suppress(FileNotFoundError):
            if packs.pack_path(name).exists() and not packs.index_path(name).exists():
                os.rename(tmp_dir / entry, packs.index_path(name))
                back.append(name)
            else:
                os.unlink(tmp_dir / entry)
    return back
