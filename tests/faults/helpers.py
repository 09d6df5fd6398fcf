"""What the fault-injection tests share: kernels and ``dotnb`` processes that run
this tree's dotnb, killing them, reading a store's raw state without completing
anything, and checking a store the way a user would (``log``, ``show``, ``fsck``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import make_notebook
from tests.kernel_client import Kernel

TREE = Path(__file__).resolve().parents[2]
RUN_MIME = "application/vnd.dotnb.run+json"
TEMP_NAME_PREFIX = ".dotnb-"


@dataclass
class Faults:
    """A test's seeded randomness and its soak factor."""

    seed: int
    soak: int
    rng: random.Random
    nodeid: str
    figures: Counter[str] = field(default_factory=Counter)

    def trials(self, default: int) -> int:
        return default * self.soak

    def where(self) -> str:
        return f"DOTNB_FAULT_SEED={self.seed} soak x{self.soak} ({self.nodeid})"

    def report(self, title: str, **figures: Any) -> None:
        """Print a test's figures (shown with -s, and in the soak log)."""
        print(
            f"\n[faults] {title}: " + ", ".join(f"{k}={v}" for k, v in figures.items()) + f" [{self.where()}]"
        )


def tree_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a process that must import dotnb from this tree."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "DOTNB_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(TREE), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update(extra or {})
    return env


def check_tree_imports() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import dotnb; print(dotnb.__file__)"],
        env=tree_env(),
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    ).stdout.strip()
    assert Path(out).resolve().is_relative_to(TREE), f"dotnb CLI processes would import {out}, not {TREE}"


# -- the dotnb CLI ---------------------------------------------------------------


def dotnb_argv(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dotnb", "--root", str(root), *args]


def dotnb(root: Path, *args: str, timeout: float = 120, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``dotnb --root ROOT ARGS`` to the end; with ``ok``, require exit status 0."""
    proc = subprocess.run(
        dotnb_argv(root, *args), env=tree_env(), capture_output=True, text=True, timeout=timeout, cwd=root
    )
    if ok and proc.returncode != 0:
        raise AssertionError(
            f"dotnb {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def dotnb_json(root: Path, *args: str, timeout: float = 120) -> Any:
    return json.loads(dotnb(root, *args, "--json", timeout=timeout).stdout)


def start_dotnb(root: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        dotnb_argv(root, *args),
        env=tree_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=root,
    )


# -- kernels ---------------------------------------------------------------------


def start_kernel(root: Path, notebook: str = "analysis.ipynb", env: dict[str, str] | None = None) -> Kernel:
    """A real ipykernel in ``root`` (running this tree's dotnb), with dotnb loaded."""
    nb = root / notebook
    if not nb.exists():
        make_notebook(nb)
    k = Kernel(root, nb, extra_env={"PYTHONPATH": tree_env()["PYTHONPATH"], **(env or {})})
    try:
        res = k.ok("%load_ext dotnb\nimport dotnb as _dotnb_module\nprint(_dotnb_module.__file__)")
        assert Path(res.stdout.strip()).resolve().is_relative_to(TREE), f"the kernel imports {res.stdout}"
    except BaseException:
        k.shutdown()
        raise
    return k


def close_thread_loop() -> None:
    """Close the asyncio loop jupyter_client's blocking calls made for this thread
    (each thread gets one, and it is never closed: a ResourceWarning at exit)."""
    with contextlib.suppress(RuntimeError):
        loop = asyncio.get_event_loop_policy().get_event_loop()
        if not loop.is_running():
            loop.close()
    asyncio.set_event_loop(None)


def kernel_pid(k: Kernel) -> int:
    pid = k.km.provisioner.pid  # type: ignore[union-attr]
    assert isinstance(pid, int)
    return pid


def kill_kernel(k: Kernel, sig: int = signal.SIGKILL) -> None:
    """Kill the kernel process outright, then release the client's resources."""
    os.kill(kernel_pid(k), sig)
    wait_dead(k)
    k.kc.stop_channels()
    with contextlib.suppress(Exception):
        k.km.shutdown_kernel(now=True)


def wait_dead(k: Kernel, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while k.km.is_alive():
        if time.monotonic() > deadline:
            raise AssertionError("the kernel did not die")
        time.sleep(0.01)


def run_bundles(k: Kernel, msg_ids: set[str], until: float) -> Iterator[dict[str, Any]]:
    """The run lines (their JSON bundles) the kernel sends for ``msg_ids`` until
    ``time.monotonic()`` reaches ``until``."""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return
        try:
            msg = k.kc.get_iopub_msg(timeout=min(left, 0.05))
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") not in msg_ids or msg["msg_type"] != "display_data":
            continue
        bundle = msg["content"]["data"].get(RUN_MIME)
        if bundle is not None:
            yield bundle


# -- raw state: read without opening a Store (which would complete records) ----------


@dataclass
class RawState:
    runs: dict[str, tuple[str, int, str]]  # id -> (notebook, number, manifest hash)
    pending: dict[str, str]  # write-ahead records: run id -> manifest hash
    pending_objects: int
    refs: set[str]
    objects: set[str]
    store_temps: list[str]  # files in .dotnb/tmp


def raw_state(root: Path) -> RawState:
    store = root / ".dotnb"
    runs: dict[str, tuple[str, int, str]] = {}
    pending: dict[str, str] = {}
    n_objects = 0
    index = store / "index.sqlite"
    if index.exists():
        db = sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=30)
        try:
            rows = _rows(db, "SELECT id, notebook, number, manifest FROM runs")
            runs = {run_id: (notebook, number, manifest) for run_id, notebook, number, manifest in rows}
            pending = dict(_rows(db, "SELECT run_id, manifest FROM pending_manifests"))
            n_objects = len(_rows(db, "SELECT hash FROM pending_objects"))
        finally:
            db.close()
    refs = set(os.listdir(store / "runs")) if (store / "runs").exists() else set()
    objects_dir = store / "objects"
    objects = {
        fan + name
        for fan in (os.listdir(objects_dir) if objects_dir.exists() else [])
        if len(fan) == 2
        for name in os.listdir(objects_dir / fan)
    }
    objects |= packed_objects(root)
    tmp = store / "tmp"
    temps = sorted(os.listdir(tmp)) if tmp.exists() else []
    return RawState(runs, pending, n_objects, {r for r in refs if not r.startswith(".")}, objects, temps)


def pack_indexes(root: Path) -> list[Path]:
    """The index files of a store's live packs."""
    packs = root / ".dotnb" / "packs"
    return sorted(packs.glob("*.idx")) if packs.exists() else []


def packed_objects(root: Path) -> set[str]:
    """The objects live packs hold, read from their indexes as the format says:
    an 8-byte header, then 48-byte records (32 bytes of hash, offset, length)."""
    found: set[str] = set()
    for index in pack_indexes(root):
        try:
            data = index.read_bytes()
        except FileNotFoundError:  # repacked away meanwhile
            continue
        found |= {data[i : i + 32].hex() for i in range(8, len(data) - 47, 48)}
    return found


def object_files(root: Path) -> list[Path]:
    """Every file holding objects: loose objects and pack indexes (whose mtime gc reads)."""
    objects_dir = root / ".dotnb" / "objects"
    loose = [p for p in objects_dir.glob("*/*") if p.is_file()] if objects_dir.exists() else []
    return loose + pack_indexes(root)


def _rows(db: sqlite3.Connection, sql: str) -> list[Any]:
    """The rows of ``sql``; none when the table does not exist yet (a process was
    killed while it created the index)."""
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def temps_under(root: Path) -> list[str]:
    """Every file named like dotnb's temp files anywhere under ``root`` (hidden folders too)."""
    found = []
    for folder, _, files in os.walk(root):
        found += [
            os.path.relpath(os.path.join(folder, n), root) for n in files if n.startswith(TEMP_NAME_PREFIX)
        ]
    return sorted(found)


# -- a store checked as a user would ------------------------------------------------


@dataclass
class Checked:
    runs: list[dict[str, Any]]
    objects_checked: int


def fsck_clean(root: Path) -> dict[str, Any]:
    proc = dotnb(root, "fsck", "--json", ok=False)
    report: dict[str, Any] = json.loads(proc.stdout)
    damage = {k: v for k, v in report.items() if isinstance(v, list) and v and k != "stray_temp_files"}
    assert proc.returncode == 0 and report["ok"] and not damage, f"fsck found damage: {damage}\n{proc.stderr}"
    return report


def check_store(root: Path, must_list: Iterable[str] = (), show: Iterable[str] = ()) -> Checked:
    """Every listed run complete: ``dotnb log`` lists every run in ``must_list``, ids
    and each notebook's numbers are unique, ``dotnb show`` works for the runs in
    ``show`` (and the newest), every run's manifest and lineage read in full and
    every object it names is present, and ``dotnb fsck`` (which re-hashes every
    object) is clean."""
    runs: list[dict[str, Any]] = dotnb_json(root, "log", "--limit", "0")
    ids = [r["id"] for r in runs]
    assert len(ids) == len(set(ids)), f"duplicate run ids: {Counter(ids).most_common(3)}"
    missing = set(must_list) - set(ids)
    assert not missing, f"runs whose run line was shown are not listed: {sorted(missing)}"
    numbers = Counter((r["notebook"], r["number"]) for r in runs if r.get("remote") is None)
    dup = [k for k, n in numbers.items() if n > 1]
    assert not dup, f"#N given twice: {dup}"
    for run_id in {*show, *ids[:1]}:
        shown = dotnb_json(root, "show", run_id)
        assert shown["id"] == run_id
    report = fsck_clean(root)
    _read_every_run(root, ids)
    return Checked(runs, int(report["objects_checked"]))


def _read_every_run(root: Path, ids: list[str]) -> None:
    from dotnb.store.referenced import manifest_objects
    from dotnb.store.repo import Store

    store = Store(root)
    try:
        for run_id in ids:
            manifest = store.manifest(run_id)
            assert manifest["id"] == run_id
            store.lineage(manifest, strict=True)
            for digest in manifest_objects(manifest):
                assert store.objects.has(digest), f"run {run_id} names missing object {digest}"
    finally:
        store.close()


def write_files(
    folder: Path, rng: random.Random, count: int, max_size: int, prefix: str = "f"
) -> dict[str, bytes]:
    """``count`` files of seeded random bytes (1 byte to ``max_size``); rel path -> bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, bytes] = {}
    for n in range(count):
        data = rng.randbytes(rng.randint(1, max_size))
        path = folder / f"{prefix}{n:03d}.bin"
        path.write_bytes(data)
        out[str(path)] = data
    return out
