from __future__ import annotations

from pathlib import Path

import pytest

from dotnb.store.repo import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A new store in ``tmp_path``, which is the project root."""
    return Store.init(tmp_path)
