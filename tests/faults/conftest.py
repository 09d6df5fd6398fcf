"""Fault injection: real kernels, real ``dotnb`` processes, real files, real SQLite.

Every random choice comes from one seed, printed in the header and with every
failure; set ``DOTNB_FAULT_SEED`` to replay it.  ``--soak`` (or ``DOTNB_SOAK=N``,
a multiplier) runs each case's trials N times over (``--soak`` alone: 10).
"""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import Generator
from typing import Any

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


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    # Also when this folder ran inside the whole suite (the header comes from initial
    # conftest files only).
    terminalreporter.write_line(f"dotnb faults: DOTNB_FAULT_SEED={_SEED} soak x{_soak(config)}")


PER_TEST_TIMEOUT_S = 300  # each test takes at most about a minute on 2 cores; times the soak factor


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker(pytest.mark.timeout(PER_TEST_TIMEOUT_S * _soak(config)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and str(item.fspath).startswith(os.path.dirname(__file__) + os.sep):
        report.sections.append(
            (
                "fault seed",
                f"replay with DOTNB_FAULT_SEED={_SEED} (soak x{_soak(item.config)}), {item.nodeid}",
            )
        )
    return report


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
