"""The CLI's ``main`` called in the test process, its output taken from ``capsys``, in
an environment without the variables that change what it prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotnb.cli.app import main


@pytest.fixture(autouse=True)
def plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imported by a test module: its tests run without these variables."""
    for var in ("DOTNB_ROOT", "DOTNB_DEBUG", "COLUMNS"):
        monkeypatch.delenv(var, raising=False)


def dotnb(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err
