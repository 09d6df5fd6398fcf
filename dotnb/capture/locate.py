"""Where a path a cell touched lies: under the project root (and not ignored), outside
it (an external input), or nowhere capture looks (the interpreter, the OS, the store).

Resolving a path costs system calls, and a cell may open the same paths many
times: answers are memoized for the cell (:meth:`PathLocator.new_cell` clears
them, so ignore-rule edits apply from the next cell).
"""

from __future__ import annotations

import os
import stat
import sys
import sysconfig

from dotnb.capture.ignore import IgnoreRules

__all__ = ["IN_ROOT", "OUTSIDE", "PACKAGE_DIRS", "PathLocator", "system_prefixes", "unwatched"]

# What PathLocator.locate() found for a path: under the root (rel path) or outside it (real path).
IN_ROOT = 0
OUTSIDE = 1
_MISS = object()

# Fixed system trees whose reads are never external inputs (/tmp deliberately is not one).
_SYSTEM_DIRS = ("/proc", "/sys", "/dev", "/usr", "/etc", "/lib", "/lib64", "/bin", "/sbin", "/run")
PACKAGE_DIRS = frozenset({"site-packages", "dist-packages"})
_MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd", ".pth")


class PathLocator:
    """Classifies paths relative to one root (``root_real``: its realpath)."""

    def __init__(self, root_real: str, ignore: IgnoreRules) -> None:
        self.root_real = root_real
        self.root_prefix = root_real.rstrip("/") + "/"
        self.ignore = ignore
        self.skip_prefixes = system_prefixes(root_real)
        self._loc_memo: dict[str, tuple[int, str] | None] = {}
        self._folder_memo: dict[str, str] = {}  # folder -> its realpath
        self._excl_memo: dict[str, bool] = {}
        self._root_folder_memo: dict[str, str | None] = {}
        self._is_ignored = ignore.matcher()
        self._ignored_names = ignore.names_matcher()

    def new_cell(self) -> None:
        """Forget what was found for the previous cell, and take the ignore rules as
        they are now (for the whole cell)."""
        self._loc_memo.clear()
        self._folder_memo.clear()
        self._excl_memo.clear()
        self._root_folder_memo.clear()
        self._is_ignored = self.ignore.matcher()
        self._ignored_names = self.ignore.names_matcher()

    def root_folder(self, folder: str) -> str | None:
        """The root-relative form ("" for the root) of absolute folder ``folder``
        once resolved, or None when it lies outside the root."""
        found = self._root_folder_memo.get(folder, _MISS)
        if found is _MISS:
            real = os.path.realpath(folder)
            if real == self.root_real:
                found = ""
            elif real.startswith(self.root_prefix):
                found = real[len(self.root_prefix) :]
            else:
                found = None
            self._root_folder_memo[folder] = found
        return found  # type: ignore[return-value]

    def excluded_names(self, folder: str, names: set[str]) -> set[str]:
        """The names of root-relative ``folder`` that :meth:`excluded` would say are
        excluded, looked at together (one check of the folder, then the names)."""
        if folder and (
            not PACKAGE_DIRS.isdisjoint(folder.split("/"))
            or (self.root_prefix + folder + "/").startswith(self.skip_prefixes)
        ):
            return names
        out = self._ignored_names(folder, names)
        if not PACKAGE_DIRS.isdisjoint(names):
            out |= PACKAGE_DIRS.intersection(names)
        return out

    def locate(self, raw: str) -> tuple[int, str] | None:
        """Classify an opened path: (IN_ROOT, rel), (OUTSIDE, realpath) or None (skip)."""
        if not os.path.isabs(raw):
            raw = os.path.join(os.getcwd(), raw)
        found = self._loc_memo.get(raw, _MISS)
        if found is not _MISS:
            return found  # type: ignore[return-value]
        result: tuple[int, str] | None
        lexical = os.path.normpath(raw)
        if lexical.startswith(self.skip_prefixes) and not lexical.startswith(self.root_prefix):
            result = None  # interpreter and system files: no syscalls spent on them
        else:
            real = self._realpath(lexical) if "/../" not in raw and not raw.endswith("/..") else None
            if real is None:
                real = os.path.realpath(raw)
            if real.startswith(self.root_prefix):
                rel = real[len(self.root_prefix) :]
                result = None if self.excluded(rel) else (IN_ROOT, rel)
            elif real == self.root_real or _is_system_path(real, self.skip_prefixes):
                result = None
            else:
                result = (OUTSIDE, real)
        self._loc_memo[raw] = result
        return result

    def _realpath(self, lexical: str) -> str | None:
        """``os.path.realpath`` of a normalized absolute path without ``..``, with its
        folder resolved once per cell: one ``lstat`` (of the last component) instead of
        one per component.  None when that component is a symlink (resolve it fully)."""
        folder, name = os.path.split(lexical)
        real_folder = self._folder_memo.get(folder)
        if real_folder is None:
            real_folder = self._folder_memo[folder] = os.path.realpath(folder)
        candidate = os.path.join(real_folder, name)
        try:
            if stat.S_ISLNK(os.lstat(candidate).st_mode):
                return None
        except OSError:
            pass  # no such file (yet): nothing to follow
        return candidate

    def excluded(self, rel: str) -> bool:
        """A root-relative path capture never records (ignored, in a package folder, or a
        system tree that happens to lie under the root)."""
        found = self._excl_memo.get(rel)
        if found is None:
            found = (
                self._is_ignored(rel)
                or not PACKAGE_DIRS.isdisjoint(rel.split("/"))
                or (self.root_prefix + rel).startswith(self.skip_prefixes)
            )
            self._excl_memo[rel] = found
        return found

    def declared(self, path: str | os.PathLike[str]) -> tuple[int, str] | None:
        """Where a path given to ``dotnb.input()/output()`` lies.

        Declarations bypass the ignore rules (the user asked for the file), but
        never reach into the store."""
        real = os.path.realpath(os.path.abspath(os.fspath(path)))
        if real.startswith(self.root_prefix):
            rel = real[len(self.root_prefix) :]
            return None if rel.split("/", 1)[0] == ".dotnb" else (IN_ROOT, rel)
        return (OUTSIDE, real)


def system_prefixes(root_real: str) -> tuple[str, ...]:
    """Trees holding the interpreter and the OS, as "/dir/" prefixes.

    A prefix that contains the root is dropped (a project under /usr/local
    with Python in /usr/local must still be watched); the interpreter's own
    library directories are kept even then.
    """
    dirs = set(_SYSTEM_DIRS)
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        dirs.add(p)
    for name, p in sysconfig.get_paths().items():
        if name != "data":
            dirs.add(p)
    prefixes: set[str] = set()
    for d in dirs:
        for variant in (d, os.path.realpath(d)):
            pre = variant.rstrip("/") + "/"
            if pre == "/" or (root_real + "/").startswith(pre):
                continue
            prefixes.add(pre)
    return tuple(sorted(prefixes))


def unwatched(name: str) -> bool:
    """Folders never watched: hidden ones (``.dotnb``, ``.git``, ``.venv`` …), caches and
    installed packages; capture ignores every path in them anyway (see
    :meth:`PathLocator.excluded`)."""
    return name.startswith(".") or name == "__pycache__" or name in PACKAGE_DIRS


def _is_system_path(real: str, skip_prefixes: tuple[str, ...]) -> bool:
    if real.startswith(skip_prefixes):
        return True
    parts = real.split("/")
    if any(p.startswith(".") for p in parts if p) or not PACKAGE_DIRS.isdisjoint(parts):
        return True
    # Importing a module from an editable install or PYTHONPATH is code loading, not a data input.
    return real.endswith(_MODULE_SUFFIXES) and any(
        entry and real.startswith(os.path.realpath(entry).rstrip("/") + "/") for entry in sys.path
    )
