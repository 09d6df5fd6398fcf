"""Atomic file writes: a temp file beside the target, fsync, rename.

A reader (or a crash) sees the old file or the whole new one, never a part.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

_counter = itertools.count()
# copy_file_range failures that mean "not for these files", not "the copy failed".
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF, errno.EPERM}
)
BUFFER = 4 * 1024 * 1024
# sync_paths: from this many paths to make durable at once, one syncfs() replaces an fsync each.
SYNCFS_MIN = 16


def create_temp(directory: Path, prefix: str) -> tuple[int, str]:
    """A new, exclusively created file in ``directory``: (fd, path).

    Not tempfile.mkstemp: importing tempfile (random, shutil) costs ~10 ms of
    every CLI start.
    """
    while True:
        name = f"{prefix}{os.getpid()}-{next(_counter)}-{os.urandom(4).hex()}"
        path = os.path.join(directory, name)
        try:
            return os.open(
                path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600
            ), path
        except FileExistsError:
            continue


@contextlib.contextmanager
def replacing(
    target: Path, sync: bool = True, tmp_dir: Path | None = None, mode: int = 0o644
) -> Iterator[BinaryIO]:
    """Write ``target`` through a temp file that replaces it only if the block succeeds.

    ``tmp_dir`` must be on the same filesystem as ``target`` (default: its folder).
    """
    directory = tmp_dir or target.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp(directory, ".dotnb-")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(target: Path, data: bytes, sync: bool = True, tmp_dir: Path | None = None) -> None:
    with replacing(target, sync=sync, tmp_dir=tmp_dir) as f:
        f.write(data)


class RangeCopier:
    """Copies byte ranges of one open file to the same offsets in another.

    In the kernel (``copy_file_range``: no round trip through user space) where the
    files allow it, through a buffer otherwise (another filesystem, an old kernel,
    no ``copy_file_range``).  A file the kernel reports as ended although it is not
    (procfs, some FUSE filesystems) is noticed and copied through the buffer.
    """

    def __init__(self, src: int, dst: int) -> None:
        self.src = src
        self.dst = dst
        self.in_kernel = hasattr(os, "copy_file_range")

    def copy(self, offset: int, length: int) -> int:
        """Copy up to ``length`` bytes at ``offset``; fewer only where the source ends."""
        done = 0
        while done < length:
            n = self._step(offset + done, length - done)
            if not n:
                break
            done += n
        return done

    def _step(self, offset: int, length: int) -> int:
        if self.in_kernel:
            try:
                n: int = os.copy_file_range(self.src, self.dst, length, offset, offset)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                self.in_kernel = False
            else:
                # 0: the end of the file, or a file the kernel cannot copy; a read tells.
                if n or not os.pread(self.src, 1, offset):
                    return n
                self.in_kernel = False
        return self._through_buffer(offset, length)

    def _through_buffer(self, offset: int, length: int) -> int:
        data = os.pread(self.src, min(length, BUFFER), offset)
        view = memoryview(data)
        written = 0
        while written < len(data):
            written += os.pwrite(self.dst, view[written:], offset + written)
        return len(data)


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
    """fsync a file or a folder by name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rename_durably(moves: list[tuple[str, str]], anchor: str | os.PathLike[str]) -> None:
    """Rename complete temp files onto their targets, durably: their bytes are made
    durable before the first rename (a target never names bytes not yet on disk),
    the renamed folders after the last (see :func:`sync_paths`).  Target folders must
    exist.  On failure, temps not renamed yet are left to the caller to remove."""
    sync_paths(anchor, [tmp for tmp, _ in moves])
    for tmp, target in moves:
        os.replace(tmp, target)
    sync_paths(anchor, sorted({os.path.dirname(target) for _, target in moves}))
