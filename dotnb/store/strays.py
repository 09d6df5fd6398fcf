"""Temp files dotnb left beside the user's files when a writer was killed.

Restore (and every atomic write) puts a file's new bytes in a temp file beside
its target, ``.dotnb-<pid>-<n>-<8 hex digits>`` (:func:`dotnb.store.atomic.create_temp`),
and renames it into place when complete.  A process killed before the rename
leaves its temps behind.  They are dotnb's own by their name, and stray once the
process named in it no longer runs on this machine.  Nothing else is ever
removed: not a name that differs in any way, not a temp of a live process.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable

TEMP_NAME = re.compile(r"\.dotnb-(\d+)-\d+-[0-9a-f]{8}")
# Folders capture never records files in (hidden ones hold the store, git, venvs).
_SKIPPED = frozenset({"__pycache__", "node_modules"})


def is_stray(name: str) -> bool:
    """Whether ``name`` is a dotnb temp file whose writer no longer runs."""
    found = TEMP_NAME.fullmatch(name)
    return found is not None and not process_alive(int(found.group(1)))


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (another user's counts)."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        return _alive_on_windows(pid)
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # another user's process
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    return True


if sys.platform == "win32":

    def _alive_on_windows(pid: int) -> bool:
        """The process's exit code, asked through a handle: ``os.kill(pid, 0)`` would
        send a Ctrl-C event to the process group ``pid`` on Windows."""
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.OpenProcess.restype = ctypes.c_void_p
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: another user's
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(ctypes.c_void_p(handle), ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(ctypes.c_void_p(handle))


def strays_in(folders: Iterable[str]) -> list[str]:
    """Stray temp files directly in ``folders`` (missing folders are skipped)."""
    found: list[str] = []
    for folder in sorted(set(folders)):
        try:
            with os.scandir(folder) as entries:
                found += [e.path for e in entries if is_stray(e.name) and e.is_file(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    return found


def own_in(folders: Iterable[str]) -> list[str]:
    """This process's own temp files directly in ``folders``: what it leaves when a
    signal ends it between creating a temp and the cleanup that guards it."""
    mine = str(os.getpid())
    found: list[str] = []
    for folder in sorted(set(folders)):
        try:
            with os.scandir(folder) as entries:
                for e in entries:
                    match = TEMP_NAME.fullmatch(e.name)
                    if match is not None and match.group(1) == mine and e.is_file(follow_symlinks=False):
                        found.append(e.path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    return found


def strays_under(root: str) -> list[str]:
    """Stray temp files anywhere under ``root``, outside hidden folders (the store's own
    temps live in ``.dotnb/tmp``, which ``dotnb gc`` sweeps by age)."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIPPED]
        found += [os.path.join(folder, name) for name in files if is_stray(name)]
    return sorted(found)


def remove(paths: Iterable[str]) -> list[str]:
    """Delete ``paths``; returns those deleted."""
    gone: list[str] = []
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        gone.append(path)
    return gone
