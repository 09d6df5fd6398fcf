"""Finding the kernel's notebook, the project root, and reading notebook snapshots."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dotnb.capture.notebook import detect_notebook_path, find_project_root, read_notebook_snapshot

# ------------------------------------------------------------------ detect_notebook_path


def test_jpy_session_name_absolute(tmp_path: Path) -> None:
    nb = tmp_path / "analysis.ipynb"
    env = {"JPY_SESSION_NAME": str(nb)}
    assert detect_notebook_path({}, env) == nb


def test_jpy_session_name_wins_over_user_ns(tmp_path: Path) -> None:
    env = {"JPY_SESSION_NAME": str(tmp_path / "a.ipynb")}
    ns = {"__session__": str(tmp_path / "b.ipynb")}
    assert detect_notebook_path(ns, env) == tmp_path / "a.ipynb"


def test_session_in_user_ns(tmp_path: Path) -> None:
    # VS Code sets __session__ itself; ipykernel copies JPY_SESSION_NAME into it.
    assert detect_notebook_path({"__session__": str(tmp_path / "b.ipynb")}, {}) == (tmp_path / "b.ipynb")
    assert detect_notebook_path({"__vsc_ipynb_file__": str(tmp_path / "c.ipynb")}, {}) == (
        tmp_path / "c.ipynb"
    )


def test_relative_value_resolves_against_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    found = detect_notebook_path({}, {"JPY_SESSION_NAME": "sub/../sub/nb.ipynb"})
    assert found == tmp_path / "sub" / "nb.ipynb"
    assert found is not None and found.is_absolute()


def test_server_relative_path_next_to_the_kernel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The kernel runs in the notebook's folder but got the server-relative path.
    (tmp_path / "nb.ipynb").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert detect_notebook_path({}, {"JPY_SESSION_NAME": "projects/nb.ipynb"}) == (tmp_path / "nb.ipynb")


@pytest.mark.parametrize("value", ["Console 1", "/home/u/script.py", "", "   ", "/tmp/notebook.ipynb.bak"])
def test_non_notebook_session_names(value: str) -> None:
    assert detect_notebook_path({}, {"JPY_SESSION_NAME": value}) is None


def test_console_name_falls_through_to_user_ns(tmp_path: Path) -> None:
    ns = {"__session__": str(tmp_path / "nb.ipynb")}
    assert detect_notebook_path(ns, {"JPY_SESSION_NAME": "Console 1"}) == tmp_path / "nb.ipynb"


def test_nothing_known() -> None:
    assert detect_notebook_path({}, {}) is None
    assert detect_notebook_path({"__session__": 42}, {}) is None


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    assert detect_notebook_path({}, {"JPY_SESSION_NAME": str(tmp_path / "A.IPYNB")}) == (tmp_path / "A.IPYNB")


# --------------------------------------------------------------------- find_project_root


def test_nearest_ancestor_with_store(tmp_path: Path) -> None:
    (tmp_path / ".dotnb").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_root(deep) == tmp_path
    assert find_project_root(tmp_path) == tmp_path

    # A nested project shadows the outer one.
    (tmp_path / "a" / ".dotnb").mkdir()
    assert find_project_root(deep) == tmp_path / "a"


def test_no_store_means_start(tmp_path: Path) -> None:
    start = tmp_path / "x"
    start.mkdir()
    assert find_project_root(start) == start


def test_store_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / ".dotnb").write_text("not a store")
    start = tmp_path / "x"
    start.mkdir()
    assert find_project_root(start) == start


def test_file_start_uses_its_folder(tmp_path: Path) -> None:
    (tmp_path / ".dotnb").mkdir()
    nb = tmp_path / "sub" / "nb.ipynb"
    nb.parent.mkdir()
    nb.write_text("{}")
    assert find_project_root(nb) == tmp_path
    (tmp_path / ".dotnb").rmdir()
    assert find_project_root(nb) == nb.parent


def test_relative_start_becomes_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".dotnb").mkdir()
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    assert find_project_root(Path(".")) == tmp_path
    assert find_project_root(Path("..")) == tmp_path


# ----------------------------------------------------------------- read_notebook_snapshot

NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_valid_notebook(tmp_path: Path) -> None:
    nb = tmp_path / "nb.ipynb"
    data = json.dumps(NOTEBOOK).encode()
    nb.write_bytes(data)
    assert read_notebook_snapshot(nb, max_bytes=len(data)) == (data, None)


def test_missing(tmp_path: Path) -> None:
    assert read_notebook_snapshot(tmp_path / "nope.ipynb", 1000) == (None, "missing")
    assert read_notebook_snapshot(tmp_path / "nope" / "nb.ipynb", 1000) == (None, "missing")


def test_too_large(tmp_path: Path) -> None:
    nb = tmp_path / "nb.ipynb"
    nb.write_bytes(json.dumps(NOTEBOOK).encode())
    size = nb.stat().st_size
    assert read_notebook_snapshot(nb, max_bytes=size - 1) == (None, f"too large ({size} bytes)")


@pytest.mark.parametrize("content", [b"{not json", b"", b'{"a": 1} trailing', b"\xff\xfe{}"])
def test_invalid_json(tmp_path: Path, content: bytes) -> None:
    nb = tmp_path / "nb.ipynb"
    nb.write_bytes(content)
    data, reason = read_notebook_snapshot(nb, 1000)
    assert data is None
    assert reason is not None and reason.startswith("not valid JSON: ")


def test_json_that_is_not_an_object(tmp_path: Path) -> None:
    nb = tmp_path / "nb.ipynb"
    nb.write_bytes(b"[1, 2]")
    assert read_notebook_snapshot(nb, 1000) == (None, "not a notebook (JSON is not an object)")


def test_directory_and_fifo_are_not_files(tmp_path: Path) -> None:
    (tmp_path / "dir.ipynb").mkdir()
    assert read_notebook_snapshot(tmp_path / "dir.ipynb", 1000) == (None, "not a file")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.ipynb"
        os.mkfifo(fifo)
        # Would block forever if it were opened.
        assert read_notebook_snapshot(fifo, 1000) == (None, "not a file")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_unreadable(tmp_path: Path) -> None:
    nb = tmp_path / "nb.ipynb"
    nb.write_text("{}")
    nb.chmod(0)
    data, reason = read_notebook_snapshot(nb, 1000)
    assert data is None and reason is not None and reason.startswith("unreadable: ")
