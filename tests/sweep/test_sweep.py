"""``dotnb sweep`` on a real Dask cluster of worker processes running real kernels.

Most tests share one two-worker ``LocalCluster`` (``--scheduler`` its address, the
workers recording into the project's store on this disk); one starts its own
cluster as the command does without ``--scheduler``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.repo import Store
from dotnb.sweep.driver import run_sweep, sweep_base
from dotnb.sweep.task import sweep_tag
from tests.cli_in_process import dotnb

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]


def runs_of(root: Path, sweep_id: str) -> list[dict[str, Any]]:
    store = Store(root)
    try:
        return store.list_runs(tags=[sweep_tag(sweep_id)])
    finally:
        store.close()


def test_a_sweep_on_local_worker_processes_records_a_run_per_point(project: Path) -> None:
    args = ["score.ipynb", "-p", "x=1,2,3", "--workers", "2", "--memory-limit", "1GiB", "--json"]
    result = dotnb("sweep", *args, cwd=project)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["points"], doc["ok"], doc["error"]) == (3, 3, 0)
    assert doc["metric"] == "score" and doc["best"]["params"] == {"x": 2}
    assert doc["dashboard"].startswith("http")
    assert "dashboard http" not in result.stderr  # --json: the summary is all there is
    runs = runs_of(project, doc["sweep"])
    assert sorted(r["params"]["x"] for r in runs) == [1, 2, 3]
    assert all(r["status"] == "ok" and r["notebook"] == "score.ipynb" for r in runs)
    assert all(r["worker"].startswith("tcp://") for r in doc["results"])  # ran on Dask workers
    assert {tuple(r["runs"]) for r in doc["results"]} == {(r["id"],) for r in runs}
    # The project's own files are untouched, and the text report names the tag to list.
    assert (project / "data" / "base.txt").read_text() == "10\n"
    listed = dotnb("log", "--tag", doc["tag"], "--json", cwd=project)
    assert len(json.loads(listed.stdout)) == 3


def test_a_sweep_from_a_past_run_uses_the_runs_input_bytes(project: Path, cluster: Any) -> None:
    ran = dotnb("run", "score.ipynb", "-p", "x=2", "--json", cwd=project)
    assert ran.returncode == 0, ran.stderr
    base_run = json.loads(ran.stdout)["runs"][-1]
    assert base_run["metrics"]["score"] == 10
    (project / "data" / "base.txt").write_text("100\n")  # changed since the run
    result = dotnb(
        "sweep",
        base_run["id"],
        "-p",
        "x=1.0:3.0:3",
        "--scheduler",
        cluster.scheduler_address,
        "--json",
        cwd=project,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["base"] == {"notebook": "score.ipynb", "run": base_run["id"]}
    scores = {r["params"]["x"]: r["metrics"]["score"] for r in doc["results"]}
    assert scores == {1.0: 9, 2.0: 10, 3.0: 9}  # base.txt as the run read it: 10, not 100
    store = Store(project)
    try:
        for run in runs_of(project, doc["sweep"]):
            inputs = store.files(store.manifest(run["id"]), "inputs")
            assert [e["path"] for e in inputs] == ["data/base.txt"]
            assert store.objects.read_bytes(inputs[0]["hash"]) == b"10\n"
    finally:
        store.close()


def test_a_failing_point_is_recorded_and_counted(project: Path, cluster: Any) -> None:
    result = dotnb(
        "sweep",
        "score.ipynb",
        "-p",
        "fail=False,True",
        "--scheduler",
        cluster.scheduler_address,
        cwd=project,
    )
    assert result.returncode == 1
    assert "1 ok, 1 failed" in result.stdout and "ValueError: this point fails" in result.stdout
    sweep_id = result.stdout.split("dotnb log --tag sweep:")[1].split()[0]
    statuses = {r["params"]["fail"]: r["status"] for r in runs_of(project, sweep_id)}
    assert statuses == {False: "ok", True: "error"}


def test_max_failures_cancels_the_points_not_yet_finished(project: Path, cluster: Any) -> None:
    result = dotnb(
        "sweep",
        "score.ipynb",
        "-p",
        "fail=True",
        "-p",
        "x=1,2,3,4,5,6",
        "--scheduler",
        cluster.scheduler_address,
        "--max-failures",
        "1",
        "--json",
        cwd=project,
    )
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["stopped"] == "max-failures"
    assert doc["error"] == 2 and doc["ok"] == 0
    assert doc["interrupted"] == 4 - (doc["error"] - 2)
    assert len(runs_of(project, doc["sweep"])) <= 6  # points already running may finish
    assert all(r["status"] == "error" for r in runs_of(project, doc["sweep"]))


def test_a_worker_killed_mid_task_is_retried_with_one_run(
    project: Path, cluster: Any, tmp_path: Path
) -> None:
    flag = tmp_path / "first-attempt"
    store = Store(project)
    try:
        base, _ = sweep_base(store, str(project / "once.ipynb"))
        killed: list[int] = []

        def kill_first_attempt(report: Any) -> None:
            if killed or not report.running:
                return
            deadline = time.monotonic() + 60
            while not flag.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            worker, kernel = (int(p) for p in flag.read_text().split())
            os.kill(worker, signal.SIGKILL)  # the worker process running the point
            os.kill(kernel, signal.SIGKILL)  # its kernel, orphaned
            killed.append(worker)

        report = run_sweep(
            store,
            base,
            [{"x": 5.0, "flag": str(flag)}],
            scheduler=cluster.scheduler_address,
            on_change=kill_first_attempt,
        )
    finally:
        store.close()
    assert killed
    outcome = report.outcomes[0]
    assert outcome.status == "ok" and not outcome.reused
    runs = runs_of(project, report.sweep_id)
    assert [r["metrics"]["score"] for r in runs] == [5.0]


def test_a_task_run_again_after_recording_reuses_its_run(project: Path, cluster: Any) -> None:
    """What a retried task does when its first attempt recorded the run and then died."""
    store = Store(project)
    try:
        base, _ = sweep_base(store, str(project / "score.ipynb"))
        first = run_sweep(store, base, [{"x": 1}], scheduler=cluster.scheduler_address)
        again = run_sweep(
            store, base, [{"x": 1}], scheduler=cluster.scheduler_address, sweep_id=first.sweep_id
        )
    finally:
        store.close()
    assert again.outcomes[0].reused
    assert [r["id"] for r in again.outcomes[0].runs] == [r["id"] for r in first.outcomes[0].runs]
    assert len(runs_of(project, first.sweep_id)) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score.ipynb", "-p", "lr=1,2"], "unknown param 'lr': the parameters cell of score.ipynb assigns"),
        (["score.ipynb", "-p", "x="], "sweep param 'x' has no values"),
        (["score.ipynb"], "the sweep has no parameters"),
        (["missing.ipynb", "-p", "x=1"], "no notebook 'missing.ipynb'"),
        (["nosuchrun", "-p", "x=1"], "is neither a notebook file nor a run"),
        (["score.ipynb", "-p", "x=1", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
        (["score.ipynb", "-p", "x=1", "--scheduler", "tcp://127.0.0.1:9", "--remote", "nope"], "no remote"),
        (["score.ipynb", "-p", "x=1", "--remote", "nope"], "no remote"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(project: Path, args: list[str], message: str) -> None:
    result = dotnb("sweep", *args, cwd=project)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stdout == ""


def test_ctrl_c_cancels_what_has_not_finished(project: Path, tmp_path: Path) -> None:
    flag = tmp_path / "first-attempt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOTNB_", "JPY_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    args = ["once.ipynb", "-p", "x=1,2,3", "-p", f"flag={str(flag)!r}", "--workers", "1", "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dotnb", "sweep", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not flag.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert flag.exists(), proc.communicate()[1]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        if flag.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(flag.read_text().split()[1]), signal.SIGKILL)  # the sleeping kernel
    assert proc.returncode == 130, err
    doc = json.loads(out)
    assert doc["stopped"] == "interrupted"
    assert doc["interrupted"] >= 1 and doc["ok"] + doc["interrupted"] == 3
    assert len(runs_of(project, doc["sweep"])) == doc["ok"]


def test_random_points_are_the_seeded_sample(project: Path, cluster: Any) -> None:
    from dotnb.sweep.space import parse_dimension, sample

    args = [
        "-p",
        "x=0:4:5",
        "--random",
        "2",
        "--seed",
        "5",
        "--scheduler",
        cluster.scheduler_address,
        "--json",
    ]
    result = dotnb("sweep", "score.ipynb", *args, cwd=project)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    expected = sample([parse_dimension("x=0:4:5")], 2, seed=5)
    assert sorted(r["params"]["x"] for r in doc["results"]) == sorted(p["x"] for p in expected)
    assert sorted(r["params"]["x"] for r in runs_of(project, doc["sweep"])) == sorted(
        p["x"] for p in expected
    )
