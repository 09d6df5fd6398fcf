"""``dotnb sweep --scheduler … --remote …``: workers that share no store with the client.

Each task gets a remote's spec and no project folder: its worker pulls the remote's
runs into a scratch store of its own, reads the base run's inputs from the remote
(hash-checked), pushes the point's runs, and the client pulls them as points finish.
The remote is a real SeaweedFS S3 server; the cluster is a real LocalCluster whose
worker processes get the S3 credentials from their environment, as a cluster's would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.repo import Store
from dotnb.sweep.task import sweep_tag
from tests.cli_in_process import dotnb
from tests.remote.seaweed import SeaweedS3
from tests.sweep.conftest import start_cluster

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(240)]


@pytest.fixture
def remote_cluster(s3: SeaweedS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    cluster = start_cluster(1)  # its worker processes inherit the environment set above
    try:
        yield cluster
    finally:
        cluster.close()


def test_remote_workers_exchange_inputs_and_runs_through_the_remote(
    project: Path, s3: SeaweedS3, remote_cluster: Any
) -> None:
    bucket = s3.make_bucket(f"sweep-{uuid.uuid4().hex[:12]}")
    added = dotnb("remote", "add", "team", f"s3://{bucket}/p", "--endpoint-url", s3.endpoint_url, cwd=project)
    assert added.returncode == 0, added.stderr
    ran = dotnb("run", "score.ipynb", "-p", "x=2", "--json", cwd=project)
    base_run = json.loads(ran.stdout)["runs"][-1]["id"]
    (project / "data" / "base.txt").write_text("100\n")  # the workers must not read this

    result = dotnb(
        "sweep",
        base_run,
        "-p",
        "x=1,3",
        "--scheduler",
        remote_cluster.scheduler_address,
        "--remote",
        "team",
        "--json",
        cwd=project,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {r["params"]["x"]: r["metrics"]["score"] for r in doc["results"]} == {1: 9, 3: 9}

    store = Store(project)
    try:
        runs = store.list_runs(tags=[sweep_tag(doc["sweep"])])
        assert sorted(r["params"]["x"] for r in runs) == [1, 3]
        for run in runs:
            # Pulled from the remote, not recorded here: the workers had no way into this store.
            assert store.read_ref_origin(run["id"])[1] == "team"
    finally:
        store.close()
    keys = {o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert any(key.startswith("p/") for key in keys)
