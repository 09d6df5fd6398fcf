"""The checkpoint a kernel checkout records first: the namespace it is about to
change, stored as the kernel state of a run of kind ``checkpoint`` (as a file
restore checkpoints the files it replaces), so ``%dotnb checkout --undo`` can go back
to it after a kernel restart too, and ``GET runs/{run}/kernel-state`` or
``%dotnb checkout CHECKPOINT`` can look at it like at any run.

Only what may have changed since the last capture (names cells mentioned, names
bound to other objects) is pickled and hashed again (in the kernel: a checkout is
not a cell's path, and the checkpoint must be on disk before any name changes);
when nothing did, the checkpoint's state is the last capture's manifest, and
recording it costs a run commit.  Its entries are then exact, so the checkout
plans with them (:func:`namespace_state` first, then :func:`commit_checkpoint`
only if the checkout changes something).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dotnb.capture.namespace import with_called_globals
from dotnb.capture.state_writer import StateCapture, prepare_state, write_objects
from dotnb.store.kernel_state import write_state_ref
from dotnb.store.manifest import checkpoint_manifest


def namespace_state(
    capture: StateCapture, ip: Any, store: Any, variables: Mapping[str, Any]
) -> tuple[str, dict[str, dict[str, Any]]]:
    """(state manifest hash, its entries) of ``variables`` as they are now, written."""
    known = capture.known
    dirty = capture.dirty if capture.enabled else None
    if dirty is not None:
        dirty = with_called_globals(dirty, ip.user_ns)
    if dirty is not None and capture.last_state is not None:
        unchanged = all(
            n in known and n not in dirty and known[n].obj_id == id(v) for n, v in variables.items()
        )
        if unchanged and all(n in variables for n in known):
            return capture.last_state, {n: k.entry for n, k in known.items()}
    plan = prepare_state(variables, known, dirty, capture.cells, capture.limits, capture.author)
    write_objects(store.objects, plan)
    return plan.digest, plan.entries


def commit_checkpoint(store: Any, digest: str, checked_out: str, notebook: str | None) -> dict[str, Any]:
    """Commit the checkpoint run of a checkout of run ``checked_out``, its kernel state
    being the state manifest ``digest`` (:func:`namespace_state`); its summary."""
    from dotnb.store.author import current_host, current_user

    manifest = checkpoint_manifest(
        "kernel variables before checking out",
        store.manifest(checked_out),
        notebook,
        current_user(),
        current_host(),
    )
    # The run is committed before its state ref: a crash in between leaves a
    # checkpoint without kernel state, which an undo refuses, never a ref to no run.
    summary: dict[str, Any] = store.commit_run(manifest)
    write_state_ref(store.dir, summary["id"], digest)
    return summary
