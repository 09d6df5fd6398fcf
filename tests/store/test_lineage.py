"""Lineage segments (dotnb.store.lineage) through the store API: packing, reading
back, damaged segments, and what push, gc and fsck see of them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from dotnb.store import Store, StoreFormatError
from dotnb.store.errors import ObjectCorrupt, ObjectMissing
from dotnb.store.fsck import fsck
from dotnb.store.gc import gc
from dotnb.store.hashing import hash_bytes
from dotnb.store.lineage import SEGMENT_CELLS, length, parse_segment, segment_bytes
from dotnb.store.referenced import manifest_objects
from tests.conftest import validate_manifest
from tests.manifests import new_manifest


def cells(n: int, start: int = 1) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        code = f"x = {i}  # ü\n"
        cell: dict[str, Any] = {
            "execution_count": i,
            "code_hash": hash_bytes(code.encode()),
            "tracked": i % 3 == 0,
            "code": code,
        }
        if i % 3 == 0:
            cell["run"] = f"RUN{i}"
        if i % 7 == 0:
            cell["status"] = "error"
        out.append(cell)
    return out


def test_short_lineage_stays_a_list_and_long_one_is_segmented(store: Store) -> None:
    short = store.pack_lineage(cells(SEGMENT_CELLS - 1))
    assert isinstance(short, list) and len(short) == SEGMENT_CELLS - 1
    assert all("code" not in c for c in short)

    every = cells(2 * SEGMENT_CELLS + 5)
    packed = store.pack_lineage(every)
    assert [s["count"] for s in packed["segments"]] == [SEGMENT_CELLS, SEGMENT_CELLS]
    assert len(packed["cells"]) == 5 and length(packed) == len(every)
    run = store.commit_run(new_manifest(lineage=packed, code=every[-1]["code"]))
    stored = store.manifest(run["id"])
    validate_manifest(stored)
    assert json.loads(store.objects.read_bytes(store.manifest_hash(run["id"])))["format"] >= 2

    # Read back: every cell in order, code inline for segment cells, the rest by hash.
    back = store.lineage(stored)
    assert [c["execution_count"] for c in back] == [c["execution_count"] for c in every]
    assert [c.get("run") for c in back] == [c.get("run") for c in every]
    assert [c.get("status") for c in back] == [c.get("status") for c in every]
    assert [c["code"] for c in back[: 2 * SEGMENT_CELLS]] == [c["code"] for c in every[: 2 * SEGMENT_CELLS]]
    for cell in back[2 * SEGMENT_CELLS :]:
        code = store.objects.read_bytes(cell["code_hash"]).decode()
        assert code == every[cell["execution_count"] - 1]["code"]

    # A manifest's objects are its segments and its own cells' code, found without opening segments.
    objects = manifest_objects(stored)
    assert {s["hash"] for s in packed["segments"]} <= objects
    assert {c["code_hash"] for c in packed["cells"]} <= objects
    assert every[0]["code_hash"] not in objects


def test_the_cli_and_the_rest_view_show_segment_code(store: Store) -> None:
    from dotnb.store.views import with_lineage_code

    every = cells(SEGMENT_CELLS + 2)
    run = store.commit_run(new_manifest(lineage=store.pack_lineage(every)))
    doc = with_lineage_code(store, store.manifest(run["id"]))
    assert [c["code"] for c in doc["lineage"]] == [c["code"] for c in every]


def test_segments_survive_gc_and_fsck_checks_them(store: Store) -> None:
    packed = store.pack_lineage(cells(SEGMENT_CELLS))
    store.commit_run(new_manifest(lineage=packed))
    segment = packed["segments"][0]["hash"]
    gc(store, grace_s=0)
    assert store.objects.has(segment)
    assert fsck(store)["ok"]

    path = store.objects.path_for(segment)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(b"x = 1 ", b"x = 9 "))
    report = fsck(store)
    assert not report["ok"]
    assert segment in json.dumps(report)


def test_damaged_segment_shows_placeholders_and_strict_reading_refuses(store: Store) -> None:
    every = cells(SEGMENT_CELLS + 1)
    packed = store.pack_lineage(every)
    run = store.commit_run(new_manifest(lineage=packed))
    manifest = store.manifest(run["id"])
    segment = packed["segments"][0]["hash"]
    store.objects.remove(segment)

    shown = store.lineage(manifest)
    assert len(shown) == len(every)
    assert all(c["code_missing"] and c["code"] is None for c in shown[:SEGMENT_CELLS])
    assert shown[-1]["execution_count"] == every[-1]["execution_count"]
    with pytest.raises(ObjectMissing):
        store.lineage(manifest, strict=True)

    # Bytes that match their name but are not a segment: refused as malformed.
    bogus = store.objects.put_bytes(b'{"not": "a list"}')[0]
    manifest["lineage"]["segments"][0]["hash"] = bogus
    with pytest.raises(StoreFormatError):
        store.lineage(manifest, strict=True)
    assert store.lineage(manifest)[0]["code_corrupt"] is True


def test_segment_whose_code_does_not_match_its_hash_is_refused() -> None:
    cell = cells(1)[0]
    good = segment_bytes([cell])
    assert parse_segment(good, hash_bytes(good))[0]["code"] == cell["code"]
    forged = segment_bytes([dict(cell, code="import os; os.remove('data.csv')\n")])
    with pytest.raises(StoreFormatError, match="does not match its hash"):
        parse_segment(forged, hash_bytes(forged))


def test_lone_surrogates_in_code_round_trip(store: Store) -> None:
    every = cells(SEGMENT_CELLS)
    odd = "s = '\ud800'\n"
    every[3] = dict(every[3], code=odd, code_hash=hash_bytes(odd.encode("utf-8", "surrogatepass")))
    run = store.commit_run(new_manifest(lineage=store.pack_lineage(every)))
    assert store.lineage(store.manifest(run["id"]))[3]["code"] == odd


def test_corrupted_segment_is_never_read_as_valid(store: Store) -> None:
    packed = store.pack_lineage(cells(SEGMENT_CELLS))
    run = store.commit_run(new_manifest(lineage=packed))
    path = store.objects.path_for(packed["segments"][0]["hash"])
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-3] + b"]]]")
    with pytest.raises(ObjectCorrupt):
        store.lineage(store.manifest(run["id"]), strict=True)


def test_segments_travel_with_push_and_are_fetched_on_demand(tmp_path: Path) -> None:
    from dotnb.remote.config import add_remote
    from dotnb.remote.ondemand import attach
    from dotnb.remote.transfer import pull, push

    (tmp_path / "remote").mkdir()
    remote = (tmp_path / "remote").as_uri()
    alice = Store.init(tmp_path / "alice")
    bob = Store.init(tmp_path / "bob")
    for store in (alice, bob):
        add_remote(store, "origin", remote)
    attach(bob)
    every = cells(SEGMENT_CELLS + 3)
    run = alice.commit_run(new_manifest(lineage=alice.pack_lineage(every)))
    push(alice)
    pull(bob)
    manifest = bob.manifest(run["id"])
    segment = manifest["lineage"]["segments"][0]["hash"]
    assert not bob.objects.has(segment)  # left on the remote until needed
    assert [c.get("code") for c in bob.lineage(manifest, strict=True)][:SEGMENT_CELLS] == [
        c["code"] for c in every[:SEGMENT_CELLS]
    ]
    assert bob.objects.has(segment)


def test_manifest_bytes_splices_the_encoded_lineage_canonically() -> None:
    """A kernel keeps the lineage's JSON from run to run and has the manifest encoded
    around it: byte for byte canonical_json, in both lineage forms, whatever the rest
    of the manifest holds (a nested value that looks like the stand-in included)."""
    import random

    from dotnb.store.lineage import STAND_IN, encode, manifest_bytes
    from dotnb.store.manifest import canonical_json

    rng = random.Random(7)
    texts = ["", "ü", '"lineage":"', "\\u0000dotnb lineage\\u0000", STAND_IN, "a\nb", "\x00"]
    for n in range(200):
        entries = [
            {"execution_count": i, "code_hash": hash_bytes(str(i).encode()), "tracked": bool(i % 2)}
            for i in range(rng.randrange(0, 40))
        ]
        for entry in entries:
            if rng.random() < 0.3:
                entry["run"] = f"01RUN{rng.randrange(10**6)}"
            if rng.random() < 0.2:
                entry["status"] = "error"
        refs = [{"hash": hash_bytes(bytes([i])), "count": SEGMENT_CELLS} for i in range(rng.randrange(0, 4))]
        lineage: Any = {"segments": refs, "cells": entries} if refs else entries
        lineage_json = encode([canonical_json(r) for r in refs], [canonical_json(e) for e in entries])
        assert lineage_json == canonical_json(lineage)
        manifest = {
            "id": f"run{n}",
            "code": rng.choice(texts),
            # Sorted before "lineage", as user data can be (e.g. in "environment").
            "environment": {"lineage": rng.choice(texts)},
            "params": {rng.choice(texts): rng.choice(texts), "lineage": rng.choice(texts)},
            "lineage": lineage,
            "metrics": {"acc": rng.random()},
            "z": [rng.choice(texts)],
        }
        assert manifest_bytes(manifest, lineage_json) == canonical_json(manifest)
        assert manifest_bytes(manifest) == canonical_json(manifest)
