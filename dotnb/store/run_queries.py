"""Questions about recorded runs, answered from the index: the change feed, metric
series, which run wrote some content, and the look-ups behind resolving a RUN
argument, pushing and checking.

Listing runs with filters is :mod:`dotnb.store.listing` (shared with ``dotnb log``'s
fast path), parsing those filters :mod:`dotnb.store.query`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from dotnb.store.index import IN_CHUNK, Index
from dotnb.store.listing import with_annotations


class RunQueries:
    """Read-only queries over a store's index."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def manifest_hash(self, run_id: str) -> str | None:
        """The manifest hash run ``run_id``'s index row names; None when it has none."""
        rows = self.index.query("SELECT manifest FROM runs WHERE id=?", (run_id,))
        return str(rows[0][0]) if rows else None

    def manifest_hashes(self, run_ids: list[str]) -> dict[str, str]:
        """Run id -> the manifest hash its index row names, for those that have a row."""
        found: dict[str, str] = {}
        for start in range(0, len(run_ids), IN_CHUNK):
            chunk = run_ids[start : start + IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self.index.query(f"SELECT id, manifest FROM runs WHERE id IN ({marks})", tuple(chunk)):
                found[str(row[0])] = str(row[1])
        return found

    def all_manifest_hashes(self) -> dict[str, str]:
        """Every indexed run's id -> its manifest hash."""
        return {str(r[0]): str(r[1]) for r in self.index.query("SELECT id, manifest FROM runs")}

    def changes(self, after_seq: int, limit: int = 200) -> tuple[list[dict[str, Any]], int]:
        """Runs added or updated after the change cursor ``after_seq``; returns (runs, new cursor)."""
        rows = self.index.query(
            "SELECT summary, seq, a.tags, a.note FROM runs LEFT JOIN run_annotations a ON a.run_id = runs.id"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        cursor = int(rows[-1][1]) if rows else after_seq
        # A change of tags or note moves its run to the end (dotnb.store.annotations),
        # so the summary carries them, as in every list of runs.
        return [json.loads(with_annotations(r[0], r[2], r[3])) for r in rows], cursor

    def change_cursor(self) -> int:
        rows = self.index.query("SELECT COALESCE(MAX(seq), 0) FROM runs")
        return int(rows[0][0])

    def metric_values(
        self, name: str, notebook: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """One summary metric across runs, oldest first: [{id, number, notebook, started_at, value}]."""
        sql = (
            "SELECT r.id, r.number, r.notebook, r.started_at, r.name, r.status, m.value"
            " FROM metric_values m JOIN runs r ON r.id = m.run_id WHERE m.name=?"
        )
        args: list[Any] = [name]
        if notebook is not None:
            sql += " AND m.notebook=?"
            args.append(notebook)
        sql += " ORDER BY r.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        rows = self.index.query(sql, tuple(args))
        keys = ("id", "number", "notebook", "started_at", "name", "status", "value")
        return [dict(zip(keys, row, strict=True)) for row in reversed(rows)]

    def metric_names(self, notebook: str | None = None) -> list[str]:
        if notebook is None:
            rows = self.index.query("SELECT DISTINCT name FROM metric_values ORDER BY name")
        else:
            rows = self.index.query(
                "SELECT DISTINCT name FROM metric_values WHERE notebook=? ORDER BY name", (notebook,)
            )
        return [str(r[0]) for r in rows]

    def latest_metric(self, notebook: str | None = None) -> str | None:
        """A metric of the newest run that recorded one (the first by name): what
        the user logged last, as far as the index knows (run ids sort by time)."""
        where, args = ("WHERE notebook=?", (notebook,)) if notebook is not None else ("", ())
        rows = self.index.query(
            f"SELECT name FROM metric_values WHERE run_id = (SELECT MAX(run_id) FROM metric_values {where})"
            f" {where.replace('WHERE', 'AND')} ORDER BY name LIMIT 1",
            args * 2,
        )
        return str(rows[0][0]) if rows else None

    def duplicate_numbers(self) -> list[dict[str, Any]]:
        """Numbers that several runs recorded in this store share within a notebook
        (pulled runs keep their author's numbers and are left out)."""
        rows = self.index.query(
            "SELECT notebook, number, group_concat(id, ' ') FROM runs WHERE remote=''"
            " GROUP BY notebook, number HAVING COUNT(*) > 1 ORDER BY notebook, number"
        )
        return [{"notebook": r[0], "number": r[1], "runs": sorted(str(r[2]).split())} for r in rows]

    def producers_of(self, digests: Iterable[str]) -> dict[str, str]:
        """:meth:`producer_of` for many contents at once: content hash -> run id, for
        those some run wrote."""
        found: dict[str, str] = {}
        unique = sorted(set(digests))
        for start in range(0, len(unique), IN_CHUNK):
            chunk = tuple(unique[start : start + IN_CHUNK])
            rows = self.index.query(
                "SELECT o.hash, MAX(o.run_id) FROM outputs o JOIN runs r ON r.id = o.run_id"
                f" WHERE r.kind='run' AND o.hash IN ({','.join('?' * len(chunk))}) GROUP BY o.hash",
                chunk,
            )
            found.update((str(h), str(run_id)) for h, run_id in rows)
        return found

    def producer_of(self, digest: str, before: str | None = None) -> str | None:
        """The newest run (of kind run) that wrote content ``digest`` as an output."""
        sql = "SELECT o.run_id FROM outputs o JOIN runs r ON r.id = o.run_id WHERE o.hash=? AND r.kind='run'"
        args: list[Any] = [digest]
        if before is not None:
            sql += " AND o.run_id < ?"
            args.append(before)
        rows = self.index.query(sql + " ORDER BY o.run_id DESC LIMIT 1", tuple(args))
        return str(rows[0][0]) if rows else None

    # -- resolving RUN arguments (dotnb.store.resolve) ------------------------

    def latest_run(self, notebook: str | None = None) -> str | None:
        """The newest run of kind run (of ``notebook`` when given)."""
        sql = "SELECT id FROM runs WHERE kind=?"
        args: list[Any] = ["run"]
        if notebook is not None:
            sql += " AND notebook=?"
            args.append(notebook)
        rows = self.index.query(sql + " ORDER BY id DESC LIMIT 1", tuple(args))
        return str(rows[0][0]) if rows else None

    def numbered(self, number: int, notebook: str | None = None) -> list[tuple[str, str, str, str]]:
        """(id, notebook, remote, author) of the runs numbered ``number`` (in ``notebook``)."""
        sql = "SELECT id, notebook, remote, author FROM runs WHERE number=?"
        args: list[Any] = [number]
        if notebook is not None:
            sql += " AND notebook=?"
            args.append(notebook)
        return [(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in self.index.query(sql, tuple(args))]

    def ids_with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` run ids starting with ``prefix`` (upper case), in order."""
        rows = self.index.query(
            "SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
            (prefix, prefix + "\x7f", limit),
        )
        return [str(r[0]) for r in rows]

    # -- remotes (dotnb.remote) and checks (dotnb.store.fsck, dotnb.store.gc) --

    def run_manifests(self, run_ids: list[str] | None = None) -> dict[str, str]:
        """Run id -> manifest hash of the runs ``run_ids`` (those indexed), or of every
        run of kind run (checkpoints excepted), in id order."""
        if run_ids is None:
            rows = self.index.query("SELECT id, manifest FROM runs WHERE kind='run' ORDER BY id")
        else:
            wanted = list(dict.fromkeys(run_ids))
            marks = ",".join("?" * len(wanted))
            rows = self.index.query(
                f"SELECT id, manifest FROM runs WHERE id IN ({marks}) ORDER BY id", tuple(wanted)
            )
        return {str(r[0]): str(r[1]) for r in rows}

    def pulled_run_ids(self, remote: str | None = None) -> set[str]:
        """The runs pulled from ``remote``, or from any remote."""
        if remote is None:
            rows = self.index.query("SELECT id FROM runs WHERE remote != ''")
        else:
            rows = self.index.query("SELECT id FROM runs WHERE remote=?", (remote,))
        return {str(r[0]) for r in rows}
