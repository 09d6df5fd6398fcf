"""Where a run's paths (POSIX, recorded anywhere) cannot be written as they are.

A run recorded on Linux may hold ``data/Train.csv`` and ``data/train.csv``, or a
file named ``aux.txt`` or ``scores:v2.csv``.  Restored on a file system that does
not tell case apart (macOS and Windows by default), the second file would
overwrite the first; on Windows some names cannot be created at all.  Restore
leaves such paths out of its plan with the reason (nothing is overwritten by
surprise), as it does for files too large to have been stored.

The rules are functions of the platform's rules, not of the machine running
them, so each is tested here with the rules of every platform.
"""

from __future__ import annotations

import contextlib
import os
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from dotnb.store.atomic import create_temp

# Names Windows reserves for devices, with or without an extension (``nul.txt``).
WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}
)
WINDOWS_FORBIDDEN = frozenset('<>:"|?*\\')


def windows_problem(rel: str) -> str | None:
    """Why ``rel`` (POSIX, root-relative) cannot be a path on Windows; None if it can."""
    for part in rel.split("/"):
        bad = sorted({c for c in part if c in WINDOWS_FORBIDDEN or ord(c) < 32})
        if bad:
            shown = " ".join(repr(c) for c in bad)
            return f"{part!r} holds characters Windows does not allow in names ({shown})"
        if part.endswith((".", " ")):
            return f"{part!r} ends with a dot or a space, which Windows drops"
        if part.split(".", 1)[0].rstrip(" ").upper() in WINDOWS_RESERVED:
            return f"{part!r} is a device name on Windows"
    return None


def fold_case(rel: str) -> str:
    """The form two paths share when a case-insensitive file system takes them for
    one: case folded, Unicode composed (macOS stores names decomposed)."""
    return unicodedata.normalize("NFC", rel).casefold()


def case_collisions(rels: Iterable[str]) -> dict[str, str]:
    """Paths that a case-insensitive file system would take for an earlier one of
    ``rels`` (in order): path -> the earlier path it would overwrite.  A folder
    differing only in case counts too (``Data/a`` and ``data/b`` land in one folder,
    which is fine; ``Data/a`` and ``data/a`` are one file)."""
    seen: dict[str, str] = {}
    clashes: dict[str, str] = {}
    for rel in rels:
        key = fold_case(rel)
        first = seen.setdefault(key, rel)
        if first != rel:
            clashes[rel] = first
    return clashes


def unwritable(rels: Iterable[str], windows: bool, folds_case: bool) -> dict[str, str]:
    """Which of ``rels`` (in order) cannot be written as themselves here, and why:
    with ``windows``, names Windows refuses; with ``folds_case``, paths that would
    overwrite an earlier one of ``rels``."""
    ordered = list(rels)
    found: dict[str, str] = {}
    if windows:
        for rel in ordered:
            problem = windows_problem(rel)
            if problem is not None:
                found[rel] = f"not restored on Windows: {problem}"
    if folds_case:
        rest = [rel for rel in ordered if rel not in found]
        for rel, first in case_collisions(rest).items():
            found[rel] = (
                f"differs from {first!r} only in case, and this file system takes them for one file"
                f" ({first!r} is restored)"
            )
    return found


def case_insensitive(tmp_dir: Path) -> bool:
    """Whether the file system holding ``tmp_dir`` takes names differing only in case
    for one (probed with a temp file of dotnb's own, removed at once; False when it
    cannot tell)."""
    try:
        fd, probe = create_temp(tmp_dir, ".dotnb-")
    except OSError:
        return False
    os.close(fd)
    try:
        name = os.path.basename(probe)
        return name.upper() != name and os.path.exists(os.path.join(tmp_dir, name.upper()))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
