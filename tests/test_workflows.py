"""The GitHub Actions workflows cannot run here; these checks keep them in step with
the repository: every test path and marker they name exists, the Linux job is
exactly .ci/run, and the lowest-versions job uses the lowest Python allowed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
PYPROJECT = (REPO / "pyproject.toml").read_text()


def commands(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_the_test_workflow_names_only_what_exists() -> None:
    jobs = yaml.safe_load((WORKFLOWS / "tests.yml").read_text())["jobs"]
    assert set(jobs) == {"linux", "other-platforms", "lowest"}
    assert any("CI=true .ci/run" in c for c in commands(jobs["linux"]))
    assert set(jobs["other-platforms"]["strategy"]["matrix"]["os"]) == {"macos-latest", "windows-latest"}
    # pyproject.toml's markers: `    "NAME: what it marks",` (tomllib is 3.11+, the lowest job runs 3.10).
    markers = set(re.findall(r'^\s+"(\w+): ', PYPROJECT, re.MULTILINE))
    assert "inotify_reader" in markers
    named = 0
    for job in jobs.values():
        for command in commands(job):
            if "pytest" not in command:
                continue
            for path in re.findall(r"tests/[\w/.]+", command):
                assert (REPO / path).exists(), f"{path} named by the workflow does not exist"
                named += 1
            for marker in re.findall(r'-m "not (\w+)"', command):
                assert marker in markers
    assert named >= 8


def test_the_lowest_job_installs_the_lowest_direct_versions_on_the_lowest_python() -> None:
    job = yaml.safe_load((WORKFLOWS / "tests.yml").read_text())["jobs"]["lowest"]
    assert '--resolution lowest-direct -e ".[test]"' in "\n".join(commands(job))
    python = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert f'requires-python = ">={python["with"]["python-version"]}"' in PYPROJECT
