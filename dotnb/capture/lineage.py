"""A kernel's execution lineage: every cell executed since it started, in order,
tracked or not, and the stored form a run records it in.

A run depends on its lineage, not on the notebook's visual order.  Cells are kept
in memory as they run (cheap: the raw code); a cell's code is hashed and stored
only when a run needs it, and its entry is built once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dotnb.store.hashing import hash_bytes
from dotnb.store.manifest import canonical_json

__all__ = ["Cell", "KernelLineage"]


@dataclass
class Cell:
    execution_count: int | None
    code: str
    tracked: bool = False
    run: str | None = None
    ok: bool = True
    code_hash: str | None = None
    # Its lineage entry and the entry's canonical JSON, once built (reset when ``run`` is set).
    entry: dict[str, Any] | None = None
    entry_json: bytes | None = None


class KernelLineage:
    """The cells of this kernel (``cells``) and what runs have recorded of them so far.

    ``stored`` is the set of object ids known to be in the store (shared with the
    session, which adds notebook snapshots to it): each cell's code is staged once.
    """

    def __init__(self, stored: set[str]) -> None:
        self.cells: list[Cell] = []
        self._stored = stored
        self._code_hashes: dict[str, str] = {}  # cell code -> its object id (stored already)
        # The lineage's segments written so far (their references, and each reference's
        # canonical JSON), and how many cells they hold.
        self._segments: list[dict[str, Any]] = []
        self._segments_json: list[bytes] = []
        self._segmented = 0
        # The cells after the segments as a run records them (entries and their JSON),
        # kept from run to run: cells[_segmented:_built], each entry current except
        # those of the cells at _stale (their run id was set since).
        self._tail: list[dict[str, Any]] = []
        self._tail_json: list[bytes] = []
        self._built = 0
        self._stale: list[int] = []

    def record_run(self, cell: Cell, run_id: str) -> None:
        """The last cell was recorded as run ``run_id``: its entry names the run from now on."""
        cell.run = run_id
        cell.entry = cell.entry_json = None
        self._stale.append(len(self.cells) - 1)

    def build(self, store: Any) -> tuple[Any, bytes]:
        """The run's lineage in its stored form (see :mod:`dotnb.store.lineage`), and
        its canonical JSON, joined from each entry's and each segment reference's JSON
        (made once, with them: the lineage is most of a manifest's bytes).  Only the
        cells executed since the last run, and the one whose run id was set, are
        looked at: recording a run costs the same after 10 cells or 10,000.

        Final cells (all but the last: a cell's run id is set after its run is
        recorded) go into segments of ``SEGMENT_CELLS`` once there are enough; each
        segment is written once and referred to by every later run of this kernel.
        """
        from dotnb.store.lineage import SEGMENT_CELLS, encode, segment_bytes

        cells = self.cells
        if self._built > len(cells):  # never shrinks; be safe anyway
            self._segments, self._segments_json, self._segmented = [], [], 0
            self._tail, self._tail_json, self._built, self._stale = [], [], 0, []
        for index in self._stale:
            if self._segmented <= index < self._built:
                at = index - self._segmented
                self._tail[at] = self._entry(cells[index], store)
                self._tail_json[at] = cells[index].entry_json or canonical_json(self._tail[at])
        self._stale = []
        for cell in cells[self._built :]:
            entry = self._entry(cell, store)
            self._tail.append(entry)
            self._tail_json.append(cell.entry_json or canonical_json(entry))
        self._built = len(cells)
        while len(cells) - 1 - self._segmented >= SEGMENT_CELLS:
            chunk = cells[self._segmented : self._segmented + SEGMENT_CELLS]
            data = segment_bytes([dict(self._entry(c, store, store_code=False), code=c.code) for c in chunk])
            digest = store.stage_bytes(data)  # written with the run (no file on its path)
            ref = {"hash": digest, "count": len(chunk)}
            self._segments.append(ref)
            self._segments_json.append(canonical_json(ref))
            self._segmented += len(chunk)
            del self._tail[: len(chunk)], self._tail_json[: len(chunk)]
        entries = list(self._tail)
        value: Any = {"segments": list(self._segments), "cells": entries} if self._segments else entries
        return value, encode(self._segments_json, self._tail_json)

    def _entry(self, cell: Cell, store: Any, store_code: bool = True) -> dict[str, Any]:
        """A cell's lineage entry (built once; rebuilt after its run id is set); with
        ``store_code``, its code is in the store (the entry refers to it by hash)."""
        if cell.code_hash is None:
            cell.code_hash = self._code_hashes.get(cell.code)
            if cell.code_hash is None:
                cell.code_hash = hash_bytes(cell.code.encode("utf-8", "surrogatepass"))
                if len(self._code_hashes) >= 1024:
                    self._code_hashes.clear()
                self._code_hashes[cell.code] = cell.code_hash
        if store_code and cell.code_hash not in self._stored:
            # Recorded with the next run, written as a file off the cell's path.
            store.stage_bytes(cell.code.encode("utf-8", "surrogatepass"))
            self._stored.add(cell.code_hash)
        if cell.entry is None:
            entry: dict[str, Any] = {
                "execution_count": cell.execution_count,
                "code_hash": cell.code_hash,
                "tracked": cell.tracked,
            }
            if cell.run:
                entry["run"] = cell.run
            if not cell.ok:
                entry["status"] = "error"
            cell.entry = entry
            cell.entry_json = canonical_json(entry)
        return cell.entry
