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
    "log_query.py": ["dotnb log --notebook", "MET"],
    "rest_api.py": ["MET"],
}


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_quick_benchmark_runs(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
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
    scripts = {p.name for p in BENCH.glob("*.py")} - {"harness.py"}
    assert scripts == set(EXPECTED) | {"remote_transfer.py"}
