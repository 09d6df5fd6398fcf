"""Run refs: ``runs/<id>``, one small file per run naming its manifest object.

A ref holds the manifest hash on its first line, then ``from REMOTE`` for a run
pulled from a remote.  A ref is written after the manifest object it names and
before the run's index row (see :mod:`dotnb.store.commit`); refs are created only
under the index's write lock, so ``runs/`` holds still while a writer reconciles
it with the index (:mod:`dotnb.store.reconcile`).
"""

from __future__ import annotations

import os
from pathlib import Path

from dotnb.store.atomic import create_temp, write_bytes
from dotnb.store.errors import StoreFormatError
from dotnb.store.hashing import is_hash
from dotnb.store.layout import RUNS_DIR, TMP_DIR, runs_mtime
from dotnb.store.objects import ObjectStore
from dotnb.store.syncing import fsync_path


def ref_bytes(digest: str, origin: str | None = None) -> bytes:
    """What the ref of a run with manifest ``digest`` holds (pulled from ``origin``)."""
    return f"{digest}\nfrom {origin}\n".encode() if origin else digest.encode() + b"\n"


class RunRefs:
    """The ``runs/`` folder of a store."""

    def __init__(self, store_dir: Path, objects: ObjectStore) -> None:
        self.dir = store_dir / RUNS_DIR
        self.tmp_dir = store_dir / TMP_DIR
        self._store_dir = str(store_dir)
        self._objects = objects

    def read(self, run_id: str) -> tuple[str, str | None]:
        """(manifest hash, remote it was pulled from or None); FileNotFoundError when
        the run has no ref, StoreFormatError when its ref is damaged."""
        try:
            lines = (self.dir / run_id).read_text("utf-8").splitlines()
        except UnicodeDecodeError:
            raise StoreFormatError(f"run ref {run_id} is damaged") from None
        digest = lines[0].strip() if lines else ""
        if not is_hash(digest):
            raise StoreFormatError(f"run ref {run_id} is damaged")
        origin = None
        for line in lines[1:]:
            if line.startswith("from "):
                origin = line[5:].strip() or None
        return digest, origin

    def exists(self, run_id: str) -> bool:
        return (self.dir / run_id).exists()

    def names(self) -> list[str]:
        """The names in ``runs/`` (an empty list when it is missing)."""
        return os.listdir(self.dir) if self.dir.exists() else []

    def mtime(self) -> int:
        """The ``runs/`` folder's mtime: it changes whenever a ref is added."""
        return runs_mtime(self._store_dir)

    def write(self, run_id: str, digest: str, sync: bool, origin: str | None = None) -> None:
        """Write a run's ref atomically; with ``sync=False`` its fsync is left to the
        object store's next flush."""
        self.dir.mkdir(parents=True, exist_ok=True)
        ref = self.dir / run_id
        write_bytes(ref, ref_bytes(digest, origin), sync=sync, tmp_dir=self.tmp_dir)
        if not sync:
            self._objects.defer_sync(ref)

    def make_dirs(self) -> None:
        """Create ``runs/`` and ``tmp/`` if missing (before :meth:`write_temp`)."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.dir.mkdir(parents=True, exist_ok=True)

    def write_temp(self, digest: str) -> str:
        """A complete ref naming ``digest`` in a temp file (to :meth:`install` once it is
        durable: its fsync is left to the object store's next flush)."""
        fd, tmp = create_temp(self.tmp_dir, ".ref-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(ref_bytes(digest))
            os.chmod(tmp, 0o644)
        except BaseException:
            os.unlink(tmp)
            raise
        self._objects.defer_sync(Path(tmp))
        return tmp

    def install(self, tmp: str, run_id: str) -> None:
        """Rename a ref written by :meth:`write_temp` into place."""
        os.replace(tmp, self.dir / run_id)

    def sync_folder(self) -> None:
        """Make the refs renamed into place durable."""
        fsync_path(self.dir)
