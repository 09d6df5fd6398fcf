"""Tags and notes on runs: annotations kept apart from the recorded run.

A run's manifest never changes once recorded; what users say about a run later
(tags such as ``baseline`` or ``bad-data``, a free-text note) is kept as
*annotation events* beside it::

    .dotnb/annotations/<run id>/<event id>    one JSON document per change

Each event is written once (temp file, fsync, rename) and never modified: it
says what changed (``tag`` or ``untag`` some names, or set the ``note``), who
changed it (``user@host``) and when.  A run's annotations are the fold of its
events in (time, id) order; two stores that hold the same events agree, so a
push or a pull only copies the events the other side lacks (see
:mod:`dotnb.remote.annotation_transfer`).

The index caches the fold (``run_annotations``, and ``run_tags`` to filter by
tag): it is rebuilt from the events whenever the index is new (see
:func:`ensure_indexed`) and by ``dotnb fsck --rebuild-index``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotnb.store.atomic import write_bytes
from dotnb.store.errors import DotnbError
from dotnb.store.ids import is_run_id, new_run_id
from dotnb.store.index import Index
from dotnb.store.layout import ANNOTATIONS_DIR, TMP_DIR
from dotnb.store.manifest import iso_time

if TYPE_CHECKING:
    import sqlite3

ANNOTATION_VERSION = 1
TAG = "tag"
UNTAG = "untag"
NOTE = "note"
OPERATIONS = (TAG, UNTAG, NOTE)

MAX_TAG_LENGTH = 64
MAX_TAGS_PER_CHANGE = 100
MAX_NOTE_LENGTH = 10_000
# An event bigger than this is refused when pulled (a note at its longest is far below).
MAX_EVENT_BYTES = 64 * 1024

# The meta key set once the cache holds every event in annotations/.
_INDEXED_META = "annotations_indexed"
# The cached fold, as listing splices it into a summary's text (json.dumps defaults,
# ensure_ascii=False: what the summaries' encoder writes, see dotnb.store.summary_indent).
_CACHE_JSON = json.JSONEncoder(ensure_ascii=False)


class BadAnnotation(DotnbError):
    """A tag name or note that cannot be recorded, or an event that is not one."""


def check_tag(name: object) -> str:
    """A tag name as recorded: surrounding spaces removed; non-empty, at most
    ``MAX_TAG_LENGTH`` characters, no spaces, commas or control characters inside."""
    if not isinstance(name, str):
        raise BadAnnotation(f"a tag must be text, not {type(name).__name__}")
    tag = name.strip()
    if not tag:
        raise BadAnnotation("a tag cannot be empty")
    if len(tag) > MAX_TAG_LENGTH:
        raise BadAnnotation(f"tag {tag[:20]!r}… is longer than {MAX_TAG_LENGTH} characters")
    if any(c.isspace() or c == "," or not c.isprintable() for c in tag):
        raise BadAnnotation(f"tag {tag!r} contains a space, a comma or a control character")
    return tag


def check_tags(names: Iterable[str]) -> list[str]:
    tags = list(dict.fromkeys(check_tag(n) for n in names))
    if not tags:
        raise BadAnnotation("name at least one tag")
    if len(tags) > MAX_TAGS_PER_CHANGE:
        raise BadAnnotation(f"at most {MAX_TAGS_PER_CHANGE} tags at once")
    return tags


def check_note(text: object) -> str:
    if not isinstance(text, str):
        raise BadAnnotation(f"a note must be text, not {type(text).__name__}")
    if len(text) > MAX_NOTE_LENGTH:
        raise BadAnnotation(f"a note holds at most {MAX_NOTE_LENGTH} characters ({len(text)} given)")
    if "\x00" in text:
        raise BadAnnotation("a note cannot contain NUL characters")
    return text


def parse_event(data: bytes, run_id: str, event_id: str) -> dict[str, Any]:
    """An annotation event from its stored bytes, checked to be one of run ``run_id``
    named ``event_id`` (BadAnnotation otherwise): pulled events are checked as local ones."""
    if len(data) > MAX_EVENT_BYTES:
        raise BadAnnotation(f"annotation {event_id} of run {run_id} is too large")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadAnnotation(f"annotation {event_id} of run {run_id} is not JSON") from None
    if not isinstance(doc, dict) or doc.get("run") != run_id or doc.get("id") != event_id:
        raise BadAnnotation(f"annotation {event_id} does not name run {run_id} and itself")
    if doc.get("annotation") != ANNOTATION_VERSION or doc.get("op") not in OPERATIONS:
        raise BadAnnotation(f"annotation {event_id} of run {run_id} is of an unknown kind")
    if not isinstance(doc.get("author"), str) or not isinstance(doc.get("at"), str):
        raise BadAnnotation(f"annotation {event_id} of run {run_id} has no author or time")
    if doc["op"] == NOTE:
        check_note(doc.get("note"))
    else:
        tags = doc.get("tags")
        if not isinstance(tags, list):
            raise BadAnnotation(f"annotation {event_id} of run {run_id} names no tags")
        doc["tags"] = check_tags(tags)
    return doc


def fold(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A run's annotations from its events: ``tags`` (in the order first added),
    ``note`` (None: none), who wrote the note and when, and the changes in order."""
    tags: dict[str, None] = {}
    note: str | None = None
    note_by: str | None = None
    note_at: str | None = None
    history = sorted(events, key=lambda e: (e["at"], e["id"]))
    for event in history:
        if event["op"] == TAG:
            tags.update(dict.fromkeys(event["tags"]))
        elif event["op"] == UNTAG:
            for tag in event["tags"]:
                tags.pop(tag, None)
        else:
            note = event["note"] or None
            note_by, note_at = event["author"], event["at"]
    return {
        "tags": list(tags),
        "note": note,
        "note_author": note_by,
        "note_at": note_at,
        "history": [
            {k: e[k] for k in ("id", "op", "tags", "note", "author", "at") if k in e} for e in history
        ],
    }


class Annotations:
    """The annotation events of a store's runs, and their cache in the index."""

    def __init__(self, store_dir: Path, index: Index) -> None:
        self.dir = Path(store_dir) / ANNOTATIONS_DIR
        self.tmp_dir = Path(store_dir) / TMP_DIR
        self.index = index

    # -- events ----------------------------------------------------------------

    def event_path(self, run_id: str, event_id: str) -> Path:
        if not (is_run_id(run_id) and is_run_id(event_id)):
            raise BadAnnotation(f"{run_id!r}/{event_id!r} is not a run id and an event id")
        return self.dir / run_id / event_id

    def record(
        self,
        run_id: str,
        op: str,
        tags: list[str] | None = None,
        note: str | None = None,
        author: str | None = None,
    ) -> dict[str, Any]:
        """Write one change to run ``run_id``'s annotations and update the cache; returns
        the run's annotations after it."""
        if author is None:
            from dotnb.store.author import user_at_host  # socket, getpass: not on a kernel's start

            author = user_at_host()
        event: dict[str, Any] = {
            "annotation": ANNOTATION_VERSION,
            "id": new_run_id(),
            "run": run_id,
            "op": op,
            "author": author,
            "at": iso_time(time.time()),
        }
        if op == NOTE:
            event["note"] = check_note(note or "")
        elif op in (TAG, UNTAG):
            event["tags"] = check_tags(tags or [])
        else:
            raise BadAnnotation(f"unknown annotation operation {op!r}")
        data = json.dumps(event, sort_keys=True, ensure_ascii=False).encode("utf-8")
        path = self.event_path(run_id, event["id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        # Durable before the cache says so: the events are the truth, the index a cache.
        write_bytes(path, data, tmp_dir=self.tmp_dir)
        return self.reindex_runs([run_id])[run_id]

    def add_event(self, run_id: str, event_id: str, data: bytes) -> bool:
        """Store an event made elsewhere (a pull), checked first; False when it is here
        already.  The caller reindexes the runs it added events to."""
        parse_event(data, run_id, event_id)
        path = self.event_path(run_id, event_id)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        write_bytes(path, data, tmp_dir=self.tmp_dir)
        return True

    def read_event(self, run_id: str, event_id: str) -> bytes:
        return self.event_path(run_id, event_id).read_bytes()

    def event_keys(self) -> Iterator[tuple[str, str]]:
        """(run id, event id) of every event held here."""
        for run_id in self.annotated_runs():
            for entry in os.scandir(self.dir / run_id):
                if entry.is_file() and is_run_id(entry.name):
                    yield run_id, entry.name

    def annotated_runs(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.dir) if e.is_dir() and is_run_id(e.name))
        except FileNotFoundError:
            return []

    def events(self, run_id: str) -> list[dict[str, Any]]:
        """Run ``run_id``'s readable events (a damaged one is skipped: it cannot be
        told apart from one never written)."""
        found = []
        try:
            entries = list(os.scandir(self.dir / run_id))
        except FileNotFoundError:
            return []
        for entry in entries:
            if not (entry.is_file() and is_run_id(entry.name)):
                continue
            try:
                found.append(parse_event(Path(entry.path).read_bytes(), run_id, entry.name))
            except (OSError, BadAnnotation):
                continue
        return found

    def get(self, run_id: str) -> dict[str, Any]:
        """Run ``run_id``'s annotations with their history (see :func:`fold`)."""
        return dict(fold(self.events(run_id)), id=run_id)

    # -- the index's cache -------------------------------------------------------

    def reindex_runs(self, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Cache the annotations of ``run_ids`` from their events; returns them."""
        folded = {rid: self.get(rid) for rid in dict.fromkeys(run_ids)}
        with self.index.write() as tx:
            for rid, state in folded.items():
                _cache_run(tx, rid, state)
        return folded

    def reindex_all(self) -> int:
        """Rebuild the whole cache from the events; returns the runs annotated."""
        runs = self.annotated_runs()
        folded = {rid: fold(self.events(rid)) for rid in runs}
        with self.index.write() as tx:
            tx.execute("DELETE FROM run_annotations")
            tx.execute("DELETE FROM run_tags")
            for rid, state in folded.items():
                _cache_run(tx, rid, state, changed=False)  # a rebuild, not a change
            Index.set_meta(tx, _INDEXED_META, "1")
        return len(runs)

    def ensure_indexed(self) -> None:
        """Fill the cache from the events when the index is new (one meta look-up otherwise)."""
        if self.index.get_meta(_INDEXED_META) is None:
            self.reindex_all()

    def tag_counts(self, notebook: str | None = None) -> dict[str, int]:
        """Every tag in use, with how many runs (of ``notebook``) carry it."""
        sql = "SELECT t.tag, COUNT(*) FROM run_tags t"
        args: tuple[Any, ...] = ()
        if notebook is not None:
            sql += " JOIN runs r ON r.id = t.run_id WHERE r.notebook=?"
            args = (notebook,)
        rows = self.index.query(sql + " GROUP BY t.tag ORDER BY t.tag", args)
        return {str(r[0]): int(r[1]) for r in rows}


def _cache_run(tx: sqlite3.Connection, run_id: str, state: dict[str, Any], changed: bool = True) -> None:
    """Cache a run's tags and note; ``changed``: they changed, so the run moves to the
    end of the change feed (``GET events`` then carries its new summary)."""
    if changed:
        tx.execute("UPDATE runs SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM runs) WHERE id=?", (run_id,))
    tx.execute("DELETE FROM run_tags WHERE run_id=?", (run_id,))
    if not state["tags"] and state["note"] is None:
        tx.execute("DELETE FROM run_annotations WHERE run_id=?", (run_id,))
        return
    tx.execute(
        "INSERT OR REPLACE INTO run_annotations(run_id, tags, note) VALUES (?, ?, ?)",
        (run_id, _CACHE_JSON.encode(state["tags"]), _CACHE_JSON.encode(state["note"])),
    )
    tx.executemany(
        "INSERT OR IGNORE INTO run_tags(tag, run_id) VALUES (?, ?)", [(t, run_id) for t in state["tags"]]
    )
