"""The Binder install as repo2docker runs it, minus Docker.

A copy of the repository (its tracked and unignored files, as a fresh clone would
have them: no built extension, no node_modules) gets ``binder/postBuild`` run in
it with a fresh virtualenv's Python first on PATH, in place of the conda
environment of ``binder/environment.yml`` (which adds Python and Node.js, both on
this machine already).  pip reuses this machine's wheel cache
(``BINDER_PIP_CACHE=1``).  The demos then run with that environment's ``dotnb``.

Slow (minutes: pip resolves JupyterLab and friends, and the wheel build compiles
the JupyterLab extension with npm), so marked ``slow``; scripts/test runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[1]


def copy_repository(dest: Path) -> None:
    """The files a clone would have: tracked ones, plus new files not yet committed
    (outside hidden folders, where tools leave scratch files) minus .gitignore'd ones."""

    def listed(*args: str) -> list[str]:
        out = subprocess.run(
            ["git", "ls-files", "-z", *args], cwd=REPO, capture_output=True, check=True
        ).stdout
        return [rel for rel in out.decode().split("\0") if rel]

    new = [rel for rel in listed("--others", "--exclude-standard") if not rel.startswith(".")]
    for rel in [*listed("--cached"), *new]:
        source = REPO / rel
        if not source.is_file():  # deleted in the work tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def run(
    args: list[str | Path], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"{args} exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


def test_postbuild_installs_dotnb_and_the_demos_run(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.fail(
            "Node.js is needed to build the JupyterLab extension (Binder gets it from environment.yml)"
        )
    repo = tmp_path / "repo"
    copy_repository(repo)
    assert not (repo / "dotnb" / "labextension").exists()  # built by postBuild, as on Binder
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DOTNB_", "JPY_", "PYTHON", "VIRTUAL_ENV", "JUPYTER_"))
    }
    env["PATH"] = os.pathsep.join((str(venv / "bin"), env.get("PATH", "")))
    env["BINDER_PIP_CACHE"] = "1"

    run(["bash", "binder/postBuild"], cwd=repo, env=env, timeout=1200)
    assert (venv / "share" / "jupyter" / "labextensions" / "dotnb" / "package.json").is_file()

    # The demos, in a fresh folder, with the Binder environment's dotnb and kernel.
    demo = tmp_path / "demo"
    demo.mkdir()
    for name in ("train.ipynb", "evaluate.ipynb"):
        shutil.copy(repo / "binder" / "demo" / name, demo)
    dotnb = venv / "bin" / "dotnb"
    train = json.loads(run([dotnb, "run", "train.ipynb", "--json"], cwd=demo, env=env, timeout=300).stdout)
    assert train["status"] == "ok" and len(train["runs"]) == 5
    evaluate = json.loads(
        run([dotnb, "run", "evaluate.ipynb", "--json"], cwd=demo, env=env, timeout=300).stdout
    )
    assert evaluate["status"] == "ok" and [r["name"] for r in evaluate["runs"]] == ["evaluate"]
    run([dotnb, "reproduce", train["runs"][-1]["id"]], cwd=demo, env=env, timeout=300)
