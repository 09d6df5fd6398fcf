"""BLAKE3 content hashing: the one hash algorithm of store format 1."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dotnb.store.rawio import pread

HASH_HEX_LEN = 64
CHUNK = 4 * 1024 * 1024
# Below this size a single-threaded read loop beats mmap + thread start-up.
MMAP_THRESHOLD = 32 * 1024 * 1024
# Large files are copied into the store, and hashed, in segments of this size.
SEGMENT = 16 * 1024 * 1024

Progress = Callable[[int], None]


def new_hasher(max_threads: int = 1) -> Any:
    """A BLAKE3 hasher.  blake3 is imported on first use: commands that only read
    the index (``dotnb log``) never pay its ~10 ms import."""
    import blake3

    if max_threads != 1:
        return blake3.blake3(max_threads=blake3.blake3.AUTO)
    return blake3.blake3()


def hash_bytes(data: bytes) -> str:
    hasher = new_hasher()
    hasher.update(data)
    return str(hasher.hexdigest())


def hash_file(path: str | os.PathLike[str], progress: Progress | None = None) -> tuple[str, int]:
    """Hash a file; large files use mmap and all cores.  Returns (hex digest, size)."""
    size = os.stat(path).st_size
    if size >= MMAP_THRESHOLD and progress is None:
        hasher = new_hasher(max_threads=0)
        hasher.update_mmap(os.fspath(path))
        return hasher.hexdigest(), size
    hasher = new_hasher()
    total = 0
    with open(path, "rb", buffering=0) as f:
        if size < CHUNK and progress is None:
            # One read of the size it has, no 4 MiB buffer: allocating one costs more
            # than hashing a small file.
            data = f.read(size + 1)
            hasher.update(data)
            total = len(data)
            if total <= size:  # else it grew meanwhile: the rest is hashed below
                return hasher.hexdigest(), total
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            hasher.update(view[:n])
            total += n
            if progress is not None:
                progress(n)
    return hasher.hexdigest(), total


def hash_range(hasher: Any, fd: int, offset: int, length: int) -> None:
    """Feed ``length`` bytes of ``fd`` at ``offset`` to ``hasher``.

    Mapped, so the page cache is hashed in place (``offset`` must be a multiple
    of ``mmap.ALLOCATIONGRANULARITY``; the range must exist); read through a
    buffer where the file cannot be mapped.  ``update`` releases the GIL.
    """
    import mmap

    if length <= 0:
        return
    try:
        view = mmap.mmap(fd, length, offset=offset, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        view = None
    if view is not None:
        with view:
            hasher.update(view)
        return
    end = offset + length
    while offset < end:
        data = pread(fd, min(CHUNK, end - offset), offset)
        if not data:
            raise OSError(f"file ended at {offset} while {end - offset} more bytes were expected")
        hasher.update(data)
        offset += len(data)


_HEX_DIGITS = frozenset("0123456789abcdef")


def is_hash(text: str) -> bool:
    return len(text) == HASH_HEX_LEN and _HEX_DIGITS.issuperset(text)
