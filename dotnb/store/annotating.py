"""The operations behind ``dotnb tag``, ``untag``, ``note`` and their REST routes: tags
and notes on a run this store holds (see :mod:`dotnb.store.annotations`)."""

from __future__ import annotations

from typing import Any

from dotnb.store.annotations import NOTE, TAG, UNTAG, Annotations
from dotnb.store.repo import Store


def tag_run(store: Store, run_id: str, names: list[str], author: str | None = None) -> dict[str, Any]:
    store.manifest_hash(run_id)  # RunNotFound for a run this store does not hold
    return Annotations(store.dir, store.index).record(run_id, TAG, tags=names, author=author)


def untag_run(store: Store, run_id: str, names: list[str], author: str | None = None) -> dict[str, Any]:
    store.manifest_hash(run_id)
    return Annotations(store.dir, store.index).record(run_id, UNTAG, tags=names, author=author)


def note_run(store: Store, run_id: str, text: str, author: str | None = None) -> dict[str, Any]:
    """Set run ``run_id``'s note (an empty text removes it)."""
    store.manifest_hash(run_id)
    return Annotations(store.dir, store.index).record(run_id, NOTE, note=text, author=author)


def run_annotations(store: Store, run_id: str) -> dict[str, Any]:
    store.manifest_hash(run_id)
    return Annotations(store.dir, store.index).get(run_id)


def tags_in_use(store: Store, notebook: str | None = None) -> dict[str, int]:
    """Every tag on some run (of ``notebook``), with how many runs carry it."""
    return Annotations(store.dir, store.index).tag_counts(notebook)
