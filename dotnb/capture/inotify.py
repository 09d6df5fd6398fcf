"""A minimal Linux inotify binding (ctypes over libc): one instance, its watches, its events.

File capture reads the queue itself, in whichever thread needs the events
(see :mod:`dotnb.capture.files`), so this module has no thread of its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from typing import Any

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_CLOSE_NOWRITE = 0x00000010
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_MASK_ADD = 0x20000000
IN_ISDIR = 0x40000000

_IN_NONBLOCK = 0o4000  # O_NONBLOCK
_IN_CLOEXEC = 0o2000000  # O_CLOEXEC

# wd, mask, cookie, len of struct inotify_event; the name (len bytes, NUL-padded) follows.
EVENT_HEADER = struct.Struct("iIII")
BUFFER_SIZE = 256 * 1024

_libc: Any = None


def _lib() -> Any:
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        lib.inotify_init1.argtypes = [ctypes.c_int]
        lib.inotify_init1.restype = ctypes.c_int
        lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        lib.inotify_add_watch.restype = ctypes.c_int
        lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.inotify_rm_watch.restype = ctypes.c_int
        _libc = lib
    return _libc


def _error(what: str) -> OSError:
    err = ctypes.get_errno()
    if err == errno.ENOSPC:
        return OSError(err, f"{what}: inotify watch limit reached (fs.inotify.max_user_watches)")
    if err == errno.EMFILE:
        return OSError(err, f"{what}: inotify instance limit reached (fs.inotify.max_user_instances)")
    return OSError(err, f"{what}: {os.strerror(err)}")


class Inotify:
    """One inotify instance with a non-blocking, close-on-exec descriptor."""

    def __init__(self) -> None:
        lib = _lib()
        fd = lib.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            raise _error("inotify_init1")
        self.fd: int = fd

    def add_watch(self, path: str, mask: int) -> int:
        """Watch a directory (never through a symlink); returns its watch descriptor."""
        wd: int = _lib().inotify_add_watch(self.fd, os.fsencode(path), mask | IN_ONLYDIR | IN_DONT_FOLLOW)
        if wd < 0:
            raise _error(path)
        return wd

    def rm_watch(self, wd: int) -> None:
        _lib().inotify_rm_watch(self.fd, wd)  # EINVAL: already gone

    def read(self) -> bytes:
        """Whatever events are queued (b"" when none; never blocks)."""
        try:
            return os.read(self.fd, BUFFER_SIZE)
        except BlockingIOError:
            return b""
        except InterruptedError:
            return self.read()

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
