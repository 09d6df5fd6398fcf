"""File I/O by descriptor that behaves the same on every platform.

``os.pread``, ``os.pwrite``, ``os.preadv`` and ``os.fchmod`` are POSIX calls that
Windows lacks (``os.fchmod`` arrived there in Python 3.13), and on Windows
``os.open`` opens in text mode unless ``O_BINARY`` is given, so CR/LF bytes would be
rewritten.  Elsewhere these names are the ``os`` functions themselves.

The Windows stand-ins seek then read or write.  A descriptor's position is shared by
the threads of a process, so one lock makes each seek-and-transfer a single step for
dotnb's own threads; other code must not move the position of a descriptor that
dotnb reads or writes at offsets.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

# Add to every os.open of file data: binary mode on Windows, nothing elsewhere.
BINARY: int = getattr(os, "O_BINARY", 0)

_position = threading.Lock()


def seek_read(fd: int, length: int, offset: int) -> bytes:
    """``os.pread`` where it is missing (public, so it is tested on every platform)."""
    with _position:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, length)


def seek_write(fd: int, data: bytes | memoryview, offset: int) -> int:
    """``os.pwrite`` where it is missing."""
    with _position:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.write(fd, data)


pread: Callable[[int, int, int], bytes] = getattr(os, "pread", seek_read)
pwrite: Callable[[int, bytes | memoryview, int], int] = getattr(os, "pwrite", seek_write)


def read_into(fd: int, view: memoryview, offset: int) -> int:
    """Fill ``view`` from ``offset``; the number of bytes read (fewer at the file's end)."""
    if hasattr(os, "preadv"):
        return int(os.preadv(fd, [view], offset))
    done = 0
    while done < len(view):
        data = pread(fd, len(view) - done, offset + done)
        if not data:
            break
        view[done : done + len(data)] = data
        done += len(data)
    return done


def chmod_open(fd: int, path: str, mode: int) -> None:
    """Set the mode of the open file ``fd`` (at ``path``): by descriptor where the
    platform can, else by name."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:
        os.chmod(path, mode)
