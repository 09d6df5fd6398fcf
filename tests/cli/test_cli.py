"""The ``dotnb`` command line, against real stores built with the store API.

Most calls run ``main([...])`` in-process (fast); a few run ``python -m dotnb``
as a real subprocess to cover discovery from the working folder, binary stdout,
a closed pipe, error output without tracebacks and the cost of importing the CLI.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from dotnb.cli import maintenance, progress, restore
from dotnb.cli.app import COMMANDS, command_in, main
from dotnb.cli.exits import EXIT_BROKEN_PIPE
from dotnb.cli.progress import ByteProgress
from dotnb.cli.render import format_diff, format_log
from dotnb.cli.text import display_width
from dotnb.store import listing
from dotnb.store.ids import new_run_id
from dotnb.store.manifest import canonical_json, iso_time, load_schema
from dotnb.store.repo import Store
from tests.cli.invoke import dotnb, plain_env  # noqa: F401 - plain_env: autouse for this module

REPO = Path(__file__).resolve().parents[2]
VALIDATOR = Draft202012Validator(load_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)

NB = "analysis.ipynb"
OTHER_NB = "other.ipynb"
UNICODE = "results dir/résumé ü.txt"
DASH = "-dash.txt"
NEWLINE = "new\nline.txt"
MODEL = "out/model.bin"
RAW = "data/raw.csv"
EXTRA = "out/extra.txt"
SETUP_CELL = "import pandas as pd  # setup of the baseline kernel\n"
CODE1 = "lr = 0.1\nmodel = fit(pd.read_csv('data/raw.csv'), lr)\n"
CODE2 = "lr = 0.2\nmodel = fit(pd.read_csv('data/raw.csv'), lr)\n"


def notebook_bytes(source: str) -> bytes:
    nb = {
        "cells": [{"cell_type": "code", "execution_count": 1, "id": "c1", "metadata": {}, "outputs": [],
                   "source": source}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    return json.dumps(nb, indent=1).encode()


# ---------------------------------------------------------------------------
# building realistic runs


def record_run(
    store: Store,
    *,
    notebook: str | None,
    code: str,
    name: str | None = None,
    setup: list[str] | None = None,
    inputs: list[str | dict[str, Any]] | None = None,
    outputs: list[str] | None = None,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    series: dict[str, list[dict[str, Any]]] | None = None,
    status: str = "ok",
    error: dict[str, str] | None = None,
    packages: dict[str, str] | None = None,
    run_id: str | None = None,
    **extra: Any,
) -> str:
    """Commit a run the way capture does, and validate the stored manifest against the schema."""
    lineage = []
    for count, cell in enumerate([*(setup or []), code], start=1):
        digest, _ = store.objects.put_bytes(cell.encode())
        lineage.append({"execution_count": count, "code_hash": digest, "tracked": cell == code})
    input_entries: list[dict[str, Any]] = []
    for item in inputs or []:
        input_entries += store.snapshot_files([item]) if isinstance(item, str) else [item]
    dists = [{"name": n, "version": v} for n, v in sorted((packages or {"numpy": "1.26.4"}).items())]
    dists_hash, _ = store.objects.put_bytes(canonical_json(dists))
    snapshot = store.snapshot_files([notebook])[0] if notebook else None
    manifest: dict[str, Any] = {
        "kind": "run",
        "name": name,
        "notebook": notebook,
        "notebook_source": "disk" if notebook else None,
        "notebook_snapshot": {"hash": snapshot["hash"], "size": snapshot["size"]} if snapshot else None,
        "code": code,
        "lineage": lineage,
        "params": params or {},
        "param_overrides": [],
        "metrics": metrics or {},
        "metric_series": series or {},
        "inputs": sorted(input_entries, key=lambda e: e["path"]),
        "outputs": sorted(store.snapshot_files(outputs or []), key=lambda e: e["path"]),
        "external_inputs": [],
        "environment": {
            "python": "3.11.7",
            "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
            "host": "gpu-box",
            "user": "ada",
            "distributions": dists_hash,
            "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True, "branch": "main"},
        },
        "status": status,
        "error": error,
        "started_at": iso_time(time.time()),
        "duration_s": 12.5,
        "stdout_bytes": 0,
        "kernel": {"execution_count": len(lineage), "pid": 4242},
        "parent": None,
        "reproduces": None,
        "warnings": [],
        **extra,
    }
    if run_id is not None:
        manifest["id"] = run_id
    summary = store.commit_run(manifest)
    stored = store.manifest(summary["id"])
    VALIDATOR.validate(stored)  # the fixture cannot drift from the schema
    return str(summary["id"])


def write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def workspace(root: Path) -> dict[str, bytes]:
    """Every file under root (outside .dotnb) with its bytes; symlinks as their target text."""
    found: dict[str, bytes] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".dotnb"]
        for name in files:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            found[rel] = b"-> " + os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
    return found


@dataclass
class Project:
    root: Path
    store: Store
    run1: str  # NB #1 "baseline"
    run2: str  # NB #2 "tuned": overwrote data/raw.csv, created out/extra.txt
    run3: str  # OTHER_NB #1 "broken": status error
    state1: dict[str, bytes]  # the workspace right after run1
    state2: dict[str, bytes]  # the workspace right after run2 (and now)

    def object_of(self, run_id: str, key: str, path: str) -> Path:
        entry = next(e for e in self.store.manifest(run_id)[key] if e["path"] == path)
        return self.store.objects.path_for(entry["hash"])


@pytest.fixture
def proj(tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "proj"
    store = Store.init(root)
    rng = random.Random(7)
    model1 = b"\x00\xff\r\n" + rng.randbytes(256 * 1024)  # bigger than a pipe buffer
    write(root, NB, notebook_bytes(CODE1))
    write(root, RAW, b"a,b\n1,2\n")
    write(root, MODEL, model1)
    write(root, UNICODE, "ünïcødé\n".encode())
    write(root, DASH, b"dash\n")
    write(root, NEWLINE, b"newline\n")
    run1 = record_run(
        store,
        notebook=NB,
        code=CODE1,
        name="baseline",
        setup=[SETUP_CELL],
        inputs=[RAW],
        outputs=[MODEL, UNICODE, DASH, NEWLINE],
        params={"lr": 0.1, "epochs": 3},
        metrics={"acc": 0.81},
        series={"acc": [{"step": i, "value": 0.7 + i / 20} for i in range(3)]},
        external_inputs=[{"path": "/usr/share/dict/words", "size": 4953680, "mtime_ns": 1}],
        warnings=["metric 'loss': no variable of that name after the cell"],
    )
    state1 = workspace(root)
    write(root, NB, notebook_bytes(CODE2))
    pre_write = store.snapshot_files([RAW])[0] | {"pre_write": True}
    write(root, RAW, b"a,b\n1,2\n3,4\n")
    write(root, MODEL, b"model v2" * 1000)
    write(root, EXTRA, b"extra\n")
    run2 = record_run(
        store,
        notebook=NB,
        code=CODE2,
        name="tuned",
        inputs=[pre_write],
        outputs=[RAW, MODEL, EXTRA],
        params={"lr": 0.2, "epochs": 3},
        metrics={"acc": 0.87, "loss": 0.3},
        packages={"numpy": "2.0.1"},
    )
    write(root, OTHER_NB, notebook_bytes("1/0"))
    run3 = record_run(
        store,
        notebook=OTHER_NB,
        code="1/0\n",
        name="broken",
        status="error",
        error={"type": "ZeroDivisionError", "message": "division by zero"},
    )
    yield Project(root, store, run1, run2, run3, state1, workspace(root))
    store.close()


def dotnb_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Any:
    code, out, err = dotnb(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def run_process(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTNB_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "dotnb", *args], cwd=cwd, env=env, capture_output=True, timeout=60, **kwargs
    )


def run_count(root: Path) -> int:
    return len(os.listdir(root / ".dotnb" / "runs"))


# ---------------------------------------------------------------------------
# docs as tests

OPTIONS = {
    "init": ["DIR", "--json"],
    "log": [
        "--notebook",
        "--kind",
        "--status",
        "--limit",
        "--metric",
        "--search",
        "--author",
        "--tag",
        "--show-signature",
        "--json",
    ],
    "verify": ["--remote", "--require-signed", "--json"],
    "config": ["NAME", "VALUE", "--unset", "--list", "signing.key", "signing.allowed_signers", "--json"],
    "tag": ["RUN", "NAME", "--notebook", "--json"],
    "untag": ["RUN", "NAME", "--notebook", "--json"],
    "note": ["RUN", "TEXT", "--notebook", "--json"],
    "run": ["NOTEBOOK", "--param", "--track-all", "--output", "--kernel", "--timeout", "--json"],
    "reproduce": ["RUN", "--rtol", "--atol", "--workdir", "--kernel", "--timeout", "--notebook", "--json"],
    "show": ["RUN", "--notebook", "--json"],
    "diff": ["RUN", "--notebook", "--json"],
    "restore": ["RUN", "--data-only", "--notebook-only", "--dry-run", "--yes", "--json", "--notebook"],
    "cat": ["RUN", "PATH", "--input", "--notebook"],
    "export": ["PATH|RUN", "--format", "prov-json", "prov-o", "ro-crate", "html", "--output", "--with-data"],
    "import": ["CRATE", "--json"],
    "lineage": ["PATH|RUN", "--upstream", "--downstream", "--depth", "--json", "--dot", "--notebook"],
    "fsck": ["--rebuild-index", "--remote", "--json"],
    "gc": ["--dry-run", "--grace", "--json"],
    "remote": ["add", "list", "remove", "--endpoint-url", "AWS_ACCESS_KEY_ID"],
    "push": ["[REMOTE] [RUN ...]", "--notebook", "--json"],
    "pull": ["REMOTE", "--with-data", "--full", "--json"],
    "sweep": [
        "NOTEBOOK|RUN",
        "--param",
        "--grid",
        "--random",
        "--seed",
        "--workers",
        "--scheduler",
        "--remote",
        "--max-failures",
        "--memory-limit",
        "--json",
    ],
}


def test_every_command_has_help_naming_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(COMMANDS) == set(OPTIONS), "document new commands here and in their --help"
    code, top, _ = dotnb(capsys, "--help")
    assert code == 0
    assert "--root" in top and "DOTNB_ROOT" in top and "'#N'" in top
    for command, options in OPTIONS.items():
        assert f"    {command} " in top
        code, out, _ = dotnb(capsys, command, "--help")
        assert code == 0
        assert out.startswith(f"usage: dotnb {command}")
        assert "examples:\n  dotnb " + command in out
        for option in options:
            assert option in out, f"dotnb {command} --help does not mention {option}"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert dotnb(capsys)[0] == 2
    code, _, err = dotnb(capsys, "restore", "latest", "--data-only", "--notebook-only")
    assert code == 2 and "not allowed with" in err
    code, _, err = dotnb(capsys, "log", "--limit", "-1")
    assert code == 2 and "must be 0 or more" in err
    assert dotnb(capsys, "frobnicate")[0] == 2


# ---------------------------------------------------------------------------
# init and log


def test_init_creates_a_store_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = dotnb(capsys, "init", tmp_path / "new")
    assert code == 0 and "initialised" in out
    assert (tmp_path / "new" / ".dotnb" / "format").exists()
    assert dotnb_json(capsys, "init", tmp_path / "new") == {
        "root": str((tmp_path / "new").resolve()),
        "store": str((tmp_path / "new" / ".dotnb").resolve()),
        "created": False,
    }
    code, out, _ = dotnb(capsys, "--root", tmp_path / "new", "log")
    assert (code, out) == (0, "no runs recorded\n")


def test_log_json_newest_first_with_filters(
    proj: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = dotnb_json(capsys, "--root", proj.root, "log")
    assert [r["id"] for r in rows] == [proj.run3, proj.run2, proj.run1]
    first = rows[2]
    for key in ("id", "number", "notebook", "name", "kind", "status", "started_at", "duration_s", "params"):
        assert key in first
    assert (first["number"], first["notebook"], first["name"]) == (1, NB, "baseline")
    assert first["params"] == {"lr": 0.1, "epochs": 3} and first["metrics"] == {"acc": 0.81}
    assert [r["id"] for r in dotnb_json(capsys, "--root", proj.root, "log", "--status", "error")] == [
        proj.run3
    ]
    assert dotnb_json(capsys, "--root", proj.root, "log", "--kind", "checkpoint") == []
    assert [r["id"] for r in dotnb_json(capsys, "--root", proj.root, "log", "--limit", "1")] == [proj.run3]
    assert [r["id"] for r in dotnb_json(capsys, "--root", proj.root, "log", "--metric", "acc<0.85")] == [
        proj.run1
    ]
    assert dotnb_json(capsys, "--root", proj.root, "log", "--metric", "acc>0.9") == []
    assert [r["id"] for r in dotnb_json(capsys, "--root", proj.root, "log", "--search", "BASELINE")] == [
        proj.run1
    ]
    code, _, err = dotnb(capsys, "--root", proj.root, "log", "--metric", "acc>>1")
    assert code == 1 and "acc>>1" in err
    # --notebook relative to the working folder or to the root; the root from $DOTNB_ROOT.
    monkeypatch.chdir(proj.root / "data")
    monkeypatch.setenv("DOTNB_ROOT", str(proj.root))
    for nb in ("../analysis.ipynb", "analysis.ipynb", str(proj.root / NB)):
        assert [r["id"] for r in dotnb_json(capsys, "log", "--notebook", nb)] == [proj.run2, proj.run1]
    code, _, err = dotnb(capsys, "log", "--notebook", "/elsewhere/x.ipynb")
    assert code == 1 and "outside the project root" in err


def test_log_table_is_aligned_and_fits_the_terminal(
    proj: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = dotnb(capsys, "--root", proj.root, "log")
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == [
        "#",
        "ID",
        "STARTED",
        "STATUS",
        "NOTEBOOK",
        "NAME",
        "DURATION",
        "PARAMS",
        "|",
        "METRICS",
    ]
    assert [line.split()[0] for line in lines] == ["#1", "#2", "#1"]
    expected = [
        (proj.run3, "error", OTHER_NB, "broken"),
        (proj.run2, "ok", NB, "tuned"),
        (proj.run1, "ok", NB, "baseline"),
    ]
    for line, (run_id, status, notebook, name) in zip(lines, expected, strict=True):
        for column, value in (
            ("ID", run_id[:10]),
            ("STATUS", status),
            ("NOTEBOOK", notebook),
            ("NAME", name),
        ):
            assert line[header.index(column) :].startswith(value), (column, line)
        assert line[header.index("DURATION") :].startswith("12.5s")
    assert "error" in lines[0] and "broken" in lines[0] and "12.5s" in lines[0]
    assert "epochs=3 lr=0.1 | acc=0.81" in lines[2]  # the store keeps keys sorted
    # One notebook: no NOTEBOOK column.  A narrow terminal: lines cut with an ellipsis.
    monkeypatch.setenv("COLUMNS", "50")
    code, out, err = dotnb(capsys, "--root", proj.root, "log", "--notebook", NB, "--limit", "1")
    header, *lines = out.splitlines()
    assert "NOTEBOOK" not in header and len(lines) == 1 and lines[0].startswith(f"#2  {proj.run2[:10]}")
    assert all(display_width(line) <= 50 for line in out.splitlines())
    assert lines[0].endswith("…")
    assert "--limit" in err  # told that older runs were left out


# ---------------------------------------------------------------------------
# show


def test_show_json_is_the_manifest_with_lineage_code(
    proj: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = dotnb_json(capsys, "--root", proj.root, "show", proj.run1)
    stored = proj.store.manifest(proj.run1)
    assert {k: v for k, v in doc.items() if k not in ("lineage", "signature")} == {
        k: v for k, v in stored.items() if k != "lineage"
    }
    assert doc["signature"] == {"status": "unsigned"}  # beside the manifest, not in it
    assert [c["code"] for c in doc["lineage"]] == [SETUP_CELL, CODE1]
    assert [c["code_hash"] for c in doc["lineage"]] == [c["code_hash"] for c in stored["lineage"]]
    # A lineage cell whose code object is gone: null code, flagged.
    proj.store.objects.remove(stored["lineage"][0]["code_hash"])
    doc = dotnb_json(capsys, "--root", proj.root, "show", proj.run1[:20])
    assert doc["lineage"][0]["code"] is None and doc["lineage"][0]["code_missing"] is True
    assert doc["lineage"][1]["code"] == CODE1 and "code_missing" not in doc["lineage"][1]


def test_show_human(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = dotnb(capsys, "--root", proj.root, "show", "#1", "--notebook", NB)
    assert code == 0
    assert f"run       {proj.run1}  (#1 in {NB})" in out
    assert "name      baseline" in out and "by        ada@gpu-box" in out and "duration  12.5s" in out
    assert "    lr = 0.1\n    model = fit(" in out
    assert "params\n    epochs  3\n    lr      0.1\n" in out
    assert "acc  0.81  (series: 3 points)" in out
    model_hash = proj.store.manifest(proj.run1)["outputs"][2]["hash"]
    assert "outputs (4)\n    PATH " in out
    assert table_row(out, MODEL) == ["256.0", "KiB", model_hash[:12]]
    assert "new\\nline.txt" in out and UNICODE in out and DASH in out  # control characters escaped
    assert "/usr/share/dict/words  4.7 MiB" in out
    assert "python 3.11.7 · Linux-6.1.0-x86_64-with-glibc2.36 · git 0123456789 on main (dirty)" in out
    assert "· 1 distribution\n" in out
    assert "lineage   2 cells (1 tracked)" in out
    assert "- metric 'loss': no variable" in out
    code, out, _ = dotnb(capsys, "--root", proj.root, "show", "#2", "--notebook", NB)
    assert table_row(out, RAW)[:2] == ["8", "B"] and table_row(out, RAW)[-1] == "pre-write"
    code, out, _ = dotnb(capsys, "--root", proj.root, "show", "latest")
    assert "status    error — ZeroDivisionError: division by zero" in out


def table_row(out: str, path: str) -> list[str]:
    """The cells after PATH in the (first) table row of ``path``."""
    line = next(line for line in out.splitlines() if line.startswith(f"    {path}  "))
    return line[len(path) + 4 :].split()


# ---------------------------------------------------------------------------
# diff


def test_diff(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    result = dotnb_json(capsys, "--root", proj.root, "diff", proj.run1, proj.run2)
    m1, m2 = proj.store.manifest(proj.run1), proj.store.manifest(proj.run2)
    hashes1 = {e["path"]: e["hash"] for e in m1["outputs"]}
    hashes2 = {e["path"]: e["hash"] for e in m2["outputs"]}
    assert result["runs"] == [proj.run1, proj.run2]
    assert result["params"] == {"lr": [0.1, 0.2]}
    assert result["metrics"] == {"acc": [0.81, 0.87], "loss": [None, 0.3]}
    assert result["inputs"] == {}  # run2's input is data/raw.csv as it was before the cell overwrote it
    assert result["outputs"][MODEL] == [hashes1[MODEL], hashes2[MODEL]]
    assert result["outputs"][EXTRA] == [None, hashes2[EXTRA]]
    assert result["outputs"][RAW] == [None, hashes2[RAW]]
    assert result["environment"] == {"pkg:numpy": ["1.26.4", "2.0.1"]}
    assert "-lr = 0.1\n+lr = 0.2\n" in result["code"]

    code, out, _ = dotnb(capsys, "--root", proj.root, "diff", "#1", "#2", "--notebook", NB)
    assert code == 0
    assert out.startswith("code\n--- ")
    assert "-lr = 0.1\n+lr = 0.2\n" in out
    assert "params\n    lr: 0.1 → 0.2\n" in out
    assert "    loss: (absent) → 0.3\n" in out
    assert f"    {EXTRA}: (absent) → {hashes2[EXTRA][:12]}\n" in out
    assert "environment\n    pkg:numpy: 1.26.4 → 2.0.1\n" in out
    assert dotnb(capsys, "--root", proj.root, "diff", proj.run1, proj.run1)[1] == "no differences\n"

    # Inputs that differ, through a run that read the file later.
    other = record_run(proj.store, notebook=NB, code=CODE2, inputs=[RAW], params={"lr": 0.2, "epochs": 3})
    result = dotnb_json(capsys, "--root", proj.root, "diff", proj.run1, other)
    assert list(result["inputs"]) == [RAW] and result["inputs"][RAW][0] != result["inputs"][RAW][1]


# ---------------------------------------------------------------------------
# restore


def test_restore_brings_back_a_run_and_can_be_undone(
    proj: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    # Odd names: created again (space + unicode, newline) and overwritten (leading dash).
    (proj.root / UNICODE).unlink()
    (proj.root / NEWLINE).unlink()
    (proj.root / DASH).write_bytes(b"changed since")
    before = workspace(proj.root)
    code, out, err = dotnb(capsys, "--root", proj.root, "restore", proj.run1, "--yes")
    assert code == 0, err
    plan_at, ckpt_at = out.index("restore plan for run"), out.index("checkpoint ")
    assert plan_at < ckpt_at  # the plan comes first
    hashes1 = {e["path"]: e["hash"][:12] for e in proj.store.manifest(proj.run1)["outputs"]}
    current_model = proj.object_of(proj.run2, "outputs", MODEL)
    current_model_hash = (current_model.parent.name + current_model.name)[:12]
    assert table_row(out, MODEL) == [current_model_hash, "→", hashes1[MODEL], "256.0", "KiB", "overwrite"]
    assert table_row(out, UNICODE) == ["(absent)", "→", hashes1[UNICODE], "12", "B", "create"]
    assert table_row(out, "new\\nline.txt")[-1] == "create" and table_row(out, DASH)[-1] == "overwrite"
    assert "already match" not in out
    ckpt = out.split("undo with: dotnb restore ")[1].strip()
    expected = dict(before)
    for rel in (NB, RAW, MODEL, UNICODE, NEWLINE, DASH):
        expected[rel] = proj.state1[rel]
    assert workspace(proj.root) == expected  # byte for byte, notebook included
    [ckpt_row] = dotnb_json(capsys, "--root", proj.root, "log", "--kind", "checkpoint")
    assert ckpt_row["id"] == ckpt
    # Named by what it is, numbered, and with who made it, as other runs.
    assert f"checkpoint #{ckpt_row['number']} ({ckpt}) holds the previous state" in out
    restored_number = proj.store.manifest(proj.run1)["number"]
    assert ckpt_row["name"] == f"checkpoint before restoring #{restored_number}"
    assert ckpt_row["user"] and ckpt_row["host"]
    code, out, _ = dotnb(capsys, "--root", proj.root, "show", ckpt)
    assert "kind      checkpoint" in out and f"before restoring {proj.run1}" in out
    assert "absent before the restore (2, removed when this checkpoint is restored)\n" in out
    assert f"\n    {UNICODE}\n" in out and "\n    new\\nline.txt\n" in out

    # Undo: overwritten files come back, the created files go away.
    result = dotnb_json(capsys, "--root", proj.root, "restore", ckpt)
    assert result["checkpoint"] and result["dry_run"] is False
    assert isinstance(result["checkpoint_number"], int)
    actions = {i["path"]: i["action"] for i in result["plan"]["items"]}
    assert actions[UNICODE] == actions[NEWLINE] == "remove" and actions[DASH] == "overwrite"
    assert workspace(proj.root) == before
    # Restoring what is already there writes nothing and makes no checkpoint.
    runs = run_count(proj.root)
    code, out, _ = dotnb(capsys, "--root", proj.root, "restore", ckpt)
    assert code == 0 and "nothing to restore" in out and run_count(proj.root) == runs


def test_restore_dry_run_writes_nothing(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    before, runs = workspace(proj.root), run_count(proj.root)
    code, out, _ = dotnb(capsys, "--root", proj.root, "restore", proj.run1, "--dry-run")
    assert code == 0 and "dry run: nothing was written" in out and f"    {MODEL}  " in out
    preview = dotnb_json(capsys, "--root", proj.root, "restore", proj.run1, "--dry-run")
    assert preview["dry_run"] is True and preview["checkpoint"] is None and preview["written"] == []
    actions = {i["path"]: i["action"] for i in preview["plan"]["items"]}
    assert actions == {
        NB: "overwrite",
        RAW: "overwrite",
        MODEL: "overwrite",
        UNICODE: "unchanged",
        DASH: "unchanged",
        NEWLINE: "unchanged",
    }
    assert workspace(proj.root) == before and run_count(proj.root) == runs


@pytest.mark.parametrize("only", ["--data-only", "--notebook-only"])
def test_restore_data_only_or_notebook_only(
    proj: Project, capsys: pytest.CaptureFixture[str], only: str
) -> None:
    result = dotnb_json(capsys, "--root", proj.root, "restore", proj.run1, only)
    after = workspace(proj.root)
    restored_nb = after[NB] == proj.state1[NB]
    restored_data = after[RAW] == proj.state1[RAW] and after[MODEL] == proj.state1[MODEL]
    assert (restored_nb, restored_data) == ((False, True) if only == "--data-only" else (True, False))
    assert after[NB] == (proj.state2[NB] if only == "--data-only" else proj.state1[NB])
    assert {i["role"] for i in result["plan"]["items"]} == (
        {"data"} if only == "--data-only" else {"notebook"}
    )


def test_restore_refuses_a_symlink_leading_outside(
    proj: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"not yours")
    (proj.root / MODEL).unlink()
    (proj.root / MODEL).symlink_to(outside / "secret.bin")
    before, runs = workspace(proj.root), run_count(proj.root)
    code, _, err = dotnb(capsys, "--root", proj.root, "restore", proj.run1)
    assert code == 1 and "symlink leading outside the project root" in err
    assert "Traceback" not in err
    assert workspace(outside) == {"secret.bin": b"not yours"}
    assert workspace(proj.root) == before and run_count(proj.root) == runs


def test_restore_refuses_a_corrupted_object(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt(proj.object_of(proj.run1, "outputs", MODEL))
    before, runs = workspace(proj.root), run_count(proj.root)
    code, _, err = dotnb(capsys, "--root", proj.root, "restore", proj.run1)
    assert code == 1 and "corrupted" in err and "nothing was changed" in err
    assert workspace(proj.root) == before and run_count(proj.root) == runs


def test_restore_shows_progress_for_big_writes(
    proj: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(restore, "PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(progress, "PROGRESS_LINE_INTERVAL_S", 0.0)
    code, _, err = dotnb(capsys, "--root", proj.root, "restore", proj.run1, "--data-only")
    assert code == 0
    lines = err.splitlines()
    assert lines and all(line.startswith("restoring: ") and "MiB/s" in line for line in lines)
    assert "(100%)" in lines[-1] and "\r" not in err  # not a terminal: plain lines


def test_progress_redraws_one_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(progress, "PROGRESS_TTY_INTERVAL_S", 0.0)
    stream = Terminal()
    bar = ByteProgress("restoring", 3 * 1024**2, stream)
    for _ in range(3):
        bar(1024**2)
    bar.finish()
    text = stream.getvalue()
    assert text.count("\r") == 4 and text.count("\n") == 1 and text.endswith("\n")
    assert "\rrestoring: 3.0 MiB / 3.0 MiB (100%)" in text and "MiB/s" in text


def test_transfer_progress_waits_then_throttles_and_shows_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    from dotnb.remote.progress import TransferProgress

    class Clock:
        now = 100.0

        def monotonic(self) -> float:
            return self.now

    clock = Clock()
    monkeypatch.setattr(progress, "time", clock)
    stream = io.StringIO()  # not a terminal: a line every PROGRESS_LINE_INTERVAL_S
    line = progress.TransferLine("push", stream)

    def step(at: float, done: int, total: int = 4) -> None:
        clock.now = 100.0 + at
        line(TransferProgress("upload", done, total, done * 1024, total * 1024))

    step(0.5, 1)  # a quick push says nothing
    assert stream.getvalue() == ""
    step(1.5, 2)
    step(2.0, 3)  # throttled
    step(2.5, 4)  # the end is shown at once
    line.finish()  # nothing changed since: not shown again
    assert stream.getvalue().splitlines() == [
        "push: upload 2/4  2.0 KiB / 4.0 KiB  1.3 KiB/s",
        "push: upload 4/4  4.0 KiB / 4.0 KiB  1.6 KiB/s",
    ]


def corrupt(path: Path) -> None:
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.write(b"garbage")
    path.chmod(0o444)


# ---------------------------------------------------------------------------
# cat


def test_cat_writes_exact_bytes(
    proj: Project, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    def cat(*args: str) -> tuple[int, bytes, bytes]:
        code = main(["--root", str(proj.root), "cat", *args])
        out, err = capsysbinary.readouterr()
        return code, out, err

    assert cat(proj.run1, MODEL) == (0, proj.state1[MODEL], b"")
    assert cat(proj.run1, UNICODE)[1] == proj.state1[UNICODE]
    assert cat(proj.run1, NEWLINE)[1] == proj.state1[NEWLINE]
    assert cat(proj.run1, "--", DASH)[1] == proj.state1[DASH]
    # A file the run both read and wrote: the output unless --input.
    assert cat(proj.run2, RAW)[1] == proj.state2[RAW]
    assert cat(proj.run2, "--input", RAW)[1] == proj.state1[RAW]
    # Relative to the working folder.
    monkeypatch.chdir(proj.root / "out")
    assert cat(proj.run1, "model.bin")[1] == proj.state1[MODEL]
    code, out, err = cat(proj.run1, EXTRA)
    assert (code, out) == (1, b"") and b"is not an input or output of run" in err
    code, out, err = cat(proj.run1, "--input", MODEL)
    assert code == 1 and b"is not an input of run" in err
    corrupt(proj.object_of(proj.run1, "outputs", MODEL))
    code, out, err = cat(proj.run1, MODEL)
    assert (code, out) == (1, b"") and b"corrupted" in err


# ---------------------------------------------------------------------------
# fsck and gc


def test_fsck_clean_corrupted_missing(
    proj: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = dotnb(capsys, "--root", proj.root, "fsck")
    assert (code, err) == (0, "") and out.startswith("checked ") and out.endswith("store is healthy\n")
    # Progress on stderr once fsck runs long enough (here: at once).
    monkeypatch.setattr(maintenance, "FSCK_PROGRESS_DELAY_S", 0.0)
    monkeypatch.setattr(progress, "PROGRESS_LINE_INTERVAL_S", 0.0)
    code, out, err = dotnb(capsys, "--root", proj.root, "fsck")
    objects = len(list(proj.store.objects.iter_digests()))
    assert code == 0 and err.splitlines()[-1].startswith(f"fsck: {objects} objects checked")
    model = proj.object_of(proj.run1, "outputs", MODEL)
    extra = proj.object_of(proj.run2, "outputs", EXTRA)
    corrupt(model)
    extra.unlink()
    code, out, _ = dotnb(capsys, "--root", proj.root, "fsck")
    assert code == 1 and "problems found" in out
    model_digest = model.parent.name + model.name
    extra_digest = extra.parent.name + extra.name
    assert f"corrupted objects (1):\n    {model_digest}  used by {proj.run1}\n" in out
    assert f"missing objects (1):\n    {extra_digest}  used by {proj.run2}\n" in out
    code, out, _ = dotnb(capsys, "--root", proj.root, "fsck", "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert report["corrupted"] == [{"object": model_digest, "runs": [proj.run1]}]
    assert report["missing"] == [{"object": extra_digest, "runs": [proj.run2]}]


def test_fsck_rebuild_index(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    proj.store.close()
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (proj.root / ".dotnb" / name).unlink(missing_ok=True)
    code, out, _ = dotnb(capsys, "--root", proj.root, "fsck", "--rebuild-index")
    assert code == 0 and out.startswith("rebuilt the index: 3 runs\n") and "store is healthy" in out
    rows = dotnb_json(capsys, "--root", proj.root, "log")
    assert [r["id"] for r in rows] == [proj.run3, proj.run2, proj.run1]
    assert dotnb_json(capsys, "--root", proj.root, "fsck", "--rebuild-index")["rebuilt_index_runs"] == 3
    proj.store = Store(proj.root)  # for the fixture's teardown


def test_gc(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    objects = proj.store.objects
    old = time.time() - 2 * 3600
    orphan_old, _ = objects.put_bytes(b"left behind by a crashed run")
    for digest in objects.iter_digests():
        os.utime(objects.path_for(digest), (old, old))
    orphan_young, _ = objects.put_bytes(b"being recorded right now")
    everything = set(objects.iter_digests())

    result = dotnb_json(capsys, "--root", proj.root, "gc", "--dry-run")
    assert result["removed"] == [orphan_old] and result["kept_within_grace"] == 1
    assert set(objects.iter_digests()) == everything
    code, out, _ = dotnb(capsys, "--root", proj.root, "gc")
    assert code == 0 and out.startswith(f"removed 1 unreferenced object (28 B)\n    {orphan_old}\n")
    assert set(objects.iter_digests()) == everything - {orphan_old}
    assert dotnb(capsys, "--root", proj.root, "fsck")[0] == 0  # every referenced object kept
    code, out, _ = dotnb(capsys, "--root", proj.root, "gc", "--grace", "0", "--dry-run")
    assert "would remove 1 unreferenced object" in out and "dry run: nothing was removed" in out
    assert dotnb_json(capsys, "--root", proj.root, "gc", "--grace", "0")["removed"] == [orphan_young]


def test_gc_and_fsck_report_packs(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """Many small files go into a pack; gc rewrites a pack holding unused ones, fsck
    names a damaged pack; both in words and in --json."""
    from tests.manifests import new_manifest

    folder = proj.root / "shards"
    folder.mkdir()
    for i in range(40):
        (folder / f"{i:02}.txt").write_text(f"shard {i}\n" * (i + 1))
    entries = proj.store.snapshot_files(sorted(f"shards/{i:02}.txt" for i in range(40)))
    proj.store.commit_run(new_manifest(inputs=entries[:30]))  # ten of them no run uses
    packs = proj.root / ".dotnb" / "packs"
    old = time.time() - 2 * 3600
    for p in packs.iterdir():
        os.utime(p, (old, old))
    code, out, _ = dotnb(capsys, "--root", proj.root, "gc")
    assert code == 0 and out.startswith("removed 10 unreferenced objects")
    assert "rewrote 1 pack files into 1 with the objects runs use" in out
    assert dotnb(capsys, "--root", proj.root, "fsck")[0] == 0
    (index,) = packs.glob("*.idx")
    os.chmod(index, 0o644)
    index.write_bytes(b"not an index")
    code, out, _ = dotnb(capsys, "--root", proj.root, "fsck")
    assert code != 0 and f"unreadable pack {index.stem}: pack index" in out
    code, out, _ = dotnb(capsys, "--root", proj.root, "fsck", "--json")
    report = json.loads(out)
    assert code != 0 and [p["pack"] for p in report["damaged_packs"]] == [index.stem]
    assert len(report["missing"]) == 30


def test_gc_refuses_when_a_run_cannot_be_read(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    # Without the manifest, the run's data objects look unreferenced; gc must not delete them.
    old = time.time() - 2 * 3600
    for digest in proj.store.objects.iter_digests():
        os.utime(proj.store.objects.path_for(digest), (old, old))
    proj.store.objects.remove(proj.store.manifest_hash(proj.run1))
    everything = set(proj.store.objects.iter_digests())
    code, _, err = dotnb(capsys, "--root", proj.root, "gc", "--grace", "0")
    assert code == 1 and f"run {proj.run1} cannot be read" in err
    assert set(proj.store.objects.iter_digests()) == everything


# ---------------------------------------------------------------------------
# bad input and errors


def test_run_references(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    root = ("--root", proj.root)
    assert dotnb_json(capsys, *root, "show", "latest")["id"] == proj.run3
    assert dotnb_json(capsys, *root, "show", "latest", "--notebook", NB)["id"] == proj.run2
    assert dotnb_json(capsys, *root, "show", proj.run2.lower())["id"] == proj.run2
    code, _, err = dotnb(capsys, *root, "show", "#1")
    assert code == 1 and "#1 exists in several notebooks" in err and "--notebook" in err
    assert dotnb_json(capsys, *root, "show", "#1", "--notebook", OTHER_NB)["id"] == proj.run3
    code, _, err = dotnb(capsys, *root, "show", "ZZZZZZZZZZ")
    assert (code, err) == (1, "dotnb: error: no run matches 'ZZZZZZZZZZ'\n")
    code, _, err = dotnb(capsys, *root, "diff", proj.run1, "#9", "--notebook", NB)
    assert code == 1 and f"no run #9 in notebook {NB}" in err
    code, _, err = dotnb(capsys, *root, "show", "not a run")
    assert code == 1 and "is not a run id" in err

    # Two runs whose ids share a prefix (same millisecond).
    now_ms = int(time.time() * 1000)
    a, b = new_run_id(now_ms=now_ms), new_run_id(now_ms=now_ms)
    assert a[:10] == b[:10]
    for run_id in (a, b):
        record_run(proj.store, notebook=NB, code="x = 1\n", run_id=run_id)
    code, _, err = dotnb(capsys, *root, "show", a[:10])
    assert code == 1 and "matches several runs" in err and a in err and "longer prefix" in err
    assert dotnb_json(capsys, *root, "show", a)["id"] == a


def test_store_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = dotnb(capsys, "log")
    assert code == 1 and err.startswith("dotnb: error: no dotnb store found in") and "dotnb init" in err
    code, _, err = dotnb(capsys, "--root", tmp_path / "nowhere", "show", "latest")
    assert code == 1 and "no dotnb store at" in err
    Store.init(tmp_path).close()
    (tmp_path / ".dotnb" / "format").write_text('{"format": 99}\n')
    code, _, err = dotnb(capsys, "log")
    assert code == 1 and "store format 99" in err and "upgrade dotnb" in err and "Traceback" not in err


def test_unexpected_errors_are_one_line_unless_debugging(
    proj: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("index exploded")

    # dotnb log reads the (current) index directly: break the query it runs there.
    monkeypatch.setattr(listing.RunListing, "list_runs", broken)
    code, out, err = dotnb(capsys, "--root", proj.root, "log")
    assert (code, out) == (3, "")
    assert (
        err
        == "dotnb: internal error: RuntimeError: index exploded (set DOTNB_DEBUG=1 to see the traceback)\n"
    )
    monkeypatch.setenv("DOTNB_DEBUG", "1")
    code, _, err = dotnb(capsys, "--root", proj.root, "log")
    assert code == 3 and err.startswith("Traceback") and "RuntimeError: index exploded" in err


def test_closed_stdout_is_quiet(
    proj: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class ClosedPipe:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["--root", str(proj.root), "log"]) == EXIT_BROKEN_PIPE
    monkeypatch.undo()
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------
# as a real process


def test_subprocess_discovers_the_store_and_writes_binary(proj: Project) -> None:
    sub = proj.root / "results dir"
    done = run_process("log", "--json", cwd=sub)
    assert done.returncode == 0, done.stderr
    assert [r["id"] for r in json.loads(done.stdout)] == [proj.run3, proj.run2, proj.run1]
    done = run_process("cat", proj.run1, "résumé ü.txt", cwd=sub)
    assert (done.returncode, done.stdout, done.stderr) == (0, proj.state1[UNICODE], b"")
    done = run_process("cat", proj.run1, MODEL, cwd=proj.root)
    assert done.returncode == 0 and done.stdout == proj.state1[MODEL]


def test_subprocess_errors_have_no_traceback(tmp_path: Path) -> None:
    done = run_process("show", "latest", cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.startswith(b"dotnb: error: no dotnb store found") and b"Traceback" not in done.stderr


def test_subprocess_closed_pipe_exits_quietly(proj: Project) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTNB_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dotnb", "--root", str(proj.root), "cat", proj.run1, MODEL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)  # like `head -c 10`
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert (proc.wait(timeout=60), err) == (EXIT_BROKEN_PIPE, b"")


def test_importing_the_cli_is_cheap(tmp_path: Path) -> None:
    code = (
        "import sys, dotnb.cli.app\n"
        "print(sorted(m for m in ('sqlite3', 'blake3', 'dotnb.store') if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTNB_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, timeout=60, cwd=tmp_path
    )
    assert done.stdout.strip() == b"[]", done.stderr


def test_renderers_print_plain_data_without_a_parser() -> None:
    assert format_diff({}) == ["no differences"]
    lines = format_diff({"params": {"lr\x1b[2J": [0.1, None]}, "outputs": {"m.bin": ["a" * 64, None]}})
    assert lines == [
        "params",
        "    lr\\x1b[2J: 0.1 → (absent)",
        "",
        "outputs",
        f"    m.bin: {'a' * 12} → (absent)",
    ]
    row = {"id": "01HX" + "0" * 22, "number": 3, "status": "ok", "name": "n\tame", "kind": "checkpoint"}
    header, line = format_log([row], width=0)
    assert header.split() == ["#", "ID", "STARTED", "STATUS", "NAME", "DURATION", "PARAMS", "|", "METRICS"]
    assert line.startswith("#3  01HX000000  -") and "[checkpoint] n\\tame" in line


def test_only_the_named_command_is_parsed_and_odd_argv_gets_the_full_parser() -> None:
    assert command_in(["log", "--json"]) == "log"
    assert command_in(["--root", "log", "show", "x"]) == "show"  # 'log' is --root's value here
    assert command_in(["--root=/p", "pull"]) == "pull"
    assert command_in(["--help"]) is None
    assert command_in(["frobnicate"]) is None
    assert command_in([]) is None


def test_show_names_the_run_that_produced_an_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.manifests import new_manifest

    store = Store.init(tmp_path)
    (tmp_path / "features.csv").write_text("a\n1\n")
    (entry,) = store.snapshot_files(["features.csv"])
    producer = store.commit_run(new_manifest(outputs=[entry]))["id"]
    consumer = store.commit_run(new_manifest(inputs=[{**entry, "produced_by": producer}]))["id"]
    store.close()
    assert main(["--root", str(tmp_path), "show", consumer]) == 0
    out = capsys.readouterr().out
    assert f"from run {producer[:10]}" in out
