"""Where a sweep runs by default: ``c.Dotnb.sweep_*`` in the Jupyter server's config files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotnb.server.config import Dotnb
from dotnb.sweep.settings import jupyter_settings
from tests.cli_in_process import dotnb


def test_settings_are_read_from_the_config_files_highest_priority_first(tmp_path: Path) -> None:
    user, system = tmp_path / "user", tmp_path / "system"
    user.mkdir()
    system.mkdir()
    (system / "jupyter_server_config.json").write_text(
        '{"Dotnb": {"sweep_scheduler": "tcp://system:8786", "sweep_workers": 8}}'
    )
    (user / "jupyter_server_config.py").write_text("c.Dotnb.sweep_scheduler = 'tcp://user:8786'\n")
    settings = jupyter_settings([str(user), str(system)])
    assert settings.scheduler == "tcp://user:8786"
    assert settings.workers == 8 and settings.memory_limit is None
    assert jupyter_settings([str(tmp_path / "none")]).scheduler is None


def test_the_server_declares_the_same_settings() -> None:
    traits = Dotnb.class_own_traits(config=True)
    assert {"sweep_scheduler", "sweep_workers", "sweep_memory_limit"} <= set(traits)


def test_the_cli_uses_the_configured_scheduler_unless_told_otherwise(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "jupyter-config"
    config.mkdir()
    (config / "jupyter_server_config.py").write_text("c.Dotnb.sweep_scheduler = 'tcp://127.0.0.1:9'\n")
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    result = dotnb("sweep", "score.ipynb", "-p", "x=1", cwd=project)
    assert result.returncode == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.stderr
