"""One tracking session per kernel: lineage, the active run, and recording it.

Hooks (registered by :mod:`dotnb.capture.magic`):

- ``post_run_cell`` appends every executed cell to the lineage (cheap: the raw
  code is kept in memory; it is hashed and stored only when a run needs it);
- ``pre_run_cell`` starts a run when the cell begins with ``%%track`` (or when
  ``%dotnb track all`` is on); ``post_run_cell`` finishes and records it.

Because the cell body runs as an ordinary cell (an input transformer only strips
the ``%%track`` line), its output, display of the last expression, exceptions
and execution count are exactly as without the magic.

Nothing here may break a user's cell: every hook catches its own failures,
records what it could, and warns once.

Around the session: :mod:`~dotnb.capture.files` records the cell's file access,
:mod:`~dotnb.capture.lineage` keeps the lineage in the form runs store it,
:mod:`~dotnb.capture.flusher` writes committed runs to disk off the cell's path,
and the run line goes out through :mod:`~dotnb.capture.ipykernel_adapter`.
"""

from __future__ import annotations

import glob
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from dotnb.capture.flusher import RunFlusher
from dotnb.capture.ipykernel_adapter import publish_after_streams
from dotnb.capture.lineage import Cell, KernelLineage
from dotnb.capture.options import TrackOptions, TrackUsageError, parse_track_line, split_track_cell
from dotnb.capture.params import ParamOverride, literal_assignments
from dotnb.capture.pid import current_pid
from dotnb.capture.run_line import format_run_line, shorten
from dotnb.store.manifest import canonical_json, iso_time, json_safe_number
from dotnb.store.vocabulary import ERROR, INTERRUPTED, OK, RUN, RUN_MIME

if TYPE_CHECKING:
    from dotnb.capture.known_files import KnownFiles
    from dotnb.store.trees import FolderRows


@dataclass
class ActiveRun:
    options: TrackOptions
    body: str
    raw: str
    started: float
    perf_start: float
    params: dict[str, Any] = field(default_factory=dict)
    overridden: dict[str, Any] = field(default_factory=dict)
    metric_series: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    declared_inputs: list[str] = field(default_factory=list)
    declared_outputs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    auto: bool = False


class RecordedRun(NamedTuple):
    """What recording a run gives its run line: the store's summary, and what the
    manifest holds that the summary does not."""

    summary: dict[str, Any]
    replaced: dict[str, str]  # overridden param -> the cell's own value expression
    inputs: list[str]
    outputs: list[str]
    recording_s: float = 0.0  # from the cell's end to the run's commit


@dataclass(frozen=True)
class NotebookMemo:
    """A notebook snapshot a committed run recorded, and the file it was taken from:
    while the file's stat key is the same, the snapshot is in the store already."""

    stat_key: tuple[Any, ...]  # (rel path, st_ino, st_size, st_mtime_ns, st_ctime_ns)
    snapshot: dict[str, Any]
    # The notebook folder's (watch, change count) before that stat, or None: while it
    # stands still, not even the stat is needed.
    seen: tuple[Any, int] | None


class Session:
    def __init__(self, ip: Any) -> None:
        self.ip = ip
        # Object ids known to be in the store (cell code, notebook snapshots).
        self._stored_code: set[str] = set()
        self.lineage = KernelLineage(self._stored_code)
        self.active: ActiveRun | None = None
        self.track_all = False
        self.store: Any = None
        self.tracker: Any = None
        # What this kernel recorded and the event stream says is unchanged since.
        self.known_files: KnownFiles | None = None
        self.env_cache: Any = None
        self.root: Path | None = None
        self.notebook_abs: Path | None = None
        self.last_run_id: str | None = None
        self._stored_env: dict[str, str] = {}
        self._warned: set[str] = set()
        self.flusher = RunFlusher(self._warn_once)
        from dotnb.capture.state_writer import StateCapture
        from dotnb.store.author import user_at_host

        self.state = StateCapture(self._warn_once, user_at_host())
        self.state.cell_running = lambda: self.flusher.cell_started > self.flusher.cell_ended
        self.checkouts: Any = None  # a KernelCheckout once %dotnb checkout is used
        # Kept once a run that used it committed: an unchanged notebook then costs one
        # stat, or none while nothing changes in its folder.
        self._nb_memo: NotebookMemo | None = None
        self._kernels_seen: tuple[Any, int] | None = None
        self._nb_rel: tuple[tuple[Path, Path], str | None] | None = None
        self._literal_memo: dict[str, dict[str, Any]] = {}
        self.override = ParamOverride()
        self.kernel_id = _kernel_id()
        # Set by `dotnb run` / `dotnb reproduce` when they start the kernel: fixed for its life.
        self._run_params = _run_params()
        self._reproduces = os.environ.get("DOTNB_REPRODUCES") or None
        self._backfill_lineage()

    # -- lineage ---------------------------------------------------------------

    def _backfill_lineage(self) -> None:
        """Cells run before ``%load_ext dotnb`` are part of the lineage too."""
        try:
            history = list(self.ip.history_manager.input_hist_raw)
        except Exception:
            return
        # input_hist_raw[0] is an empty placeholder; index n is execution n.  While
        # a cell runs, execution_count is already one past it, and the current cell
        # (the one loading us) is appended by post_run_cell.
        current = (self.ip.execution_count or 1) - 1
        for n, code in enumerate(history[1:], start=1):
            if n >= current:
                break
            self.lineage.cells.append(Cell(n, code))

    # -- hooks -------------------------------------------------------------------

    def pre_run_cell(self, info: Any) -> None:
        self.flusher.cell_started = time.monotonic()
        try:
            self._begin(info)
        except Exception as exc:
            self.active = None
            self._warn_once("begin", f"dotnb: tracking is off for this cell ({exc})")

    def post_run_cell(self, result: Any) -> None:
        self.flusher.cell_ended = time.monotonic()
        info = result.info
        raw = info.raw_cell if info is not None else ""
        cell = Cell(result.execution_count, raw, ok=bool(result.success))
        self.lineage.cells.append(cell)
        try:
            self.state.note_cell(self.ip, raw, result.execution_count)
        except Exception as exc:
            self.state.forget()
            self._warn_once("state-note", f"dotnb: kernel state: {exc}")
        run = self.active
        self.active = None
        if run is None:
            return
        self.override.overrides = {}
        cell.tracked = True
        try:
            recorded = self._record(run, result, cell)
        except Exception as exc:
            self._warn_once(
                "record",
                "dotnb: this run could not be recorded; the cell's result stands. "
                f"({type(exc).__name__}: {exc})",
                always=True,
            )
            if os.environ.get("DOTNB_DEBUG"):
                traceback.print_exc()
            return
        self.lineage.record_run(cell, recorded.summary["id"])
        self.last_run_id = recorded.summary["id"]
        self._display(recorded, run)
        try:
            self.state.capture(self.ip, self.store, recorded.summary["id"])
        except Exception as exc:
            self.state.forget()
            self._warn_once("state", f"dotnb: the kernel state could not be recorded ({exc})", always=True)

    # -- starting a run --------------------------------------------------------

    def _begin(self, info: Any) -> None:
        raw = info.raw_cell or ""
        split = split_track_cell(raw)
        if split is None:
            if not self.track_all or _is_dotnb_control(raw):
                return
            options, body, auto = TrackOptions(), raw, True
        else:
            try:
                options = parse_track_line(split[0])
            except TrackUsageError:
                return  # the input transformer turned the cell into the usage error
            body, auto = split[1], False
        self._ensure_store(options.notebook)
        run = ActiveRun(
            options=options,
            body=body,
            raw=raw,
            started=time.time(),
            perf_start=time.perf_counter(),
            auto=auto,
        )
        if options.params:
            # Set the variables too, so cells that only read them see the override.
            for key, value in options.params.items():
                self.ip.user_ns[key] = value
            self.override.overrides = dict(options.params)
            self.override.replaced = {}
            run.overridden = dict(options.params)
        self.active = run
        self.tracker.begin()

    def _ensure_store(self, notebook_opt: str | None) -> None:
        if self.store is not None and not notebook_opt and self.notebook_abs is not None:
            return  # every cell after the first
        from dotnb.capture.notebook import detect_notebook_path, find_project_root
        from dotnb.store.repo import Store

        if notebook_opt:
            nb = Path(notebook_opt).expanduser()
            self.notebook_abs = nb if nb.is_absolute() else Path.cwd() / nb
        elif self.notebook_abs is None:
            self.notebook_abs = detect_notebook_path(self.ip.user_ns, os.environ)
            if self.notebook_abs is None:
                self._warn_once(
                    "notebook",
                    "dotnb: this kernel does not know its notebook (no JPY_SESSION_NAME or "
                    "__session__); runs are recorded without one. Pass `%%track --notebook PATH`.",
                )
        if self.store is not None:
            return
        env_root = os.environ.get("DOTNB_ROOT")
        if env_root:
            root = Path(env_root)
        else:
            start = self.notebook_abs.parent if self.notebook_abs else Path.cwd()
            root = find_project_root(start)
        self.store = Store.init(root, max_file_size=_max_file_size())
        self.root = self.store.root
        self._make_tracker()

    def _follow_server_notebook(self) -> None:
        """Under jupyter_server, the server's session map has the notebook's current
        path (it follows renames); JPY_SESSION_NAME only has the path at kernel start."""
        if self.kernel_id is None or self.store is None or self.root is None:
            return
        from dotnb.store.kernels import read_kernel_notebook

        # The file changes when the server's session does: re-read only after an event
        # in its folder (once it exists and is watched).
        folder = os.fspath(self.store.dir / "kernels")
        seen = self._watched_changes(folder, create=False)
        if seen is not None and seen == self._kernels_seen:
            return
        rel = read_kernel_notebook(self.store.dir, self.kernel_id)
        if rel is not None:
            self.notebook_abs = self.root / rel
            if seen is None:
                seen = self._watched_changes(folder, create=True)
                rel = read_kernel_notebook(self.store.dir, self.kernel_id)  # after the watch
                if rel is not None:
                    self.notebook_abs = self.root / rel
        self._kernels_seen = seen

    def _watched_changes(self, folder: str, create: bool) -> tuple[Any, int] | None:
        """``(watch, events so far)`` for ``folder``, through the tracker's event
        stream (see :class:`~dotnb.capture.watcher.DirWatch`): while this stands still
        nothing in the folder changed (a new watch, after the folder left its path,
        never compares equal to an old one's).  None when it is not watched; with
        ``create``, a watch is set up first if there is none (see
        :meth:`~dotnb.capture.watcher.TreeWatcher.watched`)."""
        watch = self.tracker.watcher.watched(folder, create) if self.tracker is not None else None
        return None if watch is None else (watch, watch.changes)

    def _watched_by_stream(self, folder: str, create: bool = True) -> Any:
        """The tracker's event stream's watch of ``folder`` (asked of the stream in use
        now: another may have taken over, see dotnb.capture.file_events.fallback_for)."""
        return self.tracker.watcher.watched(folder, create) if self.tracker is not None else None

    def _make_tracker(self) -> None:
        from dotnb.capture.environment import EnvironmentCache
        from dotnb.capture.files import FileTracker, PreWrite
        from dotnb.capture.ignore import IgnoreRules

        assert self.store is not None and self.root is not None
        store = self.store

        def snapshot(path: Path) -> PreWrite | None:
            got = store.snapshot_one(path)
            return PreWrite(hash=got[0], size=got[1]) if got else None

        ignore = IgnoreRules(self.root)
        if self.notebook_abs is not None:
            rel = _rel(self.root, self.notebook_abs)
            if rel:
                ignore.add_ignored_path(rel)
        self.tracker = FileTracker(self.root, ignore, snapshot)
        from dotnb.capture.known_files import KnownFiles

        if os.environ.get("DOTNB_KNOWN_FILES", "1") != "0":
            self.known_files = KnownFiles(os.path.realpath(self.root) + "/", self._watched_by_stream)
        self.env_cache = EnvironmentCache(self.root, watch=self._watched_by_stream)
        runs_dir = os.fspath(store.runs_dir)
        store.runs_watch = lambda: self._watched_changes(runs_dir, create=True)

    # -- recording -------------------------------------------------------------

    def _record(self, run: ActiveRun, result: Any, cell: Cell) -> RecordedRun:
        store = self.store
        assert store is not None and self.root is not None
        known = self.known_files
        activity = self.tracker.end(known.unchanged if known is not None else None)
        cell_end = time.perf_counter()
        duration = cell_end - run.perf_start
        warnings = list(run.warnings) + list(getattr(self.tracker, "warnings", []) or [])

        # Files: what was detected, plus what was declared.
        inputs: dict[str, dict[str, Any]] = {}
        current_inputs = []
        for rel, pre in activity.inputs.items():
            if pre is not None:
                inputs[rel] = {"path": rel, "hash": pre.hash, "size": pre.size, "pre_write": True}
            else:
                current_inputs.append(rel)
        declared_in = self._expand(run.options.inputs) + self._declared(run.declared_inputs)
        declared_out = self._expand(run.options.outputs) + self._declared(run.declared_outputs)
        current_inputs += [r for r in declared_in if r not in inputs and r not in current_inputs]
        blocks = self._input_blocks(activity.known_reads, declared_in, current_inputs)
        # Files whose folder reported no change since this kernel recorded them are
        # known unchanged (dotnb.capture.known_files); only the others are looked at.
        found, look = known.split(current_inputs) if known is not None else ([], current_inputs)
        out_paths = list(dict.fromkeys([*activity.outputs, *declared_out]))
        found_out, look_out = known.split(out_paths) if known is not None else ([], out_paths)
        tokens = known.before_looking([*look, *look_out]) if known is not None else {}
        for entry in [*found, *store.snapshot_files(look)]:
            inputs[entry["path"]] = entry
        for rel in activity.changed:
            if rel in inputs:
                inputs[rel]["changed"] = True
        for rel in activity.missing:
            inputs[rel] = {"path": rel, "hash": None, "size": None, "missing": True}
        for rel in declared_in:
            inputs[rel]["declared"] = True
        # Lineage across notebooks: the run that last wrote these exact bytes (not asked
        # for files that go into a folder's tree, which does not keep it).
        from dotnb.store.trees import tree_folders  # with the store: imported by now

        in_trees = tree_folders(inputs.values())
        listed = [e for e in inputs.values() if e.get("hash") and e["path"].partition("/")[0] not in in_trees]
        producers = store.producers_of(e["hash"] for e in listed)
        for entry in listed:
            producer = producers.get(entry["hash"])
            if producer is not None:
                entry["produced_by"] = producer
        outputs = [*found_out, *store.snapshot_files(look_out)]
        for entry in outputs:
            if entry["path"] in declared_out:
                entry["declared"] = True

        # Params: literal assignments, dotnb.param() calls, then --param overrides.
        # Names read as metrics are results, not params, even when assigned a literal.
        literals = {k: v for k, v in self._literals(run.body).items() if k not in run.options.metrics}
        # `dotnb run -p NAME=VALUE` (DOTNB_RUN_PARAMS, a JSON object): the values the whole
        # notebook was run with, recorded in each of its runs and listed as overridden where
        # the run kept them; the cell's own literals, dotnb.param() and %%track --param win.
        run_params = self._run_params
        params = {**run_params, **literals, **run.params, **run.overridden}
        overrides = {*run.overridden, *(k for k, v in run_params.items() if params[k] == v)}
        metrics, series = self._metrics(run, warnings)

        status, error = OK, None
        exc = result.error_in_exec or result.error_before_exec
        if exc is not None:
            status = INTERRUPTED if isinstance(exc, KeyboardInterrupt) else ERROR
            error = {"type": type(exc).__name__, "message": shorten(str(exc))}

        self._follow_server_notebook()
        notebook_rel = self._notebook_rel()
        lineage, lineage_json = self.lineage.build(store)
        manifest: dict[str, Any] = {
            "kind": RUN,
            "name": run.options.name,
            "notebook": notebook_rel,
            "notebook_source": None,
            "notebook_snapshot": None,
            "code": run.raw,
            "lineage": lineage,
            "params": params,
            "param_overrides": sorted(overrides),
            "metrics": metrics,
            "metric_series": series,
            "inputs": sorted(inputs.values(), key=lambda e: e["path"]),
            "outputs": sorted(outputs, key=lambda e: e["path"]),
            "external_inputs": activity.external,
            "environment": self._environment(),
            "status": status,
            "error": error,
            "started_at": iso_time(run.started),
            "duration_s": round(duration, 6),
            "kernel": {"execution_count": result.execution_count, "pid": current_pid()},
            "parent": self.last_run_id,
            "reproduces": self._reproduces,
            "warnings": warnings,
        }
        candidate: NotebookMemo | None = None
        if self.notebook_abs is not None and notebook_rel is not None:
            manifest["notebook_snapshot"], candidate = self._notebook_snapshot(notebook_rel)
            manifest["notebook_source"] = "disk"
        flat = [*inputs.values(), *outputs]  # the commit may fold them into trees
        summary: dict[str, Any] = store.commit_run(
            manifest, sync=False, lineage_json=lineage_json, input_blocks=blocks
        )
        if known is not None:
            known.remember(flat, tokens)
        if candidate is not None:
            self._nb_memo = candidate
        self.flusher.later(store)
        return RecordedRun(
            summary,
            dict(self.override.replaced),
            # A folder recorded as a tree is named once, with a trailing slash.
            [e["path"] + ("/" if "tree" in e else "") for e in manifest["inputs"]],
            [e["path"] + ("/" if "tree" in e else "") for e in manifest["outputs"]],
            time.perf_counter() - cell_end,
        )

    def _input_blocks(
        self, known_reads: dict[str, set[str]], declared: list[str], current_inputs: list[str]
    ) -> dict[str, FolderRows]:
        """Folders of many files only read and known unchanged, each as one block of rows
        (:class:`~dotnb.store.trees.FolderRows`): they go into the run's trees with no
        work per file.  Other files known unchanged join ``current_inputs``; declared
        ones are entries of their own (they carry a flag)."""
        blocks: dict[str, FolderRows] = {}
        if not known_reads:
            return blocks
        from dotnb.store.trees import TREE_MIN_FILES

        for rel in declared:
            folder, _, name = rel.rpartition("/")
            names = known_reads.get(folder)
            if names:
                names.discard(name)
        known = self.known_files
        for folder, names in known_reads.items():
            big = folder and len(names) >= TREE_MIN_FILES  # the root's files never fold
            block = known.block(folder, names) if known is not None and big else None
            if block is not None:
                blocks[folder] = block
            else:
                prefix = f"{folder}/" if folder else ""
                current_inputs.extend(sorted(prefix + name for name in names))
        return blocks

    def _literals(self, body: str) -> dict[str, Any]:
        """``literal_assignments(body)``, parsed once per distinct cell body (cells are
        often run again unchanged); a fresh copy each time."""
        value = self._literal_memo.get(body)
        if value is None:
            value = literal_assignments(body)
            if len(self._literal_memo) >= 256:
                self._literal_memo.clear()
            self._literal_memo[body] = value
        return {k: _copy_json(v) for k, v in value.items()}

    def _notebook_rel(self) -> str | None:
        """The notebook's root-relative path (resolving it costs a stat per path component,
        so it is kept for as long as the notebook's path stays the same)."""
        if self.notebook_abs is None or self.root is None:
            return None
        key = (self.root, self.notebook_abs)
        if self._nb_rel is None or self._nb_rel[0] != key:
            self._nb_rel = (key, _rel(self.root, self.notebook_abs))
        return self._nb_rel[1]

    def _expand(self, patterns: list[str]) -> list[str]:
        assert self.root is not None
        found: list[str] = []
        for pattern in patterns:
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                self._warn_once(f"glob:{pattern}", f"dotnb: {pattern!r} matched no file")
            for m in matches:
                rel = _rel(self.root, Path(m))
                if rel is None:
                    self._warn_once(f"outside:{m}", f"dotnb: {m!r} is outside the project root; not recorded")
                elif os.path.isfile(m):
                    found.append(rel)
        return found

    def _declared(self, paths: list[str]) -> list[str]:
        return [p for p in paths if p]

    def _metrics(self, run: ActiveRun, warnings: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        metrics: dict[str, Any] = {}
        for name in run.options.metrics:
            if name not in self.ip.user_ns:
                warnings.append(f"metric {name!r}: no variable of that name after the cell")
                continue
            value = _as_number(self.ip.user_ns[name])
            if value is None:
                warnings.append(f"metric {name!r}: {type(self.ip.user_ns[name]).__name__} is not a number")
                continue
            metrics[name] = value
        for name, points in run.metric_series.items():
            if points:
                metrics.setdefault(name, points[-1]["value"])
        return metrics, run.metric_series

    def _environment(self) -> dict[str, Any]:
        summary, dists, key = self.env_cache.get()
        digest = self._stored_env.get(key)
        if digest is None:
            digest, _ = self.store.objects.put_bytes(canonical_json(dists), sync=False)
            self._stored_env[key] = digest
        env = dict(summary)
        env["distributions"] = digest
        return env

    def _notebook_snapshot(self, rel: str) -> tuple[dict[str, Any], NotebookMemo | None]:
        """The notebook's snapshot entry, and the memo to keep once the run that records
        it has committed (None: nothing new to remember)."""
        assert self.notebook_abs is not None
        memo = self._nb_memo
        # Counted before the stat: an event after it shows as a change next time.
        seen = self._watched_changes(os.path.dirname(self.notebook_abs), create=True)
        if memo is not None and seen is not None and memo.stat_key[0] == rel and memo.seen == seen:
            # Nothing changed in its folder since the stat the memo was made with.
            return dict(memo.snapshot), None
        from dotnb.capture.notebook import read_notebook_snapshot
        from dotnb.store.index import RACY_WINDOW_NS

        try:
            st = os.stat(self.notebook_abs)
            key: tuple[Any, ...] | None = (rel, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:
            key = None
        if key is not None and memo is not None and memo.stat_key == key:
            # Unchanged since a run recorded it: in the store already.
            return dict(memo.snapshot), NotebookMemo(key, memo.snapshot, seen)
        checked_ns = time.time_ns()
        entry = self.store.snapshot_files([rel])[0]
        if not entry.get("hash"):
            return {"unavailable": "missing" if entry.get("missing") else str(entry.get("skipped"))}, None
        if entry["hash"] not in self._stored_code:
            # Validate new snapshots only; unchanged ones were validated before.
            assert self.notebook_abs is not None
            data, reason = read_notebook_snapshot(self.notebook_abs, self.store.max_file_size)
            if data is None:
                return {"unavailable": reason or "unreadable"}, None
            self._stored_code.add(entry["hash"])
        snapshot = {"hash": entry["hash"], "size": entry["size"]}
        # The stat cache's racily-clean rule: a file changed within the window might
        # change again without its stat key changing.
        if key is not None and checked_ns - key[3] >= RACY_WINDOW_NS:
            return snapshot, NotebookMemo(key, dict(snapshot), seen)
        return snapshot, None

    # -- output ----------------------------------------------------------------

    def _display(self, recorded: RecordedRun, run: ActiveRun) -> None:
        summary = recorded.summary
        text = format_run_line(summary, run.overridden, recorded.replaced, recorded.recording_s)
        bundle = {
            "id": summary["id"],
            "number": summary["number"],
            "notebook": summary.get("notebook"),
            "name": summary.get("name"),
            "status": summary["status"],
            "inputs": recorded.inputs,
            "outputs": recorded.outputs,
            "input_count": summary.get("inputs", len(recorded.inputs)),
            "output_count": summary.get("outputs", len(recorded.outputs)),
            "params": summary.get("params"),
            "metrics": summary.get("metrics"),
            "duration_s": summary.get("duration_s"),
            "overridden": sorted(run.overridden),
        }
        publish_after_streams(self.ip, {"text/plain": text, RUN_MIME: bundle})

    def _warn_once(self, key: str, message: str, always: bool = False) -> None:
        if key in self._warned and not always:
            return
        self._warned.add(key)
        print(message, file=sys.stderr)

    # -- status ----------------------------------------------------------------

    def status_text(self) -> str:
        mode = "every cell (%dotnb track all)" if self.track_all else "cells starting with %%track"
        lines = [f"dotnb: tracking {mode}"]
        if self.store is None:
            lines.append("store: not opened yet (opens at the first tracked cell)")
        else:
            lines.append(f"store: {self.store.dir}")
            lines.append(f"project root: {self.root}")
        nb = self.notebook_abs
        lines.append(f"notebook: {nb if nb else 'unknown until the first tracked cell'}")
        lines.append(f"cells in lineage: {len(self.lineage.cells)}")
        if self.last_run_id:
            lines.append(f"last run: {self.last_run_id}")
        lines.append(f"kernel state capture: {'on' if self.state.enabled else 'off'}")
        return "\n".join(lines)

    # -- kernel state ------------------------------------------------------------

    def checkout_state(self, ref: str, trust: bool = False, recompute: bool = True) -> str:
        """``%dotnb checkout REF``: the variables back to that run's state; the report.
        With ``recompute`` (the default), names it could not store are recomputed from
        its lineage."""
        from dotnb.capture.state_checkout import KernelCheckout

        self._ensure_store(None)
        run_id = self.store.resolve(ref, self._notebook_rel())
        if self.checkouts is None:
            self.checkouts = KernelCheckout(self.state)
        lineage = None
        if recompute:
            store = self.store
            cells = store.lineage(store.manifest(run_id))
            lineage = [
                (
                    c.get("execution_count"),
                    store.objects.read_bytes(c["code_hash"]).decode("utf-8", "replace"),
                )
                for c in cells
                if c.get("code_hash")
            ]
        result = self.checkouts.checkout(
            self.ip,
            self.store,
            run_id,
            trust=trust,
            lineage=lineage,
            notebook=self._notebook_rel(),
            kernel=self.kernel_id,
        )
        return result.message(f"{ref} ({run_id[:12]})")

    def undo_checkout(self) -> str:
        """``%dotnb checkout --undo``: back to the checkpoint the last checkout of this
        notebook recorded (in this kernel or before a restart)."""
        from dotnb.capture.state_checkout import KernelCheckout

        self._ensure_store(None)
        if self.checkouts is None:
            self.checkouts = KernelCheckout(self.state)
        result = self.checkouts.undo(self.ip, self.store, self._notebook_rel(), self.kernel_id)
        return result.message(f"the checkpoint {result.run[:12]}", undone=True)

    def close(self) -> None:
        self.state.wait(timeout=60)
        self.flusher.close()  # the last runs are flushed here
        if self.tracker is not None:
            self.tracker.close()
        if self.store is not None:
            self.store.flush()
            self.store.close()


def _as_number(value: Any) -> float | int | str | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        number = float(value)  # numpy scalars, 0-d arrays, Decimal, torch scalars
    except (TypeError, ValueError):
        return None
    return json_safe_number(number)


def _kernel_id() -> str | None:
    """The id jupyter_server knows this kernel by (from its connection file name)."""
    try:
        from ipykernel.connect import get_connection_file

        name = Path(get_connection_file()).name
    except Exception:
        return None
    if name.startswith("kernel-") and name.endswith(".json"):
        return name[len("kernel-") : -len(".json")]
    return None


def _is_dotnb_control(raw: str) -> bool:
    stripped = raw.strip()
    return stripped.startswith(("%dotnb", "%load_ext", "%reload_ext", "%unload_ext"))


def _rel(root: Path, path: Path) -> str | None:
    from dotnb.store.paths import to_relpath

    return to_relpath(root, path)


def _copy_json(value: Any) -> Any:
    """A copy of a JSON value (its lists and dicts; the rest is immutable)."""
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    return value


def _run_params() -> dict[str, Any]:
    """Params given to `dotnb run -p` (DOTNB_RUN_PARAMS); {} when unset or not a JSON object."""
    text = os.environ.get("DOTNB_RUN_PARAMS")
    if not text:
        return {}
    import json

    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _max_file_size() -> int:
    from dotnb.store.repo import DEFAULT_MAX_FILE_SIZE

    value = os.environ.get("DOTNB_MAX_FILE_SIZE")
    try:
        return int(value) if value else DEFAULT_MAX_FILE_SIZE
    except ValueError:
        return DEFAULT_MAX_FILE_SIZE
