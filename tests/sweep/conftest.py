"""Fixtures for the sweep tests: a real Dask cluster of worker processes, shared by the
module, and a project holding the tiny notebooks of ``tests/fixtures/sweep``."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dotnb.store.repo import Store
from tests.remote.helpers import KEY, SECRET
from tests.remote.seaweed import SeaweedS3

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sweep"


def start_cluster(workers: int) -> object:
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )


@pytest.fixture(autouse=True)
def quick_connect_timeout() -> Iterator[None]:
    """An address nobody answers is given up after 2 s (Dask's default is 30 s)."""
    import dask
    import distributed  # noqa: F401  # its defaults first: leaving set() drops keys it added

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        yield


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """Two worker processes (each restarted by its nanny when killed)."""
    c = start_cluster(2)
    try:
        yield c
    finally:
        c.close()  # type: ignore[attr-defined]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "base.txt").write_text("10\n")
    for name in ("score.ipynb", "once.ipynb"):
        shutil.copyfile(FIXTURES / name, root / name)
    Store.init(root).close()
    return root


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A real SeaweedFS S3 server that refuses keys other than the tests' own."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed"), credentials=(KEY, SECRET)).start()
    try:
        yield server
    finally:
        server.stop()
