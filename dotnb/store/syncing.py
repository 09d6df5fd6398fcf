"""Making written bytes durable: fsync by name, one ``syncfs()`` for many files,
and starting a file range's writeback early (Linux ``sync_file_range``).

The primitives under :mod:`dotnb.store.atomic` and :mod:`dotnb.store.objects`.
"""

from __future__ import annotations

import os
from typing import Any

from dotnb.store.rawio import BINARY

# sync_paths: from this many paths to make durable at once, one syncfs() replaces an fsync each.
SYNCFS_MIN = 16

_sync_file_range: Any = None  # None: not looked up yet; False: unavailable


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing a range of ``fd`` to disk now, without waiting.

    Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``; nothing elsewhere.  Durability
    still comes from the fsync that follows; this only leaves that fsync less to do.
    """
    global _sync_file_range
    if _sync_file_range is None:
        _sync_file_range = _load_sync_file_range()
    if _sync_file_range:
        _sync_file_range(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE; failures are harmless


def _load_sync_file_range() -> Any:
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        func = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return False
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def syncfs(path: str | os.PathLike[str]) -> bool:
    """``syncfs()`` the filesystem holding ``path`` (Linux); False if it could not."""
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
    except (OSError, AttributeError):
        return False
    try:
        return bool(hasattr(libc, "syncfs") and libc.syncfs(fd) == 0)
    finally:
        os.close(fd)


def sync_paths(anchor: str | os.PathLike[str], paths: list[str]) -> None:
    """Make ``paths`` (files and folders on the filesystem of ``anchor``) durable: one
    ``syncfs()`` for many, an fsync each for a few (``syncfs`` also writes out
    whatever else is dirty on that filesystem)."""
    if len(paths) >= SYNCFS_MIN and syncfs(anchor):
        return
    for path in paths:
        fsync_path(path)


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or a folder by name.

    On Windows a folder is left alone (it cannot be opened to be flushed; NTFS
    journals its entries) and a file is opened for writing, which flushing needs.
    """
    if os.name == "nt":
        if os.path.isdir(path):
            return
        fd = os.open(path, os.O_RDWR | BINARY)
    else:
        fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
