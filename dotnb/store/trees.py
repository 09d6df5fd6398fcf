"""Folders recorded as tree objects: names → content hashes, nested, like git trees.

A run that reads or writes many files in a folder refers to the folder's **tree**
instead of listing every file, so an unchanged folder is the same hash in every
run and a manifest grows with what changed, not with the number of files.

A manifest's ``inputs`` and ``outputs`` (store format 3) hold two kinds of entry:

- a file: ``{"path", "hash", "size", …flags}``, as in every format;
- a folder: ``{"path": "data/images", "tree": H, "files": N, "size": S}``, where
  object ``H`` lists the files of the run under that folder (N files, S bytes in
  all: the files the run read or wrote there, not necessarily every file on disk).

A tree object is the canonical JSON ``{"tree": 1, "entries": [...]}``, entries
sorted by name: ``[name, hash, size]`` for a file, ``[name + "/", tree, size,
files]`` for a sub-folder (itself a tree object).  A name is one path component:
never empty, ``.``, ``..``, or holding ``/`` or NUL, so every path a tree spells
stays inside its folder.

Only plain entries are folded (path, hash and size: stored content and nothing
to say about it); an entry with flags (``pre_write``, ``missing``, ``skipped``,
``declared``, ``changed``) stays a file entry beside the tree, which never holds
its path.  A file entry's ``produced_by`` is not kept in a tree: the index
answers it for any content (:meth:`dotnb.store.run_queries.RunQueries.producers_of`).

Readers either expand a manifest's trees into file entries (:func:`expand_entries`)
or walk two trees side by side, skipping equal sub-trees (:func:`diff_entries`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from dotnb.store.errors import StoreFormatError
from dotnb.store.hashing import is_hash
from dotnb.store.manifest import canonical_json

# A folder (below the project root) with at least this many plain file entries of a
# run under it, at any depth, is recorded as a tree.  Below it a folder stays a list
# of file entries: a tree costs an object read to show.
TREE_MIN_FILES = 32

TREE_FORMAT = 1

_PLAIN_KEYS = frozenset(("path", "hash", "size", "produced_by"))

Load = Callable[[str], bytes]


def is_tree(entry: dict[str, Any]) -> bool:
    """Whether a manifest's input or output entry is a folder's tree."""
    return "tree" in entry


def file_count(entries: Iterable[dict[str, Any]]) -> int:
    """How many files entries stand for (a tree counts its files), without reading trees."""
    return sum(int(e.get("files") or 0) if is_tree(e) else 1 for e in entries)


def _foldable(entry: dict[str, Any]) -> bool:
    # Called for every file of a run: the common entry, {path, hash, size}, is told
    # by its length (hash and size being there makes them its three keys).
    return (
        entry.get("hash").__class__ is str
        and entry.get("size").__class__ is int
        and "/" in entry["path"]
        and (len(entry) == 3 or _PLAIN_KEYS.issuperset(entry))
    )


def tree_folders(entries: Iterable[dict[str, Any]]) -> set[str]:
    """The top-level folders :func:`fold` records as trees, from the same entries: a
    file folds into a tree exactly when its top-level folder holds
    :data:`TREE_MIN_FILES` plain entries or more (a folder below holds fewer)."""
    counts: dict[str, int] = {}
    for entry in entries:
        if not is_tree(entry) and _foldable(entry):
            top = entry["path"].partition("/")[0]
            counts[top] = counts.get(top, 0) + 1
    return {top for top, n in counts.items() if n >= TREE_MIN_FILES}


def encode_tree(entries: list[list[Any]]) -> bytes:
    """A tree object's bytes (``entries`` sorted by name, see the module docstring)."""
    return canonical_json({"tree": TREE_FORMAT, "entries": entries})


# A tree's rows (name, hash, size[, files]) -> its hash, for trees already stored: a
# folder whose files did not change is not encoded and hashed again.
TreeMemo = dict[tuple[tuple[Any, ...], ...], str]
MEMO_MAX = 100_000  # trees remembered (a kernel's memo is cleared past this)


class FolderRows(NamedTuple):
    """Plain files of one folder given as a block: ``rows`` of ``(name, hash, size)``
    sorted by name, as a tree holds them, so that a folder of many files known
    unchanged goes into its tree without an entry per file (see :func:`fold`)."""

    rows: tuple[tuple[str, str, int], ...]
    size: int


def block_entries(folder: str, block: FolderRows) -> Iterator[dict[str, Any]]:
    """A block's files as plain file entries."""
    prefix = f"{folder}/" if folder else ""
    for name, digest, size in block.rows:
        yield {"path": prefix + name, "hash": digest, "size": size}


def fold(
    entries: list[dict[str, Any]],
    put: Callable[[bytes], str],
    keep: Callable[[str], bool] | None = None,
    memo: TreeMemo | None = None,
    blocks: Mapping[str, FolderRows] | None = None,
) -> list[dict[str, Any]]:
    """``entries`` with each top-level folder holding :data:`TREE_MIN_FILES` plain
    files or more (at any depth) replaced by a tree entry; ``put`` stores a tree
    object's bytes and returns its hash.  Entries already folded, and every entry
    not folded, stay as they are.

    With ``memo`` (kept by the caller across calls) and ``keep`` (True when the
    object is stored, refreshing it as ``ObjectStore.reuse`` does), a tree with the
    same rows as one stored before is taken from the memo.

    ``blocks`` adds plain files by folder (below the root; none of them among
    ``entries``): they count and fold like entries, and a block whose top-level
    folder stays a list of files comes back as file entries.
    """
    if blocks:
        entries = [*entries]  # the caller's list stays as it was
        for folder in blocks:
            if not folder:  # files at the root never fold
                entries.extend(block_entries(folder, blocks[folder]))
        blocks = {folder: block for folder, block in blocks.items() if folder}
    kept: list[dict[str, Any]] = []
    by_dir: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if "tree" in entry or not _foldable(entry):
            kept.append(entry)
            continue
        folder = entry["path"].rpartition("/")[0]
        same = by_dir.get(folder)
        if same is None:
            by_dir[folder] = [entry]
        else:
            same.append(entry)
    blocks = blocks or {}
    counts: dict[str, int] = {}
    for folder, files in by_dir.items():
        top = folder.partition("/")[0]
        counts[top] = counts.get(top, 0) + len(files)
    for folder, block in blocks.items():
        top = folder.partition("/")[0]
        counts[top] = counts.get(top, 0) + len(block.rows)
    big = {top for top, n in counts.items() if n >= TREE_MIN_FILES}
    if not big and not blocks:
        return entries
    folded = kept
    under: dict[str, set[str]] = {top: set() for top in big}
    for folder, files in by_dir.items():
        top = folder.partition("/")[0]
        if top in big:
            under[top].add(folder)
        else:
            folded.extend(files)
    for folder, block in blocks.items():
        top = folder.partition("/")[0]
        if top in big:
            under[top].add(folder)
        else:
            folded.extend(block_entries(folder, block))
    store = _TreeStore(put, keep, memo)
    for top, folders in under.items():
        folded.append(
            store.folder(
                top,
                {f: by_dir[f] for f in folders if f in by_dir},
                {f: blocks[f] for f in folders if f in blocks},
            )
        )
    folded.sort(key=lambda e: e["path"])
    return folded


class _TreeStore:
    """Stores the trees of one top-level folder, bottom-up."""

    def __init__(
        self, put: Callable[[bytes], str], keep: Callable[[str], bool] | None, memo: TreeMemo | None
    ):
        self.put = put
        self.keep = keep
        self.memo = memo
        self.blocks: Mapping[str, FolderRows] = {}

    def folder(
        self, top: str, files: dict[str, list[dict[str, Any]]], blocks: Mapping[str, FolderRows]
    ) -> dict[str, Any]:
        """The tree entry of folder ``top``, given its files by the folder holding them
        (as entries, or as blocks of rows)."""
        self.blocks = blocks
        children: dict[str, set[str]] = {}
        for folder in [*files, *blocks]:
            while folder != top:
                parent, _, name = folder.rpartition("/")
                known = children.get(parent)
                if known is None:
                    children[parent] = {name}
                elif name in known:
                    break  # its ancestors are registered already
                else:
                    known.add(name)
                folder = parent
        digest, size, count = self._store(top, files, children)
        return {"path": top, "tree": digest, "files": count, "size": size}

    def _store(
        self, path: str, files: dict[str, list[dict[str, Any]]], children: dict[str, set[str]]
    ) -> tuple[str, int, int]:
        start = len(path) + 1
        rows: list[tuple[Any, ...]] = [(e["path"][start:], e["hash"], e["size"]) for e in files.get(path, ())]
        total = sum(row[2] for row in rows)
        block = self.blocks.get(path)
        if block is not None:
            rows = [*block.rows, *rows] if rows else list(block.rows)
            total += block.size
        count = len(rows)
        for name in children.get(path, ()):
            digest, size, files_below = self._store(f"{path}/{name}", files, children)
            rows.append((name + "/", digest, size, files_below))
            total += size
            count += files_below
        rows.sort()  # by name: names are unique in a folder ("x" and "x/" differ)
        key = tuple(rows)
        memo = self.memo
        if memo is not None and self.keep is not None:
            found = memo.get(key)
            if found is not None and self.keep(found):
                return found, total, count
        digest = self.put(encode_tree([list(row) for row in rows]))
        if memo is not None:
            if len(memo) >= MEMO_MAX:
                memo.clear()
            memo[key] = digest
        return digest, total, count


def parse_tree(digest: str, data: bytes) -> list[list[Any]]:
    """The entries of tree object ``digest``, each checked; StoreFormatError if malformed."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise StoreFormatError(f"tree object {digest[:12]} is not valid JSON") from None
    entries = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("tree") != TREE_FORMAT or not isinstance(entries, list):
        raise StoreFormatError(f"object {digest[:12]} is not a tree of a format this dotnb reads")
    rows: list[list[Any]] = entries
    for row in rows:
        if not _valid_row(row):
            raise StoreFormatError(f"tree object {digest[:12]} has a malformed entry: {row!r:.120}")
    return rows


def _valid_row(row: Any) -> bool:
    if not isinstance(row, list) or len(row) not in (3, 4) or not isinstance(row[0], str):
        return False
    name: str = row[0]
    folder = len(row) == 4
    if folder != name.endswith("/"):
        return False
    if folder:
        name = name[:-1]
        if not isinstance(row[3], int) or row[3] < 0:
            return False
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        return False
    return isinstance(row[1], str) and is_hash(row[1]) and isinstance(row[2], int) and row[2] >= 0


def iter_tree(path: str, digest: str, load: Load) -> Iterator[tuple[str, str, int, bool]]:
    """``(path, hash, size, is_folder)`` of every entry under tree ``digest`` (rooted at
    ``path``), depth first in name order; a folder before its contents."""
    for row in parse_tree(digest, load(digest)):
        name, child, size = row[0], row[1], row[2]
        if len(row) == 4:
            sub = f"{path}/{name[:-1]}"
            yield sub, child, size, True
            yield from iter_tree(sub, child, load)
        else:
            yield f"{path}/{name}", child, size, False


def find_file(entry: dict[str, Any], rel: str, load: Load) -> dict[str, Any] | None:
    """The file entry at ``rel`` under tree entry ``entry`` (None if it holds none),
    reading only the trees on the way down."""
    prefix = entry["path"] + "/"
    if not rel.startswith(prefix):
        return None
    *folders, name = rel[len(prefix) :].split("/")
    digest = entry["tree"]
    for folder in folders:
        rows = {row[0]: row for row in parse_tree(digest, load(digest))}
        row = rows.get(folder + "/")
        if row is None:
            return None
        digest = row[1]
    for row in parse_tree(digest, load(digest)):
        if row[0] == name:
            return {"path": rel, "hash": row[1], "size": row[2]}
    return None


def find_folder(entry: dict[str, Any], rel: str, load: Load) -> dict[str, Any] | None:
    """A tree entry for folder ``rel`` inside tree entry ``entry`` (None if it holds no
    such folder), reading only the trees on the way down."""
    prefix = entry["path"] + "/"
    if not rel.startswith(prefix):
        return None
    digest, size, files = entry["tree"], entry["size"], entry["files"]
    for folder in rel[len(prefix) :].split("/"):
        rows = {row[0]: row for row in parse_tree(digest, load(digest))}
        row = rows.get(folder + "/")
        if row is None:
            return None
        digest, size, files = row[1], row[2], row[3]
    return {"path": rel, "tree": digest, "files": files, "size": size}


def tree_files(entry: dict[str, Any], load: Load) -> Iterator[dict[str, Any]]:
    """The file entries a tree entry stands for, in path order."""
    for path, digest, size, folder in iter_tree(entry["path"], entry["tree"], load):
        if not folder:
            yield {"path": path, "hash": digest, "size": size}


def expand_entries(entries: Iterable[dict[str, Any]], load: Load) -> list[dict[str, Any]]:
    """Entries with every tree replaced by the file entries it stands for, sorted by path."""
    out: list[dict[str, Any]] = []
    folded = False
    for entry in entries:
        if is_tree(entry):
            folded = True
            out.extend(tree_files(entry, load))
        else:
            out.append(entry)
    if folded:
        out.sort(key=lambda e: e["path"])
    return out


def expand_manifest(manifest: dict[str, Any], load: Load) -> dict[str, Any]:
    """A copy of ``manifest`` whose inputs and outputs list every file (trees expanded)."""
    out = dict(manifest)
    for key in ("inputs", "outputs"):
        entries = manifest.get(key) or []
        if any(is_tree(e) for e in entries):
            out[key] = expand_entries(entries, load)
    return out


def tree_objects(entries: Iterable[dict[str, Any]], load: Load, seen: set[str]) -> Iterator[str]:
    """Every object the tree entries among ``entries`` refer to (trees and file
    contents); a tree in ``seen`` (shared across calls) is not read again."""
    for entry in entries:
        if is_tree(entry):
            yield from _objects_of(entry["tree"], load, seen)


def _objects_of(digest: str, load: Load, seen: set[str]) -> Iterator[str]:
    if digest in seen:
        return
    seen.add(digest)
    yield digest
    for row in parse_tree(digest, load(digest)):
        if len(row) == 4:
            yield from _objects_of(row[1], load, seen)
        else:
            yield row[1]


def diff_entries(
    a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]], load: Load
) -> dict[str, tuple[str | None, str | None]]:
    """Path → (hash in ``a``, hash in ``b``) for every file whose content differs
    between two runs' entries (None: not there, or no content stored; a path with no
    content on either side is not a difference).  Trees at the
    same path are compared top-down: an equal sub-tree is never read."""
    left = {e["path"]: e for e in a}
    right = {e["path"]: e for e in b}
    found: dict[str, tuple[str | None, str | None]] = {}
    flat_a: dict[str, str | None] = {}
    flat_b: dict[str, str | None] = {}
    for path in sorted(set(left) | set(right)):
        x, y = left.get(path), right.get(path)
        if x is not None and y is not None and is_tree(x) and is_tree(y):
            if x["tree"] != y["tree"]:
                _diff_trees(path, x["tree"], y["tree"], load, flat_a, flat_b)
            continue
        for entry, flat in ((x, flat_a), (y, flat_b)):
            if entry is None:
                continue
            if is_tree(entry):
                flat.update((e["path"], e["hash"]) for e in tree_files(entry, load))
            else:
                flat[path] = entry.get("hash")
    for path in sorted(set(flat_a) | set(flat_b)):
        old, new = flat_a.get(path), flat_b.get(path)
        if old != new:
            found[path] = (old, new)
    return found


def _diff_trees(
    path: str, a: str, b: str, load: Load, flat_a: dict[str, str | None], flat_b: dict[str, str | None]
) -> None:
    rows_a = {row[0]: row for row in parse_tree(a, load(a))}
    rows_b = {row[0]: row for row in parse_tree(b, load(b))}
    for name in set(rows_a) | set(rows_b):
        x, y = rows_a.get(name), rows_b.get(name)
        if x is not None and y is not None and x[1] == y[1]:
            continue  # same content, or the same sub-tree: nothing below differs
        if name.endswith("/"):
            sub = f"{path}/{name[:-1]}"
            if x is not None and y is not None:
                _diff_trees(sub, x[1], y[1], load, flat_a, flat_b)
                continue
            for row, flat in ((x, flat_a), (y, flat_b)):
                if row is not None:
                    for p, digest, _, folder in iter_tree(sub, row[1], load):
                        if not folder:
                            flat[p] = digest
        else:
            if x is not None:
                flat_a[f"{path}/{name}"] = x[1]
            if y is not None:
                flat_b[f"{path}/{name}"] = y[1]
