"""``%dotnb checkout RUN``: the kernel's variables back to a run's recorded state.

Incremental: a name whose object is the one the last capture (or checkout)
recorded, untouched by any cell since, with the same group hash as the target,
is left alone; other groups of the target are loaded; names the target did not
have are removed.  Every object is verified against its hash before it is
unpickled, and a state recorded by another ``user@host`` is loaded only with
``--trust`` (unpickling runs code).

Atomic and undoable: every group is loaded before any name is assigned (a
failure or an interrupt while loading leaves the namespace as it was), and the
namespace the checkout changes is first recorded in the store as a checkpoint run
(:mod:`dotnb.capture.state_checkpoint`); ``%dotnb checkout --undo`` checks that
checkpoint out, in this kernel or after a restart.  Values the checkpoint could not
store (unpicklable, too large) are also kept in this kernel's memory, and an undo in
the same kernel puts those objects back.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dotnb.capture.namespace import is_notebook_defined, user_variables
from dotnb.capture.state_checkpoint import commit_checkpoint, namespace_state
from dotnb.capture.state_writer import Known, StateCapture
from dotnb.store.kernel_state import (
    GROUP_FORMAT,
    STATE_FORMAT,
    STORED,
    clear_undo_ref,
    read_blob,
    read_document,
    read_state_ref,
    read_undo_ref,
    undo_key,
    write_undo_ref,
)

_ABSENT = object()


class CheckoutRefused(Exception):
    """The checkout did not change the namespace; the message says why."""


@dataclass
class CheckoutPlan:
    load: dict[str, list[str]] = field(default_factory=dict)  # group hash -> its names
    remove: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> its entry


def plan_checkout(
    target: Mapping[str, dict[str, Any]],
    groups: Mapping[str, dict[str, Any]],
    variables: Mapping[str, Any],
    known: Mapping[str, Known],
    dirty: set[str] | None,
) -> CheckoutPlan:
    """What to load, remove and keep to go from ``variables`` to ``target`` (entries
    by name; ``groups``: the target's group records by hash)."""

    def current(name: str) -> str | None:
        """The group hash ``name`` is known to hold now, or None."""
        k = known.get(name)
        if k is None or name not in variables or k.obj_id != id(variables[name]):
            return None
        if dirty is None or name in dirty:
            return None
        group: str | None = k.entry.get("group")
        return group

    plan = CheckoutPlan()
    for digest, record in groups.items():
        if any(current(n) != digest for n in record["names"]):
            plan.load[digest] = list(record["names"])
    # A group that refers to a reloaded name (an instance of a reloaded class) is
    # reloaded too, so it refers to the new object.
    changed = True
    while changed:
        changed = False
        reloaded = {n for names in plan.load.values() for n in names}
        for digest, record in groups.items():
            if digest not in plan.load and reloaded & set(record.get("needs") or []):
                plan.load[digest] = list(record["names"])
                changed = True
    loading = {n for names in plan.load.values() for n in names}
    for name, entry in target.items():
        if entry["status"] != STORED:
            plan.missing[name] = entry
        elif name not in loading:
            plan.unchanged.append(name)
    plan.remove = sorted(n for n in variables if n not in target)
    return plan


def held_unstored(
    target: Mapping[str, dict[str, Any]],
    variables: Mapping[str, Any],
    known: Mapping[str, Known],
    dirty: set[str] | None,
    last_captured: bool,
) -> set[str]:
    """Names the target could not store that the kernel still holds as the target had
    them: the target's state is the last one captured (``last_captured``), and the name
    is bound to the object that capture saw, untouched by any cell since.  Recomputing
    them would only re-run cells (re-open a file, reconnect) for the same value."""
    if not last_captured or dirty is None:
        return set()
    held = set()
    for name, entry in target.items():
        k = known.get(name)
        if entry["status"] == STORED or k is None or name not in variables or name in dirty:
            continue
        if k.obj_id == id(variables[name]):
            held.add(name)
    return held


def keep_held(plan: CheckoutPlan, held: set[str]) -> CheckoutPlan:
    """``plan`` with the ``held`` names left alone (unchanged) instead of missing."""
    for name in sorted(held & set(plan.missing)):
        del plan.missing[name]
        plan.unchanged.append(name)
    return plan


def load_groups(
    objects: Any, groups: Mapping[str, dict[str, Any]], order: list[str], namespace: Mapping[str, Any]
) -> dict[str, Any]:
    """The values of groups ``order`` (hashes), loaded in that order; a name a group
    refers to resolves to a value loaded before it, else to ``namespace``'s."""
    staged: dict[str, Any] = {}

    def lookup(name: str) -> Any:
        if name in staged:
            return staged[name]
        if name in namespace:
            return namespace[name]
        raise pickle.UnpicklingError(f"it refers to {name!r}, which is not in the restored namespace")

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            return lookup(str(pid))

    numpy = sys.modules.get("numpy")
    allocate = None if numpy is None else (lambda size: numpy.empty(size, dtype=numpy.uint8))
    for digest in order:
        record = groups[digest]
        stream = read_blob(objects, record["pickle"], record["pickle_size"])
        buffers = [read_blob(objects, h, n, allocate) for h, n in record.get("buffers") or []]
        try:
            values = _Unpickler(io.BytesIO(stream), buffers=buffers).load()
        except Exception as exc:
            raise CheckoutRefused(
                f"{', '.join(record['names'])} could not be loaded ({type(exc).__name__}: {exc}); "
                "nothing was changed"
            ) from None
        staged.update(values)
    return staged


def load_order(groups: Mapping[str, dict[str, Any]], to_load: list[str]) -> list[str]:
    """``to_load`` with every group after the groups defining the names it needs."""
    defined = {n: d for d in to_load for n in groups[d]["names"]}
    order: list[str] = []
    placed: set[str] = set()

    def place(digest: str, path: set[str]) -> None:
        if digest in placed or digest in path:
            return
        for name in groups[digest].get("needs") or []:
            if name in defined:
                place(defined[name], path | {digest})
        placed.add(digest)
        order.append(digest)

    for digest in sorted(to_load):
        place(digest, set())
    return order


def rebind_globals(value: Any, namespace: dict[str, Any]) -> Any:
    """A notebook function (or class's methods) loaded from a pickle has a private
    copy of the globals it used: bind it to the kernel's namespace again."""
    if isinstance(value, types.FunctionType) and value.__globals__ is not namespace:
        fresh = types.FunctionType(
            value.__code__, namespace, value.__name__, value.__defaults__, value.__closure__
        )
        fresh.__kwdefaults__ = value.__kwdefaults__
        fresh.__dict__.update(value.__dict__)
        fresh.__qualname__ = value.__qualname__
        fresh.__doc__ = value.__doc__
        fresh.__module__ = value.__module__
        fresh.__annotations__ = value.__annotations__
        return fresh
    if isinstance(value, type):
        for attr, member in list(vars(value).items()):
            func = getattr(member, "__func__", member)
            if not isinstance(func, types.FunctionType) or func.__globals__ is namespace:
                continue
            bound = rebind_globals(func, namespace)
            if isinstance(member, staticmethod):
                bound = staticmethod(bound)
            elif isinstance(member, classmethod):
                bound = classmethod(bound)
            setattr(value, attr, bound)
    return value


@dataclass
class CheckoutResult:
    run: str
    loaded: list[str]
    removed: list[str]
    unchanged: list[str]
    missing: dict[str, dict[str, Any]]
    loaded_bytes: int
    recomputed: dict[str, int | None] = field(default_factory=dict)  # name -> the cell re-run
    checkpoint: dict[str, Any] | None = None  # the checkpoint run's summary (None: an undo)
    kept: list[str] = field(default_factory=list)  # unstored names an undo put back from memory

    def message(self, label: str, undone: bool = False) -> str:
        heading = "checkout undone; back to" if undone else "kernel variables checked out from"
        lines = [
            f"dotnb: {heading} {label}: "
            f"{len(self.loaded)} loaded, {len(self.removed)} removed, {len(self.unchanged)} unchanged"
        ]
        if self.loaded:
            lines.append("  loaded: " + ", ".join(self.loaded))
        if self.kept:
            lines.append("  put back from this kernel's memory: " + ", ".join(self.kept))
        if self.removed:
            lines.append("  removed: " + ", ".join(self.removed))
        for name, count in sorted(self.recomputed.items()):
            lines.append(f"  recomputed: {name} (re-ran cell [{count}] of the run's lineage)")
        for name, entry in sorted(self.missing.items()):
            cell = f"; last set by cell [{entry['cell']}]" if entry.get("cell") else ""
            size = f" ({entry['size']} bytes)" if entry.get("size") else ""
            if entry.get("size_over"):
                size = f" ({entry['size_over']})"
            if "recompute" in entry:
                then = f"not recomputed: {entry['recompute']}"
            else:  # only when recomputing was turned off
                then = "not recomputed (--no-recompute)"
            lines.append(
                f"  not restored: {name} ({entry['status']}{size}: {entry.get('reason', '')}{cell}); "
                f"{then}; it keeps its current value, if any"
            )
        if self.checkpoint is not None:
            number = self.checkpoint.get("number")
            which = f"#{number}" if number else str(self.checkpoint["id"])[:12]
            lines.append(
                f"  undo: %dotnb checkout --undo (checkpoint {which} holds the variables as they were)"
            )
        return "\n".join(lines)


class KernelCheckout:
    """Checkouts of one kernel's namespace, and their undo."""

    def __init__(self, capture: StateCapture) -> None:
        self.capture = capture
        # The last checkpoint this kernel recorded, and the values it could not store.
        self._kept: tuple[str, dict[str, Any]] | None = None

    def checkout(
        self,
        ip: Any,
        store: Any,
        run_id: str,
        trust: bool = False,
        lineage: list[tuple[int | None, str]] | None = None,
        notebook: str | None = None,
        kernel: str | None = None,
        checkpoint: bool = True,
    ) -> CheckoutResult:
        """Check out run ``run_id``'s variables; with ``lineage`` (the run's cells: execution
        count, raw code), names it could not store are recomputed by re-running cells.
        With ``checkpoint``, the namespace is first recorded as a checkpoint run, the one
        the next undo of ``notebook`` (or of ``kernel``, when it has none) goes back to."""
        capture = self.capture
        capture.wait()  # the state of the last run is complete before comparing with it
        digest = read_state_ref(store.dir, run_id)
        if digest is None:
            raise CheckoutRefused(
                f"run {run_id[:12]} has no recorded kernel state (state capture was off: "
                "%dotnb state on, or DOTNB_KERNEL_STATE=1)"
            )
        manifest = read_document(store.objects, digest, STATE_FORMAT)
        author = manifest.get("author")
        if author != capture.author and not trust:
            raise CheckoutRefused(
                f"run {run_id[:12]}'s kernel state was recorded by {author}, not by {capture.author}: "
                "loading it would run code from its pickles. Nothing was loaded; if you trust it, "
                "run %dotnb checkout RUN --trust"
            )
        target: dict[str, dict[str, Any]] = manifest.get("variables") or {}
        groups = {
            g: read_document(store.objects, g, GROUP_FORMAT)
            for g in sorted({e["group"] for e in target.values() if e.get("group")})
        }
        ns = ip.user_ns
        capture.ignore.set_root(getattr(store, "root", None))
        variables = user_variables(ns, ip.user_ns_hidden, capture.ignore.matcher())
        held = held_unstored(target, variables, capture.known, capture.dirty, digest == capture.last_state)
        plan = keep_held(plan_checkout(target, groups, variables, capture.known, capture.dirty), held)
        summary = None
        if checkpoint and (plan.load or plan.remove or (lineage is not None and plan.missing)):
            # The namespace as it is, stored first (pickling again what cells mentioned
            # since the last capture): a name found holding the target's value is then
            # not loaded again.
            now, entries = namespace_state(capture, ip, store, variables)
            exact = {n: Known(id(variables[n]), e, ()) for n, e in entries.items() if n in variables}
            plan = keep_held(plan_checkout(target, groups, variables, exact, set()), held)
            # A checkout that changes nothing records no checkpoint: the undo stays the previous one.
            if plan.load or plan.remove or (lineage is not None and plan.missing):
                summary = commit_checkpoint(store, now, run_id, notebook)
                unstored = {
                    n: variables[n] for n, e in entries.items() if e["status"] != STORED and n in variables
                }
        # Loaded in full before any name changes: a corrupted object or an interrupt
        # here leaves the namespace as it was.
        staged = load_groups(store.objects, groups, load_order(groups, list(plan.load)), ns)
        for name, value in staged.items():
            if is_notebook_defined(value):
                staged[name] = rebind_globals(value, ns)
        touched = [*staged, *plan.remove]
        for name in plan.remove:
            ns.pop(name, None)
        ns.update(staged)
        known = {n: k for n, k in capture.known.items() if n in ns and n not in touched}
        for name, value in staged.items():
            entry = target[name]
            names = tuple(groups[entry["group"]]["names"])
            known[name] = Known(id(value), entry, names)
        capture.known = known
        capture.last_state = None  # the next capture writes a manifest of its own
        if capture.dirty is not None:
            capture.dirty -= set(touched)
        recomputed: dict[str, int | None] = {}
        if lineage is not None and plan.missing:
            recomputed = self._recompute(ip, target, plan.missing, lineage, staged)
        if summary is not None:
            # Only now does the checkout stand: an interrupted one leaves the undo as it was.
            write_undo_ref(store.dir, undo_key(notebook, kernel), summary["id"])
            self._kept = (summary["id"], unstored)
        size = sum(
            groups[d].get("pickle_size", 0) + sum(b[1] for b in groups[d].get("buffers") or [])
            for d in plan.load
        )
        return CheckoutResult(
            run_id,
            sorted(staged),
            plan.remove,
            sorted(plan.unchanged),
            plan.missing,
            size,
            recomputed,
            summary,
        )

    def _recompute(
        self,
        ip: Any,
        target: dict[str, dict[str, Any]],
        missing: dict[str, dict[str, Any]],
        lineage: list[tuple[int | None, str]],
        staged: dict[str, Any],
    ) -> dict[str, int | None]:
        """Re-run the lineage cells that produce ``missing`` names (see
        :mod:`dotnb.capture.state_recompute`); the names recomputed → their cell.
        Each name that could not be is given a ``recompute`` reason in ``missing``."""
        from dotnb.capture.state_recompute import (
            lineage_cells,
            names_bound_by,
            plan_recompute,
            rerun,
            restorable,
        )

        ns = ip.user_ns
        cells = lineage_cells(lineage, ip.transform_cell)
        plan = plan_recompute(set(missing), cells, restorable(target, ns))
        for name, why in plan.impossible.items():
            missing[name] = {**missing[name], "recompute": why}
        if not plan.cells:
            return {}
        bound = names_bound_by(plan)
        before = {n: ns.get(n, _ABSENT) for n in bound}
        try:
            rerun(plan, ns)
        except BaseException as exc:
            for name, value in before.items():  # the checkout stands; the re-run is undone
                if value is _ABSENT:
                    ns.pop(name, None)
                else:
                    ns[name] = value
            why = f"re-running its cell raised {type(exc).__name__}: {exc}"
            for name in plan.producers:
                missing[name] = {**missing[name], "recompute": why}
            if not isinstance(exc, Exception):
                raise
            return {}
        # Names the re-run cells bound that the run's state holds get its values back.
        for name in bound:
            if name in staged:
                ns[name] = staged[name]
            elif target.get(name, {}).get("status") == STORED and before[name] is not _ABSENT:
                ns[name] = before[name]
        if self.capture.dirty is not None:
            self.capture.dirty |= bound
        for name in plan.producers:
            missing.pop(name, None)
        return plan.producers

    def undo(self, ip: Any, store: Any, notebook: str | None, kernel: str | None) -> CheckoutResult:
        """Check out the checkpoint the last checkout of ``notebook`` recorded (then
        forgotten: an undo is not undone); in the kernel that recorded it, values the
        checkpoint could not store are put back from memory."""
        key = undo_key(notebook, kernel)
        checkpoint = read_undo_ref(store.dir, key)
        if checkpoint is None:
            raise CheckoutRefused("there is no checkout to undo for this notebook")
        result = self.checkout(ip, store, checkpoint, notebook=notebook, kernel=kernel, checkpoint=False)
        if self._kept is not None and self._kept[0] == checkpoint:
            for name, value in self._kept[1].items():
                if name in result.missing:
                    ip.user_ns[name] = value
                    result.missing.pop(name)
                    result.kept.append(name)
        result.kept.sort()
        clear_undo_ref(store.dir, key)
        self._kept = None
        return result
