"""Fixtures for the remote end-to-end tests.

One SeaweedFS S3 server (with an identities file, so wrong keys are refused)
serves the whole package; every test gets a fresh bucket.  Alice's project is
recorded once per session with a real kernel (two tracked cells reading and
writing real files) and copied into each test; Bob starts from an empty store.
The CLI always runs as a subprocess, with an environment built from scratch.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.repo import Store
from tests.conftest import make_notebook
from tests.kernel_client import Kernel
from tests.remote.helpers import (
    BLOB,
    INPUT_CSV,
    KEY,
    NOTEBOOK,
    PREP_CELL,
    SCALE_CELL,
    SECRET,
    base_env,
    new_project,
)
from tests.remote.seaweed import SeaweedS3


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed"), credentials=(KEY, SECRET)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(s3: SeaweedS3) -> Iterator[str]:
    name = s3.make_bucket(f"dotnb-{uuid.uuid4().hex[:16]}")
    yield name
    # SeaweedFS gives each bucket its own volumes, and only about ten fit on the disk
    # (-volume.max=0 sizes it from free space): an emptied, deleted bucket frees them.
    client = s3.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=name)


@pytest.fixture
def remote_url(bucket: str) -> str:
    """An S3 remote with a prefix inside the test's own bucket."""
    return f"s3://{bucket}/team"


@pytest.fixture
def s3_client(s3: SeaweedS3) -> Any:
    return s3.client()


@pytest.fixture(scope="session")
def alice_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Alice's project with two runs recorded by a real kernel running as user 'alice'."""
    root = tmp_path_factory.mktemp("alice-template") / "alice"
    (root / "data").mkdir(parents=True)
    (root / "data" / "input.csv").write_bytes(INPUT_CSV)
    (root / "data" / "blob.bin").write_bytes(BLOB)
    make_notebook(root / NOTEBOOK, ["%load_ext dotnb", PREP_CELL, SCALE_CELL])
    kernel = Kernel(root, root / NOTEBOOK, extra_env={"USER": "alice", "LOGNAME": "alice"})
    try:
        kernel.ok("%load_ext dotnb")
        prep = kernel.ok(PREP_CELL).run
        scale = kernel.ok(SCALE_CELL).run
    finally:
        kernel.shutdown()
    assert prep is not None and scale is not None
    store = Store(root)
    try:
        rows = store.list_runs()
    finally:
        store.close()
    assert {r["name"] for r in rows} == {"prep", "scale"}
    assert {r["user"] for r in rows} == {"alice"}
    return root


@pytest.fixture
def alice(alice_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "alice"
    shutil.copytree(alice_template, root, symlinks=True)
    return root


@pytest.fixture
def bob(tmp_path: Path) -> Path:
    return new_project(tmp_path / "bob")


@pytest.fixture
def alice_env(s3: SeaweedS3, tmp_path: Path) -> dict[str, str]:
    return {**base_env("alice", tmp_path), **s3.env()}


@pytest.fixture
def bob_env(s3: SeaweedS3, tmp_path: Path) -> dict[str, str]:
    return {**base_env("bob", tmp_path), **s3.env()}
