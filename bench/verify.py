"""``dotnb verify`` of 10,000 signed runs, and what signing adds to a tracked cell's path.

A store gets 10,000 runs (1,000 with ``--quick``) from 10 writers (10 openings of the
store, as 10 kernels would be), made through the store API as a kernel makes them
(``Store.commit_run(..., sync=False)``, then the flush), each with a few inputs and
outputs, params, metrics and a lineage; one run in ten has a notebook snapshot
attached afterwards (an amended manifest, as JupyterLab's live snapshot makes).
Every run is signed with a real ed25519 key (``ssh-keygen -Y sign``, in the flush).

- ``dotnb verify`` as a user runs it (a new process: start-up, store open, every ref
  and manifest read and re-hashed, every chain walked), median of 3: with the
  signatures set aside (chains only), and with every signature checked against an
  allowed-signers file.  Goal: ≤ 2 s for 10,000 runs.  Judged, as ``log_query.py``
  is, with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` unset,
  ``PYTHONPYCACHEPREFIX`` in the scratch folder, warmed first), which is how an
  installed dotnb starts; the signed case is also shown with the environment as it
  is (``PYTHONDONTWRITEBYTECODE=1`` here: dotnb's modules compiled on every start).
- the same in-process (``verify_store``), median of 3, without and with signatures;
- which Ed25519 verifier checked them (libsodium through PyNaCl when installed, else
  OpenSSL through cryptography: :mod:`dotnb.store.ssh_signature`);
- baseline, measured in the same run: a raw loop reading each ref and the manifest
  bytes it names and hashing them (BLAKE3), nothing else.
- signing on the cell's path: ``commit_run(sync=False)`` (what a tracked cell pays to
  record its run) with a signing key configured and without, interleaved, median of
  200 each; the difference is what signing adds to the path (goal ≤ 5 ms).  The
  signing itself happens in the flush: its cost per run is shown apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import median, ms, parse_args, print_header, print_table, ratio, scratch, timed, verdict

from dotnb.store import Store
from dotnb.store.hashing import hash_bytes
from dotnb.store.manifest import iso_time
from dotnb.store.settings import ALLOWED_SIGNERS, SIGNING_KEY, set_setting
from dotnb.store.snapshots import attach_notebook_snapshot
from dotnb.store.ssh_signature import ed25519_backend
from dotnb.store.verify import verify_store

GOAL_VERIFY_S = 2.0
GOAL_SIGN_PATH_S = 0.005
WRITERS = 10
PATH_REPS = 200


def manifest(i: int, put: Any) -> dict[str, Any]:
    def entry(path: str, data: bytes) -> dict[str, Any]:
        digest, _ = put(data, sync=False)
        return {"path": path, "hash": digest, "size": len(data)}

    code = hash_bytes(f"cell {i % 50}\n".encode())
    return {
        "kind": "run",
        "name": None,
        "notebook": f"nb{i % 4}.ipynb",
        "code": f"train(lr={i})\n",
        "lineage": [{"execution_count": n, "code_hash": code, "tracked": n == 3} for n in range(1, 4)],
        "params": {"lr": i / 1000, "layers": [64, 32], "optimizer": "adam"},
        "metrics": {"acc": (i % 97) / 97, "loss": 1 / (i + 1)},
        "metric_series": {},
        "inputs": [
            entry("data/train.csv", b"x,y\n1,2\n"),
            entry(f"data/part-{i % 20}.csv", b"%d\n" % (i % 20)),
        ],
        "outputs": [entry(f"out/model-{i}.pkl", b"model %d\n" % i)],
        "status": "ok",
        "error": None,
        "started_at": iso_time(time.time()),
        "duration_s": 0.5,
        "environment": {"user": "bench", "host": "box", "python": "3.11", "platform": "linux"},
    }


def make_key(folder: Path) -> tuple[Path, Path]:
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(key)], check=True)
    public = " ".join(key.with_suffix(".pub").read_text().split()[:2])
    allowed = folder / "allowed_signers"
    allowed.write_text(f'bench@example.com namespaces="dotnb" {public}\n')
    return key, allowed


def fill(project: Path, runs: int) -> tuple[float, float]:
    """``runs`` signed runs from WRITERS writers; returns (recording s, signing s in the flush)."""
    per_writer = runs // WRITERS
    record_s = sign_s = 0.0
    amend: list[str] = []
    for w in range(WRITERS):
        store = Store(project)
        try:
            start = time.perf_counter()
            for i in range(w * per_writer, (w + 1) * per_writer):
                run_id = store.commit_run(manifest(i, store.objects.put_bytes), sync=False)["id"]
                if i % 10 == 0:
                    amend.append(run_id)
            store.writeahead.flush()
            record_s += time.perf_counter() - start
            start = time.perf_counter()
            store.sign_recorded()
            sign_s += time.perf_counter() - start
            for run_id in amend:
                attach_notebook_snapshot(store, run_id, b'{"cells": [], "nbformat": 4}', "frontend")
            amend.clear()
        finally:
            store.close()
    return record_s, sign_s


def raw_loop(store_dir: Path) -> int:
    """Baseline: read every ref and the manifest it names, hash the bytes."""
    runs = store_dir / "runs"
    objects = store_dir / "objects"
    count = 0
    for name in os.listdir(runs):
        digest = (runs / name).read_text().split()[0]
        data = (objects / digest[:2] / digest[2:]).read_bytes()
        if hash_bytes(data) == digest:
            count += 1
    return count


def path_cost(folder: Path, key: Path) -> tuple[float, float]:
    """Median ``commit_run(sync=False)`` in a store without a signing key and in one with
    it, interleaved; each commit followed by the flush (and its signing) off the clock."""
    stores = {}
    for with_key in (False, True):
        project = folder / ("signing" if with_key else "plain")
        project.mkdir()
        stores[with_key] = Store.init(project)
        if with_key:
            set_setting(stores[with_key].dir, SIGNING_KEY, str(key))
    times: dict[bool, list[float]] = {False: [], True: []}
    try:
        for n in range(PATH_REPS * 2):
            with_key = (n % 4) in (1, 2)  # ABBA: neither side always follows the other
            store = stores[with_key]
            doc = manifest(n, store.objects.put_bytes)
            time.sleep(0.02)  # as a cell follows the flush thread's work: settled, not racing it
            times[with_key].append(timed(lambda doc=doc, store=store: store.commit_run(doc, sync=False)))
            store.flush()  # the flush thread's work (signing included), off the path
            # Signing ends the flush with an index write (the run moves in GET events), after
            # the flush's WAL checkpoint; a commit right after a checkpoint pays for the
            # WAL's restart instead.  Both sides end checkpointed, so that neither pays it
            # for the other.
            store.index.checkpoint()
    finally:
        for store in stores.values():
            store.close()
    return median(times[False]), median(times[True])


def cli_env(pycache: Path | None) -> dict[str, str]:
    """The CLI's environment: as it is, or with bytecode cached in ``pycache``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOTNB_", "JPY_"))}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def cli_verify(project: Path, runs: int, signed: bool, env: dict[str, str]) -> list[float]:
    """``dotnb verify --json`` as a user runs it, three times after one untimed run (it
    warms the bytecode cache and the page cache alike); checks what it found."""
    times = []
    for n in range(4):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "dotnb", "--root", str(project), "verify", "--json"],
            capture_output=True,
            env=env,
            check=False,
        )
        if n:
            times.append(time.perf_counter() - start)
        report = json.loads(proc.stdout)
        good = report["signatures"]["good"] == (runs if signed else 0)
        if proc.returncode != 0 or not good or report["writers"] != WRITERS or report["chained"] != runs:
            raise RuntimeError(f"verify did not find {runs} whole runs: {proc.stdout[:2000]!r}")
    return times


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 1_000 if args.quick else 10_000
    print_header(f"verify: {runs:,} signed runs from {WRITERS} writers", args.quick)
    with scratch("verify") as tmp:
        key, allowed = make_key(tmp)
        project = tmp / "project"
        project.mkdir()
        store = Store.init(project)
        set_setting(store.dir, SIGNING_KEY, str(key))
        set_setting(store.dir, ALLOWED_SIGNERS, str(allowed))
        store.close()
        record_s, sign_s = fill(project, runs)
        print(
            f"   recorded {runs:,} runs in {record_s:.1f} s; signed them in the flushes in {sign_s:.1f} s "
            f"({sign_s / runs * 1000:.2f} ms a run, off the cell's path)"
        )
        print(f"   Ed25519 signatures checked by {ed25519_backend()}")

        cached = cli_env(tmp / "pycache")
        cli_times = cli_verify(project, runs, signed=True, env=cached)
        cli_as_is = cli_verify(project, runs, signed=True, env=cli_env(None))
        sig_dir = project / ".dotnb" / "signatures"
        os.rename(sig_dir, sig_dir.with_name("signatures-aside"))
        cli_unsigned = cli_verify(project, runs, signed=False, env=cached)
        store = Store(project)
        try:
            unsigned = [timed(lambda: verify_store(store)) for _ in range(3)]
            os.rename(sig_dir.with_name("signatures-aside"), sig_dir)
            in_process = [timed(lambda: verify_store(store)) for _ in range(3)]
            raw_loop(store.dir)
            baseline = [timed(lambda: raw_loop(store.dir)) for _ in range(3)]
        finally:
            store.close()
        plain, signing = path_cost(tmp, key)

    base = median(baseline)
    cli = median(cli_times)
    cli_chains = median(cli_unsigned)
    goal_runs = runs == 10_000
    rows = [
        [
            "dotnb verify (CLI), chains only (no signatures)",
            ms(cli_chains, 0),
            ratio(cli_chains, base),
            verdict(cli_chains, GOAL_VERIFY_S) if goal_runs else "",
        ],
        [
            f"dotnb verify (CLI), {runs:,} signatures checked",
            ms(cli, 0),
            ratio(cli, base),
            verdict(cli, GOAL_VERIFY_S) if goal_runs else "",
        ],
        [
            "the same, environment as is (no bytecode cache)",
            ms(median(cli_as_is), 0),
            ratio(median(cli_as_is), base),
            "",
        ],
        ["verify_store in-process", ms(median(in_process), 0), ratio(median(in_process), base), ""],
        ["verify_store, no signatures", ms(median(unsigned), 0), ratio(median(unsigned), base), ""],
        ["baseline: read refs + manifests, BLAKE3", ms(base, 0), "1.00×", ""],
    ]
    print_table(
        f"verify of {runs:,} runs, median of 3 (goal: ≤ {GOAL_VERIFY_S:g} s for 10,000)",
        ["what", "time", "vs baseline", "goal"],
        rows,
    )
    added = signing - plain
    print_table(
        f"a tracked cell's record (commit_run, sync=False), median of {PATH_REPS} each",
        ["what", "time", "", "goal"],
        [
            ["without a signing key", ms(plain, 3), "", ""],
            ["with a signing key", ms(signing, 3), "", ""],
            ["added by signing", ms(added, 3), "", verdict(added, GOAL_SIGN_PATH_S)],
            ["signing in the flush, per run (off the path)", ms(sign_s / runs, 2), "", ""],
        ],
    )
    print(
        json.dumps(
            {
                "runs": runs,
                "ed25519_verifier": ed25519_backend(),
                "verify_cli_ms": round(cli * 1000, 1),
                "verify_cli_chains_only_ms": round(cli_chains * 1000, 1),
                "verify_cli_as_is_ms": round(median(cli_as_is) * 1000, 1),
                "verify_in_process_ms": round(median(in_process) * 1000, 1),
                "baseline_ms": round(base * 1000, 1),
                "sign_path_added_ms": round(added * 1000, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
