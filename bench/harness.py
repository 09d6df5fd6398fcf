"""What every dotnb benchmark shares: scratch folders, a timed kernel client, statistics, tables.

The benchmarks print figures and ratios against a baseline measured in the
same run; they never assert.  Scratch data lives under ``<repo>/.bench-tmp``
(same filesystem as the repo, so copies, renames and fsyncs behave as they do
for a real project) and is removed when a script ends, also on Ctrl-C or
SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import platform
import queue
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCRATCH_PARENT = REPO / ".bench-tmp"
RUN_MIME = "application/vnd.dotnb.run+json"
MiB = 1024 * 1024


# ---------------------------------------------------------------------------
# command line and process


def parse_args(
    description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """``--quick``, and whatever options ``extra`` adds to the parser."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a smaller, faster version (smoke test)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    # SIGTERM becomes SystemExit, so scratch folders and kernels are still cleaned up.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return args


def print_header(title: str, quick: bool) -> None:
    print(f"== {title}{'  (--quick)' if quick else ''}")
    print(
        f"   python {platform.python_version()} · {os.cpu_count()} cores · {platform.system()} "
        f"{platform.release()} · scratch on {_fs_type(REPO)} · page cache warm (cannot be dropped here)"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"   dotnb at {_git_state()} · load average {load} (other processes skew every figure)")
    print()


def _git_state() -> str:
    try:
        head = run_cmd(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]).stdout.decode().strip()
        changed = run_cmd(["git", "-C", str(REPO), "status", "--porcelain", "--", "dotnb"]).stdout.decode()
    except (OSError, RuntimeError):
        return "unknown commit"
    n = len(changed.splitlines())
    return f"commit {head}" + (f" + {n} uncommitted change(s) under dotnb/" if n else "")


def _fs_type(path: Path) -> str:
    best, kind = "", "?"
    with contextlib.suppress(OSError), open("/proc/mounts") as mounts:
        for line in mounts:
            parts = line.split()
            if len(parts) >= 3 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    return kind


# ---------------------------------------------------------------------------
# scratch folders


@contextlib.contextmanager
def scratch(name: str) -> Iterator[Path]:
    """A fresh folder under ``<repo>/.bench-tmp``, removed afterwards (``.bench-tmp`` too if empty)."""
    SCRATCH_PARENT.mkdir(exist_ok=True)
    if os.stat(SCRATCH_PARENT).st_dev != os.stat(REPO).st_dev:
        raise SystemExit(f"{SCRATCH_PARENT} is not on the repository's filesystem")
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=SCRATCH_PARENT))
    try:
        yield path
    finally:
        remove_tree(path)
        with contextlib.suppress(OSError):
            SCRATCH_PARENT.rmdir()  # only when no other benchmark is using it


def remove_tree(path: Path) -> None:
    def make_writable_and_retry(func: Callable[..., Any], target: str, _exc: Any) -> None:
        # Store objects are read-only; a folder without the write bit blocks removal.
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), stat.S_IRWXU)
        func(target)

    if path.exists():
        shutil.rmtree(path, onerror=make_writable_and_retry)


def make_notebook(path: Path) -> Path:
    """A minimal nbformat-4 notebook on disk (what JupyterLab would have saved)."""
    doc = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "load",
                "metadata": {},
                "outputs": [],
                "source": ["%load_ext dotnb"],
            }
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", "utf-8")
    return path


def age(paths: Sequence[Path], seconds: float = 30.0) -> None:
    """Set mtimes in the past, so the stat cache's 2 s racy-clean window never applies."""
    when = time.time() - seconds
    for p in paths:
        os.utime(p, (when, when))


def write_random_file(path: Path, size: int, chunk: int = 8 * MiB) -> None:
    """``size`` random bytes, fsynced (so its writeback does not land in a later measurement)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n
        f.flush()
        os.fsync(f.fileno())


def write_small_files(folder: Path, count: int, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        p = folder / f"f{i:05d}.bin"
        p.write_bytes(os.urandom(size))
        paths.append(p)
    os.sync()  # one flush for all, instead of one fsync per file
    return paths


class HotPages:
    """Gives every measured step that writes new data the same supply of recently freed memory.

    This machine is a Firecracker VM with free page reporting: memory the guest
    frees is handed back to the host within moments to seconds, and touching
    such a page again costs about 7-30 µs (measured: the same 512 MiB
    ``cp`` + fsync takes 0.45 s into just-freed pages and 0.9-2 s into returned
    ones).  Whichever step happens to allocate after a pause would look slow.

    So each step that writes new data is handed just-freed pages: ballast files
    (``parts`` of ``size`` bytes, written and synced beforehand) are deleted
    right before the step's timer starts (:meth:`release`), or, when dotnb does
    the writing, right before dotnb starts writing, from inside the process that
    writes (:func:`release_before`), with the time the deletion took reported
    so it can be subtracted.  :meth:`refill` writes the missing parts again
    after the step's own output was deleted (mostly into the pages it freed).
    """

    def __init__(self, folder: Path, size: int, parts: int = 1) -> None:
        self.paths = [folder / f"hot-pages-{i}.ballast" for i in range(parts)]
        self.size = size

    def refill(self) -> None:
        zeros = bytes(8 * MiB)
        for path in self.paths:
            if path.exists():
                continue
            with open(path, "wb") as f:
                for _ in range(-(-self.size // len(zeros))):
                    f.write(zeros)
        os.sync()  # clean pages: the step that follows inherits no writeback

    def release(self) -> None:
        drop_writeback()
        for path in self.paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def pending(self) -> list[str]:
        """The parts for :func:`release_before` to delete, in order."""
        return [str(p) for p in self.paths if p.exists()]


def release_before(targets: list[tuple[str, str]], pending: list[str], spent: list[float]) -> None:
    """Wrap each ``(module, attribute)`` so that a call first deletes the next file in ``pending``.

    Used with :class:`HotPages`: ``targets`` are the dotnb functions that start
    writing new data; the deletion times land in ``spent``.  Self-contained, so
    its source also runs in a kernel.  Call it once per process.
    """
    import contextlib
    import functools
    import importlib
    import os
    import time

    def make(orig: Callable[..., object]) -> Callable[..., object]:
        @functools.wraps(orig)
        def wrapper(*args: object, **kwargs: object) -> object:
            if pending:
                start = time.perf_counter()
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(pending.pop(0))
                spent.append(time.perf_counter() - start)
            return orig(*args, **kwargs)

        return wrapper

    for modname, attr in targets:
        owner: object = importlib.import_module(modname)
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, make(getattr(owner, name)))


class KernelHotPages:
    """:func:`release_before` installed in a kernel, fed with a :class:`HotPages`'s parts per cell."""

    def __init__(self, kernel: BenchKernel, hot: HotPages, targets: list[tuple[str, str]]) -> None:
        self.kernel = kernel
        self.hot = hot
        source = inspect.getsource(release_before)
        kernel.ok(
            f"from __future__ import annotations\n{source}\n"
            "_dotnb_bench_pending, _dotnb_bench_spent = [], []\n"
            f"release_before({targets!r}, _dotnb_bench_pending, _dotnb_bench_spent)"
        )

    def arm(self) -> None:
        """Before a measured cell: its first write will find just-freed pages."""
        drop_writeback()
        self.kernel.ok(f"_dotnb_bench_pending[:] = {self.hot.pending()!r}; _dotnb_bench_spent.clear()")

    def spent(self) -> float:
        """Seconds the last armed cell spent deleting ballast (to subtract); disarms."""
        out = self.kernel.ok("_dotnb_bench_pending.clear(); print(sum(_dotnb_bench_spent))").stdout
        return float(out)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_writeback() -> None:
    """Flush dirty pages left by a previous step, so they are not billed to the next one."""
    os.sync()


# ---------------------------------------------------------------------------
# timing and statistics


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_cmd(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run a command; when it fails, raise with the end of what it printed (a figure
    that cannot be measured says why)."""
    proc = subprocess.run(list(argv), check=False, capture_output=True, **kwargs)
    if proc.returncode != 0:
        said = (proc.stdout or b"")[-2000:] + b"\n" + (proc.stderr or b"")[-2000:]
        raise RuntimeError(
            f"{' '.join(map(str, argv))} exited {proc.returncode}:\n{said.decode(errors='replace')}"
        )
    return proc


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100]."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ms(seconds: float | None, digits: int = 2) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.{digits}f}"


def ratio(value: float | None, base: float | None) -> str:
    if value is None or base is None or base <= 0:
        return "-"
    return f"{value / base:.2f}x"


def verdict(value: float, limit: float) -> str:
    return "MET" if value <= limit else "NOT MET"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        # First column left-aligned (labels), the rest right-aligned (numbers).
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    print(title)
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
    print()


# ---------------------------------------------------------------------------
# a kernel timed from the client side


@dataclass
class CellTiming:
    seconds: float  # from execute_request sent to the kernel's idle status
    status: str = "?"
    stdout: str = ""
    stderr: str = ""
    run: dict[str, Any] | None = None  # the dotnb run bundle the cell displayed
    run_line: str | None = None
    error: dict[str, Any] | None = None
    # CPU seconds the kernel process used meanwhile, all its threads (None: unknown).
    # Steadier than ``seconds`` on a shared machine: time spent waiting for a core
    # does not count.
    cpu: float | None = None


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class BenchKernel:
    """One ipykernel (the venv's interpreter) in ``cwd``, as JupyterLab would start it for ``notebook``."""

    cwd: Path
    notebook: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    python: str = ""  # another interpreter (a peer's virtualenv); default: this one
    km: Any = None
    kc: Any = None

    def __post_init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # jupyter_client's platformdirs notice
            from jupyter_client.manager import KernelManager

        env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "DOTNB_"))}
        env["JPY_SESSION_NAME"] = str(self.notebook)
        env.update(self.extra_env)
        self.km = KernelManager(kernel_name="python3")
        self.km.kernel_spec.argv[0] = self.python or sys.executable
        try:
            self.km.start_kernel(cwd=str(self.cwd), env=env)
            self.kc = self.km.client()
            self.kc.start_channels()
            self.kc.wait_for_ready(timeout=60)
        except BaseException:  # SIGTERM during start-up too: no kernel is left behind
            self.shutdown()
            raise

    @property
    def pid(self) -> int | None:
        """The kernel's process id (its own interpreter: no wrapper in between)."""
        return getattr(getattr(self.km, "provisioner", None), "pid", None)

    def run(self, code: str, timeout: float = 300) -> CellTiming:
        cpu_before = process_cpu_seconds(self.pid)
        start = time.perf_counter()
        msg_id = self.kc.execute(code, store_history=True)
        result = CellTiming(seconds=0.0)
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no kernel output within {timeout}s for:\n{code}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                result.seconds = time.perf_counter() - start
                break
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind == "display_data" and RUN_MIME in content["data"]:
                result.run = content["data"][RUN_MIME]
                result.run_line = content["data"].get("text/plain")
            elif kind == "error":
                result.error = content
        cpu_after = process_cpu_seconds(self.pid)
        if cpu_before is not None and cpu_after is not None:
            result.cpu = cpu_after - cpu_before
        reply = self.kc.get_shell_msg(timeout=timeout)
        result.status = reply["content"]["status"]
        return result

    def ok(self, code: str, timeout: float = 300) -> CellTiming:
        res = self.run(code, timeout)
        if res.status != "ok":
            err = res.error or {}
            raise RuntimeError(f"cell failed: {err.get('ename')}: {err.get('evalue')}\n{code}")
        return res

    def shutdown(self) -> None:
        kc, self.kc = self.kc, None
        km, self.km = self.km, None
        if kc is not None:
            with contextlib.suppress(Exception):
                kc.stop_channels()
        if km is not None and km.has_kernel:
            km.shutdown_kernel(now=True)

    def __enter__(self) -> BenchKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def start_tracking_kernel(project: Path, notebook: Path, code_root: Path | None = None) -> BenchKernel:
    """A kernel with dotnb loaded and its store, observer and environment cache warmed up;
    with ``code_root``, running the dotnb found there (first on ``PYTHONPATH``)."""
    env = {"DOTNB_ROOT": str(project)}
    if code_root is not None:
        env["PYTHONPATH"] = str(code_root)
    kernel = BenchKernel(project, notebook, env)
    try:
        kernel.ok("%load_ext dotnb")
        if code_root is not None:
            where = kernel.ok("import dotnb; print(dotnb.__file__)").stdout.strip()
            if not where.startswith(str(code_root)):
                raise RuntimeError(f"the kernel imported dotnb from {where}, not from {code_root}")
        warm = kernel.ok("%%track\n_dotnb_bench_warmup = 1")
        if warm.run is None:
            raise RuntimeError(f"the warm-up tracked cell recorded no run: {warm.stderr}")
    except BaseException:
        kernel.shutdown()
        raise
    return kernel


def check_run(res: CellTiming, what: str) -> str:
    """The run line of a tracked cell; any dotnb warning is surfaced, not hidden."""
    if res.run is None:
        raise RuntimeError(f"{what}: the tracked cell recorded no run (stderr: {res.stderr.strip()})")
    if res.stderr.strip():
        print(f"   note: {what} printed on stderr: {res.stderr.strip()[:300]}")
    return res.run_line or ""


# ---------------------------------------------------------------------------
# where a tracked cell's time goes, measured inside the kernel

# (module, attribute, label): once-per-cell steps of a tracked cell, nested as
# the labels' indentation shows.  Wrapping them costs about a microsecond each;
# per-file functions are deliberately not wrapped.
PHASES: list[tuple[str, str, str]] = [
    ("dotnb.capture.session", "Session._begin", "pre_run_cell: Session._begin"),
    ("dotnb.capture.files", "FileTracker.begin", "  FileTracker.begin (drain inotify queue)"),
    ("dotnb.capture.session", "Session._record", "post_run_cell: Session._record"),
    ("dotnb.capture.files", "FileTracker.end", "  FileTracker.end (drain inotify queue)"),
    ("dotnb.store.repo", "Store.snapshot_files", "  Store.snapshot_files (inputs, outputs, notebook)"),
    ("dotnb.capture.lineage", "KernelLineage.build", "  KernelLineage.build (segments, entries, JSON)"),
    ("dotnb.capture.session", "Session._environment", "  Session._environment"),
    ("dotnb.capture.session", "Session._notebook_snapshot", "  Session._notebook_snapshot"),
    ("dotnb.store.repo", "Store.commit_run", "  Store.commit_run"),
    ("dotnb.capture.flusher", "RunFlusher.later", "  RunFlusher.later (thread start)"),
    ("dotnb.capture.session", "Session._display", "post_run_cell: Session._display"),
]


def instrument_calls(spec: list[tuple[str, str, str]]) -> dict[str, list[float]]:
    """Wrap each ``(module, attribute, label)`` to record its wall times under ``label``.

    Self-contained (imports inside), so its source also runs in a kernel.  Call
    it once per process: a second call would wrap the wrappers.
    """
    import functools
    import importlib
    import time

    found: dict[str, list[float]] = {}

    def make(orig: Callable[..., object], label: str) -> Callable[..., object]:
        @functools.wraps(orig)
        def timed(*args: object, **kwargs: object) -> object:
            start = time.perf_counter()
            try:
                return orig(*args, **kwargs)
            finally:
                found.setdefault(label, []).append(time.perf_counter() - start)

        return timed

    for modname, attr, label in spec:
        owner: object = importlib.import_module(modname)
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        # A step renamed in dotnb fails here, rather than dropping out of the tables.
        orig = getattr(owner, name)
        setattr(owner, name, make(orig, label))
    return found


class KernelPhases:
    """Wall time of each step in :data:`PHASES`, per tracked cell, from inside a kernel."""

    def __init__(self, kernel: BenchKernel, spec: Sequence[tuple[str, str, str]] = PHASES) -> None:
        self.kernel = kernel
        self.spec = list(spec)
        source = inspect.getsource(instrument_calls)
        # Annotations stay unevaluated in the kernel, as they are here.
        kernel.ok(
            f"from __future__ import annotations\n{source}\n"
            f"_dotnb_bench_phases = instrument_calls({self.spec!r})"
        )

    def reset(self) -> None:
        self.kernel.ok("_dotnb_bench_phases.clear()")

    def collect(self) -> dict[str, list[float]]:
        out = self.kernel.ok("import json as _j; print(_j.dumps(_dotnb_bench_phases))").stdout
        found: dict[str, list[float]] = json.loads(out)
        return found

    def rows(self, cells: int) -> list[list[str]]:
        return phase_rows(self.collect(), cells, self.spec)


def merge_phases(runs: Sequence[dict[str, list[float]]]) -> dict[str, list[float]]:
    merged: dict[str, list[float]] = {}
    for found in runs:
        for label, values in found.items():
            merged.setdefault(label, []).extend(values)
    return merged


def phase_rows(
    found: dict[str, list[float]], cells: int, spec: Sequence[tuple[str, str, str]] = PHASES
) -> list[list[str]]:
    """Label, calls per cell, median ms per call, total ms per cell (mean over ``cells``)."""
    rows = []
    for _, _, label in spec:
        values = found.get(label)
        if not values:
            continue
        rows.append([label, f"{len(values) / cells:g}", ms(median(values), 3), ms(sum(values) / cells, 3)])
    return rows


PHASE_HEADERS = ["step (in the kernel)", "calls/cell", "median ms/call", "ms/cell"]


def install_hook_clock() -> list[tuple[bool, float]]:
    """Time dotnb's own ``pre_run_cell`` + ``post_run_cell`` hooks for every cell of this kernel.

    Runs inside a kernel with dotnb loaded: markers are inserted right before
    and after dotnb's callbacks, so each cell logs ``(tracked, seconds spent in
    dotnb's hooks)``.  Self-contained, so its source runs in a kernel.
    """
    import time

    from IPython import get_ipython

    from dotnb.capture.magic import current_session

    ip = get_ipython()
    session = current_session()
    log: list[tuple[bool, float]] = []
    state: dict[str, float] = {}

    def pre_start(info: object) -> None:
        state["pre_start"] = time.perf_counter()

    def pre_end(info: object) -> None:
        state["pre"] = time.perf_counter() - state.pop("pre_start", time.perf_counter())
        state["tracked"] = float(session is not None and session.active is not None)

    def post_start(result: object) -> None:
        state["post_start"] = time.perf_counter()

    def post_end(result: object) -> None:
        post = time.perf_counter() - state.pop("post_start", time.perf_counter())
        log.append((bool(state.pop("tracked", 0.0)), state.pop("pre", 0.0) + post))

    if ip is None or session is None:
        raise RuntimeError("dotnb is not loaded in this kernel")
    for event, first, last, callback in (
        ("pre_run_cell", pre_start, pre_end, session.pre_run_cell),
        ("post_run_cell", post_start, post_end, session.post_run_cell),
    ):
        callbacks = ip.events.callbacks[event]
        i = callbacks.index(callback)
        callbacks.insert(i + 1, last)
        callbacks.insert(i, first)
    return log


class HookClock:
    """:func:`install_hook_clock` in a kernel: dotnb's in-kernel time per cell, tracked or not."""

    def __init__(self, kernel: BenchKernel) -> None:
        self.kernel = kernel
        source = inspect.getsource(install_hook_clock)
        kernel.ok(f"from __future__ import annotations\n{source}\n_dotnb_bench_clock = install_hook_clock()")

    def reset(self) -> None:
        self.kernel.ok("_dotnb_bench_clock.clear()")

    def collect(self) -> tuple[list[float], list[float]]:
        """(tracked cells, untracked cells) seconds in dotnb's hooks since :meth:`reset`."""
        out = self.kernel.ok("import json as _j; print(_j.dumps(_dotnb_bench_clock))").stdout
        entries: list[tuple[bool, float]] = json.loads(out)
        # The reset cell logs itself after clearing; it is an untracked cell like the others.
        return [s for t, s in entries if t], [s for t, s in entries if not t]


def paired_added(tracked: Sequence[float], untracked: Sequence[float]) -> float:
    """Median of tracked − untracked over adjacent pairs: robust to slow drift and to outliers."""
    return median([t - u for t, u in zip(tracked, untracked, strict=True)])


def paired_interval(
    tracked: Sequence[float], untracked: Sequence[float], resamples: int = 2000
) -> tuple[float, float]:
    """A 90% bootstrap interval for :func:`paired_added` (fixed seed: reruns of one data
    set print the same interval)."""
    import random

    diffs = [t - u for t, u in zip(tracked, untracked, strict=True)]
    rng = random.Random(0)
    medians = sorted(median(rng.choices(diffs, k=len(diffs))) for _ in range(resamples))
    return medians[int(0.05 * resamples)], medians[int(0.95 * resamples) - 1]


RERUN_HEADERS = ["", "median ms", "p90 ms", "added ms", "goal"]


def rerun_rows(
    tracked: Sequence[float],
    untracked: Sequence[float],
    hooks: tuple[list[float], list[float]],
    goal: float | None,
) -> list[list[str]]:
    """Round trips of interleaved tracked/untracked cells, and dotnb's in-kernel hook time.

    When the cell's own time varies by more than the goal (reading 512 MiB from
    the page cache does), the round-trip difference cannot resolve it; the
    time in dotnb's hooks is exact but leaves out what happens outside them
    (the audit hook during the cell, the extra display message).
    """
    hooks_tracked, hooks_untracked = hooks
    in_kernel = median(hooks_tracked) - median(hooks_untracked)

    def judged(value: float) -> str:
        return "" if goal is None else f"{verdict(value, goal)} (≤ {ms(goal, 0)} ms)"

    paired = paired_added(tracked, untracked)
    low, high = paired_interval(tracked, untracked)
    if goal is not None and low <= goal < high:
        # The round trips cannot tell whether the goal is met: the hooks' row says it.
        paired_verdict = f"90% range {ms(low)} to {ms(high)}: too noisy to judge"
    else:
        paired_verdict = judged(paired)
    return [
        ["untracked cell, round trip", ms(median(untracked)), ms(percentile(untracked, 90)), "", ""],
        ["tracked cell, round trip", ms(median(tracked)), ms(percentile(tracked, 90)), "", ""],
        ["added: median(tracked) − median(untracked)", "", "", ms(median(tracked) - median(untracked)), ""],
        ["added: median of paired differences", "", "", ms(paired), paired_verdict],
        [
            "added in the kernel: dotnb's hooks, tracked − untracked",
            ms(median(hooks_tracked), 3),
            ms(percentile(hooks_tracked, 90), 3),
            ms(in_kernel, 3),
            judged(in_kernel),
        ],
    ]
