"""A restore's checkpoint keeps the old bytes of the files it replaces by linking them
into the store instead of copying them.

A restore replaces each file by renaming a new file over it, so the old inode is
left as it was: giving it a second name in ``objects/`` keeps its bytes at the cost
of a ``link()``, where a copy would read and write them all (a second per GiB), and
the rename then frees no blocks (on a disk mounted with ``discard``, freeing is
most of a small file's replace).

Invariants:
- a file is linked only when it is a regular file with a single link on the
  store's file system, and only if, once linked, the object still has the inode,
  size and mtime the file had when it was hashed; anything else is copied;
- the linked bytes are made durable (one ``syncfs``) before the checkpoint that
  names them is committed;
- until its file is replaced the object *is* the user's file: :meth:`LinkedCheckpoint.settle`
  runs whatever happens to the restore.  An object whose file was replaced is made
  read-only and checked against its name again (a writer that still had the file
  open may have changed it: such an object is removed and reported, never served).
  An object whose file was not replaced (the restore stopped) is given bytes of its
  own, copied and checked (:meth:`ObjectStore.unshare <dotnb.store.objects.ObjectStore.unshare>`);
- a restore killed before ``settle`` can leave objects sharing an inode with a user's
  file: ``dotnb fsck`` gives each such object bytes of its own.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dotnb.store.hashing import hash_file
from dotnb.store.index import Index, StatKey
from dotnb.store.objects import ObjectStore
from dotnb.store.paths import Confiner
from dotnb.store.syncing import syncfs


@dataclass(frozen=True)
class Linked:
    rel: str
    path: str  # the user's file
    digest: str


@dataclass
class LinkedCheckpoint:
    """The objects a checkpoint linked, until :meth:`settle`."""

    objects: ObjectStore
    linked: list[Linked] = field(default_factory=list)

    def keep(
        self,
        confined: Confiner,
        index: Index,
        rels: list[str],
        hashed: Mapping[str, tuple[str, StatKey]] | None = None,
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Link the current bytes of ``rels`` into the store where it is safe; the file
        entries for them, and the paths left for copying.  ``hashed``: hashes taken
        just before (the restore's plan), each used while the file's stat is the one
        it was taken from."""
        hashed = hashed or {}
        try:
            device = os.stat(self.objects.dir).st_dev
        except FileNotFoundError:
            return [], list(rels)
        rest: list[str] = []
        candidates: list[tuple[str, str, os.stat_result]] = []
        for rel in rels:
            path = confined.path(rel)
            try:
                st = os.lstat(path)
            except OSError:
                rest.append(rel)
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_dev != device:
                rest.append(rel)
                continue
            candidates.append((rel, path, st))
        fresh = {
            rel: hashed[rel][0]
            for rel, _, st in candidates
            if rel in hashed and hashed[rel][1] == StatKey.of(st)
        }
        known = index.stat_lookup_many(
            [(rel, StatKey.of(st)) for rel, _, st in candidates if rel not in fresh]
        )
        entries: list[dict[str, Any]] = []
        for rel, path, st in candidates:
            digest = fresh.get(rel) or known.get(rel) or hash_file(path)[0]
            entry = {"path": rel, "hash": digest, "size": st.st_size}
            if self.objects.reuse(digest):
                entries.append(entry)
                continue
            if self._link(path, digest, st):
                self.linked.append(Linked(rel, path, digest))
                entries.append(entry)
            elif self.objects.has(digest):  # written by another process meanwhile
                entries.append(entry)
            else:
                rest.append(rel)
        if self.linked and not syncfs(self.objects.dir):
            for item in self.linked:
                with contextlib.suppress(OSError):
                    fd = os.open(item.path, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        return entries, rest

    def _link(self, path: str, digest: str, st: os.stat_result) -> bool:
        """Give ``path``'s inode the name of object ``digest``, if it still is the file
        that was hashed."""
        target = self.objects.loose_target(digest)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.link(path, target)  # atomic: fails if the object is there already
        except OSError:
            return False
        now = os.lstat(target)
        if (now.st_ino, now.st_size, now.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
            os.unlink(target)  # the file changed since it was hashed: copy it instead
            return False
        return True

    def settle(self) -> list[str]:
        """Make each linked object the store's own (see the module's invariants); the
        paths whose old bytes could not be kept."""
        lost: list[str] = []
        for item in self.linked:
            target = self.objects.loose_target(item.digest)
            try:
                shared = os.stat(item.path).st_ino == os.stat(target).st_ino
            except FileNotFoundError:
                shared = False
            # Replaced: the object has its inode to itself.  Not replaced: it needs its own.
            kept = self.objects.unshare(item.digest) if shared else self.objects.seal(item.digest)
            if not kept:
                lost.append(item.rel)
        self.linked.clear()
        return lost
