"""Kernel state limits and name-ignore rules, as a kernel started by a configured
server gets them (``c.Dotnb.state_*`` → environment), in real kernels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dotnb.capture.state_ignore import NameRules, parse_rules
from tests.capture.test_kernel_state import state_of, tracked, value
from tests.kernel_client import Kernel

LIMITS = {
    "DOTNB_STATE_MAX_VARIABLE_SIZE": "1000000",
    "DOTNB_STATE_MAX_RUN_SIZE": "1500000",
    "DOTNB_STATE_IGNORE": "secret_*,api_key",
}


@pytest.fixture
def limited(project: Path) -> Iterator[Kernel]:
    k = Kernel(project, project / "analysis.ipynb", extra_env=LIMITS)
    k.ok("%load_ext dotnb")
    try:
        yield k
    finally:
        k.shutdown()


@pytest.mark.kernel
def test_values_over_the_limits_are_recorded_with_their_size(limited: Kernel, project: Path) -> None:
    limited.ok("%dotnb state on\nimport numpy as np")
    run = tracked(
        limited,
        "big = np.ones(200_000)\n"  # 1.6 MB: over the 1 MB per-variable limit
        "a1 = np.ones(100_000)\na2 = np.ones(100_000)\n"  # 0.8 MB each: the second passes 1.5 MB per run
        "long = list(range(300_000))\n"  # pickled in the stream: stopped at the limit
        "small = [1, 2, 3]",
    )
    state = state_of(project, run)["variables"]
    assert state["big"]["status"] == "too_large" and state["big"]["size"] > 1_600_000
    assert "per-variable limit (1000000 bytes)" in state["big"]["reason"]
    assert state["a1"]["status"] == "stored"
    assert state["a2"]["status"] == "too_large" and "per-run limit (1500000 bytes)" in state["a2"]["reason"]
    assert state["long"]["status"] == "too_large" and state["long"]["size_over"].startswith("more than")
    assert state["small"]["status"] == "stored"
    assert "1000000 bytes per variable, 1500000 per run" in limited.ok("%dotnb state").stdout

    tracked(limited, "big = None\nsmall = None")
    out = limited.ok(f"%dotnb checkout {run} --no-recompute").stdout  # kept as not restored
    assert "not restored: big (too_large (" in out and "per-variable limit" in out, out
    assert value(limited, "big, small") == "(None, [1, 2, 3])"


@pytest.mark.kernel
def test_ignored_names_are_not_recorded(limited: Kernel, project: Path) -> None:
    (project / ".dotnbstateignore").write_text("# scratch values\ntmp_*\n!tmp_keep\n")
    limited.ok("%dotnb state on")
    first = tracked(
        limited,
        "tmp_rows = [1]\ntmp_keep = [2]\nsecret_token = 'abc'\napi_key = 'k'\nkept = 1",
    )
    state = state_of(project, first)["variables"]
    assert set(state) == {"tmp_keep", "kept"}
    limited.ok("%dotnb state ignore kept")
    (project / ".dotnbstateignore").write_text("tmp_*\n")  # read again once changed
    second = tracked(limited, "kept = 2\ntmp_keep = [3]\nother = 4")
    assert set(state_of(project, second)["variables"]) == {"other"}
    status = limited.ok("%dotnb state").stdout
    assert "ignored names: tmp_*, secret_*, api_key, kept" in status, status
    # A checkout does not remove ignored names; names the run recorded before they
    # were ignored (tmp_keep, kept) come back with it.
    limited.ok(f"%dotnb checkout {first}")
    assert value(limited, "tmp_rows, tmp_keep, secret_token, kept, 'other' in dir()") == (
        "([1], [2], 'abc', 1, False)"
    )


def test_later_rules_win_and_the_file_is_reread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_rules(["", "# c", " a* ", "!ab", "!"]) == [(False, "a*"), (True, "ab")]
    monkeypatch.setenv("DOTNB_STATE_IGNORE", "x*\n!xy")
    rules = NameRules()
    rules.set_root(tmp_path)
    ignored = rules.matcher()
    assert ignored is not None and ignored("x1") and not ignored("xy") and not ignored("a")
    (tmp_path / ".dotnbstateignore").write_text("a\nxy\n")
    ignored = rules.matcher()
    assert ignored is not None and ignored("a") and not ignored("xy")  # the environment's rules come later
    rules.add("xy")
    ignored = rules.matcher()
    assert ignored is not None and ignored("xy")
    monkeypatch.delenv("DOTNB_STATE_IGNORE")
    assert NameRules().matcher() is None
