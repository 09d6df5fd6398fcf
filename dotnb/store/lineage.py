"""Execution lineage in a manifest: inline, or in content-addressed segments.

A run records every cell its kernel executed before it.  Written inline, a
manifest's lineage grows by a cell per execution, so a long session makes each
run slower to record and stores the same cells again in every manifest
(quadratic in the session's length).  So a manifest holds its lineage in one of
two forms:

- a list of cell entries (``execution_count``, ``code_hash``, ``tracked``, and
  ``run``/``status`` when set), each cell's code in the object ``code_hash``;
  short lineages, and every manifest of store format 1;
- ``{"segments": [{"hash": H, "count": N}, …], "cells": [entries…]}``: the first
  cells in *segments*, objects holding the canonical JSON list of
  :data:`SEGMENT_CELLS` entries with each cell's ``code`` inline; then the
  remaining cells as above.  A kernel writes each segment once, when its cells
  are final (a cell's entry changes only while it is the last one: its run id is
  set after its run is recorded), and every later run of that kernel refers to
  it, so a manifest grows by one reference per :data:`SEGMENT_CELLS` cells.

Code is inline in segments so that a manifest's objects are its segments and
its own cells' code objects, without opening segments (push, gc and fsck list
objects from manifests alone).  Every reader goes through :func:`expand`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from dotnb.store.errors import DotnbError, ObjectMissing, StoreFormatError
from dotnb.store.hashing import hash_bytes, is_hash
from dotnb.store.manifest import canonical_json

SEGMENT_CELLS = 32

_ENTRY_KEYS = ("execution_count", "code_hash", "tracked", "run", "status")


def segment_refs(lineage: Any) -> list[dict[str, Any]]:
    """The segment references of a manifest's lineage (none for the list form)."""
    if isinstance(lineage, dict):
        return [s for s in lineage.get("segments") or [] if isinstance(s, dict)]
    return []


def own_cells(lineage: Any) -> list[dict[str, Any]]:
    """The cells a manifest holds itself (not in segments)."""
    cells = lineage.get("cells") if isinstance(lineage, dict) else lineage
    return [c for c in cells or [] if isinstance(c, dict)]


def length(lineage: Any) -> int:
    """Number of cells, without reading any segment."""
    counted = sum(int(s.get("count") or 0) for s in segment_refs(lineage))
    return counted + len(own_cells(lineage))


def lineage_objects(lineage: Any) -> set[str]:
    """Objects the lineage refers to: its segments and its own cells' code."""
    found = {str(s.get("hash")) for s in segment_refs(lineage)}
    found |= {str(c.get("code_hash")) for c in own_cells(lineage) if c.get("code_hash")}
    return {h for h in found if is_hash(h)}


def segment_bytes(cells: Iterable[dict[str, Any]]) -> bytes:
    """A segment object: entries with their ``code``, in canonical JSON."""
    doc = [{k: cell[k] for k in (*_ENTRY_KEYS, "code") if k in cell} for cell in cells]
    try:
        return canonical_json(doc)
    except UnicodeEncodeError:  # a lone surrogate in some code: escape it (still one fixed form)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("ascii")


def parse_segment(data: bytes, digest: str) -> list[dict[str, Any]]:
    """A segment's cells, checked: a list of entries whose code matches ``code_hash``."""
    try:
        cells = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise StoreFormatError(f"lineage segment {digest[:12]} is not valid JSON") from None
    if not isinstance(cells, list):
        raise StoreFormatError(f"lineage segment {digest[:12]} is not a list of cells")
    for cell in cells:
        code = cell.get("code") if isinstance(cell, dict) else None
        if not isinstance(code, str) or cell.get("code_hash") != hash_bytes(
            code.encode("utf-8", "surrogatepass")
        ):
            raise StoreFormatError(f"lineage segment {digest[:12]}: a cell's code does not match its hash")
    return cells


def expand(lineage: Any, read: Callable[[str], bytes], strict: bool = False) -> list[dict[str, Any]]:
    """Every cell of a lineage in execution order; cells from segments carry ``code``.

    A segment that cannot be read (missing, corrupted, malformed) raises with
    ``strict``; otherwise it stands as ``count`` placeholder cells marked
    ``code_missing`` (and ``code_corrupt``), so a damaged store still shows what it can.
    """
    cells: list[dict[str, Any]] = []
    for ref in segment_refs(lineage):
        digest = str(ref.get("hash"))
        try:
            if not is_hash(digest):
                raise StoreFormatError(f"lineage segment reference {digest[:12]!r} is not a hash")
            cells.extend(parse_segment(read(digest), digest))
        except DotnbError as exc:
            if strict:
                raise
            mark: dict[str, Any] = {"code": None, "code_missing": True}
            if not isinstance(exc, ObjectMissing):  # there, but unreadable
                mark["code_corrupt"] = True
            placeholder = {"execution_count": None, "code_hash": None, "tracked": False, **mark}
            cells.extend(dict(placeholder) for _ in range(int(ref.get("count") or 0)))
    cells.extend(dict(c) for c in own_cells(lineage))
    return cells


def pack(cells: list[dict[str, Any]], put: Callable[[bytes], str]) -> Any:
    """The stored form of a whole lineage given with each cell's ``code``; every object
    it refers to (full segments, the code of the cells left inline) is written through
    ``put``, which returns the object's hash."""
    whole = len(cells) - len(cells) % SEGMENT_CELLS
    for cell in cells[whole:]:
        put(cell["code"].encode("utf-8", "surrogatepass"))
    if whole == 0:
        return [_entry(c) for c in cells]
    segments = []
    for start in range(0, whole, SEGMENT_CELLS):
        chunk = cells[start : start + SEGMENT_CELLS]
        segments.append({"hash": put(segment_bytes(chunk)), "count": len(chunk)})
    return {"segments": segments, "cells": [_entry(c) for c in cells[whole:]]}


def _entry(cell: dict[str, Any]) -> dict[str, Any]:
    return {k: cell[k] for k in _ENTRY_KEYS if k in cell}


# -- encoding a manifest whose lineage is already encoded ----------------------------
#
# A kernel records runs one after another with the same lineage plus a cell or two,
# and the lineage is most of a manifest's bytes (a tail of up to SEGMENT_CELLS entries
# and a reference per segment): encoding it again for every run was the largest single
# cost of recording one.  The session keeps each entry's and each segment reference's
# canonical JSON, joins them (encode), and the manifest is encoded around it
# (manifest_bytes); the result is byte for byte canonical_json(manifest).


def encode(segments: list[bytes], cells: list[bytes]) -> bytes:
    """Canonical JSON of a lineage from the canonical JSON of its segment references and
    its own cells' entries (the list form when there is no segment)."""
    own = b"[" + b",".join(cells) + b"]"
    if not segments:
        return own
    # Keys in canonical order: "cells" < "segments".
    return b'{"cells":' + own + b',"segments":[' + b",".join(segments) + b"]}"


# A stand-in for the lineage while the rest of the manifest is encoded.  As a key
# and value outside any string, with its quotes unescaped, this byte sequence can only
# be the manifest's own "lineage" entry, or one nested in user data holding this very
# value: manifest_bytes then finds it twice and encodes the plain way.
STAND_IN = "\x00dotnb lineage\x00"
_STAND_IN_ITEM = b'"lineage":"\\u0000dotnb lineage\\u0000"'


def manifest_bytes(manifest: dict[str, Any], lineage_json: bytes | None = None) -> bytes:
    """``canonical_json(manifest)``; with ``lineage_json`` (the canonical JSON of
    ``manifest["lineage"]``, see :func:`encode`), without encoding the lineage again."""
    if lineage_json is None:
        return canonical_json(manifest)
    data = canonical_json({**manifest, "lineage": STAND_IN})
    head, found, tail = data.partition(_STAND_IN_ITEM)
    if not found or _STAND_IN_ITEM in tail:
        return canonical_json(manifest)
    return head + b'"lineage":' + lineage_json + tail
