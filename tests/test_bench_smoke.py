"""The benchmarks still run: each script's ``--quick`` version, end to end.

Figures are not checked (timings are not tests; see bench/README.md), only that a
script finishes and prints what it measures.  ``remote_transfer.py`` is left out:
even quick, it moves about a gigabyte through a local S3 server (~100 s).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

# Script → text its output must hold (a verdict against its goal, or its runs' lines).
EXPECTED = {
    "cell_overhead.py": ["%%track: tracked", "new code: tracked", "track all: tracked", "run #"],
    "large_input.py": ["goal: added ≤ 1.5× copyfile + fsync", "MET"],
    "many_files.py": ["first run:  run #", "re-run:     run #"],
    "restore.py": ["restore"],
    "datasets.py": ["first run:  run #", "re-run:     run #", "DVC rows left out", "restore of a deleted"],
    "log_query.py": ["dotnb log --notebook", "MET"],
    "lineage.py": ["upstream of summary.txt (all 200 runs)", "by scanning manifests"],
    "rest_api.py": ["MET"],
    "experiments_table.py": ["sort by metric m03, first page", "first page + columns"],
    "ab_commits.py": ["%%track x = 1", "%%track x = <new>", "track all: x = 1", "paired B − A"],
    "file_events.py": ["a cell touching no file", "a cell writing 1,000 files", "watchdog / inotify"],
    "sweep.py": ["added per task:", "sweep / sequential:"],
    "verify.py": ["dotnb verify (CLI), chains only", "added by signing"],
    "kernel_state.py": ["state on", "checkout: big differs (full load)", "ten runs changing one small name"],
}
# Arguments besides --quick.  Kishu is left out of kernel_state.py: its first use
# pip-installs it into .venv-kishu (bench/peers.py), a minute of downloads.
ARGS = {"ab_commits.py": ["--base", "HEAD"], "kernel_state.py": ["--no-kishu"]}


# pytest-timeout's default (120 s) would cut a script short on a loaded machine
# before the subprocess's own limit.
@pytest.mark.timeout(320)
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_quick_benchmark_runs(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", *ARGS.get(script, [])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=BENCH.parent,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    for text in EXPECTED[script]:
        assert text in proc.stdout, f"{script}: {text!r} missing from\n{proc.stdout[-3000:]}"


def test_every_benchmark_is_smoke_tested_or_said_not_to_be() -> None:
    scripts = {p.name for p in BENCH.glob("*.py")} - {"harness.py", "peers.py"}
    assert scripts == set(EXPECTED) | {"remote_transfer.py"}


def test_a_rerun_verdict_needs_a_range_on_one_side_of_the_goal() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from harness import rerun_rows
    finally:
        sys.path.remove(str(BENCH))
    untracked = [0.220 + 0.010 * ((i * 7) % 11 - 5) for i in range(15)]
    hooks = ([0.0018] * 15, [0.00002] * 15)

    def paired_verdict(spread: float, shift: float) -> str:
        tracked = [u + shift + spread * ((i * 5) % 9 - 4) for i, u in enumerate(untracked)]
        row = rerun_rows(tracked, untracked, hooks, 0.005)[3]
        assert row[0] == "added: median of paired differences"
        return str(row[4])

    assert paired_verdict(0.0001, 0.002) == "MET (≤ 5 ms)"
    assert paired_verdict(0.0001, 0.009) == "NOT MET (≤ 5 ms)"
    assert "too noisy to judge" in paired_verdict(0.004, 0.005)
