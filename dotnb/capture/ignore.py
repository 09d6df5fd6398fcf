"""Which paths under the project root file capture never records.

Always ignored: anything with a hidden component (``.dotnb/``, ``.git/``,
``.ipynb_checkpoints/``, ``.venv/``, ``~``-style caches …) and ``__pycache__/``.
On top of that, ``.dotnbignore`` at the root (gitignore syntax), patterns in the
``DOTNB_IGNORE`` environment variable (one per line; the server passes
``c.Dotnb.ignore`` this way) and exact paths added by the caller (the notebook
file itself, which the server autosaves).

Paths are POSIX strings relative to the root, as the tracker produces them; no
check touches the paths themselves, only the ignore file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Set as AbstractSet

    import pathspec

IGNORE_FILE = ".dotnbignore"

# Names ignored at any depth besides hidden ones.  Hidden names (".git",
# ".dotnb", ".ipynb_checkpoints") are covered by the leading-dot rule.
_ALWAYS_IGNORED_NAMES = frozenset({"__pycache__"})


class IgnoreRules:
    """Decides whether a root-relative POSIX path is out of capture's scope.

    ``.dotnbignore`` is re-read only when its (mtime, size, inode) changes, so
    each check costs one ``stat`` of that file plus a pattern match.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._ignore_file = os.path.join(os.fspath(self.root), IGNORE_FILE)
        self._extra: set[str] = set()
        self._extra_names: dict[str, set[str]] = {}  # the same paths, by folder
        self._spec: pathspec.GitIgnoreSpec | None = None
        # Identity of the ignore file the current spec was built from; None = no file.
        self._spec_key: tuple[int, int, int] | None = None
        self._lock = threading.Lock()
        self._env_spec = _spec_from_lines(os.environ.get("DOTNB_IGNORE", "").splitlines())

    def add_ignored_path(self, rel: str) -> None:
        """Ignore exactly this root-relative path (not a pattern)."""
        rel = _normalise(rel)
        self._extra.add(rel)
        folder, _, name = rel.rpartition("/")
        self._extra_names.setdefault(folder, set()).add(name)

    def is_ignored(self, rel: str) -> bool:
        """Whether capture ignores root-relative ``rel`` (the ignore file is read again
        whenever it changed)."""
        return self._ignored(rel, self._current_spec())

    def matcher(self) -> Callable[[str], bool]:
        """:meth:`is_ignored` with the rules as they are now: the ignore file is not
        looked at again (a file capture asks about every path a cell opens; an edit
        of the rules applies from the next cell)."""
        spec = self._current_spec()
        return lambda rel: self._ignored(rel, spec)

    def names_matcher(self) -> Callable[[str, AbstractSet[str]], set[str]]:
        """Like :meth:`matcher`, for many names of one folder at once: ``(folder,
        names)`` -> the names ignored.  Without ignore patterns a name is looked at
        by its own characters only (a cell may read 100,000 files of a folder)."""
        spec = self._current_spec()
        env_spec = self._env_spec

        def ignored(folder: str, names: AbstractSet[str]) -> set[str]:
            parts = _normalise(folder).split("/") if folder else ()
            if any(part.startswith(".") or part in _ALWAYS_IGNORED_NAMES for part in parts):
                return set(names)  # a hidden or always-ignored folder on the way
            prefix = f"{folder}/" if folder else ""
            # Set operations and one search of the joined names (no name holds a NUL),
            # not a test per name: a folder read whole costs its ignore check once
            # per cell.
            out = {n for n in _ALWAYS_IGNORED_NAMES if n in names}
            if "" in names:
                out.add("")
            joined = "\0".join(names)
            if joined[:1] == "." or "\0." in joined:  # some hidden name
                out.update(n for n in names if n[:1] == ".")
            extra = self._extra_names.get(folder)
            if extra:
                out.update(n for n in extra if n in names)
            for sp in (env_spec, spec):
                if sp is not None:
                    out.update(n for n in names if sp.match_file(prefix + n))
            return out

        return ignored

    def _ignored(self, rel: str, spec: pathspec.GitIgnoreSpec | None) -> bool:
        rel = _normalise(rel)
        if not rel:
            return True  # the root itself is not a file
        for part in rel.split("/"):
            if part.startswith(".") or part in _ALWAYS_IGNORED_NAMES:
                return True
        if rel in self._extra:
            return True
        if self._env_spec is not None and self._env_spec.match_file(rel):
            return True
        return spec is not None and spec.match_file(rel)

    def _current_spec(self) -> pathspec.GitIgnoreSpec | None:
        try:
            st = os.stat(self._ignore_file)
            key: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            key = None
        if key == self._spec_key:
            return self._spec
        with self._lock:
            if key != self._spec_key:
                self._spec = _load_spec(self._ignore_file) if key is not None else None
                self._spec_key = key
            return self._spec


def _normalise(rel: str) -> str:
    # Tolerate "./x" and "x/" from callers; the tracker itself passes clean paths.
    rel = rel.replace(os.sep, "/") if os.sep != "/" else rel
    while rel.startswith("./"):
        rel = rel[2:]
    return rel.rstrip("/")


def _load_spec(path: str) -> pathspec.GitIgnoreSpec | None:
    # pathspec is imported only when there are patterns: it costs ~25 ms at import.
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    return _spec_from_lines(lines)


def _spec_from_lines(lines: list[str]) -> pathspec.GitIgnoreSpec | None:
    if not any(line.strip() for line in lines):
        return None
    import pathspec

    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except Exception:
        # A malformed pattern must not break capture; an unreadable ignore file
        # behaves like an absent one.
        return None
