"""Pack files: many small objects in one file, found through a sorted index.

A folder of 100,000 files of 1 KiB stored one object per file takes 100,000
inodes and a 4 KiB block each (400 MB for 100 MB of data).  A pack holds such
objects back to back, as git packs do::

    packs/<name>.pack   b"DOTNBPK1", then each object's bytes, back to back
    packs/<name>.idx    b"DOTNBIX1", then one record per object, sorted by hash:
                        32 bytes of hash, offset and length as big-endian u64

``<name>`` is the BLAKE3 of the index file's bytes, so a pack is named by what it
holds and never modified.  Objects are not compressed: restore copies them out
as they are, and most data files (images, audio, Parquet) are compressed already.

Invariants:
- a pack is live when its index is in ``packs/``: the pack file and the index are
  made durable in the tmp folder, then the pack is renamed into place, then the
  index (the commit point), then the folder is made durable.  A crash leaves at
  most a temp (removed as a stray) or a pack without its index (an orphan: no
  reader sees it; ``gc`` and ``fsck`` remove it once it is past their grace);
- every object is checked against its name when read (:meth:`ObjectStore.read_bytes
  <dotnb.store.objects.ObjectStore.read_bytes>`); bytes past the end of a pack
  that was cut short read as a corrupted object, never as another object's bytes;
- a writer that reuses a packed object refreshes its index's mtime (once a second
  at most per pack and process), as it refreshes a loose object's: ``gc`` does
  not repack a pack younger than its grace period, and re-checks the mtime after
  moving the index aside (see :mod:`dotnb.store.gc`).
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dotnb.store.atomic import create_temp
from dotnb.store.errors import StoreFormatError
from dotnb.store.hashing import hash_bytes, is_hash
from dotnb.store.rawio import BINARY, pread
from dotnb.store.syncing import fsync_path

PACK_MAGIC = b"DOTNBPK1"
INDEX_MAGIC = b"DOTNBIX1"
RECORD = struct.Struct(">32sQQ")
PACK_SUFFIX = ".pack"
INDEX_SUFFIX = ".idx"
# Objects up to this size go into packs when many are stored at once; larger ones
# stay one file each (a block's waste is small beside them, and restore copies them
# with the kernel's copy_file_range, which can share their blocks).
PACK_OBJECT_MAX = 128 * 1024
# Fewer new small objects than this in one batch are stored one file each.
PACK_MIN_OBJECTS = 16
# A reuse refreshes a pack index's mtime at most this often per process.
TOUCH_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Location:
    pack: str  # the pack's name
    offset: int
    length: int


def is_pack_name(name: str) -> bool:
    return is_hash(name)


def parse_index(name: str, data: bytes) -> list[tuple[str, int, int]]:
    """The records of pack index ``name``: (hash, offset, length), sorted by hash.

    Raises StoreFormatError for an index that is not one: a wrong header, a
    length that is not a whole number of records, a name that is not the hash of
    its bytes, records out of order, or an object placed before the header.
    """
    if not data.startswith(INDEX_MAGIC) or (len(data) - len(INDEX_MAGIC)) % RECORD.size:
        raise StoreFormatError(f"pack index {name[:12]} is not a dotnb pack index")
    if hash_bytes(data) != name:
        raise StoreFormatError(f"pack index {name[:12]} is corrupted (its bytes do not match its name)")
    records = [
        (raw.hex(), offset, length)
        for raw, offset, length in RECORD.iter_unpack(memoryview(data)[len(INDEX_MAGIC) :])
    ]
    for i, (_, offset, _) in enumerate(records):
        if offset < len(PACK_MAGIC) or (i and records[i - 1][0] >= records[i][0]):
            raise StoreFormatError(f"pack index {name[:12]} is malformed")
    return records


def index_bytes(records: Iterable[tuple[str, int, int]]) -> bytes:
    """A pack index of (hash, offset, length) records, in any order."""
    return INDEX_MAGIC + b"".join(RECORD.pack(bytes.fromhex(d), o, n) for d, o, n in sorted(records))


def pack_name(index: bytes) -> str:
    """A pack's name: the hash of its index's bytes."""
    return hash_bytes(index)


class PackWriter:
    """One new pack, written object by object into a temp file, installed by :meth:`finish`.

    Memory holds only the records, never the objects' bytes.
    """

    def __init__(self, packs: PackSet) -> None:
        self.packs = packs
        self.fd, self.tmp = packs.new_temp()
        os.write(self.fd, PACK_MAGIC)
        self.offset = len(PACK_MAGIC)
        self.records: dict[str, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, digest: str) -> bool:
        return digest in self.records

    def add(self, digest: str, data: bytes) -> None:
        """Append an object (its bytes already known to hash to ``digest``)."""
        if digest in self.records:
            return
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.records[digest] = (self.offset, len(data))
        self.offset += len(data)

    def index(self) -> bytes:
        """The pack's index, for the objects added so far."""
        return index_bytes((d, *self.records[d]) for d in self.records)

    def finish(self) -> str | None:
        """Make the pack durable and live; its name, or None when it holds nothing."""
        try:
            if not self.records:
                return None
            os.fsync(self.fd)
            return self.packs.install(self.tmp, self.index())
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop what was written (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


class PackSet:
    """The live packs of a store's ``packs/`` folder, and where each packed object is.

    The table of locations is read from the indexes once, and again only when a
    lookup misses and the folder changed since (a new pack, or one repacked away).
    """

    def __init__(self, packs_dir: Path, tmp_dir: Path) -> None:
        self.dir = packs_dir
        self.tmp_dir = tmp_dir
        self._lock = threading.Lock()
        self._where: dict[str, Location] = {}
        self._loaded: dict[str, int] = {}  # pack name -> its number of objects
        self._seen_mtime: int | None = None
        self._touched: dict[str, float] = {}
        self._fds: dict[str, int] = {}

    # -- finding -------------------------------------------------------------

    def find(self, digest: str) -> Location | None:
        where = self._where.get(digest)
        if where is None and self._refresh():
            where = self._where.get(digest)
        return where

    def names(self) -> list[str]:
        """The live packs (those with an index), by name."""
        try:
            listing = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(
            n[: -len(INDEX_SUFFIX)]
            for n in listing
            if n.endswith(INDEX_SUFFIX) and is_pack_name(n[: -len(INDEX_SUFFIX)])
        )

    def orphans(self) -> list[Path]:
        """Pack files without their index (a writer died between the two renames)."""
        live = set(self.names())
        try:
            listing = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return [
            self.dir / n
            for n in sorted(listing)
            if n.endswith(PACK_SUFFIX) and n[: -len(PACK_SUFFIX)] not in live
        ]

    def index_path(self, name: str) -> Path:
        return self.dir / f"{name}{INDEX_SUFFIX}"

    def pack_path(self, name: str) -> Path:
        return self.dir / f"{name}{PACK_SUFFIX}"

    def records(self, name: str) -> list[tuple[str, int, int]]:
        """Pack ``name``'s records (StoreFormatError for a damaged index)."""
        return parse_index(name, self.index_path(name).read_bytes())

    def _refresh(self) -> bool:
        """Read the indexes of packs that appeared, forget those that went; whether
        anything changed.  Cheap when the folder did not change: one stat."""
        try:
            mtime = os.stat(self.dir).st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime == self._seen_mtime and mtime is not None:
            return False
        with self._lock:
            self._seen_mtime = mtime
            names = set(self.names())
            changed = False
            if set(self._loaded) - names:
                # A pack went (repacked): its objects may be in another one, which
                # the table did not record for them; read every index again.
                for gone in set(self._loaded) - names:
                    self._drop_fd(gone)
                self._loaded.clear()
                self._where = {}
                changed = True
            for name in sorted(names - set(self._loaded)):
                try:
                    records = self.records(name)
                except (FileNotFoundError, StoreFormatError):
                    continue  # repacked away meanwhile, or damaged: fsck reports it
                for digest, offset, length in records:
                    self._where.setdefault(digest, Location(name, offset, length))
                self._loaded[name] = len(records)
                changed = True
            return changed

    # -- reading -------------------------------------------------------------

    def read(self, digest: str) -> bytes | None:
        """The bytes recorded for ``digest`` (unchecked; short if the pack was cut
        short), or None when no live pack holds it."""
        for _ in range(2):
            where = self.find(digest)
            if where is None:
                return None
            try:
                fd = self._fd(where.pack)
            except FileNotFoundError:  # repacked away since the table was read
                self._seen_mtime = None
                self._refresh()
                continue
            return pread(fd, where.length, where.offset)
        return None

    def _fd(self, name: str) -> int:
        fd = self._fds.get(name)
        if fd is None:
            fd = os.open(self.pack_path(name), os.O_RDONLY | BINARY | getattr(os, "O_CLOEXEC", 0))
            with self._lock:
                if name in self._fds:
                    os.close(fd)
                    fd = self._fds[name]
                else:
                    self._fds[name] = fd
        return fd

    def _drop_fd(self, name: str) -> None:
        fd = self._fds.pop(name, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            for name in list(self._fds):
                self._drop_fd(name)

    def iter_objects(self, name: str) -> Iterator[tuple[str, bytes]]:
        """Every object of pack ``name`` with the bytes recorded for it, in pack order."""
        records = sorted(self.records(name), key=lambda r: r[1])
        with open(self.pack_path(name), "rb") as f:
            for digest, offset, length in records:
                f.seek(offset)
                yield digest, f.read(length)

    def touch(self, digest: str) -> bool:
        """Refresh the mtime of the pack holding ``digest`` (see the module's invariants);
        whether a live pack holds it."""
        where = self.find(digest)
        if where is None:
            return False
        now = time.monotonic()
        if now - self._touched.get(where.pack, -TOUCH_INTERVAL_S) >= TOUCH_INTERVAL_S:
            try:
                os.utime(self.index_path(where.pack))
            except FileNotFoundError:  # repacked away: the caller stores the object again
                self._seen_mtime = None
                return False
            self._touched[where.pack] = now
        return True

    # -- writing -------------------------------------------------------------

    def new_temp(self) -> tuple[int, str]:
        try:
            return create_temp(self.tmp_dir, ".dotnb-")
        except FileNotFoundError:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            return create_temp(self.tmp_dir, ".dotnb-")

    def writer(self) -> PackWriter:
        return PackWriter(self)

    def install(self, pack_tmp: str, index: bytes) -> str:
        """Install a durable pack temp file with its index; returns the pack's name."""
        name = pack_name(index)
        fd, index_tmp = self.new_temp()
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(index)
                f.flush()
                os.fsync(f.fileno())
            for tmp in (pack_tmp, index_tmp):
                os.chmod(tmp, 0o444)
            self.dir.mkdir(parents=True, exist_ok=True)
            os.replace(pack_tmp, self.pack_path(name))
            os.replace(index_tmp, self.index_path(name))  # the commit point
            fsync_path(self.dir)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(index_tmp)
            raise
        self._seen_mtime = None  # read it at the next lookup
        return name

    def write(self, objects: Iterable[tuple[str, bytes]]) -> str | None:
        """A new pack of ``objects`` ((hash, bytes), the hashes checked by the caller)."""
        writer = self.writer()
        try:
            for digest, data in objects:
                writer.add(digest, data)
            return writer.finish()
        finally:
            writer.abort()
