"""The jupyter_server extension: dotnb's REST API under ``{base_url}/dotnb/api/``."""

from __future__ import annotations

from typing import Any


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from dotnb.server.extension import load

    load(serverapp)
