"""A run recorded on one system restored on another: names Windows refuses, paths a
case-insensitive file system takes for one, a file another program holds open.
The rules are tested with each platform's rules; restore leaves such paths out,
with the reason, and overwrites nothing by surprise."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import dotnb.store.restore as restore_mod
from dotnb.store.errors import DotnbError
from dotnb.store.portable_paths import case_collisions, case_insensitive, unwritable, windows_problem
from dotnb.store.repo import Store
from tests.manifests import new_manifest


@pytest.mark.parametrize(
    "rel",
    [
        "data/a:b.csv",
        "nul",
        "logs/COM1.txt",
        "con .txt",
        "data/notes.",
        "data/trailing ",
        "a\\b",
        "q?.csv",
        "x\x01",
    ],
)
def test_names_windows_refuses(rel: str) -> None:
    assert windows_problem(rel) is not None


@pytest.mark.parametrize(
    "rel", ["data/train.csv", "nul-and-void.txt", "console.log", "COM10.txt", "a.b/c d.csv", "é.csv"]
)
def test_names_windows_takes(rel: str) -> None:
    assert windows_problem(rel) is None


def test_paths_one_case_folding_file_system_takes_for_one() -> None:
    rels = [
        "Data/train.csv",
        "data/Train.csv",
        "data/test.csv",
        "caf\u00e9.csv",
        "cafe\u0301.CSV",
        "other.csv",
    ]
    assert case_collisions(rels) == {"data/Train.csv": "Data/train.csv", "cafe\u0301.CSV": "caf\u00e9.csv"}
    assert case_collisions(["a.csv", "b.csv"]) == {}


def test_what_each_system_cannot_write() -> None:
    rels = ["Report.csv", "aux.txt", "report.csv", "x.csv"]
    assert unwritable(rels, windows=False, folds_case=False) == {}
    linux_case = unwritable(rels, windows=False, folds_case=True)
    assert list(linux_case) == ["report.csv"] and "'Report.csv' is restored" in linux_case["report.csv"]
    windows = unwritable(rels, windows=True, folds_case=True)
    assert set(windows) == {"aux.txt", "report.csv"} and "device name" in windows["aux.txt"]


def test_this_file_system_is_probed_for_case(tmp_path: Path) -> None:
    folded = case_insensitive(tmp_path)
    assert folded is (os.path.normcase("A") == "a" or Path(str(tmp_path).upper()).exists())
    assert list(tmp_path.iterdir()) == []  # the probe is gone


def test_restore_leaves_paths_this_system_cannot_write_out_with_the_reason(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"Report.csv": b"upper\n", "report.csv": b"lower\n", "aux.txt": b"device\n", "ok.csv": b"fine\n"}
    for rel, data in files.items():
        (store.root / rel).write_bytes(data)
    run = store.commit_run(new_manifest(outputs=store.snapshot_files(sorted(files))))["id"]
    for rel in files:
        (store.root / rel).unlink()
    # As on Windows, on a case-insensitive disk.
    monkeypatch.setattr(restore_mod, "case_insensitive", lambda folder: True)
    monkeypatch.setattr(restore_mod, "ON_WINDOWS", True)
    plan = restore_mod.make_plan(store, run)
    assert sorted(i.path for i in plan.items) == ["Report.csv", "ok.csv"]
    assert {s["path"] for s in plan.skipped} == {"aux.txt", "report.csv"}
    result = restore_mod.restore(store, run, notebook=False)
    assert sorted(result["written"]) == ["Report.csv", "ok.csv"]
    assert (store.root / "Report.csv").read_bytes() == b"upper\n" and not (store.root / "aux.txt").exists()


def test_a_file_held_open_elsewhere_stops_the_restore_with_a_clear_message(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"f{i}.csv": f"{i}\n".encode() for i in range(3)}
    for rel, data in files.items():
        (store.root / rel).write_bytes(data)
    run = store.commit_run(new_manifest(outputs=store.snapshot_files(sorted(files))))["id"]
    for rel in files:
        (store.root / rel).write_bytes(b"edited\n")
    real_replace = os.replace

    def locked(src: Any, dst: Any) -> None:
        if str(dst).endswith("f1.csv"):  # Windows: sharing violation
            raise PermissionError(13, "The process cannot access the file", str(src), None, str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", locked)
    with pytest.raises(
        DotnbError, match=r"cannot replace 'f1.csv': it is open in another program.*checkpoint"
    ):
        restore_mod.restore(store, run, notebook=False)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (store.root / "f1.csv").read_bytes() == b"edited\n"  # as it was
    assert not list(store.root.glob(".dotnb-*"))
    restore_mod.restore(store, run, notebook=False)  # closed: restore again
    assert {rel: (store.root / rel).read_bytes() for rel in files} == files
