"""Fetch missing objects of pulled runs when something reads them.

``attach(store)`` gives the store's object layer a fetcher; afterwards restore,
show, cat, reproduce and the REST API read a pulled run's data as if it were
local, each object verified against its hash as it arrives.  Without remotes
nothing changes (a missing object stays an error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dotnb.remote.config import has_remotes
from dotnb.store.errors import ObjectMissing

if TYPE_CHECKING:
    from dotnb.store.repo import Store


def attach(store: Store, always: bool = False) -> None:
    """Give ``store`` a fetcher.  ``always``: even with no remote yet (a long-running
    server, where ``dotnb remote add`` may happen later); remotes are read per fetch."""
    if not always and not has_remotes(store):
        return

    def fetch(digests: list[str]) -> None:
        if not has_remotes(store):
            raise ObjectMissing(f"object {digests[0][:12]} is missing from the store")
        from dotnb.remote.transfer import fetch_objects

        fetch_objects(store, digests)

    store.objects.fetcher = fetch
