"""Push and pull against one real S3 server (SeaweedFS), next to boto3 on the same server.

One ``weed server -s3`` (``tests/remote/seaweed.py``) runs on this machine for
the whole script, its data in the scratch folder; every figure is measured
against it, so client and server share the two cores (the tables give the CPU
seconds each side used).  Three cases:

1. **One 1 GiB file** (64 MiB with ``--quick``): a run whose output is a file
   of random bytes.  ``dotnb push`` to a fresh remote prefix vs boto3's
   ``upload_file`` of the same file; ``dotnb pull --with-data`` into a second,
   empty project vs boto3's ``download_file`` of the same bytes.  ``pull
   --with-data`` is the equivalent of ``download_file``: both end with the
   bytes in one local file (dotnb's is the store object, hashed and fsynced);
   ``pull`` + ``restore`` would add a local copy, which ``restore.py``
   measures.  So the table also gives ``download_file`` + fsync + a BLAKE3
   hash of the file, the work dotnb does on top.  Goal: dotnb within 1.25x
   of boto3, both ways.  3 repetitions (2 with ``--quick``), 1 in-process.
2. **10,000 files of 4 KiB** (1,000 with ``--quick``): ONE run with 10,000
   outputs.  Same commands, against a boto3 loop of ``upload_file`` /
   ``download_file`` per file, run on a tenth of the files and scaled up (a
   loop takes 10-20 ms per file here), and, for reference, boto3
   ``put_object`` / ``get_object`` on 32 threads (same tenth, scaled).  Goal:
   dotnb faster than the loop.  Once each; in-process only with ``--quick``
   (CLI start-up is 2 % of these figures).  Note: up to 2,000 objects a push
   checks each with a HEAD; above, it lists ``objects/`` once, so ``--quick``
   and the full run take different paths.
3. **One new run against a remote holding 10,000 runs** (1,000 with
   ``--quick``), made through the store API like ``log_query.py``'s.  A real
   push of all of them, then a real pull into a second project (in-process,
   once each, timed and reported), then, 3 times (2 with ``--quick``): one
   new run, ``dotnb push``, and ``dotnb pull`` in the second project, as CLI
   and in-process.  Goal: under 2 s each, CLI.  Also ``pull --with-data``
   once, which reads every pulled run's manifest.

dotnb is timed as users run it, the CLI as a subprocess (``.venv/bin/dotnb``,
AWS environment pointing at the server, bytecode caching on as after a pip
install: ``PYTHONPYCACHEPREFIX`` in the scratch folder, warmed first), and in
this process (``dotnb.remote.transfer.push`` / ``pull``; s3fs imported and its
event loop started beforehand).  The difference is CLI start-up (Python,
dotnb, and s3fs, which imports aiobotocore, botocore and aiohttp: the
``start-up`` rows) plus what a fresh process pays for memory it touches for
the first time (this VM charges heavily for that; see README).  For the
in-process runs, tables give dotnb's steps (``STEPS``, timed by wrapping them,
summed over its worker threads) and the S3 requests s3fs sent, by operation.

Repetitions of dotnb and of the baselines are interleaved, their order
rotating, and figures are medians.  Steps that move the 1 GiB file start with
just-freed memory (``harness.HotPages``).  Full run: about 11-15 minutes on
this 2-core VM, a third of it case 3's first push and pull of 10,000 runs;
``--quick``: about 2-3 minutes.  ``--only big`` (or ``many``, ``incremental``;
repeatable) runs just that case: about 3.5 minutes for the 1 GiB file.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    HotPages,
    MiB,
    age,
    fsync_path,
    instrument_calls,
    median,
    print_header,
    print_table,
    ratio,
    remove_tree,
    run_cmd,
    scratch,
    write_random_file,
    write_small_files,
)
from log_query import fill

sys.path.insert(0, str(REPO))  # tests.remote.seaweed: the S3 server the remote tests use

from dotnb.remote import transfer
from dotnb.remote.backend import open_backend
from dotnb.remote.config import add_remote
from dotnb.store import Store
from dotnb.store.hashing import hash_file
from dotnb.store.manifest import iso_time
from dotnb.store.referenced import manifest_objects
from tests.remote.seaweed import SeaweedS3

DOTNB = str(Path(sys.executable).with_name("dotnb"))
BUCKET = "dotnb-bench"
SMALL = 4096
RATIO_GOAL = 1.25
INCREMENTAL_GOAL_S = 2.0
BOTO_THREADS = 32
# dotnb's steps timed in the in-process runs (summed over its worker threads).
STEPS: list[tuple[str, str, str]] = [
    ("dotnb.remote.transfer", "check_remote_format", "format file check (sets up the S3 client)"),
    ("dotnb.remote.backend", "S3Backend.read", "S3Backend.read (a small object; the format file too)"),
    ("dotnb.remote.backend", "S3Backend.exists", "S3Backend.exists"),
    ("dotnb.remote.backend", "S3Backend.write", "S3Backend.write (a small object)"),
    ("dotnb.remote.backend", "S3Backend.upload", "S3Backend.upload (large object)"),
    ("dotnb.remote.backend", "S3Backend.download", "S3Backend.download (object into a temp file)"),
    ("dotnb.store.objects", "ObjectStore.install_file", "ObjectStore.install_file (hash, fsync, rename)"),
    ("dotnb.store.repo", "Store.import_runs", "Store.import_runs (manifests into the store and index)"),
    ("dotnb.remote.transfer", "_objects_of_remote_runs", "_objects_of_remote_runs (what --with-data needs)"),
]


def run_manifest(name: str, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "run",
        "name": name,
        "notebook": "transfer.ipynb",
        "code": "",
        "lineage": [],
        "params": {},
        "metrics": {},
        "metric_series": {},
        "inputs": [],
        "outputs": outputs,
        "status": "ok",
        "error": None,
        "started_at": iso_time(time.time()),
        "duration_s": 0.0,
        "environment": {"user": "bench", "host": "box"},
    }


def rotate(items: Sequence[Any], turn: int) -> list[Any]:
    k = turn % len(items)
    return [*items[k:], *items[:k]]


def progress(text: str) -> None:
    """A line on stderr while the script runs (stdout gets the tables)."""
    print(f"   … {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# measuring: wall time, this process's CPU (+ its finished children), the server's CPU


@dataclass
class Sample:
    wall: float
    client_cpu: float
    server_cpu: float

    def __add__(self, other: Sample) -> Sample:
        return Sample(
            self.wall + other.wall, self.client_cpu + other.client_cpu, self.server_cpu + other.server_cpu
        )

    def scaled(self, factor: float) -> Sample:
        return Sample(self.wall * factor, self.client_cpu * factor, self.server_cpu * factor)


class Clock:
    def __init__(self, server_pid: int) -> None:
        self.stat = f"/proc/{server_pid}/stat"
        self.tick = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _client() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the CLI, once waited for
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def _server(self) -> float:
        with open(self.stat) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime

    def __call__(self, fn: Callable[[], object]) -> Sample:
        c0, s0 = self._client(), self._server()
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
        return Sample(wall, self._client() - c0, self._server() - s0)


def med(samples: list[Sample]) -> Sample:
    return Sample(
        median([s.wall for s in samples]),
        median([s.client_cpu for s in samples]),
        median([s.server_cpu for s in samples]),
    )


@dataclass
class Breakdown:
    """dotnb's steps and S3 requests over the in-process runs of one label."""

    runs: int = 0
    steps: dict[str, list[float]] = field(default_factory=dict)
    requests: collections.Counter[str] = field(default_factory=collections.Counter)


def count_requests() -> collections.Counter[str]:
    """Count the S3 calls s3fs makes in this process, by operation (HeadObject, GetObject…)."""
    counts: collections.Counter[str] = collections.Counter()
    try:
        from s3fs.core import S3FileSystem
    except ImportError:
        return counts
    original = getattr(S3FileSystem, "_call_s3", None)
    if original is None:  # renamed in s3fs: no request counts
        return counts

    async def counting(self: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        counts[method] += 1
        return await original(self, method, *args, **kwargs)

    S3FileSystem._call_s3 = counting
    return counts


def print_breakdown(title: str, found: dict[str, Breakdown]) -> None:
    if not found:
        return
    rows = []
    for label, entry in found.items():
        rows.append([f"[{label}]", "", "", ""])
        for _, _, step in STEPS:
            values = entry.steps.get(step)
            if values:
                per_run = sum(values) / entry.runs
                rows.append(
                    [
                        f"  {step}",
                        f"{len(values) / entry.runs:g}",
                        f"{median(values) * 1000:.1f}",
                        f"{per_run:.2f}",
                    ]
                )
    print_table(
        f"   {title}: where the in-process time goes (s/run is summed over dotnb's worker threads)",
        ["step", "calls/run", "median ms/call", "s/run"],
        rows,
    )
    ops = sorted({op for entry in found.values() for op in entry.requests})
    print_table(
        f"   {title}: S3 requests per in-process run (counted in s3fs)",
        ["", *ops],
        [
            [label, *(f"{entry.requests[op] / entry.runs:,.0f}" for op in ops)]
            for label, entry in found.items()
        ],
    )


# ---------------------------------------------------------------------------
# the server, the CLI, boto3


class Bench:
    def __init__(self, tmp: Path, server: SeaweedS3) -> None:
        import boto3
        from botocore.config import Config

        self.tmp = tmp
        self.server = server
        server.make_bucket(BUCKET)
        assert server.proc is not None
        self.clock = Clock(server.proc.pid)
        aws = {
            **server.env(),
            # Never the machine's ~/.aws: exactly the server's credentials.
            "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        }
        for key in [k for k in os.environ if k.startswith(("AWS_", "DOTNB_", "JPY_"))]:
            del os.environ[key]
        os.environ.update(aws)  # in-process push/pull (s3fs) read the same environment
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        # boto3 as its users get it: default configuration (TransferConfig: 8 MiB parts, 10 threads).
        session = boto3.session.Session(
            aws_access_key_id=server.key, aws_secret_access_key=server.secret, region_name="us-east-1"
        )
        self.boto = session.client("s3", endpoint_url=server.endpoint_url)
        self.boto_pool = session.client(
            "s3", endpoint_url=server.endpoint_url, config=Config(max_pool_connections=BOTO_THREADS)
        )
        self.steps = instrument_calls(STEPS)
        self.requests = count_requests()

    def url(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}"

    def cli(self, project: Path, *args: str) -> dict[str, Any]:
        proc = run_cmd([DOTNB, *args, "--json"], cwd=project, env=self.env)  # raises with its stderr
        result: Any = json.loads(proc.stdout)
        return result

    def api(self, found: dict[str, Breakdown], label: str, fn: Callable[[], object]) -> Callable[[], None]:
        """``fn`` (an in-process push or pull), with dotnb's steps and its S3 requests recorded."""

        def run() -> None:
            self.steps.clear()
            self.requests.clear()
            fn()
            entry = found.setdefault(label, Breakdown())
            entry.runs += 1
            for step, values in self.steps.items():
                entry.steps.setdefault(step, []).extend(values)
            entry.requests.update(self.requests)

        return run

    def pull_steps(
        self,
        pull: Timed,
        found: dict[str, Breakdown],
        target: Path,
        prefix: str,
        pulled: dict[str, Any],
        check: Callable[[], None],
    ) -> tuple[Callable[[int], None], Callable[[int], None]]:
        """``dotnb pull --with-data`` of remote ``prefix`` into a new project at ``target``:
        through the CLI, and in-process (its steps recorded in ``found``)."""

        def cli_pull(i: int) -> None:
            self.new_project(target, {"origin": prefix})
            pull.step(
                "dotnb pull --with-data (CLI)", lambda: pulled.update(self.cli(target, "pull", "--with-data"))
            )
            check()

        def api_pull(i: int) -> None:
            self.new_project(target, {"origin": prefix})
            store = Store(target)
            try:
                pull.step(
                    "dotnb pull --with-data (in-process)",
                    self.api(
                        found,
                        "pull --with-data",
                        lambda: pulled.update(transfer.pull(store, "origin", with_data=True)),
                    ),
                )
            finally:
                store.close()
            check()

        return cli_pull, api_pull

    def new_project(self, root: Path, remotes: dict[str, str]) -> Path:
        root.mkdir(parents=True)
        store = Store.init(root)
        try:
            for name, prefix in remotes.items():
                add_remote(store, name, self.url(prefix))
        finally:
            store.close()
        return root

    def add_remote(self, project: Path, name: str, prefix: str) -> None:
        store = Store(project)
        try:
            add_remote(store, name, self.url(prefix))
        finally:
            store.close()

    def warm_up(self) -> None:
        """Fill the CLI's bytecode cache and import s3fs here, outside every timer."""
        project = self.new_project(self.tmp / "warm-up", {"warm": "warm-up"})
        (project / "x.txt").write_text("warm\n")
        store = Store(project)
        try:
            store.commit_run(run_manifest("warm", store.snapshot_files(["x.txt"])))
            transfer.push(store, "warm")
            transfer.pull(store, "warm", with_data=True)
        finally:
            store.close()
        self.cli(project, "push", "warm")
        self.cli(project, "pull", "warm", "--with-data")
        backend = open_backend({"name": "warm", "url": self.url("warm-up")})
        backend.read("format")
        backend.close()
        remove_tree(project)


def expect(what: str, result: dict[str, Any], **wanted: int) -> None:
    for key, value in wanted.items():
        if result.get(key) != value:
            raise RuntimeError(f"{what}: {key} = {result.get(key)!r}, expected {value} ({result})")


# ---------------------------------------------------------------------------
# tables


def rate(sample: Sample, amount: float, unit: str) -> str:
    return f"{amount / sample.wall:,.1f} {unit}" if sample.wall > 0 else "-"


def rows_for(found: dict[str, list[Sample]], base_label: str, amount: float, unit: str) -> list[list[str]]:
    base = med(found[base_label]).wall
    rows = []
    for label, samples in found.items():
        m = med(samples)
        rows.append(
            [
                f"{label} (median of {len(samples)})",
                f"{m.wall:.2f}",
                rate(m, amount, unit),
                f"{m.client_cpu:.1f}",
                f"{m.server_cpu:.1f}",
                ratio(m.wall, base),
            ]
        )
    return rows


HEADERS = ["", "median s", "rate", "client CPU s", "server CPU s"]


def judge(value: float, limit: float) -> str:
    return "MET" if value <= limit else "NOT MET"


def faster(ratio_to_baseline: float) -> str:
    return "MET" if ratio_to_baseline < 1 else "NOT MET"


# ---------------------------------------------------------------------------
# 1. one large file


class Timed:
    """Runs labelled steps, each handed just-freed memory when ``hot`` is set; keeps the samples."""

    def __init__(self, bench: Bench, hot: HotPages | None = None) -> None:
        self.bench = bench
        self.hot = hot
        self.found: dict[str, list[Sample]] = {}

    def step(self, label: str, fn: Callable[[], object], after: Callable[[], object] | None = None) -> Sample:
        if self.hot is not None:
            self.hot.release()
        sample = self.bench.clock(fn)
        self.found.setdefault(label, []).append(sample)
        progress(f"{label}: {sample.wall:.2f} s (load {os.getloadavg()[0]:.1f})")
        if after is not None:
            after()
        if self.hot is not None:
            self.hot.refill()
        return sample


def big_file(b: Bench, size: int, reps: int, api_reps: int) -> list[list[str]]:
    root = b.tmp / "big"
    a = root / "a"
    src = a / "data" / "big.bin"
    write_random_file(src, size)
    age([src])
    store = Store.init(a)
    try:
        store.commit_run(run_manifest("big", store.snapshot_files(["data/big.bin"])))
    finally:
        store.close()
    hot = HotPages(root, size + size // 4)
    hot.refill()
    push = Timed(b, hot)
    pushed = {"bytes_uploaded": 0}
    found: dict[str, Breakdown] = {}

    def cli_push(i: int) -> None:
        b.add_remote(a, f"cli{i}", f"big/cli{i}")
        push.step("dotnb push (CLI)", lambda: pushed.update(b.cli(a, "push", f"cli{i}")))
        expect("push", pushed, runs_pushed=1, objects_uploaded=2)

    def api_push(i: int) -> None:
        b.add_remote(a, f"api{i}", f"big/api{i}")
        store = Store(a)
        try:
            push.step(
                "dotnb push (in-process)",
                b.api(found, "push", lambda: pushed.update(transfer.push(store, f"api{i}"))),
            )
        finally:
            store.close()
        expect("push", pushed, runs_pushed=1, objects_uploaded=2)

    def boto_upload(i: int) -> None:
        push.step("boto3 upload_file", lambda: b.boto.upload_file(str(src), BUCKET, f"big/boto{i}/big.bin"))

    for turn in range(reps):
        steps: list[Callable[[int], None]] = [cli_push, boto_upload]
        if turn < api_reps:
            steps.append(api_push)
        for fn in rotate(steps, turn):
            fn(turn)

    pull = Timed(b, hot)
    target = root / "pulled"
    download = root / "download.bin"
    pulled: dict[str, Any] = {}
    extra: dict[str, list[Sample]] = {"fsync": [], "hash": []}

    def check_pull() -> None:
        expect("pull --with-data", pulled, runs_new=1, objects_downloaded=1, bytes_downloaded=size)
        remove_tree(target)

    cli_pull, api_pull = b.pull_steps(pull, found, target, "big/cli0", pulled, check_pull)

    def boto_download(i: int) -> None:
        def after() -> None:
            # What dotnb does on top of the download: make it durable, check its hash.
            extra["fsync"].append(b.clock(lambda: fsync_path(download)))
            extra["hash"].append(b.clock(lambda: hash_file(download)))
            download.unlink()

        pull.step(
            "boto3 download_file",
            lambda: b.boto.download_file(BUCKET, "big/boto0/big.bin", str(download)),
            after,
        )

    for turn in range(reps):
        steps = [cli_pull, boto_download]
        if turn < api_reps:
            steps.append(api_pull)
        for fn in rotate(steps, turn):
            fn(turn)
    pull.found["boto3 download_file + fsync + BLAKE3 hash"] = [
        d + f + h
        for d, f, h in zip(pull.found["boto3 download_file"], extra["fsync"], extra["hash"], strict=True)
    ]

    mib = size / MiB
    print_table(
        f"1. push one {mib:,.0f} MiB file (fresh remote prefix each time)",
        [*HEADERS, "vs upload_file"],
        rows_for(push.found, "boto3 upload_file", mib, "MiB/s"),
    )
    print_table(
        f"   pull --with-data of that run into an empty project (the {mib:,.0f} MiB object is downloaded, "
        "hashed, fsynced)",
        [*HEADERS, "vs download_file"],
        rows_for(pull.found, "boto3 download_file", mib, "MiB/s"),
    )
    print_breakdown(f"{mib:,.0f} MiB", found)
    push_ratio = med(push.found["dotnb push (CLI)"]).wall / med(push.found["boto3 upload_file"]).wall
    pull_ratio = (
        med(pull.found["dotnb pull --with-data (CLI)"]).wall / med(pull.found["boto3 download_file"]).wall
    )
    return [
        [
            f"push {mib:,.0f} MiB: CLI / boto3 upload_file",
            f"{push_ratio:.2f}x",
            f"≤ {RATIO_GOAL}x",
            judge(push_ratio, RATIO_GOAL),
        ],
        [
            f"pull --with-data {mib:,.0f} MiB: CLI / boto3 download_file",
            f"{pull_ratio:.2f}x",
            f"≤ {RATIO_GOAL}x",
            judge(pull_ratio, RATIO_GOAL),
        ],
    ]


# ---------------------------------------------------------------------------
# 2. many small files


def many_files(b: Bench, count: int, reps: int, api_reps: int) -> list[list[str]]:
    root = b.tmp / "many"
    a = root / "a"
    paths = write_small_files(a / "data" / "many", count, SMALL)
    store = Store.init(a)
    try:
        outputs = []
        for p in paths:  # the run's objects without snapshot_files' fsyncs (setup, not measured)
            digest, size = store.objects.put_bytes(p.read_bytes(), sync=False)
            outputs.append({"path": p.relative_to(a).as_posix(), "hash": digest, "size": size})
        run_id = store.commit_run(run_manifest("many", outputs), sync=False)["id"]
        store.flush()
        # What a push uploads: every object the run uses (its files, its folders' trees,
        # its code), and its manifest.
        uploads = len(manifest_objects(store.manifest(run_id), store.objects.read_bytes)) + 1
    finally:
        store.close()
    sample = paths[: max(count // 10, 1)]
    scale = count / len(sample)
    loop_label = f"boto3 loop, upload_file per file ({len(sample):,} files x {scale:g})"
    pool_label = f"boto3 put_object on {BOTO_THREADS} threads ({len(sample):,} files x {scale:g})"
    push = Timed(b)
    pushed: dict[str, Any] = {}
    found: dict[str, Breakdown] = {}

    def cli_push(i: int) -> None:
        b.add_remote(a, f"cli{i}", f"many/cli{i}")
        push.step("dotnb push (CLI)", lambda: pushed.update(b.cli(a, "push", f"cli{i}")))
        expect("push", pushed, runs_pushed=1, objects_uploaded=uploads)

    def api_push(i: int) -> None:
        b.add_remote(a, f"api{i}", f"many/api{i}")
        store = Store(a)
        try:
            push.step(
                "dotnb push (in-process)",
                b.api(found, "push", lambda: pushed.update(transfer.push(store, f"api{i}"))),
            )
        finally:
            store.close()
        expect("push", pushed, runs_pushed=1, objects_uploaded=uploads)

    def boto_loop(i: int) -> None:
        def go() -> None:
            for p in sample:
                b.boto.upload_file(str(p), BUCKET, f"many/boto{i}/{p.name}")

        s = push.step(loop_label, go)
        push.found[loop_label][-1] = s.scaled(scale)

    def boto_pool(i: int) -> None:
        def put(p: Path) -> None:
            b.boto_pool.put_object(Bucket=BUCKET, Key=f"many/pool{i}/{p.name}", Body=p.read_bytes())

        def go() -> None:
            with ThreadPoolExecutor(BOTO_THREADS) as pool:
                list(pool.map(put, sample))

        s = push.step(pool_label, go)
        push.found[pool_label][-1] = s.scaled(scale)

    for turn in range(reps):
        steps: list[Callable[[int], None]] = [cli_push, boto_loop, boto_pool]
        if turn < api_reps:
            steps.append(api_push)
        for fn in rotate(steps, turn):
            fn(turn)

    pull = Timed(b)
    target = root / "pulled"
    folder = root / "downloaded"
    pulled: dict[str, Any] = {}
    dl_loop = f"boto3 loop, download_file per file ({len(sample):,} files x {scale:g})"
    dl_pool = f"boto3 get_object on {BOTO_THREADS} threads, write file ({len(sample):,} files x {scale:g})"

    def check_pull() -> None:
        expect("pull --with-data", pulled, runs_new=1, objects_downloaded=count)
        remove_tree(target)

    cli_pull, api_pull = b.pull_steps(pull, found, target, "many/cli0", pulled, check_pull)

    def boto_loop_dl(i: int) -> None:
        folder.mkdir()

        def go() -> None:
            for p in sample:
                b.boto.download_file(BUCKET, f"many/boto0/{p.name}", str(folder / p.name))

        s = pull.step(dl_loop, go, lambda: remove_tree(folder))
        pull.found[dl_loop][-1] = s.scaled(scale)

    def boto_pool_dl(i: int) -> None:
        folder.mkdir()

        def get(p: Path) -> None:
            body = b.boto_pool.get_object(Bucket=BUCKET, Key=f"many/pool0/{p.name}")["Body"].read()
            (folder / p.name).write_bytes(body)

        def go() -> None:
            with ThreadPoolExecutor(BOTO_THREADS) as pool:
                list(pool.map(get, sample))

        s = pull.step(dl_pool, go, lambda: remove_tree(folder))
        pull.found[dl_pool][-1] = s.scaled(scale)

    for turn in range(reps):
        steps = [cli_pull, boto_loop_dl, boto_pool_dl]
        if turn < api_reps:
            steps.append(api_pull)
        for fn in rotate(steps, turn):
            fn(turn)

    print_table(
        f"2. push one run with {count:,} outputs of 4 KiB (fresh remote prefix each time)",
        [*HEADERS, "vs loop"],
        rows_for(push.found, loop_label, count, "files/s"),
    )
    print_table(
        f"   pull --with-data of that run into an empty project ({count:,} objects downloaded, hashed, "
        "fsynced)",
        [*HEADERS, "vs loop"],
        rows_for(pull.found, dl_loop, count, "files/s"),
    )
    if api_reps:
        print_breakdown(f"{count:,} files", found)
    else:
        print("   (no in-process runs here: CLI start-up, about 1.5 s, is 2 % of these figures; see table 3)")
        print()
    push_ratio = med(push.found["dotnb push (CLI)"]).wall / med(push.found[loop_label]).wall
    pull_ratio = med(pull.found["dotnb pull --with-data (CLI)"]).wall / med(pull.found[dl_loop]).wall
    return [
        [f"push {count:,} files: CLI / boto3 loop", f"{push_ratio:.2f}x", "< 1x", faster(push_ratio)],
        [
            f"pull --with-data {count:,} files: CLI / boto3 loop",
            f"{pull_ratio:.2f}x",
            "< 1x",
            faster(pull_ratio),
        ],
    ]


# ---------------------------------------------------------------------------
# 3. one new run against a remote with many runs


def incremental(b: Bench, runs: int, reps: int) -> list[list[str]]:
    root = b.tmp / "incremental"
    a = b.new_project(root / "a", {"origin": "incremental"})
    store = Store(a)
    try:
        fill_s = fill(store, runs)
        store.flush()
    finally:
        store.close()
    progress(f"filled {runs:,} runs in {fill_s:.1f} s")
    seeded: dict[str, Any] = {}
    seed = Timed(b)
    breakdown: dict[str, Breakdown] = {}
    # In-process, once: CLI start-up is lost in these figures, and the breakdown shows the requests.
    store = Store(a)
    try:
        seed.step(
            f"dotnb push of all {runs:,} runs (in-process, once)",
            b.api(
                breakdown, f"first push, {runs:,} runs", lambda: seeded.update(transfer.push(store, "origin"))
            ),
        )
    finally:
        store.close()
    expect("first push", seeded, runs_pushed=runs)
    second = b.new_project(root / "b", {"origin": "incremental"})
    store = Store(second)
    try:
        seed.step(
            f"dotnb pull of all {runs:,} runs into a 2nd project (in-process, once)",
            b.api(
                breakdown, f"first pull, {runs:,} runs", lambda: seeded.update(transfer.pull(store, "origin"))
            ),
        )
    finally:
        store.close()
    expect("first pull", seeded, runs_new=runs)

    def new_run() -> None:
        store = Store(a)
        try:
            fill(store, 1)
            store.flush()
        finally:
            store.close()

    found = Timed(b)
    result: dict[str, Any] = {}

    def cli_pair() -> None:
        new_run()
        found.step("dotnb push, 1 new run (CLI)", lambda: result.update(b.cli(a, "push")))
        expect("push", result, runs_pushed=1)
        found.step("dotnb pull, 1 new run (CLI)", lambda: result.update(b.cli(second, "pull")))
        expect("pull", result, runs_new=1)

    def api_step(project: Path, label: str, fn: Callable[[Store], dict[str, Any]]) -> None:
        store = Store(project)
        try:
            what = label.split(" (")[0].removeprefix("dotnb ")
            found.step(label, b.api(breakdown, what, lambda: result.update(fn(store))))
        finally:
            store.close()

    def api_pair() -> None:
        new_run()
        api_step(a, "dotnb push, 1 new run (in-process)", lambda s: transfer.push(s, "origin"))
        expect("push", result, runs_pushed=1)
        api_step(second, "dotnb pull, 1 new run (in-process)", lambda s: transfer.pull(s, "origin"))
        expect("pull", result, runs_new=1)

    def start_up() -> None:
        found.step("start-up: python -c pass", lambda: run_cmd([sys.executable, "-c", "pass"], env=b.env))
        found.step(
            "start-up: python -c 'import s3fs'",
            lambda: run_cmd([sys.executable, "-c", "import s3fs"], env=b.env),
        )
        found.step(
            "start-up: dotnb remote list (no s3fs)",
            lambda: run_cmd([DOTNB, "remote", "list"], cwd=a, env=b.env),
        )

    for turn in range(reps):
        for fn in rotate([cli_pair, api_pair, start_up], turn):
            fn()
    # --with-data after a pull of everything without: the first call fetches the runs' data
    # objects (not timed); the timed one has one new run and nothing else to fetch.
    new_run()
    b.cli(a, "push")
    b.cli(second, "pull", "--with-data")
    new_run()
    b.cli(a, "push")
    found.step(
        "dotnb pull --with-data, 1 new run (CLI, once)",
        lambda: result.update(b.cli(second, "pull", "--with-data")),
    )
    expect("pull --with-data", result, runs_new=1)
    new_run()
    b.cli(a, "push")
    api_step(
        second,
        "dotnb pull --with-data, 1 new run (in-process, once)",
        lambda s: transfer.pull(s, "origin", with_data=True),
    )
    expect("pull --with-data", result, runs_new=1)

    rows = []
    everything = {**seed.found, **found.found}
    base = med(found.found["start-up: python -c pass"]).wall
    for label, samples in everything.items():
        m = med(samples)
        goal = ""
        if label.startswith(("dotnb push, 1 new run (CLI)", "dotnb pull, 1 new run (CLI)")):
            goal = f"{judge(m.wall, INCREMENTAL_GOAL_S)} (< {INCREMENTAL_GOAL_S:g} s)"
        n = "" if "once" in label else f" (median of {len(samples)})"
        rows.append(
            [
                f"{label}{n}",
                f"{m.wall:.2f}",
                f"{m.client_cpu:.2f}",
                f"{m.server_cpu:.2f}",
                ratio(m.wall, base),
                goal,
            ]
        )
    print_table(
        f"3. one new run, remote and both projects holding {runs:,} runs",
        ["", "median s", "client CPU s", "server CPU s", "vs python -c pass", "goal"],
        rows,
    )
    print_breakdown(f"{runs:,} runs", breakdown)
    cli = {k: med(v).wall for k, v in found.found.items()}
    return [
        [
            f"incremental push ({runs:,} runs there): CLI",
            f"{cli['dotnb push, 1 new run (CLI)']:.2f} s",
            f"< {INCREMENTAL_GOAL_S:g} s",
            judge(cli["dotnb push, 1 new run (CLI)"], INCREMENTAL_GOAL_S),
        ],
        [
            f"incremental pull ({runs:,} runs there): CLI",
            f"{cli['dotnb pull, 1 new run (CLI)']:.2f} s",
            f"< {INCREMENTAL_GOAL_S:g} s",
            judge(cli["dotnb pull, 1 new run (CLI)"], INCREMENTAL_GOAL_S),
        ],
    ]


# ---------------------------------------------------------------------------


CASES = ("big", "many", "incremental")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller, faster version (smoke test)")
    parser.add_argument(
        "--only",
        choices=CASES,
        action="append",
        help="run only this case (1. big, 2. many, 3. incremental); may be repeated",
    )
    args = parser.parse_args()
    # SIGTERM becomes SystemExit, so the scratch folder and the server are still cleaned up.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return args


def main() -> None:
    args = parse_args()
    only = set(args.only or CASES)
    size = 64 * MiB if args.quick else 1024 * MiB
    count = 1_000 if args.quick else 10_000
    runs = 1_000 if args.quick else 10_000
    big_reps, big_api = (2, 1) if args.quick else (3, 1)
    many_reps, many_api = 1, (1 if args.quick else 0)
    incremental_reps = 2 if args.quick else 3
    print_header(
        f"remote transfer: {size // MiB:,} MiB file, {count:,} small files, 1 run on top of {runs:,}, "
        "one SeaweedFS S3 server",
        args.quick,
    )
    started = time.perf_counter()
    goals: list[list[str]] = []
    with scratch("remote-transfer") as tmp:
        server = SeaweedS3(tmp / "seaweed").start()
        try:
            bench = Bench(tmp, server)
            bench.warm_up()
            print(f"   server {server.endpoint_url} (weed, pid {server.proc.pid if server.proc else '?'})")
            print()
            cases = {
                "big": lambda: big_file(bench, size, big_reps, big_api),
                "many": lambda: many_files(bench, count, many_reps, many_api),
                "incremental": lambda: incremental(bench, runs, incremental_reps),
            }
            for name, case in cases.items():
                if name not in only:
                    continue
                began = time.perf_counter()
                goals += case()
                print(f"   (this case took {time.perf_counter() - began:.0f} s)")
                print()
        finally:
            server.stop()
    print_table("goals", ["", "measured", "goal", ""], goals)
    print(
        "CPU columns: client = this process plus the CLI subprocess (user + system, all threads); "
        "server = the weed process. Both share the 2 cores."
    )
    print(
        "Rows 'x N' ran on a sample of the files and are scaled up. Medians of interleaved repetitions "
        "(order rotating); other processes on the machine skew every figure."
    )
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
