"""Fixtures for the sweep tests: a real Dask cluster of worker processes, shared by the
module, and a project holding the tiny notebooks of ``tests/fixtures/sweep``."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dotnb.cli.app import main
from dotnb.store.repo import Store
from tests.remote.helpers import KEY, SECRET
from tests.remote.seaweed import SeaweedS3

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sweep"


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def dotnb(*args: str | Path, cwd: Path) -> Outcome:
    """Run the CLI in this process, in ``cwd`` (a new process pays seconds of imports)."""
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith(("DOTNB_", "JPY_"))]:
        del os.environ[key]
    here = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)
    return Outcome(code, out.getvalue(), err.getvalue())


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
