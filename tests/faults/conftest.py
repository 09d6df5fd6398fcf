"""Fault injection: real kernels, real ``dotnb`` processes, real files, real SQLite.

Every random choice comes from one seed, printed in the header and with every
failure; set ``DOTNB_FAULT_SEED`` to replay it.  ``--soak`` (or ``DOTNB_SOAK=N``,
a multiplier) runs each case's trials N times over (``--soak`` alone: 10).
"""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import Iterator

import pytest

from tests.faults.helpers import Faults, check_tree_imports

_SEED = int(os.environ.get("DOTNB_FAULT_SEED") or secrets.randbelow(2**32))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store",
        nargs="?",
        const="10",
        default=None,
        help="run the fault-injection trials N times over (default 10; or DOTNB_SOAK=N)",
    )


def _soak(config: pytest.Config) -> int:
    value = config.getoption("--soak", default=None) or os.environ.get("DOTNB_SOAK") or "1"
    factor = int(value)
    if factor < 1:
        raise pytest.UsageError(f"--soak / DOTNB_SOAK must be at least 1, not {value}")
    return factor


def pytest_report_header(config: pytest.Config) -> str:
    return f"dotnb faults: DOTNB_FAULT_SEED={_SEED} soak x{_soak(config)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and "tests/faults" in str(item.fspath).replace(os.sep, "/"):
        report.sections.append(
            (
                "fault seed",
                f"replay with DOTNB_FAULT_SEED={_SEED} (soak x{_soak(item.config)}), {item.nodeid}",
            )
        )


@pytest.fixture(scope="session")
def tree_checked() -> None:
    """Kernels and CLI processes started here import dotnb from this tree."""
    check_tree_imports()


@pytest.fixture
def faults(request: pytest.FixtureRequest, tree_checked: None) -> Faults:
    # One stream per test, from the session seed and the test's name: a test replays
    # alone or in any order.
    rng = random.Random(f"{_SEED}:{request.node.nodeid}")
    return Faults(seed=_SEED, soak=_soak(request.config), rng=rng, nodeid=request.node.nodeid)
