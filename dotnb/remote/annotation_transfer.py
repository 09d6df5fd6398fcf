"""Tags and notes travel with push and pull: the annotation events
(:mod:`dotnb.store.annotations`) the other side lacks are copied, never replaced.

On a remote they sit as in a store, ``annotations/<run id>/<event id>``, one
create-only key per change: two people tagging the same run push two events,
and every store that pulls both folds them to the same tags and note.  Only
events of runs the remote holds are pushed; a pulled event is checked (its run,
its id, its shape) before it is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dotnb.remote.backend import Backend
from dotnb.remote.parallel import parallel
from dotnb.store.annotations import Annotations, BadAnnotation
from dotnb.store.ids import is_run_id
from dotnb.store.layout import ANNOTATIONS_PREFIX, annotation_key

if TYPE_CHECKING:
    from dotnb.store.repo import Store


def _remote_events(backend: Backend) -> set[tuple[str, str]]:
    found = set()
    for key in backend.list_keys(ANNOTATIONS_PREFIX):
        parts = key[len(ANNOTATIONS_PREFIX) :].split("/")
        if len(parts) == 2 and is_run_id(parts[0]) and is_run_id(parts[1]):
            found.add((parts[0], parts[1]))
    return found


def push_annotations(store: Store, backend: Backend, remote: str) -> dict[str, int]:
    """Upload the annotation events of runs the remote holds that it lacks."""
    annotations = Annotations(store.dir, store.index)
    local = set(annotations.event_keys())
    if not local:
        return {"annotations_pushed": 0}
    on_remote = set(store.index.remote_runs(remote))
    missing = sorted(k for k in local - _remote_events(backend) if k[0] in on_remote)

    def upload(key: tuple[str, str]) -> None:
        backend.write(annotation_key(*key), annotations.read_event(*key), create_only=True)

    parallel(upload, missing)
    return {"annotations_pushed": len(missing)}


def pull_annotations(store: Store, backend: Backend) -> dict[str, int]:
    """Download the annotation events this store lacks; ``annotations_rejected``
    counts those that were not annotation events."""
    annotations = Annotations(store.dir, store.index)
    missing = sorted(_remote_events(backend) - set(annotations.event_keys()))
    datas = parallel(lambda key: backend.read(annotation_key(*key)), missing)
    changed: set[str] = set()
    added = rejected = 0
    for (run_id, event_id), data in zip(missing, datas, strict=True):
        if data is None:
            continue
        try:
            if annotations.add_event(run_id, event_id, data):
                changed.add(run_id)
                added += 1
        except BadAnnotation:
            rejected += 1
    if changed:
        annotations.reindex_runs(sorted(changed))
    return {"annotations_pulled": added, "annotations_rejected": rejected}
