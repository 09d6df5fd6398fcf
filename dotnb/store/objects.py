"""Content-addressed blobs under ``.dotnb/objects/ab/cdef…`` (see :mod:`dotnb.store.layout`).

Invariants:
- an object's name is the BLAKE3 hash of its bytes; it is written to a temp file
  in ``.dotnb/tmp`` (same filesystem), made durable (an fsync, or one ``syncfs``
  for a batch of small files), renamed into place and made read-only; it is
  never modified afterwards.  Metadata written with ``sync=False`` is the
  exception: renamed first, fsynced by :meth:`ObjectStore.flush` before any run
  refers to it;
- identical content is stored once;
- a reader never sees a partial object (rename is atomic);
- many small objects stored at once go into a pack (:mod:`dotnb.store.packs`)
  instead of one file each; every reader below finds them in either place.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from dotnb.store.atomic import create_temp, rename_durably
from dotnb.store.copying import RangeCopier
from dotnb.store.errors import DotnbError, ObjectCorrupt, ObjectMissing
from dotnb.store.hashing import (
    SEGMENT,
    Progress,
    hash_bytes,
    hash_file,
    hash_range,
    is_hash,
    new_hasher,
)
from dotnb.store.layout import FAN_OUT, PACKS_DIR, object_name
from dotnb.store.packs import PACK_MIN_OBJECTS, PACK_OBJECT_MAX, PackSet, PackWriter
from dotnb.store.syncing import fsync_path, start_writeback, syncfs

PREHASH_MAX = 64 * 1024 * 1024
# put_small_files: files up to this size are read whole.
SMALL_FILE = 1024 * 1024


class ObjectStore:
    def __init__(self, objects_dir: Path, tmp_dir: Path, packs_dir: Path | None = None) -> None:
        self.dir = objects_dir
        self._dir_str = os.fspath(objects_dir).rstrip("/") or "/"
        self.tmp_dir = tmp_dir
        self.packs = PackSet(packs_dir or objects_dir.parent / PACKS_DIR, tmp_dir)
        # Called before the first pack is written: a store whose format predates packs
        # is upgraded first (an older dotnb would not find packed objects).
        self.before_pack: Callable[[], None] = lambda: None
        # Small metadata objects may be written with deferred fsync (see flush()).
        self._pending: list[str] = []
        self._pending_lock = threading.Lock()
        # Set by dotnb.remote.ondemand: brings missing objects in from a remote
        # (verifying each hash) so reads of pulled runs work without --with-data.
        self.fetcher: Callable[[list[str]], None] | None = None
        # Set by the Store: writes missing objects that a kernel's write-ahead records
        # still hold (committed with a run, file not written yet; see Store.stage_bytes).
        self.pending_source: Callable[[list[str]], None] | None = None

    def path_for(self, digest: str) -> Path:
        return Path(self._name_for(digest))

    def _name_for(self, digest: str) -> str:
        """:meth:`path_for` as a string (no Path objects on per-file paths)."""
        if not is_hash(digest):
            raise ObjectMissing(f"not an object name: {digest!r}")
        return f"{self._dir_str}/{object_name(digest)}"

    def has(self, digest: str) -> bool:
        return os.path.exists(self._name_for(digest)) or self.packs.find(digest) is not None

    def loose_target(self, digest: str) -> str:
        """Where object ``digest`` is (or would be) as a file of its own."""
        return self._name_for(digest)

    def seal(self, digest: str) -> bool:
        """Make the loose object ``digest`` read-only and check it against its name (an
        object given a file's inode, see :mod:`dotnb.store.checkpoint_links`).  One
        whose bytes no longer match is removed; False then, or when it is missing."""
        target = self._name_for(digest)
        try:
            os.chmod(target, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            if hash_file(target)[0] == digest:
                return True
        except FileNotFoundError:
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        return False

    def unshare(self, digest: str) -> bool:
        """Give the loose object ``digest`` bytes of its own when its inode has other
        names (a file the user may still write): a copy, checked, replaces it.  A copy
        that no longer matches the name means the shared file was changed: the object
        is removed (False)."""
        target = self._name_for(digest)
        try:
            with open(target, "rb", buffering=0) as src:
                if os.fstat(src.fileno()).st_nlink <= 1:
                    return self.seal(digest)
                fd, tmp = self._tempfile()
                try:
                    try:
                        actual, _ = copy_hashed(src.fileno(), fd)
                    finally:
                        os.close(fd)
                    if actual == digest:
                        os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
                        os.replace(tmp, target)
                        fsync_path(os.path.dirname(target))
                        return True
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
        except FileNotFoundError:
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        return False

    def loose_path(self, digest: str) -> str | None:
        """The file holding object ``digest`` when it is stored as a file of its own
        (None when it is packed or missing): for copying or streaming it whole."""
        name = self._name_for(digest)
        return name if os.path.exists(name) else None

    def reuse(self, digest: str) -> bool:
        """True if the object exists; refreshes its mtime so gc's grace period
        protects it until the run that is about to reference it commits."""
        try:
            os.utime(self._name_for(digest))
            return True
        except FileNotFoundError:
            return self.packs.touch(digest)
        except OSError:
            return self.has(digest)

    def ensure(self, digests: Iterable[str]) -> None:
        """Bring in the objects among ``digests`` that are missing: from pending records,
        then from a remote if a fetcher is set.

        Missing objects stay missing when there is no fetcher; readers report them.
        """
        if self.fetcher is None:
            if self.pending_source is not None:  # one query for them all, no stat each
                self.pending_source(sorted({d for d in digests if is_hash(d)}))
            return
        missing = sorted({d for d in digests if is_hash(d) and not self.has(d)})
        if missing:
            self._bring_in(missing)

    def _bring_in(self, missing: list[str]) -> None:
        """Write missing objects from pending records, then fetch what is still missing
        from a remote; the caller reports what neither has."""
        if self.pending_source is not None:
            self.pending_source(missing)
            missing = [d for d in missing if not self.has(d)]
        if missing and self.fetcher is not None:
            self.fetcher(missing)

    def size(self, digest: str) -> int:
        try:
            return self.path_for(digest).stat().st_size
        except FileNotFoundError:
            where = self.packs.find(digest)
            if where is not None:
                return where.length
            if self.fetcher is None and self.pending_source is None:
                raise ObjectMissing(f"object {digest[:12]} is missing from the store") from None
        self._bring_in([digest])
        try:
            return self.path_for(digest).stat().st_size
        except FileNotFoundError:
            where = self.packs.find(digest)
            if where is not None:
                return where.length
            raise ObjectMissing(f"object {digest[:12]} is missing from the store") from None

    # -- writing -------------------------------------------------------------

    def _tempfile(self) -> tuple[int, str]:
        try:
            return create_temp(self.tmp_dir, "obj-")
        except FileNotFoundError:  # the first temp file of a new store (or tmp/ was removed)
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            return create_temp(self.tmp_dir, "obj-")

    def _install(self, tmp: str, digest: str, sync: bool, repair: bool = False) -> None:
        """Rename a complete temp file into place (or drop it if the object exists;
        with ``repair``, replace what is there: see :meth:`holds`)."""
        target = self.path_for(digest)
        if not repair and target.exists():
            os.unlink(tmp)
            return
        os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        if sync:
            fsync_path(target.parent)
        else:
            with self._pending_lock:
                self._pending.append(str(target))

    def put_bytes(self, data: bytes, sync: bool = True) -> tuple[str, int]:
        """Store ``data``; with ``sync=False`` the fsync is left to :meth:`flush`.

        An object already in place is kept only if it holds ``data``: one written
        with ``sync=False`` is in place before its bytes are on disk, so a power
        loss can leave it short, and this rewrites it.
        """
        digest = hash_bytes(data)
        held = self.holds(digest, data)
        if held or (held is None and self.packs.touch(digest)):
            return digest, len(data)
        self._write_new(digest, data, sync, repair=held is not None)
        return digest, len(data)

    def holds(self, digest: str, data: bytes) -> bool | None:
        """Whether object ``digest`` is in place holding ``data`` (its mtime refreshed,
        as :meth:`reuse` does); None when it is not there, False when it holds other
        bytes (cut short by a crash)."""
        name = self._name_for(digest)
        try:
            with open(name, "rb", buffering=0) as f:
                same = f.read(len(data) + 1) == data
            if same:
                os.utime(name)
            return same
        except FileNotFoundError:
            return None

    def _write_new(self, digest: str, data: bytes, sync: bool, repair: bool = False) -> None:
        """Write ``data`` (already known to hash to ``digest``) to a temp file and install it."""
        fd, tmp = self._tempfile()
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
            self._install(tmp, digest, sync, repair=repair)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_file(
        self,
        path: str | os.PathLike[str],
        progress: Progress | None = None,
        known_hash: str | None = None,
    ) -> tuple[str, int]:
        """Copy a file into the store; returns (hash, size) of the bytes actually copied.

        The copy is hashed (see :func:`copy_hashed`), so the object's name always
        matches its content even if the file changes underneath us.  ``known_hash``
        (from the stat cache) lets an existing object skip the copy entirely.
        """
        if known_hash is not None and self.reuse(known_hash):
            return known_hash, os.stat(path).st_size
        if known_hash is None and progress is None and os.stat(path).st_size <= PREHASH_MAX:
            # Small files: hash first, so content already in the store costs no new
            # file (creating one and fsyncing it costs far more than hashing).  Large
            # files are hashed once, while copying: a second read would cost more
            # than the rare copy of content the store already has.
            digest, size = hash_file(path)
            if self.reuse(digest):
                return digest, size
        fd, tmp = self._tempfile()
        try:
            try:
                with open(path, "rb", buffering=0) as src:
                    digest, total = copy_hashed(src.fileno(), fd, progress)
            finally:
                os.close(fd)
            self._install(tmp, digest, sync=True)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return digest, total

    def put_small_files(
        self, paths: Sequence[str | os.PathLike[str]], progress: Progress | None = None
    ) -> list[tuple[str, int] | None]:
        """Store files of at most :data:`SMALL_FILE` bytes, each read whole; returns the
        (hash, size) of the bytes stored for each, None for one that vanished.

        Same guarantee as :meth:`put_file` (an object is named by the bytes it holds,
        and is in place only once they are on disk), at a fraction of the cost for
        many files.  When :data:`~dotnb.store.packs.PACK_MIN_OBJECTS` or more new
        objects of at most :data:`~dotnb.store.packs.PACK_OBJECT_MAX` bytes come in
        one call, they go into one new pack (one file, one fsync).  The others are
        files of their own: their bytes are made durable together, then they are
        renamed into place, then the names are made durable together, with one
        ``syncfs()`` each time when there are many (an fsync each is ~1.5 ms).
        A file that grew past the limit meanwhile goes through :meth:`put_file`.
        """
        results: list[tuple[str, int] | None] = []
        temps: dict[str, str] = {}  # digest -> its temp file, bytes written
        waiting: dict[str, bytes] = {}  # packable objects until there are enough for a pack
        pack: PackWriter | None = None
        try:
            for path in paths:
                try:
                    with open(path, "rb", buffering=0) as f:
                        # Read what it holds (a buffer of the limit costs more than a small file).
                        size = os.fstat(f.fileno()).st_size
                        data = f.read(min(size, SMALL_FILE) + 1)
                        if size < len(data) <= SMALL_FILE:  # it grew since: read on to the limit
                            data += f.read(SMALL_FILE + 1 - len(data))
                except FileNotFoundError:
                    results.append(None)
                    continue
                if len(data) > SMALL_FILE:
                    results.append(self.put_file(path, progress))
                    continue
                digest = hash_bytes(data)
                results.append((digest, len(data)))
                if progress is not None:
                    progress(len(data))
                if digest in temps or digest in waiting or (pack is not None and digest in pack):
                    continue
                if self.reuse(digest):
                    continue
                if len(data) <= PACK_OBJECT_MAX:
                    if pack is not None:
                        pack.add(digest, data)
                        continue
                    waiting[digest] = data
                    if len(waiting) >= PACK_MIN_OBJECTS:
                        pack = self.new_pack()
                        for held in waiting.items():
                            pack.add(*held)
                        waiting.clear()
                    continue
                temps[digest] = self._temp_holding(data)
            for digest, data in waiting.items():
                temps[digest] = self._temp_holding(data)
            if pack is not None:
                pack.finish()
            moves: list[tuple[str, str]] = []
            folders: set[str] = set()
            for digest, tmp in temps.items():
                target = self._name_for(digest)
                if os.path.exists(target):  # written by another process meanwhile
                    os.unlink(tmp)
                    continue
                os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
                folder = os.path.dirname(target)
                if folder not in folders:
                    os.makedirs(folder, exist_ok=True)
                    folders.add(folder)
                moves.append((tmp, target))
            rename_durably(moves, self.dir)
        except BaseException:
            if pack is not None:
                pack.abort()
            for tmp in temps.values():  # those renamed or removed already are not found
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise
        return results

    def new_pack(self) -> PackWriter:
        """A writer of a new pack (objects added to it are live once it is finished)."""
        self.before_pack()
        return self.packs.writer()

    def _temp_holding(self, data: bytes) -> str:
        """A new temp file holding ``data`` (not yet durable)."""
        fd, tmp = self._tempfile()
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return tmp

    def install_bytes(self, digest: str, data: bytes, sync: bool = True) -> None:
        """Store bytes that must hash to ``digest`` (from a remote); refuses them otherwise."""
        if hash_bytes(data) != digest:
            raise ObjectCorrupt(f"object {digest[:12]}: its bytes do not match its name; not stored")
        held = self.holds(digest, data)
        if not held:
            self._write_new(digest, data, sync, repair=held is not None)

    def install_file(self, digest: str, tmp: str, sync: bool = True) -> None:
        """Move a complete temp file (in :attr:`tmp_dir`) into place if it hashes to ``digest``.

        A mismatch deletes the temp file and raises ObjectCorrupt: such bytes never
        become an object.
        """
        try:
            actual, _ = hash_file(tmp)
            if actual != digest:
                raise ObjectCorrupt(f"object {digest[:12]}: its bytes do not match its name; not stored")
            if sync:
                fsync_path(tmp)
            self._install(tmp, digest, sync)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def new_tempfile(self) -> tuple[int, str]:
        """An open temp file in the store's tmp folder (same filesystem as the objects)."""
        return self._tempfile()

    def defer_sync(self, path: Path) -> None:
        """fsync ``path`` (a file written next to the objects, e.g. a run ref) at the next flush."""
        with self._pending_lock:
            self._pending.append(str(path))

    def has_pending(self) -> bool:
        with self._pending_lock:
            return bool(self._pending)

    def flush(self, whole_filesystem: bool = False) -> None:
        """fsync objects written with ``sync=False`` (and their folders), in write order.

        ``whole_filesystem``: one ``syncfs()`` of the store's filesystem instead of an
        fsync per file and folder, for many files at once (it also writes out whatever
        else is dirty on that filesystem); fsyncs where ``syncfs`` is unavailable.
        """
        with self._pending_lock:
            pending, self._pending = self._pending, []
        if not pending or (whole_filesystem and syncfs(self.dir)):
            return
        dirs = set()
        for name in pending:
            try:
                fsync_path(name)
            except FileNotFoundError:
                continue
            dirs.add(os.path.dirname(name))
        for d in dirs:
            fsync_path(d)

    # -- reading -------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        """A reader of object ``digest``'s bytes: its file, or a buffer of its packed bytes."""
        found = self._open_here(digest)
        if found is not None:
            return found
        if self.fetcher is None and self.pending_source is None:
            raise ObjectMissing(f"object {digest[:12]} is missing from the store")
        self._bring_in([digest])
        found = self._open_here(digest)
        if found is None:
            raise ObjectMissing(f"object {digest[:12]} is missing from the store")
        return found

    def _open_here(self, digest: str) -> BinaryIO | None:
        try:
            return open(self._name_for(digest), "rb")
        except FileNotFoundError:
            data = self.packs.read(digest)
            return None if data is None else io.BytesIO(data)

    def read_bytes(self, digest: str, verify: bool = True) -> bytes:
        with self.open(digest) as f:
            data = f.read()
        if verify and hash_bytes(data) != digest:
            raise ObjectCorrupt(f"object {digest[:12]} is corrupted (its bytes do not match its name)")
        return data

    def read_local(self, digest: str) -> bytes:
        """:meth:`read_bytes` of an object already in place: never written from pending
        records or fetched from a remote (ObjectMissing when it is not here)."""
        try:
            with open(self._name_for(digest), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            packed = self.packs.read(digest)
            if packed is None:
                raise ObjectMissing(f"object {digest[:12]} is missing from the store") from None
            data = packed
        if hash_bytes(data) != digest:
            raise ObjectCorrupt(f"object {digest[:12]} is corrupted (its bytes do not match its name)")
        return data

    def export(self, digest: str, dest: Path, progress: Progress | None = None) -> None:
        """Copy the object to ``dest`` atomically, verifying its hash on the way.

        A corrupted object raises ObjectCorrupt and leaves ``dest`` untouched.
        ``dest``'s folder is created if missing.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.export_to_temp(digest, dest.parent, dest.name, progress)
        try:
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def export_to_temp(
        self, digest: str, folder: Path, for_name: str, progress: Progress | None = None
    ) -> str:
        """Copy the object into a new temp file in ``folder`` and fsync it, in one pass:
        the kernel copies, and the copy's bytes are hashed as they land
        (:func:`copy_hashed`), so the object is read once and checked against its name.

        Returns the temp file's path (mode 0644), holding exactly the object's bytes.
        A corrupted object raises ObjectCorrupt (naming ``for_name``) and leaves no
        temp file.
        """
        with self.open(digest) as src:
            fd, tmp = create_temp(folder, ".dotnb-")
            try:
                try:
                    if isinstance(src, io.BytesIO):  # a packed object: small, in memory
                        actual, _ = write_hashed(src.getvalue(), fd, progress)
                    else:
                        actual, _ = copy_hashed(src.fileno(), fd, progress)
                finally:
                    os.close(fd)
                if actual != digest:
                    raise ObjectCorrupt(
                        f"object {digest[:12]} for {for_name!r} is corrupted; nothing was written "
                        "for it (run `dotnb fsck`)"
                    )
                os.chmod(tmp, 0o644)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        return tmp

    def verify(self, digest: str) -> bool:
        """True when the object exists and its bytes hash to its name."""
        try:
            return hash_file(self._name_for(digest))[0] == digest
        except FileNotFoundError:
            data = self.packs.read(digest)
            return data is not None and hash_bytes(data) == digest

    def iter_digests(self) -> Iterator[str]:
        """Every object in the store: files of their own, then packed ones not also
        stored as files."""
        loose = set()
        for digest in self.iter_loose():
            loose.add(digest)
            yield digest
        for name in self.packs.names():
            try:
                records = self.packs.records(name)
            except (FileNotFoundError, DotnbError):
                continue  # repacked away meanwhile, or damaged (fsck reports it)
            for digest, _, _ in records:
                if digest not in loose:
                    loose.add(digest)
                    yield digest

    def iter_loose(self) -> Iterator[str]:
        """The objects stored as files of their own."""
        if not self.dir.exists():
            return
        for fan in sorted(os.listdir(self.dir)):
            sub = self.dir / fan
            if len(fan) != FAN_OUT or not sub.is_dir():
                continue
            for rest in sorted(os.listdir(sub)):
                digest = fan + rest
                if is_hash(digest):
                    yield digest

    def remove(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path_for(digest))


def write_hashed(data: bytes, dst: int, progress: Progress | None = None) -> tuple[str, int]:
    """Write ``data`` into the new, empty file ``dst`` and fsync it; the BLAKE3 of the
    bytes written and their number (what :func:`copy_hashed` returns)."""
    view = memoryview(data)
    while view:
        view = view[os.write(dst, view) :]
    os.fsync(dst)
    if progress is not None:
        progress(len(data))
    return hash_bytes(data), len(data)


def copy_hashed(src: int, dst: int, progress: Progress | None = None) -> tuple[str, int]:
    """Copy ``src`` into the new, empty file ``dst`` and fsync it.

    Returns the BLAKE3 of the bytes now in ``dst`` and their number: ``dst`` itself
    is hashed, after each segment is copied, so the name matches the stored bytes
    whatever happens to ``src`` meanwhile (only we write ``dst``).  Memory stays
    bounded: segments are copied in the kernel and hashed from the page cache.

    A file of one segment is copied, hashed and fsynced in turn.  Larger files are
    pipelined: while segment *n+1* is being copied, a worker thread hashes segment
    *n* (blake3 releases the GIL) and the kernel is already writing it to disk, so
    the final fsync has little left to do and runs while the last segment is hashed.
    """
    hasher = new_hasher()
    copier = RangeCopier(src, dst)
    worker: _SegmentHasher | None = None
    total = 0
    try:
        while True:
            n = copier.copy(total, SEGMENT)
            if n and progress is not None:
                progress(n)
            if n < SEGMENT:  # the end of the source
                break
            if worker is None:
                worker = _SegmentHasher(hasher, dst)
            start_writeback(dst, total, n)
            worker.add(total, n)
            total += n
        if worker is None:
            hash_range(hasher, dst, total, n)
            total += n
            os.fsync(dst)
        else:
            worker.add(total, n)
            total += n
            worker.close()
            os.fsync(dst)
            worker.join()
    finally:
        if worker is not None:
            worker.abort()
    return str(hasher.hexdigest()), total


class _SegmentHasher:
    """A thread that feeds segments of a file to a hasher, in the order they are added."""

    def __init__(self, hasher: Any, fd: int) -> None:
        import queue

        self.hasher = hasher
        self.fd = fd
        self.todo: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="dotnb-hash", daemon=True)
        self.thread.start()

    def add(self, offset: int, length: int) -> None:
        self.todo.put((offset, length))

    def close(self) -> None:
        """No more segments."""
        self.todo.put(None)

    def join(self) -> None:
        """Wait for every segment to be hashed; re-raises the thread's error."""
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Stop early (the copy failed), skipping segments not hashed yet; idempotent."""
        if self.thread.is_alive():
            self.stopped = True
            self.todo.put(None)
            self.thread.join()

    def _run(self) -> None:
        while (item := self.todo.get()) is not None:
            if self.stopped or self.error is not None:
                continue
            try:
                hash_range(self.hasher, self.fd, *item)
            except BaseException as exc:
                self.error = exc
