"""Tags and notes: annotation events beside the immutable run, their fold, and the
index's cache of them (rebuilt from the events)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.annotating import note_run, run_annotations, tag_run, tags_in_use, untag_run
from dotnb.store.annotations import Annotations, BadAnnotation, fold, parse_event
from dotnb.store.errors import RunNotFound
from dotnb.store.manifest import iso_time
from dotnb.store.repo import Store


def commit(store: Store, number_hint: int = 0, **fields: Any) -> str:
    manifest: dict[str, Any] = {
        "kind": "run",
        "notebook": "nb.ipynb",
        "code": f"x = {number_hint}",
        "params": {},
        "metrics": {},
        "status": "ok",
        "started_at": iso_time(time.time()),
        "duration_s": 1.0,
        "environment": {"user": "ada", "host": "box"},
        **fields,
    }
    return str(store.commit_run(manifest)["id"])


def test_tags_and_notes_are_recorded_beside_the_run(store: Store) -> None:
    run = commit(store)
    manifest_before = store.manifest_hash(run)
    state = tag_run(store, run, ["baseline", "bad-data", "baseline"], author="ada@box")
    assert state["tags"] == ["baseline", "bad-data"]
    state = untag_run(store, run, ["bad-data", "never-there"], author="bob@lap")
    assert state["tags"] == ["baseline"]
    state = note_run(store, run, "diverges <img src=x onerror=alert(1)>", author="cy@desk")
    assert state["note"] == "diverges <img src=x onerror=alert(1)>"
    assert state["note_author"] == "cy@desk"
    assert [(e["op"], e["author"]) for e in state["history"]] == [
        ("tag", "ada@box"),
        ("untag", "bob@lap"),
        ("note", "cy@desk"),
    ]
    # The recorded run is untouched: its manifest (and ref) are what they were.
    assert store.manifest_hash(run) == manifest_before
    assert "tags" not in store.manifest(run)
    # One file per change under .dotnb/annotations/<run>/, each naming who and when.
    files = sorted((store.dir / "annotations" / run).iterdir())
    assert len(files) == 3
    event = json.loads(files[0].read_bytes())
    assert event["run"] == run and event["author"] == "ada@box" and event["at"].endswith("Z")
    # An empty note removes it.
    assert note_run(store, run, "")["note"] is None


def test_summaries_carry_tags_and_note_and_filter_by_tag(store: Store) -> None:
    first, second, third = commit(store, 1), commit(store, 2), commit(store, 3)
    tag_run(store, first, ["baseline"])
    tag_run(store, second, ["baseline", "sweep"])
    note_run(store, third, "looked wrong")
    rows = {r["id"]: r for r in store.list_runs()}
    assert rows[first]["tags"] == ["baseline"] and rows[first]["note"] is None
    assert rows[third]["tags"] == [] and rows[third]["note"] == "looked wrong"
    assert [r["id"] for r in store.list_runs(tags=["baseline"])] == [second, first]
    assert [r["id"] for r in store.list_runs(tags=["baseline", "sweep"])] == [second]
    assert store.list_runs(tags=["nope"]) == []
    assert tags_in_use(store) == {"baseline": 2, "sweep": 1}


def test_the_cache_is_rebuilt_from_the_events(tmp_path: Path) -> None:
    store = Store.init(tmp_path)
    run = commit(store)
    tag_run(store, run, ["keep"])
    note_run(store, run, "kept")
    assert store.rebuild_index() == 1
    assert store.list_runs()[0]["tags"] == ["keep"]
    store.close()
    # The index is only a cache: delete it, and opening the store brings tags back.
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / ".dotnb" / f"index.sqlite{suffix}").unlink(missing_ok=True)
    store = Store(tmp_path)
    row = store.list_runs()[0]
    assert row["tags"] == ["keep"] and row["note"] == "kept"
    assert [r["id"] for r in store.list_runs(tags=["keep"])] == [run]
    store.close()


@pytest.mark.parametrize("bad", ["", " ", "two words", "a,b", "x" * 65, "tab\there", "nul\x00"])
def test_bad_tags_are_refused(store: Store, bad: str) -> None:
    run = commit(store)
    with pytest.raises(BadAnnotation):
        tag_run(store, run, [bad])
    assert not (store.dir / "annotations" / run).exists()


def test_unknown_runs_and_long_notes_are_refused(store: Store) -> None:
    with pytest.raises(RunNotFound):
        tag_run(store, "01ARZ3NDEKTSV4RRFFQ69G5FAV", ["x"])
    run = commit(store)
    with pytest.raises(BadAnnotation):
        note_run(store, run, "x" * 10_001)
    assert run_annotations(store, run)["tags"] == []


def test_events_fold_in_time_order_whatever_store_they_come_from(store: Store) -> None:
    run = commit(store)
    ann = Annotations(store.dir, store.index)
    late = {"annotation": 1, "id": "01J00000000000000000000002", "run": run, "op": "untag", "tags": ["a"],
            "author": "bob@lap", "at": "2026-01-02T00:00:00.000Z"}  # fmt: skip
    early = dict(
        late, id="01J00000000000000000000001", op="tag", tags=["a", "b"], at="2026-01-01T00:00:00.000Z"
    )
    for event in (late, early):  # arriving in either order
        assert ann.add_event(run, event["id"], json.dumps(event).encode())
    assert not ann.add_event(run, early["id"], json.dumps(early).encode())  # already here
    assert ann.reindex_runs([run])[run]["tags"] == ["b"]
    assert fold([late, early])["tags"] == ["b"]


def test_malformed_events_are_refused_or_skipped(store: Store) -> None:
    run = commit(store)
    eid = "01J00000000000000000000003"
    with pytest.raises(BadAnnotation):
        parse_event(b"not json", run, eid)
    with pytest.raises(BadAnnotation):  # names another run
        parse_event(json.dumps({"annotation": 1, "id": eid, "run": "X", "op": "note", "note": "",
                                "author": "a", "at": "t"}).encode(), run, eid)  # fmt: skip
    with pytest.raises(BadAnnotation):  # a path, not an id
        Annotations(store.dir, store.index).event_path(run, "../../evil")
    tag_run(store, run, ["ok"])
    # A damaged file (e.g. written by hand) is skipped, not fatal.
    (store.dir / "annotations" / run / eid).write_bytes(b"{")
    assert run_annotations(store, run)["tags"] == ["ok"]
    assert os.path.exists(store.dir / "annotations" / run / eid)
