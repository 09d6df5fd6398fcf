"""Kernel state records in the store, without a kernel: what gc keeps, what fsck
reports, what a corrupted or missing object does to a load."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dotnb.capture.state_checkout import load_groups
from dotnb.capture.state_writer import Limits, serialize_state
from dotnb.store import Store
from dotnb.store.errors import ObjectCorrupt
from dotnb.store.fsck import fsck
from dotnb.store.gc import gc
from dotnb.store.kernel_state import (
    GROUP_FORMAT,
    STATE_FORMAT,
    TOO_LARGE,
    read_document,
    state_objects,
    write_state_ref,
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.init(tmp_path)
    yield s
    s.close()


def record(store: Store, run_id: str, variables: dict, limits: Limits | None = None) -> dict:
    digest, entries, _ = serialize_state(
        store.objects, variables, {}, None, {}, limits or Limits(), "me@here"
    )
    write_state_ref(store.dir, run_id, digest)
    return {"digest": digest, "entries": entries}


def test_gc_keeps_state_objects_and_fsck_checks_them(store: Store) -> None:
    big = np.arange(300_000)  # 2.4 MB: an out-of-band buffer object of its own
    got = record(store, "01RUNWITHSTATE", {"big": big, "small": [1, 2]})
    held = state_objects(store.objects, got["digest"])
    assert len(held) >= 5  # manifest, two groups, two pickle streams, a buffer
    stray, _ = store.objects.put_bytes(b"used by nothing")
    report = gc(store, grace_s=0)
    assert stray in report["removed"] and not held & set(report["removed"])
    assert fsck(store)["ok"]
    buffer = read_document(store.objects, got["entries"]["big"]["group"], GROUP_FORMAT)["buffers"][0][0]
    path = store.objects.path_for(buffer)
    os.chmod(path, 0o644)
    path.write_bytes(b"not the array")
    report = fsck(store)
    assert not report["ok"] and buffer in str(report)
    group = read_document(store.objects, got["entries"]["big"]["group"], GROUP_FORMAT)
    with pytest.raises(ObjectCorrupt):
        load_groups(store.objects, {"g": group}, ["g"], {})
    os.unlink(path)
    assert buffer in str(fsck(store))  # missing now


def test_unchanged_buffers_are_stored_once_and_limits_apply(store: Store) -> None:
    big = np.ones(200_000)
    record(store, "01A", {"big": big, "n": 1})
    before = sum(1 for _ in store.objects.iter_digests())
    record(store, "01B", {"big": big, "n": 2})
    # n's group, its pickle stream and the manifest are new; big's objects are not.
    assert sum(1 for _ in store.objects.iter_digests()) - before == 3
    small_limits = Limits(max_variable=1_000_000, max_run=10**9)
    got = record(store, "01C", {"big": big, "n": 3}, small_limits)
    assert got["entries"]["big"]["status"] == TOO_LARGE and got["entries"]["big"]["size"] > 1_000_000
    assert "per-variable limit" in got["entries"]["big"]["reason"]
    manifest = read_document(store.objects, got["digest"], STATE_FORMAT)
    assert manifest["variables"]["n"]["status"] == "stored"


def test_a_large_buffer_loads_writable_and_equal(store: Store) -> None:
    big = np.arange(5_000_000, dtype=np.float64)  # 40 MB: read into anonymous memory
    got = record(store, "01LARGE", {"big": big})
    group = read_document(store.objects, got["entries"]["big"]["group"], GROUP_FORMAT)
    loaded = load_groups(store.objects, {"g": group}, ["g"], {})["big"]
    assert np.array_equal(loaded, big) and loaded.flags.writeable
    loaded[0] = -1.0
    assert loaded[0] == -1.0 and big[0] == 0.0


def test_a_value_pickled_in_band_stops_at_the_variable_limit(store: Store) -> None:
    floats = [float(i) for i in range(200_000)]  # about 1.8 MB pickled in band
    got = record(store, "01INBAND", {"floats": floats, "n": 1}, Limits(max_variable=100_000, max_run=10**9))
    entry = got["entries"]["floats"]
    assert entry["status"] == TOO_LARGE and entry["size_over"] == "more than 100000 bytes"
    assert got["entries"]["n"]["status"] == "stored"


def test_the_run_limit_applies_to_the_groups_in_order(store: Store) -> None:
    limits = Limits(max_variable=10**9, max_run=1_000_000)
    got = record(
        store, "01RUNLIMIT", {"a": np.ones(100_000), "b": [float(i) for i in range(200_000)]}, limits
    )
    assert got["entries"]["a"]["status"] == "stored"
    assert got["entries"]["b"]["status"] == TOO_LARGE
    assert "per-run limit (1000000 bytes)" in got["entries"]["b"]["reason"]


@pytest.mark.parametrize("damage", ["flipped first", "flipped", "short", "long"])
def test_a_large_buffer_hashed_while_read_is_never_loaded_damaged(store: Store, damage: str) -> None:
    big = np.arange(5_000_000, dtype=np.float64)  # 40 MB: hashed by a thread as it is read
    got = record(store, "01LARGE", {"big": big})
    group = read_document(store.objects, got["entries"]["big"]["group"], GROUP_FORMAT)
    path = store.objects.path_for(group["buffers"][0][0])
    data = bytearray(path.read_bytes())
    if damage == "flipped first":
        data[7] ^= 1  # in the first segment read, hashed while the next is read
    elif damage == "flipped":
        data[len(data) - 5] ^= 1  # in the last segment read
    elif damage == "short":
        del data[-1]
    else:
        data += b"\0"
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    with pytest.raises(ObjectCorrupt):
        load_groups(store.objects, {"g": group}, ["g"], {})
