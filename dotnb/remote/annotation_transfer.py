"""Tags and notes travel with push and pull: the annotation events
(:mod:`dotnb.store.annotations`) the other side lacks are copied, never replaced.

On a remote each event is one create-only key, ``annotations/<push id>.<event
id>``: two people tagging the same run push two events, and every store that
pulls both folds them to the same tags and note.  The push id is a ULID made
when the event is pushed (an event may be made long before its run is pushed),
so keys sort by the time they reached the remote and a pull lists only the keys
after its cursor, minus a window for clock skew between pushers (as the
journal does; see :mod:`dotnb.remote.transfer`).  A push writes the events of runs the remote
holds that this store has not pushed there yet (remembered per remote in the
index; forgetting it only costs create-only writes that find the key there).
A pulled event is checked (its id, its run, its shape) before it is stored.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from dotnb.remote.backend import Backend
from dotnb.remote.parallel import parallel
from dotnb.store.annotations import Annotations, BadAnnotation
from dotnb.store.ids import id_floor, is_run_id, new_run_id, time_ms

if TYPE_CHECKING:
    from dotnb.store.repo import Store

PREFIX = "annotations/"
# Pushers' clocks may disagree: a pull lists keys this far behind its cursor again.
SKEW_WINDOW_MS = 15 * 60 * 1000


def _pushed_key(remote: str) -> str:
    return f"annotations-pushed:{remote}"


def _cursor_key(remote: str) -> str:
    return f"annotations-pull:{remote}"


def _event_id(key: str) -> str:
    """The event id in a remote key ``annotations/<push id>.<event id>`` ('' if none)."""
    name = key[len(PREFIX) :]
    event_id = name.partition(".")[2]
    return event_id if is_run_id(event_id) else ""


def _load_set(text: str | None) -> set[str]:
    try:
        found = json.loads(text) if text else []
    except ValueError:
        return set()
    return {e for e in found if isinstance(e, str)} if isinstance(found, list) else set()


def push_annotations(store: Store, backend: Backend, remote: str) -> dict[str, int]:
    """Write the events of runs the remote holds that were not pushed there yet."""
    annotations = Annotations(store.dir, store.index)
    on_remote = set(store.index.remote_runs(remote))
    pushed = _load_set(store.index.get_meta(_pushed_key(remote)))
    todo = sorted(
        (run, event) for run, event in annotations.event_keys() if run in on_remote and event not in pushed
    )
    if not todo:
        return {"annotations_pushed": 0}

    def upload(item: tuple[str, str]) -> bool:
        run_id, event_id = item
        key = f"{PREFIX}{new_run_id()}.{event_id}"
        return backend.write(key, annotations.read_event(run_id, event_id), create_only=True)

    written = parallel(upload, todo)
    store.index.put_meta(_pushed_key(remote), json.dumps(sorted(pushed | {e for _, e in todo})))
    return {"annotations_pushed": sum(1 for w in written if w)}


def pull_annotations(store: Store, backend: Backend, remote: str) -> dict[str, int]:
    """Store the remote's events made since the last pull (and the skew window) that
    this store lacks; ``annotations_rejected`` counts keys that were not events."""
    annotations = Annotations(store.dir, store.index)
    cursor = store.index.get_meta(_cursor_key(remote)) or ""
    ms = time_ms(cursor[len(PREFIX) :]) if cursor else None
    start_after = None if ms is None else PREFIX + id_floor(ms - SKEW_WINDOW_MS)
    listed_at = PREFIX + id_floor(int(time.time() * 1000))
    keys = list(backend.list_keys(PREFIX, start_after))
    have = {event for _, event in annotations.event_keys()}
    wanted = [k for k in keys if _event_id(k) not in have]
    datas = parallel(backend.read, wanted)
    changed: set[str] = set()
    added: set[str] = set()
    rejected = 0
    for key, data in zip(wanted, datas, strict=True):
        event_id = _event_id(key)
        if data is None:
            continue
        try:
            if not event_id:
                raise BadAnnotation(f"{key} is not an annotation event's key")
            run_id = json.loads(data)["run"]
            if not (isinstance(run_id, str) and is_run_id(run_id)):
                raise BadAnnotation(f"annotation {event_id} names no run")
            annotations.add_event(run_id, event_id, data)
        except (BadAnnotation, ValueError, KeyError, TypeError):
            rejected += 1
            continue
        changed.add(run_id)
        added.add(event_id)
    if changed:
        annotations.reindex_runs(sorted(changed))
    if added:
        # Pulled from there: never pushed back.
        pushed = _load_set(store.index.get_meta(_pushed_key(remote)))
        store.index.put_meta(_pushed_key(remote), json.dumps(sorted(pushed | added)))
    # Keys are named when pushed: one pushed after this listing sorts after its time
    # (give or take the skew window), so the cursor may move to it even when none came.
    store.index.put_meta(_cursor_key(remote), max([cursor, listed_at, *keys]))
    return {"annotations_pulled": len(added), "annotations_rejected": rejected}
