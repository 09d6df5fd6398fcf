"""The one resolver for paths that come from a request, a manifest or a remote.

Every such path is POSIX-relative to the project root.  It is refused when it is
empty, absolute, contains NUL or a ``..``/``.`` component, or when any existing
parent resolves (through symlinks) outside the root.  The comparison is made
against ``realroot + os.sep`` so that a sibling ``/work/root-evil`` never passes
for ``/work/root``.
"""

from __future__ import annotations

import os

from dotnb.store.errors import PathOutsideRoot

# ``dotnb log --notebook`` imports this module on a start-up path that avoids
# pathlib (it imports urllib.parse): Path is imported where it is needed.  mypy
# reads any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


def check_relpath(rel: str) -> str:
    if not isinstance(rel, str) or rel == "":
        raise PathOutsideRoot("empty path")
    if "\x00" in rel:
        raise PathOutsideRoot("path contains a NUL byte")
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        raise PathOutsideRoot(f"absolute path not allowed: {rel!r}")
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise PathOutsideRoot(f"path must be relative to the project root without '.' or '..': {rel!r}")
    return rel


def is_within(root_real: str, candidate_real: str) -> bool:
    return candidate_real == root_real or candidate_real.startswith(root_real.rstrip(os.sep) + os.sep)


def confine(root: Path, rel: str) -> Path:
    """Absolute path for ``rel`` under ``root``; its parent folder must resolve inside root.

    The final component itself may be a symlink: writers replace it by rename
    (never writing through it) and readers must use :func:`readable_inside`.
    """
    return Confiner(root)(rel)


class Confiner:
    """:func:`confine` for many paths under one root: each folder is resolved once
    (a ``realpath`` costs an ``lstat`` per path component)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._folders: dict[str, str] = {}  # root-relative folder -> its real path

    @property
    def root_real(self) -> str:
        real = self._folders.get("")
        if real is None:  # resolved on first use: a caller with no path pays nothing
            real = self._folders[""] = os.path.realpath(self.root)
        return real

    def __call__(self, rel: str) -> Path:
        from pathlib import Path

        return Path(self.path(rel))

    def path(self, rel: str) -> str:
        """As a call, but a string (a Path costs ~10 µs to make, per file)."""
        check_relpath(rel)
        folder, _, name = rel.rpartition("/")
        real = self._folders.get(folder)
        if real is None:
            real = self.root_real
            if folder:
                real = os.path.realpath(os.path.join(real, *folder.split("/")))
            if not is_within(self.root_real, real):
                raise PathOutsideRoot(f"path leaves the project root through a symlink: {rel!r}")
            self._folders[folder] = real
        return f"{real}/{name}" if real != "/" else f"/{name}"


def readable_inside(root: Path, path: Path) -> bool:
    """True when reading ``path`` (following symlinks) stays inside ``root``."""
    return is_within(os.path.realpath(root), os.path.realpath(path))


def to_relpath(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> str | None:
    """Root-relative POSIX path of an absolute or cwd-relative path, or None if outside."""
    root_real = os.path.realpath(root)
    absolute = os.path.abspath(path)
    # Resolve the folder but not the final name: a symlink inside the root keeps its own name.
    real = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    if not is_within(root_real, real) or real == root_real:
        return None
    return os.path.relpath(real, root_real).replace(os.sep, "/")


def path_candidates(root: str | os.PathLike[str], text: str) -> list[str]:
    """Root-relative readings of a path argument (``--notebook``, ``cat``'s PATH):
    relative to the working folder first, then to the root."""
    found: list[str] = []
    rel = to_relpath(root, text)
    if rel is not None:
        found.append(rel)
    if not os.path.isabs(text):
        as_root = "/".join(p for p in text.replace(os.sep, "/").split("/") if p not in ("", "."))
        try:  # not contextlib.suppress: dotnb log imports this module without contextlib
            if check_relpath(as_root) and as_root not in found:
                found.append(as_root)
        except PathOutsideRoot:
            pass
    return found
