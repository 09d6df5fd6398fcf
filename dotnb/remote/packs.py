"""Packs on a remote: many small objects pushed as one upload, fetched by byte ranges.

A push of 100,000 small files as objects of their own is 100,000 requests; as a
pack it is two.  A remote's packs have the local format (:mod:`dotnb.store.packs`)
under ``packs/``: ``<name>.pack`` is uploaded first and ``<name>.idx`` last, so a
pack is on the remote, for every reader, only once its index is (a push killed
in between leaves a pack file no one reads, and the next push uploads its
objects again).  The name is the hash of the index, so an index is never
replaced and a copy of it (``.dotnb/pack-cache/``) never goes stale.

A reader asks for the byte ranges it needs (adjacent objects in one request),
checks every object against its name, and stores what passes; nothing
unverified enters the store.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dotnb.remote.backend import Backend
from dotnb.remote.errors import RemoteObjectCorrupt
from dotnb.remote.parallel import parallel
from dotnb.remote.progress import Meter
from dotnb.store.atomic import write_bytes
from dotnb.store.errors import StoreFormatError
from dotnb.store.hashing import hash_bytes
from dotnb.store.layout import PACK_CACHE_DIR, PACKS_DIR, pack_key
from dotnb.store.packs import (
    INDEX_SUFFIX,
    PACK_MAGIC,
    PACK_SUFFIX,
    Location,
    index_bytes,
    is_pack_name,
    pack_name,
    parse_index,
)

if TYPE_CHECKING:
    from dotnb.store.repo import Store

# One pushed pack holds at most this many bytes (a pack per this much of a push).
PUSH_PACK_MAX = 256 * 1024 * 1024
# Two wanted objects of one pack this close are read in one request, gap included.
RANGE_GAP = 64 * 1024


@dataclass
class RemotePacks:
    """The packs a remote holds, and where each packed object is in them."""

    where: dict[str, Location] = field(default_factory=dict)
    damaged: dict[str, str] = field(default_factory=dict)  # pack -> why its index is unusable

    def __contains__(self, digest: str) -> bool:
        return digest in self.where


def load_remote_packs(store: Store, backend: Backend) -> RemotePacks:
    """List the remote's packs and read their indexes (from the local copy when there
    is one; each downloaded index is checked against its name before it is kept)."""
    found = RemotePacks()
    names = sorted(
        key[len(PACKS_DIR) + 1 : -len(INDEX_SUFFIX)]
        for key in backend.list_keys(f"{PACKS_DIR}/")
        if key.endswith(INDEX_SUFFIX) and is_pack_name(key[len(PACKS_DIR) + 1 : -len(INDEX_SUFFIX)])
    )
    cache = store.dir / PACK_CACHE_DIR

    def read(name: str) -> tuple[str, list[tuple[str, int, int]] | str]:
        copy = cache / f"{name}{INDEX_SUFFIX}"
        with contextlib.suppress(FileNotFoundError, StoreFormatError):
            return name, parse_index(name, copy.read_bytes())
        data = backend.read(pack_key(name, INDEX_SUFFIX))
        if data is None:
            return name, "its index vanished while it was listed"
        try:
            records = parse_index(name, data)
        except StoreFormatError as exc:
            return name, str(exc)
        cache.mkdir(exist_ok=True)
        write_bytes(copy, data, sync=False, tmp_dir=store.dir / "tmp")
        return name, records

    for name, outcome in parallel(read, names):
        if isinstance(outcome, str):
            found.damaged[name] = outcome
            continue
        for digest, offset, length in outcome:
            found.where.setdefault(digest, Location(name, offset, length))
    return found


def push_packed(
    store: Store,
    backend: Backend,
    digests: list[str],
    meter: Meter,
) -> list[str]:
    """Upload ``digests`` (small objects the remote lacks) as packs; their pack names.

    Each object is read from the store and checked first: a corrupted local object
    is never pushed.  ``meter`` counts each object once its pack is up.
    """
    names: list[str] = []
    start = 0
    while start < len(digests):
        fd, tmp = store.objects.new_tempfile()
        records: list[tuple[str, int, int]] = []
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(PACK_MAGIC)
                offset = len(PACK_MAGIC)
                while start < len(digests) and offset < PUSH_PACK_MAX:
                    digest = digests[start]
                    data = store.objects.read_bytes(digest)  # verified
                    out.write(data)
                    records.append((digest, offset, len(data)))
                    offset += len(data)
                    start += 1
            index = index_bytes(records)
            name = pack_name(index)
            backend.upload(tmp, pack_key(name, PACK_SUFFIX))
            backend.write(pack_key(name, INDEX_SUFFIX), index, create_only=True)  # the commit point
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        names.append(name)
        for _, _, length in records:
            meter.add_bytes(length)
            meter.item()
    return names


def fetch_packed(
    backend: Backend,
    packs: RemotePacks,
    digests: list[str],
    on_object: Callable[[str, bytes], None],
) -> None:
    """Read ``digests`` (each in ``packs``) from the remote's packs by byte ranges,
    adjacent objects in one request, and hand each one's bytes, checked against its
    name, to ``on_object``.  A mismatch raises RemoteObjectCorrupt (nothing of that
    object is handed on)."""
    spans: list[tuple[str, int, int, list[tuple[str, Location]]]] = []  # pack, start, end, objects
    by_pack: dict[str, list[tuple[str, Location]]] = {}
    for digest in digests:
        where = packs.where[digest]
        by_pack.setdefault(where.pack, []).append((digest, where))
    for name, items in sorted(by_pack.items()):
        items.sort(key=lambda item: item[1].offset)
        for digest, where in items:
            end = where.offset + where.length
            if spans and spans[-1][0] == name and where.offset - spans[-1][2] <= RANGE_GAP:
                pack, first, last, members = spans[-1]
                spans[-1] = (pack, first, max(last, end), [*members, (digest, where)])
            else:
                spans.append((name, where.offset, end, [(digest, where)]))

    def read(span: tuple[str, int, int, list[tuple[str, Location]]]) -> None:
        name, first, last, members = span
        data = backend.read_range(pack_key(name, PACK_SUFFIX), first, last - first) or b""
        for digest, where in members:
            part = data[where.offset - first : where.offset - first + where.length]
            if hash_bytes(part) != digest:
                raise RemoteObjectCorrupt(
                    f"{backend.describe()}: object {digest[:12]} is corrupted in pack {name[:12]} there "
                    f"(its bytes do not match its name); it was not stored (run `dotnb fsck --remote "
                    f"{backend.name}`)"
                )
            on_object(digest, part)

    parallel(read, spans)


def read_packed(backend: Backend, packs: RemotePacks, digest: str) -> bytes | None:
    """The bytes recorded for ``digest`` in the remote's packs (unchecked), or None
    when no pack there holds it."""
    where = packs.where.get(digest)
    if where is None:
        return None
    return backend.read_range(pack_key(where.pack, PACK_SUFFIX), where.offset, where.length)


def check_remote_packs(backend: Backend, packs: RemotePacks, on_object: Callable[[int], None]) -> list[str]:
    """Re-hash every object in the remote's packs (each pack read whole, once); the
    corrupted ones (bytes that differ, or a pack cut short)."""
    by_pack: dict[str, list[tuple[str, Location]]] = {}
    for digest, where in packs.where.items():
        by_pack.setdefault(where.pack, []).append((digest, where))

    def check(name: str) -> list[str]:
        data = backend.read(pack_key(name, PACK_SUFFIX)) or b""
        bad = []
        for digest, where in by_pack[name]:
            if hash_bytes(data[where.offset : where.offset + where.length]) != digest:
                bad.append(digest)
            on_object(where.length)
        return bad

    return sorted(d for bad in parallel(check, sorted(by_pack)) for d in bad)
