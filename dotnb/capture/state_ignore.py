"""Which variable names kernel state capture never records.

Rules come from, in this order (a later rule wins over an earlier one):

1. ``.dotnbstateignore`` at the project root, like ``.dotnbignore`` for files: one
   shell-style name pattern per line (``tmp_*``, ``secret?``), ``#`` comments,
   ``!PATTERN`` to record again names an earlier pattern ignored;
2. ``c.Dotnb.state_ignore`` of the server, passed to its kernels as
   ``DOTNB_STATE_IGNORE`` (patterns separated by commas or newlines);
3. ``%dotnb state ignore PATTERN`` in the kernel.

The file is read again only when its (mtime, size, inode) changes: a capture pays
one ``stat`` for it.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from pathlib import Path

STATE_IGNORE_FILE = ".dotnbstateignore"
STATE_IGNORE_ENV = "DOTNB_STATE_IGNORE"

Rule = tuple[bool, str]  # (re-include, pattern)


def parse_rules(lines: list[str]) -> list[Rule]:
    rules: list[Rule] = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("!"):
            if text[1:].strip():
                rules.append((True, text[1:].strip()))
        else:
            rules.append((False, text))
    return rules


def rules_from_env() -> list[Rule]:
    text = os.environ.get(STATE_IGNORE_ENV, "")
    return parse_rules(text.replace(",", "\n").splitlines())


class NameRules:
    """The ignore rules for variable names of one kernel (see the module's docstring)."""

    def __init__(self) -> None:
        self.configured = rules_from_env()
        self.added: list[Rule] = []  # %dotnb state ignore
        self._file: str | None = None
        self._file_key: tuple[int, int, int] | None = None
        self._file_rules: list[Rule] = []

    def set_root(self, root: Path | str | None) -> None:
        file = None if root is None else os.path.join(os.fspath(root), STATE_IGNORE_FILE)
        if file != self._file:
            self._file, self._file_key, self._file_rules = file, None, []

    def add(self, pattern: str) -> None:
        self.added.extend(parse_rules([pattern]))

    def rules(self) -> list[Rule]:
        return [*self._current_file_rules(), *self.configured, *self.added]

    def patterns(self) -> list[str]:
        """The rules as written (``!`` before a re-including one), for ``%dotnb state``."""
        return [("!" if keep else "") + pattern for keep, pattern in self.rules()]

    def matcher(self) -> Callable[[str], bool] | None:
        """``ignored(name)`` with the rules as they are now; None when there are none."""
        rules = self.rules()
        if not rules:
            return None

        def ignored(name: str) -> bool:
            result = False
            for keep, pattern in rules:
                if fnmatch.fnmatchcase(name, pattern):
                    result = not keep
            return result

        return ignored

    def _current_file_rules(self) -> list[Rule]:
        if self._file is None:
            return []
        try:
            st = os.stat(self._file)
        except OSError:
            self._file_key, self._file_rules = None, []
            return []
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key != self._file_key:
            try:
                with open(self._file, encoding="utf-8", errors="replace") as f:
                    self._file_rules = parse_rules(f.read().splitlines())
            except OSError:
                self._file_rules = []  # unreadable: no rules from it, capture goes on
            self._file_key = key
        return self._file_rules
