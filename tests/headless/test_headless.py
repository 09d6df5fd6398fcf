"""``dotnb run`` and ``dotnb reproduce``: real kernels (nbclient), real files, the CLI.

Two projects are built once per module: the Binder demo (``binder/demo``) and
``tests/fixtures/headless/lab.ipynb``, whose tracked cells each show one way a
run can fail to reproduce (unseeded randomness, float noise in CSV/Parquet
outputs, a file outside the root, a package version).  Tests that damage a
project work on a copy.  The CLI mostly runs in this process (``main()``): a new
process pays about 2 s just to import nbformat; a few tests run it as a real
subprocess, as CI does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from dotnb.comparison.verdicts import Tolerance, compare_runs, frames_close
from dotnb.store.repo import Store
from tests.cli_in_process import Outcome, dotnb
from tests.conftest import validate_manifest

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "headless"
DEMO = REPO / "binder" / "demo"


def dotnb_process(*args: str | Path, cwd: Path, timeout: float = 300) -> Outcome:
    """Run the CLI as a subprocess, as CI does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOTNB_", "JPY_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "dotnb", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def ok(proc: Outcome) -> Outcome:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def runs_by_name(root: Path) -> dict[str, dict[str, Any]]:
    """Manifests of the runs recorded by notebooks (not reproductions), oldest first."""
    store = Store(root)
    try:
        rows = store.list_runs(kind="run")
        return {r["name"]: store.manifest(r["id"]) for r in reversed(rows) if not r["reproduces"]}
    finally:
        store.close()


def table_row(proc: Outcome, kind: str, name: str) -> str:
    """The line of ``dotnb reproduce``'s table for one compared item."""
    return next(line for line in proc.stdout.splitlines() if line.split()[:2] == [kind, name])


def fake_package(where: Path, version: str, factor: float) -> Path:
    """A tiny installed distribution ``dotnbfake`` (module + dist-info), in a folder for PYTHONPATH."""
    (where / "dotnbfake").mkdir(parents=True)
    (where / "dotnbfake" / "__init__.py").write_text(f"FACTOR = {factor!r}\n")
    info = where / f"dotnbfake-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: dotnbfake\nVersion: {version}\n")
    return where


@dataclass
class Lab:
    root: Path
    external: Path
    site_v1: Path
    site_v2: Path
    run: Outcome  # what `dotnb run` printed
    runs: dict[str, dict[str, Any]]

    def reproduce(self, name: str, *args: str, site: Path | None = None, root: Path | None = None) -> Outcome:
        env = {"PYTHONPATH": str(site or self.site_v1)}
        return dotnb("reproduce", self.runs[name]["id"], *args, cwd=root or self.root, env=env)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    base = tmp_path_factory.mktemp("lab")
    root = base / "project"
    shutil.copytree(FIXTURES, root)
    external = base / "outside.txt"
    external.write_text("outside the project root\n")
    site_v1 = fake_package(base / "site-v1", "1.0", 1.0)
    site_v2 = fake_package(base / "site-v2", "2.0", 2.0)
    args = ["-p", "scale=2.0", "-p", f"external_path={external}", "--output", "executed.ipynb"]
    proc = ok(dotnb("run", "lab.ipynb", *args, cwd=root, env={"PYTHONPATH": str(site_v1)}))
    return Lab(root, external, site_v1, site_v2, proc, runs_by_name(root))


@pytest.fixture
def lab_copy(lab: Lab, tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "project"
    shutil.copytree(lab.root, copy, symlinks=True)
    yield copy


# ---------------------------------------------------------------------------
# dotnb run


def test_run_records_tracked_cells_with_params_and_the_executed_notebook(lab: Lab) -> None:
    assert list(lab.runs) == ["seeded", "unseeded", "float-noise", "external", "versioned"]
    for manifest in lab.runs.values():
        validate_manifest(manifest)
        assert manifest["status"] == "ok"
        assert manifest["notebook"] == "lab.ipynb"
        # -p values are params of every run, marked overridden
        assert manifest["params"]["scale"] == 2.0
        assert manifest["params"]["external_path"] == str(lab.external)
        assert {"scale", "external_path"} <= set(manifest["param_overrides"])
        assert manifest["notebook_source"] == "headless"
    seeded = lab.runs["seeded"]
    assert [e["path"] for e in seeded["inputs"]] == ["data/measurements.csv"]
    assert [e["path"] for e in seeded["outputs"]] == ["out/seeded.csv"]
    assert lab.runs["versioned"]["metrics"]["factor"] == 2.0  # the injected scale reached the cells

    # The snapshot is the executed notebook: the injected parameters after the tagged cell, outputs.
    store = Store(lab.root)
    try:
        snap = nbformat.reads(store.objects.read_bytes(seeded["notebook_snapshot"]["hash"]).decode(), 4)
    finally:
        store.close()
    tags = [c.metadata.get("tags", []) for c in snap.cells]
    at = tags.index(["parameters"])
    assert tags[at + 1] == ["injected-parameters"]
    assert "scale = 2.0" in snap.cells[at + 1].source
    assert any(c.get("outputs") for c in snap.cells)
    # --output wrote the same executed notebook; the notebook itself is unchanged.
    assert nbformat.read(lab.root / "executed.ipynb", 4).cells[at + 1].metadata["tags"] == [
        "injected-parameters"
    ]
    assert (lab.root / "lab.ipynb").read_bytes() == (FIXTURES / "lab.ipynb").read_bytes()

    # Progress per cell on stderr, the runs on stdout.
    assert "[1/8] %load_ext dotnb" in lab.run.stderr
    assert "[8/8] %%track --name versioned" in lab.run.stderr
    assert "run #1 'seeded'" in lab.run.stderr
    assert "ran 8 of 8 cells of lab.ipynb" in lab.run.stdout
    assert "recorded 5 runs" in lab.run.stdout


def test_run_json_lists_the_runs(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%%track --name one\nvalue = 1")]
    nbformat.write(nb, tmp_path / "ok.ipynb")
    doc = json.loads(ok(dotnb("run", "ok.ipynb", "--json", cwd=tmp_path)).stdout)
    assert doc["status"] == "ok" and doc["notebook"] == "ok.ipynb" and doc["failed_cell"] is None
    assert [r["name"] for r in doc["runs"]] == ["one"]
    assert doc["cells"][0]["runs"] == [doc["runs"][0]["id"]]


def test_a_long_lineage_in_segments_reproduces(tmp_path: Path) -> None:
    """A run whose lineage is partly in segment objects re-executes every cell, and
    its reproduction is recorded with a lineage packed again in this store."""
    from dotnb.store.lineage import SEGMENT_CELLS, segment_refs

    nb = nbformat.v4.new_notebook()
    cells = [f"total = {i}" if i == 0 else f"total += {i}" for i in range(SEGMENT_CELLS + 8)]
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.cells.append(nbformat.v4.new_code_cell("%%track --name sum\nresult = total"))
    nbformat.write(nb, tmp_path / "long.ipynb")
    ok(dotnb("run", "long.ipynb", cwd=tmp_path))
    report = json.loads(ok(dotnb("reproduce", "latest", "--json", cwd=tmp_path)).stdout)
    assert report["verdict"] == "reproduced", report
    store = Store(tmp_path)
    try:
        original, again = (store.manifest(r["id"]) for r in reversed(store.list_runs()))
        assert again["reproduces"] == original["id"]
        for doc in (original, again):
            validate_manifest(doc)
            assert len(segment_refs(doc["lineage"])) == 1
            lineage = store.lineage(doc, strict=True)
            codes = [c.get("code") or store.objects.read_bytes(c["code_hash"]).decode() for c in lineage]
            assert codes[-len(nb.cells) :] == [c.source for c in nb.cells]
        # The reproduction's lineage names no run of the work folder it ran in.
        assert all("run" not in c for c in store.lineage(again))
        assert fsck_ok(store)
    finally:
        store.close()


def fsck_ok(store: Store) -> bool:
    from dotnb.store.fsck import fsck

    return bool(fsck(store)["ok"])


def test_a_failing_cell_stops_the_run_and_is_recorded(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "fail.ipynb", tmp_path)
    proc = dotnb_process("run", "fail.ipynb", "--track-all", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "dotnb: error: cell 2 of 3 (%%track --name boom) raised ValueError: bad input: 42" in proc.stderr
    assert 'raise ValueError("bad input: 42")' in proc.stderr  # the user's traceback, not dotnb's
    assert "dotnb/" not in proc.stderr
    assert "never runs" not in proc.stderr + proc.stdout
    store = Store(tmp_path)
    try:
        rows = list(reversed(store.list_runs()))
        assert [(r["name"], r["status"]) for r in rows] == [(None, "ok"), ("boom", "error")]
        boom = store.manifest(rows[1]["id"])
        assert boom["error"] == {"type": "ValueError", "message": "bad input: 42"}
        assert boom["notebook_source"] == "headless"
        assert store.manifest(rows[0]["id"])["code"] == "x = 1"  # --track-all: an untracked cell's run
    finally:
        store.close()
    assert f"the failure is recorded as run #2 ({boom['id']}, status error)" in proc.stderr


def test_a_cell_over_the_timeout_is_interrupted_and_recorded(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "slow.ipynb", tmp_path)
    proc = dotnb("run", "slow.ipynb", "--timeout", "2", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "cell 1 of 2 (%%track --name sleepy) did not finish within 2 s and was interrupted" in proc.stderr
    store = Store(tmp_path)
    try:
        (row,) = store.list_runs()
        assert (row["name"], row["status"]) == ("sleepy", "interrupted")
        assert store.manifest(row["id"])["notebook_source"] == "headless"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "lab.ipynb is not a notebook: not valid JSON"),
        (b'{"cells": []}', "lab.ipynb is not a notebook: no 'nbformat' version"),
        (
            b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}',
            "lab.ipynb is not a valid notebook",
        ),
    ],
)
def test_a_malformed_notebook_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "lab.ipynb").write_bytes(content)
    proc = dotnb("run", "lab.ipynb", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"dotnb: error: {message}")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / ".dotnb").exists()


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "fail.ipynb", tmp_path)
    proc = dotnb("run", "fail.ipynb", "-p", "lr=0.1", cwd=tmp_path)
    assert proc.returncode == 2 and "needs a cell tagged 'parameters'" in proc.stderr
    proc = dotnb("run", "fail.ipynb", "-p", "not a param", cwd=tmp_path)
    assert proc.returncode == 2 and "expected NAME=VALUE" in proc.stderr
    proc = dotnb("run", "missing.ipynb", cwd=tmp_path)
    assert proc.returncode == 2 and "no such notebook" in proc.stderr
    proc = dotnb("run", "fail.ipynb", "--kernel", "no-such-kernel", cwd=tmp_path)
    assert proc.returncode == 2 and "no kernel named 'no-such-kernel'" in proc.stderr
    proc = dotnb("reproduce", "latest", cwd=tmp_path)
    assert proc.returncode == 2 and "no runs recorded" in proc.stderr
    proc = dotnb("reproduce", "latest", "--json", cwd=tmp_path)
    assert proc.returncode == 2 and json.loads(proc.stdout)["verdict"] == "could not run"
    assert "Traceback" not in proc.stderr


def test_help_documents_run_and_reproduce() -> None:
    for command, words in {
        "run": ["-p NAME=VALUE", "--track-all", "--output", "--kernel", "--timeout", "--json", "exit status"],
        "reproduce": ["--rtol", "--atol", "--workdir", "--json", "0 reproduced; 1 something differs; 2"],
    }.items():
        out = ok(dotnb(command, "--help", cwd=REPO)).stdout
        assert f"examples:\n  dotnb {command}" in out
        for word in words:
            assert word in " ".join(out.split()), f"dotnb {command} --help lacks {word}"


# ---------------------------------------------------------------------------
# dotnb reproduce


def test_a_seeded_run_reproduces(lab: Lab, tmp_path: Path) -> None:
    work = tmp_path / "work"
    proc = ok(lab.reproduce("seeded", "--workdir", str(work)))
    original = lab.runs["seeded"]
    assert f"reproduces {original['id']}" in proc.stdout
    assert proc.stdout.splitlines()[2].split() == ["WHAT", "NAME", "ORIGINAL", "REPRODUCED", "VERDICT"]
    assert table_row(proc, "metric", "total").endswith("same")
    assert "reproducing run" in proc.stderr and "[4/4] %%track --name seeded" in proc.stderr
    # The new run is in the original store: linked, numbered there, valid.
    store = Store(lab.root)
    try:
        (row,) = [r for r in store.list_runs() if r["reproduces"] == original["id"]]
        again = store.manifest(row["id"])
        snapshot = store.objects.read_bytes(original["notebook_snapshot"]["hash"])
    finally:
        store.close()
    validate_manifest(again)
    assert again["reproduces"] == original["id"] and again["parent"] is None
    assert again["params"] == original["params"] and again["param_overrides"] == original["param_overrides"]
    assert again["number"] > max(m["number"] for m in lab.runs.values())
    assert [e["hash"] for e in again["outputs"]] == [e["hash"] for e in original["outputs"]]
    # --workdir keeps the work folder: the snapshot and the inputs at their paths, and the outputs.
    assert (work / "lab.ipynb").read_bytes() == snapshot
    measurements = (FIXTURES / "data" / "measurements.csv").read_bytes()
    assert (work / "data" / "measurements.csv").read_bytes() == measurements
    assert (work / "out" / "seeded.csv").is_file()
    proc = lab.reproduce("seeded", "--workdir", str(work))
    assert proc.returncode == 2 and "is not empty" in proc.stderr


def test_unseeded_randomness_shows_as_metric_drift(lab: Lab) -> None:
    proc = lab.reproduce("unseeded")
    assert proc.returncode == 1, proc.stderr
    assert "differs" in table_row(proc, "metric", "total")
    assert "unseeded randomness" in proc.stdout
    assert "differs: 1 of" in proc.stdout


def test_float_noise_in_tables_is_within_tolerance(lab: Lab) -> None:
    report = json.loads(ok(lab.reproduce("float-noise", "--json")).stdout)
    assert report["verdict"] == "reproduced"
    rows = {r["name"]: r for r in report["rows"] if r["kind"] == "output"}
    for path in ("out/noise.csv", "out/noise.parquet"):
        assert rows[path]["original"] != rows[path]["reproduced"]  # the bytes differ
        assert rows[path]["verdict"] == "within tolerance", rows[path]
    # With no tolerance the same two runs differ, and the detail names the column.
    store = Store(lab.root)
    try:
        reproduced = store.manifest(report["reproduction"])
        result = compare_runs(store, lab.runs["float-noise"], reproduced, Tolerance(0.0, 0.0))
    finally:
        store.close()
    rows = {r["name"]: r for r in result["rows"] if r["kind"] == "output"}
    assert not result["ok"]
    assert rows["out/noise.csv"]["verdict"] == "differs"
    assert "column 'weight'" in rows["out/noise.csv"]["detail"]


def test_a_changed_file_outside_the_root_is_named(lab: Lab) -> None:
    original = lab.external.read_text()
    try:
        lab.external.write_text(original + "one more line\n")
        proc = lab.reproduce("external")
    finally:
        lab.external.write_text(original)
    assert proc.returncode == 1, proc.stderr
    line = next(
        line for line in proc.stdout.splitlines() if line.startswith("external") and "outside" in line
    )
    assert "outside.txt" in line and "not stored" in line and "changed since the original run" in line
    assert "differs" in table_row(proc, "metric", "length")
    assert f"{lab.external} is not stored" in proc.stdout  # named among the causes


def test_an_environment_difference_is_named(lab: Lab) -> None:
    proc = lab.reproduce("versioned", site=lab.site_v2)
    assert proc.returncode == 1, proc.stderr
    assert "pkg:dotnbfake: 1.0 → 2.0" in proc.stdout
    assert "the environment differs: pkg:dotnbfake 1.0 → 2.0" in proc.stdout
    assert "differs" in table_row(proc, "metric", "factor")
    # The same change where the results do not depend on it: reproduced, the difference reported.
    report = json.loads(ok(lab.reproduce("seeded", "--json", site=lab.site_v2)).stdout)
    assert report["verdict"] == "reproduced" and report["exit_code"] == 0
    assert report["environment"] == {"pkg:dotnbfake": ["1.0", "2.0"]}
    assert report["run"] == lab.runs["seeded"]["id"] and report["reproduction"]
    verdicts = {(r["kind"], r["name"]): r["verdict"] for r in report["rows"]}
    assert verdicts[("metric", "total")] == "same"
    assert verdicts[("input", "data/measurements.csv")] == "same"
    assert verdicts[("output", "out/seeded.csv")] == "same"
    assert verdicts[("param", "scale")] == "same"
    assert report["tolerance"] == {"rtol": 1e-5, "atol": 1e-8}


def test_missing_or_corrupted_objects_cannot_run(lab: Lab, lab_copy: Path) -> None:
    seeded = lab.runs["seeded"]
    store = Store(lab_copy)
    input_object = store.objects.path_for(seeded["inputs"][0]["hash"])
    code_object = store.objects.path_for(seeded["lineage"][0]["code_hash"])
    store.close()
    input_object.chmod(0o644)
    input_object.write_bytes(b"name,value\na,666\n")
    proc = lab.reproduce("seeded", root=lab_copy)
    assert proc.returncode == 2
    assert "input 'data/measurements.csv' cannot be materialised" in proc.stderr
    assert "is corrupted (run `dotnb fsck`)" in proc.stderr
    input_object.unlink()
    proc = lab.reproduce("seeded", root=lab_copy)
    assert proc.returncode == 2 and "is missing from the store" in proc.stderr
    code_object.unlink()
    proc = lab.reproduce("seeded", "--json", root=lab_copy)
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert report["verdict"] == "could not run" and "lineage cell 1 of" in report["error"]
    assert "missing from the store" in report["error"]


def test_frames_close() -> None:
    import pandas as pd

    tol = Tolerance(rtol=1e-6, atol=0.0)
    a = pd.DataFrame({"x": [1.0, 2.0, float("nan")], "name": ["a", "b", None]})
    assert frames_close(a, a.assign(x=[1.0 + 1e-9, 2.0, float("nan")]), tol)[0]
    close, detail = frames_close(a, a.assign(x=[1.1, 2.0, float("nan")]), tol)
    assert not close and "column 'x' row 0" in detail
    assert not frames_close(a, a.assign(name=["a", "c", None]), tol)[0]
    assert not frames_close(a, a.rename(columns={"x": "y"}), tol)[0]
    assert not frames_close(a, a.iloc[:2], tol)[0]


# ---------------------------------------------------------------------------
# the Binder demo, as CI would run it


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "demo"
    root.mkdir()
    for name in ("train.ipynb", "evaluate.ipynb"):
        shutil.copy(DEMO / name, root)
    ok(dotnb_process("run", "train.ipynb", cwd=root))
    ok(dotnb("run", "evaluate.ipynb", "--output", "evaluated.ipynb", cwd=root))
    return root


def test_demo_notebooks_run_and_link_across_notebooks(demo: Path) -> None:
    runs = runs_by_name(demo)
    assert list(runs) == [
        "data",
        "baseline",
        "new-delivery",
        "retrained",
        "strong-regularisation",
        "evaluate",
    ]
    assert runs["baseline"]["metrics"]["accuracy"] != runs["retrained"]["metrics"]["accuracy"]
    assert runs["strong-regularisation"]["params"]["C"] == 0.01
    evaluate = runs["evaluate"]
    producer = runs["strong-regularisation"]["id"]
    assert {e["path"]: e.get("produced_by") for e in evaluate["inputs"]} == {
        "out/model.pkl": producer,
        "out/test.csv": producer,
    }
    # The notebook's own cells: the lineage shown, and `!dotnb reproduce` of the evaluate run.
    executed = nbformat.read(demo / "evaluated.ipynb", 4)
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert f"written by run {producer}" in text
    assert f"reproduces {evaluate['id']}" in text


def test_every_demo_run_reproduces(demo: Path) -> None:
    for name, manifest in runs_by_name(demo).items():
        proc = dotnb("reproduce", manifest["id"], "--json", cwd=demo)
        report = json.loads(proc.stdout)
        assert proc.returncode == 0, (name, report, proc.stderr)
        store = Store(demo)
        try:
            again = store.manifest(report["reproduction"])
        finally:
            store.close()
        # A reproduction reads the same bytes, so it links to the same producing runs.
        assert [e.get("produced_by") for e in again["inputs"]] == [
            e.get("produced_by") for e in manifest["inputs"]
        ]
