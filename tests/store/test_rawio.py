"""File I/O by descriptor: the POSIX calls where they exist, and the stand-ins that
Windows uses (exercised here on any platform)."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dotnb.store import rawio


@pytest.fixture
def fd(tmp_path: Path) -> Iterator[int]:
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 64)  # 16 KiB, CR and LF bytes included
    fd = os.open(path, os.O_RDWR | rawio.BINARY)
    yield fd
    os.close(fd)


def test_seek_read_and_write_act_at_the_offset(fd: int) -> None:
    assert rawio.seek_read(fd, 4, 10) == bytes([10, 11, 12, 13])
    assert rawio.seek_read(fd, 10, 16380) == bytes([252, 253, 254, 255])  # short at the end
    assert rawio.seek_write(fd, b"\r\n\r\n", 100) == 4
    assert rawio.pread(fd, 6, 99) == bytes([99]) + b"\r\n\r\n" + bytes([104])


def test_the_stand_ins_keep_each_seek_and_transfer_together(fd: int) -> None:
    errors: list[int] = []

    def reader(offset: int) -> None:
        for _ in range(300):
            if rawio.seek_read(fd, 1, offset) != bytes([offset % 256]):
                errors.append(offset)

    threads = [threading.Thread(target=reader, args=(n * 1000 + 7,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_read_into_fills_the_view_with_or_without_preadv(fd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    view = memoryview(bytearray(300))
    assert rawio.read_into(fd, view, 16200) == 184  # the file ends first
    assert bytes(view[:4]) == bytes([72, 73, 74, 75])
    monkeypatch.delattr(os, "preadv", raising=False)
    again = memoryview(bytearray(300))
    assert rawio.read_into(fd, again, 16200) == 184
    assert bytes(again) == bytes(view)


def test_chmod_open_by_descriptor_or_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "g"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        rawio.chmod_open(fd, str(path), 0o644)
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        monkeypatch.delattr(os, "fchmod", raising=False)
        rawio.chmod_open(fd, str(path), 0o640)
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.close(fd)
