"""The version numbers of what dotnb writes: the store format and the index schema.

They are checked on the start-up path of ``dotnb log`` (:mod:`dotnb.store.listing`),
where importing json, sqlite3 or typing would cost milliseconds: this module imports
nothing but :mod:`dotnb.store.errors`.  :mod:`dotnb.store.manifest` and
:mod:`dotnb.store.index` re-export them.
"""

from __future__ import annotations

from dotnb.store.errors import StoreFormatError

# mypy reads any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# 2: a manifest's lineage may be held in segments (dotnb.store.lineage).
# 3: a manifest's inputs and outputs may hold folders' trees (dotnb.store.trees).
# 4: objects may be held in packs (dotnb.store.packs; local stores only).
# 5: runs are chained per writer, and an amended manifest names the one it replaced,
#    which gc must keep and push must send (dotnb.store.chain): an older dotnb's gc
#    would delete it.
# Stores and remotes of older formats are read as they are, and upgraded (their
# format file rewritten) before the first write.
FORMAT_VERSION = 5

# Bump when the index's tables (dotnb.store.index) change: an index of another
# version is dropped and rebuilt from the manifests (it is only a cache).
# 4: run_annotations and run_tags (tags and notes), which dotnb log reads.
# 5: stat_cache holds hashes as 32 bytes, without a rowid (dropped and refilled).
# 6: inputs (what each run read), trees_read, tree_members and outputs_by_run, for lineage over content.
INDEX_SCHEMA = "6"


def check_format(version: Any, what: str) -> None:
    if not isinstance(version, int):
        raise StoreFormatError(f"{what} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise StoreFormatError(
            f"{what} uses store format {version}, newer than this dotnb supports "
            f"({FORMAT_VERSION}); upgrade dotnb"
        )
