"""Copying files into the object store: the segmented, pipelined copy of ObjectStore.put_file.

Segments are made small here so that small files take the multi-segment path.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from dotnb.store import Store, hashing, objects, syncing
from dotnb.store.hashing import hash_bytes, new_hasher

SMALL_SEGMENT = 4 * mmap.ALLOCATIONGRANULARITY


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.init(tmp_path / "proj")


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(objects, "SEGMENT", SMALL_SEGMENT)
    return SMALL_SEGMENT


def payload(size: int, seed: int = 0) -> bytes:
    # Different in every segment, so a misplaced or repeated segment changes the hash.
    block = bytes(range(256)) * 16
    out = bytearray()
    i = seed
    while len(out) < size:
        out += i.to_bytes(8, "little") + block
        i += 1
    return bytes(out[:size])


def check_object(store: Store, digest: str, data: bytes) -> None:
    path = store.objects.path_for(digest)
    assert path.read_bytes() == data
    assert digest == hash_bytes(data)
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0
    assert os.listdir(store.dir / "tmp") == []


@pytest.mark.parametrize(
    "size",
    [0, 1, SMALL_SEGMENT - 1, SMALL_SEGMENT, SMALL_SEGMENT + 1, 2 * SMALL_SEGMENT, 5 * SMALL_SEGMENT + 7],
)
@pytest.mark.parametrize("with_progress", [False, True])
def test_put_file_stores_exact_bytes_at_every_size(
    store: Store, tmp_path: Path, small_segments: int, size: int, with_progress: bool
) -> None:
    data = payload(size)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    seen: list[int] = []
    digest, stored = store.objects.put_file(src, progress=seen.append if with_progress else None)
    assert stored == size
    check_object(store, digest, data)
    if with_progress:
        assert sum(seen) == size


def test_large_file_with_real_segments(store: Store, tmp_path: Path) -> None:
    """Above PREHASH_MAX: no hash first, several real segments, the pipelined path."""
    size = 2 * hashing.SEGMENT + 12345
    data = payload(size, seed=7)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    digest, stored = store.objects.put_file(src, progress=lambda n: None)
    assert stored == size
    check_object(store, digest, data)
    # Same bytes again: the object is reused, nothing is left in tmp.
    assert store.objects.put_file(src, progress=lambda n: None) == (digest, size)
    assert os.listdir(store.dir / "tmp") == []


@pytest.mark.parametrize("how", ["EXDEV", "ENOSYS", "missing", "returns-0"])
def test_copy_falls_back_when_the_kernel_cannot_copy(
    store: Store, tmp_path: Path, small_segments: int, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    data = payload(3 * SMALL_SEGMENT + 99, seed=3)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    if how == "missing":
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    else:

        def broken(*args: Any) -> int:
            if how == "returns-0":  # procfs-like: "end of file" at once
                return 0
            raise OSError(getattr(errno, how), os.strerror(getattr(errno, how)))

        monkeypatch.setattr(os, "copy_file_range", broken, raising=False)
    digest, size = store.objects.put_file(src, progress=lambda n: None)
    assert size == len(data)
    check_object(store, digest, data)


def test_copy_error_propagates_and_leaves_nothing(
    store: Store, tmp_path: Path, small_segments: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(4 * SMALL_SEGMENT, seed=5)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    real = os.copy_file_range
    calls = []

    def fills_the_disk(src_fd: int, dst_fd: int, count: int, *offsets: Any) -> int:
        calls.append(count)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src_fd, dst_fd, count, *offsets)

    monkeypatch.setattr(os, "copy_file_range", fills_the_disk)
    with pytest.raises(OSError, match="No space"):
        store.objects.put_file(src, progress=lambda n: None)
    assert os.listdir(store.dir / "tmp") == []
    assert list(store.objects.iter_digests()) == []


def test_hash_thread_error_propagates(
    store: Store, tmp_path: Path, small_segments: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(payload(4 * SMALL_SEGMENT))
    real = objects.hash_range

    def fails_on_second(hasher: Any, fd: int, offset: int, length: int) -> None:
        if offset:
            raise OSError(errno.EIO, "Input/output error")
        real(hasher, fd, offset, length)

    monkeypatch.setattr(objects, "hash_range", fails_on_second)
    with pytest.raises(OSError, match="Input/output"):
        store.objects.put_file(src, progress=lambda n: None)
    assert os.listdir(store.dir / "tmp") == []
    assert list(store.objects.iter_digests()) == []


@pytest.mark.parametrize("change", ["overwrite-start", "overwrite-ahead", "truncate", "grow"])
def test_file_changing_during_the_copy_gives_a_consistent_object(
    store: Store, tmp_path: Path, small_segments: int, change: str
) -> None:
    """Whatever the copy caught, the object's name is the hash of the bytes stored."""
    seg = small_segments
    data = payload(4 * seg, seed=11)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    done: list[int] = []

    def meddle(n: int) -> None:
        done.append(n)
        if len(done) != 1:
            return
        with open(src, "r+b") as f:
            if change == "overwrite-start":
                f.write(b"X" * seg)  # already copied: the object keeps the old bytes
            elif change == "overwrite-ahead":
                f.seek(2 * seg)
                f.write(b"Y" * seg)  # not copied yet: the object gets the new bytes
            elif change == "truncate":
                f.truncate(seg + 10)
            else:
                f.seek(0, os.SEEK_END)
                f.write(b"Z" * (seg // 2))

    digest, size = store.objects.put_file(src, progress=meddle)
    stored = store.objects.path_for(digest).read_bytes()
    assert hash_bytes(stored) == digest and len(stored) == size
    expected = {
        "overwrite-start": data,
        "overwrite-ahead": data[: 2 * seg] + b"Y" * seg + data[3 * seg :],
        "truncate": data[: seg + 10],
        "grow": data + b"Z" * (seg // 2),
    }[change]
    assert stored == expected
    assert store.objects.verify(digest)


def test_object_is_fsynced_before_it_is_renamed_into_place(
    store: Store, tmp_path: Path, small_segments: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(payload(3 * SMALL_SEGMENT))
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(
            "fsync-tmp"
            if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith("obj-")
            else "fsync"
        )
        real_fsync(fd)

    def replace(a: Any, b: Any) -> None:
        events.append("replace")
        real_replace(a, b)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.objects.put_file(src, progress=lambda n: None)
    assert "fsync-tmp" in events and events.index("fsync-tmp") < events.index("replace")
    # The folder is fsynced after the rename (the object's name is durable too).
    assert events[events.index("replace") + 1 :] == ["fsync"]


def test_hash_range_reads_through_a_buffer_where_mmap_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(3 * hashing.CHUNK // 2 + 5)
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    def no_mmap(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENODEV, "no mmap here")

    fd = os.open(path, os.O_RDONLY)
    try:
        mapped = new_hasher()
        hashing.hash_range(mapped, fd, 0, len(data))
        monkeypatch.setattr(mmap, "mmap", no_mmap)
        read = new_hasher()
        hashing.hash_range(read, fd, 0, len(data))
        with pytest.raises(OSError, match="ended"):
            hashing.hash_range(new_hasher(), fd, 0, len(data) + 1)
    finally:
        os.close(fd)
    assert mapped.hexdigest() == read.hexdigest() == hash_bytes(data)


def test_start_writeback_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100_000)
    fd = os.open(path, os.O_RDWR)
    try:
        syncing.start_writeback(fd, 0, 100_000)
        syncing.start_writeback(fd, 50_000, 10**12)  # past the end: nothing to do
    finally:
        os.close(fd)
    assert path.read_bytes() == b"x" * 100_000
