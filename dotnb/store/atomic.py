"""Atomic file writes: a temp file beside the target, fsync, rename.

A reader (or a crash) sees the old file or the whole new one, never a part.
The fsync primitives these rely on are in :mod:`dotnb.store.syncing`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dotnb.store.rawio import BINARY
from dotnb.store.syncing import sync_paths

_counter = itertools.count()


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
                path, os.O_RDWR | os.O_CREAT | os.O_EXCL | BINARY | getattr(os, "O_CLOEXEC", 0), 0o600
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


def rename_durably(moves: list[tuple[str, str]], anchor: str | os.PathLike[str]) -> None:
    """Rename complete temp files onto their targets, durably: their bytes are made
    durable before the first rename (a target never names bytes not yet on disk),
    the renamed folders after the last (see :func:`sync_paths`).  Target folders must
    exist.  On failure, temps not renamed yet are left to the caller to remove."""
    sync_paths(anchor, [tmp for tmp, _ in moves])
    for tmp, target in moves:
        os.replace(tmp, target)
    sync_paths(anchor, sorted({os.path.dirname(target) for _, target in moves}))
