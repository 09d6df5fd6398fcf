"""Copying byte ranges between open files, in the kernel where it can.

Used by :func:`dotnb.store.objects.copy_hashed` to copy a file into the store
without a round trip of its bytes through user space.
"""

from __future__ import annotations

import errno
import os

from dotnb.store.rawio import pread, pwrite

# copy_file_range failures that mean "not for these files", not "the copy failed".
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF, errno.EPERM}
)
BUFFER = 4 * 1024 * 1024


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
                if n or not pread(self.src, 1, offset):
                    return n
                self.in_kernel = False
        return self._through_buffer(offset, length)

    def _through_buffer(self, offset: int, length: int) -> int:
        data = pread(self.src, min(length, BUFFER), offset)
        view = memoryview(data)
        written = 0
        while written < len(data):
            written += pwrite(self.dst, view[written:], offset + written)
        return len(data)
