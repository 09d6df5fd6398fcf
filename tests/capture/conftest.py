"""The capture suite runs once per file-event source: ``DOTNB_TEST_FILE_EVENTS``
(``inotify``, ``watchdog``, ``watchdog-polling``; unset: the default for the
platform) is the source every tracker and kernel of the run uses."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def file_events_under_test() -> str:
    return os.environ.get("DOTNB_TEST_FILE_EVENTS", "")


def source_sees_native_reads() -> bool:
    """Whether the source under test reports reads by native code and subprocesses:
    inotify does (dotnb's reader, watchdog's observer on Linux); watchdog's polling
    observer, FSEvents and ReadDirectoryChangesW see changes only (the README's table)."""
    return file_events_under_test() != "watchdog-polling" and sys.platform.startswith("linux")


@pytest.fixture(autouse=True)
def _file_events_source(monkeypatch: pytest.MonkeyPatch) -> None:
    if file_events_under_test():
        monkeypatch.setenv("DOTNB_FILE_EVENTS", file_events_under_test())


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder, the working directory (a module may define its own)."""
    project = tmp_path / "proj"
    project.mkdir()
    monkeypatch.chdir(project)
    return project


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of the inotify reader itself (its queue, its watches, its thread) do not
    apply to another source; tests of what only read events tell (``native_reads``)
    do not apply to a source reporting none."""
    source = file_events_under_test()
    if source in ("", "inotify"):
        return
    skip = pytest.mark.skip(reason=f"a test of the inotify reader; this run tests {source}")
    no_reads = pytest.mark.skip(reason=f"needs read events, which {source} does not report")
    for item in items:
        if item.get_closest_marker("inotify_reader"):
            item.add_marker(skip)
        elif item.get_closest_marker("native_reads") and not source_sees_native_reads():
            item.add_marker(no_reads)
