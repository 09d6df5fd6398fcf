"""Where a sweep runs by default: ``c.Dotnb.sweep_scheduler``, ``sweep_workers`` and
``sweep_memory_limit`` in the Jupyter server's configuration files, read here as the
server reads them, so ``dotnb sweep`` and the server agree without the CLI importing
the server.  Command-line options and environment variables come first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_NAME = "jupyter_server_config"


@dataclass(frozen=True)
class SweepSettings:
    scheduler: str | None = None
    workers: int | None = None
    memory_limit: str | None = None


def jupyter_settings(paths: list[str] | None = None) -> SweepSettings:
    """The ``c.Dotnb.sweep_*`` values of the Jupyter config files in ``paths`` (default:
    ``jupyter_config_path()``, highest priority first, as jupyter_server reads them)."""
    from traitlets.config import Config
    from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

    if paths is None:
        from jupyter_core.paths import jupyter_config_path

        paths = jupyter_config_path()
    merged = Config()
    for folder in reversed(paths):
        for loader in (JSONFileConfigLoader, PyFileConfigLoader):
            suffix = ".json" if loader is JSONFileConfigLoader else ".py"
            if not (Path(folder) / f"{CONFIG_NAME}{suffix}").is_file():
                continue
            try:
                merged.merge(loader(f"{CONFIG_NAME}{suffix}", path=folder).load_config())
            except ConfigFileNotFound:
                continue
    section: Any = merged.get("Dotnb", {})
    workers = section.get("sweep_workers")
    return SweepSettings(
        scheduler=str(section.get("sweep_scheduler") or "") or None,
        workers=int(workers) if isinstance(workers, int) and workers > 0 else None,
        memory_limit=str(section.get("sweep_memory_limit") or "") or None,
    )
