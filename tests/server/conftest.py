"""Fixtures for REST API tests against a real jupyter_server (pytest-jupyter).

This folder runs in its own pytest invocation (``-p pytest_jupyter.jupyter_server
--confcutdir=tests/server``) so pytest-jupyter's autouse fixtures stay out of the
kernel and store suites.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

Fetch = Callable[..., Awaitable[Any]]


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"dotnb": True}}}


@pytest.fixture
def api(jp_fetch: Fetch) -> Callable[..., Awaitable[Any]]:
    """``await api("runs", params={...})`` → decoded JSON; raises tornado's HTTPClientError on 4xx/5xx."""

    async def call(*parts: str, method: str = "GET", body: Any = None, **kwargs: Any) -> Any:
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        response = await jp_fetch("dotnb", "api", *parts, method=method, body=body, **kwargs)
        return json.loads(response.body) if response.body else None

    return call
