"""Kernel state capture: the user's variables after a run's cell, stored off the
cell's path.

After a run commits, :meth:`StateCapture.capture` decides on the cell's path which
names may have changed (names the cells since the last capture mention, the
globals of the notebook functions they mention, new names, names now bound to
another object), then takes one of three ways:

- nothing changed: the previous state manifest is the run's too (a thread writes
  the run's ref);
- only small immutable values changed (numbers, short strings, tuples of them),
  each a group of its own before: they are pickled in the kernel (microseconds), a
  thread writes the objects;
- otherwise the kernel ``fork()``s.  The child holds a copy-on-write snapshot of the
  kernel as of the cell's end, whatever the next cell does: it groups the variables
  (:func:`~dotnb.capture.namespace.co_variable_groups`), pickles the groups holding
  a changed name (pickle protocol 5 through cloudpickle, large buffers out of band),
  hashes them, sends its decisions through a pipe (the next capture compares with
  them), then writes the new objects, the state manifest and the run's
  ``kernel-state`` ref (:mod:`dotnb.store.kernel_state`) and exits with
  ``os._exit``.  Threads of the kernel read the decisions and reap the child.

The child never takes a lock the kernel's threads may hold (no logging, no
SQLite, no thread pool, no printing), runs no finalizer (gc off) and ignores
SIGINT (an interrupt of the kernel's process group must not kill the capture).
Where ``fork`` is missing (Windows) state capture is unavailable.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import queue
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dotnb.capture.array_views import reduce_view
from dotnb.capture.namespace import (
    co_variable_groups,
    is_notebook_defined,
    names_in_code,
    type_name,
    user_variables,
    with_called_globals,
)
from dotnb.capture.state_ignore import NameRules
from dotnb.store.kernel_state import (
    GROUP_FORMAT,
    STATE_FORMAT,
    STORED,
    TOO_LARGE,
    UNPICKLABLE,
    blob_hash,
    sync_folders,
    write_blob,
    write_state_ref,
)
from dotnb.store.manifest import canonical_json

# Buffers this large or larger are stored as objects of their own (deduplicated
# across runs); smaller ones stay inside the pickle stream.
OUT_OF_BAND_MIN = 1024 * 1024
# A tracked cell waits at most this long for the previous capture's decisions
# (its pickling and hashing) before recording its run without kernel state.
DECIDE_WAIT_S = 30.0
# States pickled in the kernel are written once no cell has run for WRITE_IDLE_S,
# or WRITE_MAX_DELAY_S after the run at the latest.
WRITE_IDLE_S = 0.05
WRITE_MAX_DELAY_S = 1.0
DEFAULT_MAX_VARIABLE_SIZE = 4 * 1024**3
DEFAULT_MAX_RUN_SIZE = 16 * 1024**3


@dataclass(frozen=True)
class Known:
    """What the last capture (or checkout) recorded for a name, and the id of the
    object it was bound to then."""

    obj_id: int
    entry: dict[str, Any]
    group: tuple[str, ...]


@dataclass(frozen=True)
class Limits:
    max_variable: int = DEFAULT_MAX_VARIABLE_SIZE
    max_run: int = DEFAULT_MAX_RUN_SIZE


def _env_size(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name) or default)
    except ValueError:
        return default


def limits_from_env() -> Limits:
    return Limits(
        _env_size("DOTNB_STATE_MAX_VARIABLE_SIZE", DEFAULT_MAX_VARIABLE_SIZE),
        _env_size("DOTNB_STATE_MAX_RUN_SIZE", DEFAULT_MAX_RUN_SIZE),
    )


def state_enabled_by_env() -> bool:
    return os.environ.get("DOTNB_KERNEL_STATE", "").lower() in ("1", "on", "true", "yes")


class StreamTooLarge(Exception):
    """A group's pickle stream grew past the limit it was pickled with."""


class _BoundedStream(io.BytesIO):
    """The pickle stream, refusing to grow past ``limit`` bytes (a value pickled in
    band, such as a list of ten million floats, is never held whole past it)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data: Any) -> int:
        if self.tell() + memoryview(data).nbytes > self.limit:
            raise StreamTooLarge(f"more than {self.limit} bytes")
        return super().write(data)


def pickle_group(
    values: Mapping[str, Any], refs: Mapping[int, str], limit: int = DEFAULT_MAX_VARIABLE_SIZE
) -> tuple[bytes, list[Any], list[str]]:
    """(pickle stream, out-of-band buffers, names it refers to by name); the stream
    may hold at most ``limit`` bytes (StreamTooLarge otherwise).

    Notebook-defined functions and classes bound to a top-level name outside the
    group are pickled as a reference to that name (resolved at load time in the
    namespace being restored), so an instance's class is the namespace's class
    again after a load, not a copy."""
    import cloudpickle

    buffers: list[Any] = []
    needs: set[str] = set()
    own = {id(v) for v in values.values()}

    class _Pickler(cloudpickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            name = refs.get(id(obj))
            if name is None or id(obj) in own:
                return None
            needs.add(name)
            return name

        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, io.IOBase):
                # cloudpickle would store a file open for reading with its content
                raise pickle.PicklingError(f"an open file ({type(obj).__name__}) is not a value")
            view = reduce_view(obj)
            return super().reducer_override(obj) if view is NotImplemented else view

    def keep_in_band(buf: pickle.PickleBuffer) -> bool:
        try:
            size = buf.raw().nbytes
        except BufferError:  # not contiguous: copied into the stream
            return True
        if size < OUT_OF_BAND_MIN:
            return True
        buffers.append(buf)
        return False

    out = _BoundedStream(limit)
    _Pickler(out, protocol=5, buffer_callback=keep_in_band).dump(dict(values))
    return out.getvalue(), buffers, sorted(needs)


@dataclass
class StatePlan:
    """A state ready to be written: its manifest's hash, the entries and groups the
    next capture compares with, and the blobs (hash, bytes or buffer) to write, in
    an order where nothing is written before what it refers to."""

    digest: str
    entries: dict[str, dict[str, Any]]
    group_of: dict[str, tuple[str, ...]]
    blobs: list[tuple[str, Any]]


def _blob(blobs: list[tuple[str, Any]], data: Any) -> str:
    digest = blob_hash(data)
    blobs.append((digest, data))
    return digest


def _document(blobs: list[tuple[str, Any]], doc: dict[str, Any]) -> str:
    return _blob(blobs, canonical_json(doc))


def prepare_state(
    variables: Mapping[str, Any],
    previous: Mapping[str, Known],
    dirty: set[str] | None,
    cells: Mapping[str, int],
    limits: Limits,
    author: str,
) -> StatePlan:
    """Group, pickle and hash ``variables`` (no I/O).  ``dirty`` None means every
    name may have changed; other groups identical to ``previous`` ones are reused."""
    refs = {id(v): n for n, v in variables.items() if is_notebook_defined(v)}
    entries: dict[str, dict[str, Any]] = {}
    group_of: dict[str, tuple[str, ...]] = {}
    blobs: list[tuple[str, Any]] = []
    total = 0
    for names in co_variable_groups(variables):
        group = tuple(names)
        for name in group:
            group_of[name] = group
        reusable = dirty is not None and all(
            name in previous
            and name not in dirty
            and previous[name].group == group
            and previous[name].obj_id == id(variables[name])
            for name in group
        )
        if reusable:
            old = {name: previous[name].entry for name in group}
            stored = old[group[0]]["status"] == STORED
            size = old[group[0]].get("size") or 0
            if not (stored and total + size > limits.max_run):
                entries.update(old)
                total += size if stored else 0
                continue
        base = {
            name: {"type": type_name(variables[name]), **({"cell": cells[name]} if name in cells else {})}
            for name in group
        }
        try:
            room = min(limits.max_variable, max(0, limits.max_run - total))
            stream, buffers, needs = pickle_group({n: variables[n] for n in group}, refs, room)
        except StreamTooLarge as exc:
            reason = (
                f"larger than the per-variable limit ({limits.max_variable} bytes)"
                if room == limits.max_variable
                else f"over the per-run limit ({limits.max_run} bytes)"
            )
            for name in group:
                entries[name] = {**base[name], "status": TOO_LARGE, "size_over": str(exc), "reason": reason}
            continue
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:300]
            for name in group:
                entries[name] = {**base[name], "status": UNPICKLABLE, "reason": reason}
            continue
        raws = [b.raw() for b in buffers]
        size = len(stream) + sum(r.nbytes for r in raws)
        over = (
            f"larger than the per-variable limit ({limits.max_variable} bytes)"
            if size > limits.max_variable
            else f"over the per-run limit ({limits.max_run} bytes)"
            if total + size > limits.max_run
            else None
        )
        if over is not None:
            for name in group:
                entries[name] = {**base[name], "status": TOO_LARGE, "size": size, "reason": over}
            continue
        record = {
            "format": GROUP_FORMAT,
            "names": list(group),
            "serializer": "cloudpickle",
            "protocol": 5,
            "pickle": _blob(blobs, stream),
            "pickle_size": len(stream),
            "buffers": [[_blob(blobs, r), r.nbytes] for r in raws],
            "needs": needs,
        }
        digest = _document(blobs, record)
        total += size
        for name in group:
            entries[name] = {**base[name], "status": STORED, "size": size, "group": digest}
    manifest = {"format": STATE_FORMAT, "author": author, "variables": entries}
    return StatePlan(_document(blobs, manifest), entries, group_of, blobs)


def write_objects(objects: Any, plan: StatePlan) -> None:
    """The plan's objects not stored yet, their folders' entries made durable."""
    written = [digest for digest, data in plan.blobs if write_blob(objects, digest, data)]
    sync_folders(objects, written)


def write_state(store: Any, run_id: str, plan: StatePlan) -> None:
    """The plan's objects, then the run's ``kernel-state`` ref (which names them)."""
    write_objects(store.objects, plan)
    write_state_ref(store.dir, run_id, plan.digest)


def serialize_state(
    objects: Any,
    variables: Mapping[str, Any],
    previous: Mapping[str, Known],
    dirty: set[str] | None,
    cells: Mapping[str, int],
    limits: Limits,
    author: str,
) -> tuple[str, dict[str, Any], dict[str, tuple[str, ...]]]:
    """:func:`prepare_state` and its objects written: (manifest hash, entries, groups)."""
    plan = prepare_state(variables, previous, dirty, cells, limits, author)
    write_objects(objects, plan)
    return plan.digest, plan.entries, plan.group_of


# A changed value that is one of these, or a tuple or frozenset of them (up to
# SMALL_ITEMS items), is pickled on the cell's path, without a fork: it is
# immutable, so sharing it with another name cannot matter, and pickling it takes
# microseconds.  A list, dict or set may be an element of another variable (``t =
# rows[0]``): found only by the walk, so it goes through the fork.
_SCALARS = (int, float, complex, bool, type(None))
SMALL_TEXT = 64 * 1024
SMALL_ITEMS = 1000


def _is_small_scalar(value: Any) -> bool:
    kind = type(value)
    return kind in _SCALARS or (kind in (str, bytes) and len(value) <= SMALL_TEXT)


def is_small_value(value: Any) -> bool:
    if type(value) in (tuple, frozenset):
        return len(value) <= SMALL_ITEMS and all(_is_small_scalar(v) for v in value)
    return _is_small_scalar(value)


class StateCapture:
    """Kernel state capture for one session (see the module's docstring).

    Two events: ``_decided`` is set once the last capture's entries are known here
    (what the next capture compares with: a child sends them before it writes);
    ``_written`` once every capture's objects and refs are on disk (a checkout waits
    for it)."""

    def __init__(self, warn: Callable[[str, str], None], author: str) -> None:
        self.enabled = state_enabled_by_env() and hasattr(os, "fork")
        self.limits = limits_from_env()
        self.ignore = NameRules()
        self.author = author
        self._warn = warn
        self.known: dict[str, Known] = {}
        self.last_state: str | None = None
        # Names the cells since the last capture mention; None: any name may have changed.
        self.dirty: set[str] | None = None
        self.cells: dict[str, int] = {}  # name -> the last cell that mentioned it
        self._results: queue.SimpleQueue[Any] = queue.SimpleQueue()  # children's pipes
        self._writes: queue.SimpleQueue[Any] = queue.SimpleQueue()  # writes and child exits
        self._decided = threading.Event()
        self._decided.set()
        self._lock = threading.Lock()
        self._pending = 0  # captures not fully written yet
        self._written = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._hurry = threading.Event()
        # Set by the session: whether a cell is running now.
        self.cell_running: Callable[[], bool] = lambda: False

    # -- on every cell -----------------------------------------------------------

    def note_cell(self, ip: Any, raw: str, execution_count: int | None) -> None:
        """Remember the names a cell mentions (cheap: the parse is memoized by code)."""
        if not self.enabled:
            return
        try:
            source = ip.transform_cell(raw)
        except Exception:
            source = None
        names = names_in_code(source) if source is not None else None
        if names is None:
            self.dirty = None
            return
        if self.dirty is not None:
            self.dirty |= names
        if execution_count:
            for name in names:
                self.cells[name] = execution_count

    # -- after a run -------------------------------------------------------------

    def capture(self, ip: Any, store: Any, run_id: str) -> None:
        """Record the state after run ``run_id``'s cell.  Returns once what changed is
        decided: pickled here when only small immutable values changed, else forked."""
        if not self.enabled:
            return
        # The previous capture's entries are what this one compares with.
        if not self._decided.wait(DECIDE_WAIT_S):
            self._warn(
                "state-busy",
                f"dotnb: the previous kernel state capture is still pickling after {DECIDE_WAIT_S:.0f} s; "
                "this run records no kernel state",
            )
            return
        self.ignore.set_root(getattr(store, "root", None))
        variables = user_variables(ip.user_ns, ip.user_ns_hidden, self.ignore.matcher())
        ids = {name: id(value) for name, value in variables.items()}
        dirty = None if self.dirty is None else with_called_globals(self.dirty, ip.user_ns)
        self.dirty = set()
        known = self.known
        if dirty is not None and self.last_state is not None:
            changed = [n for n, i in ids.items() if n in dirty or n not in known or known[n].obj_id != i]
            removed = [n for n in known if n not in ids]
            if not changed and not removed:
                self._start_write(store, run_id, None, self.last_state)
                return
            alone = all(n not in known or known[n].group == (n,) for n in [*changed, *removed])
            if alone and all(is_small_value(variables[n]) for n in changed):
                self._capture_small(store, run_id, variables, changed, ids)
                return
        self._fork(store, run_id, variables, dirty, ids)

    def _capture_small(
        self, store: Any, run_id: str, variables: dict[str, Any], changed: list[str], ids: dict[str, int]
    ) -> None:
        """Only small immutable values changed, each a group of its own: pickled here."""
        small = {n: variables[n] for n in changed}
        plan = prepare_state(small, {}, None, self.cells, self.limits, self.author)
        entries = {n: self.known[n].entry for n in variables if n not in small}
        entries.update(plan.entries)
        blobs = plan.blobs[:-1]  # all but the manifest of the changed names alone
        manifest = {"format": STATE_FORMAT, "author": self.author, "variables": entries}
        digest = _document(blobs, manifest)
        groups = {n: self.known[n].group for n in variables if n not in small}
        groups.update(plan.group_of)
        self.known = {n: Known(ids[n], entries[n], groups[n]) for n in variables}
        self.last_state = digest
        self._start_write(store, run_id, StatePlan(digest, entries, groups, blobs), digest)

    def _start_write(self, store: Any, run_id: str, plan: StatePlan | None, digest: str) -> None:
        with self._lock:
            self._pending += 1
        self._ensure_threads()
        self._writes.put(("write", store, run_id, plan, digest))

    def _fork(
        self, store: Any, run_id: str, variables: dict[str, Any], dirty: set[str] | None, ids: dict[str, int]
    ) -> None:
        import cloudpickle  # noqa: F401  (imported here, not in the child: import locks)

        from dotnb.store.syncing import start_writeback

        start_writeback(-1, 0, 0)  # binds sync_file_range here too (a failing call is harmless)

        self._ensure_threads()
        previous, cells = self.known, dict(self.cells)
        read_end, write_end = os.pipe()
        self._decided.clear()
        with self._lock:
            self._pending += 1
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns of fork() in a process with threads; the child
                # is written for that (see the module's docstring).
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:
            with self._lock:
                self._pending -= 1
            self._decided.set()
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:  # the child: never returns
            _child(store, run_id, variables, previous, dirty, cells, self.limits, self.author, write_end)
        os.close(write_end)
        self._results.put((pid, read_end, ids))

    def _ensure_threads(self) -> None:
        if not self._threads:
            for target, name in ((self._result_loop, "dotnb-state"), (self._write_loop, "dotnb-state-write")):
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)

    def _result_loop(self) -> None:
        """Reads each child's decisions (sent before it writes)."""
        while True:
            pid, read_end, ids = self._results.get()
            try:
                chunks = []
                while True:
                    chunk = os.read(read_end, 1 << 16)
                    if not chunk:
                        break
                    chunks.append(chunk)
                os.close(read_end)
                self._take_result(b"".join(chunks), ids)
            except Exception as exc:
                self._failed(f"{type(exc).__name__}: {exc}")
            finally:
                self._decided.set()
                self._writes.put(("child", pid))

    def _write_loop(self) -> None:
        """Writes states pickled in the kernel, and reaps children once they have written."""
        while True:
            job = self._writes.get()
            try:
                if job[0] == "child":
                    _, status = os.waitpid(job[1], 0)
                    if status != 0:
                        self._failed("the capture process could not write it")
                else:
                    _, store, run_id, plan, digest = job
                    self._until_idle()
                    if plan is not None:
                        write_state(store, run_id, plan)
                    else:
                        write_state_ref(store.dir, run_id, digest)
            except Exception as exc:
                self._failed(f"{type(exc).__name__}: {exc}")
            finally:
                with self._lock:
                    self._pending -= 1
                    self._written.notify_all()

    def _until_idle(self) -> None:
        """Writes wait until no cell runs (for at most WRITE_MAX_DELAY_S): they then
        take no time from the cell and its reply (the run flusher does the same)."""
        deadline = time.monotonic() + WRITE_MAX_DELAY_S
        if self._hurry.wait(WRITE_IDLE_S):
            return
        while self.cell_running() and time.monotonic() < deadline:
            if self._hurry.wait(WRITE_IDLE_S):
                return

    def _take_result(self, data: bytes, ids: dict[str, int]) -> None:
        try:
            result = json.loads(data)
        except ValueError:
            result = {"error": "the capture process ended without a result"}
        if "error" in result:
            self._failed(result["error"])
            return
        groups = {n: tuple(g) for n, g in result["groups"].items()}
        self.known = {n: Known(ids[n], e, groups[n]) for n, e in result["entries"].items() if n in ids}
        self.last_state = result["state"]

    def _failed(self, reason: str) -> None:
        self.forget()
        self._warn("state", f"dotnb: the kernel state could not be recorded ({reason})")

    def wait(self, timeout: float | None = None) -> bool:
        """Until every capture so far is written (its objects and its run's ref)."""
        self._hurry.set()  # someone waits: writes no longer wait for the kernel to be idle
        try:
            if not self._decided.wait(timeout):
                return False
            with self._lock:
                return self._written.wait_for(lambda: self._pending == 0, timeout)
        finally:
            self._hurry.clear()

    def forget(self) -> None:
        """Nothing known any more: the next capture stores every variable anew."""
        self.known, self.last_state, self.dirty = {}, None, None


def _child(
    store: Any,
    run_id: str,
    variables: dict[str, Any],
    previous: dict[str, Known],
    dirty: set[str] | None,
    cells: dict[str, int],
    limits: Limits,
    author: str,
    write_end: int,
) -> None:
    """The forked child: decide and pickle, tell the kernel, then write and exit."""
    code = 1
    plan = None
    try:
        import gc
        import signal

        gc.disable()  # no finalizer of the kernel's objects runs in the copy
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        plan = prepare_state(variables, previous, dirty, cells, limits, author)
        payload: dict[str, Any] = {"state": plan.digest, "entries": plan.entries, "groups": plan.group_of}
    except BaseException as exc:
        payload = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    with contextlib.suppress(BaseException):
        data = json.dumps(payload).encode()
        while data:
            data = data[os.write(write_end, data) :]
        os.close(write_end)
    if plan is not None:
        with contextlib.suppress(BaseException):
            write_state(store, run_id, plan)
            code = 0
    os._exit(code)
