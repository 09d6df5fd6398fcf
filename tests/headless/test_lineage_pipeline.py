"""Lineage of a real three-notebook pipeline run headlessly (real kernels through
``dotnb run``): prepare → (a file renamed by hand) → train → evaluate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from dotnb.store.content_lineage import DOWNSTREAM, UPSTREAM, content_key, lineage_of_path
from dotnb.store.hashing import hash_bytes
from dotnb.store.repo import Store
from tests.headless.test_headless import dotnb, ok

pytestmark = pytest.mark.kernel

PREPARE = """%%track --name prepare
rows = open('raw/data.csv').read().splitlines()
import os
os.makedirs('work', exist_ok=True)
with open('work/clean.csv', 'w') as f:
    f.write('\\n'.join(r for r in rows if r.strip() and not r.startswith('#')) + '\\n')
"""
TRAIN = """%%track --name train
lr = 0.5
values = [int(v) for v in open('work/train.csv').read().split()]
import os
os.makedirs('models', exist_ok=True)
with open('models/model.txt', 'w') as f:
    f.write(str(sum(values) * lr))
"""
EVALUATE = """%%track --name evaluate
model = float(open('models/model.txt').read())
expected = float(open('raw/expected.txt').read())
import dotnb
dotnb.metric('error', abs(model - expected))
with open('report.json', 'w') as f:
    f.write('{"error": %s}' % abs(model - expected))
"""


def notebook(root: Path, name: str, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%load_ext dotnb"), nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, root / name)


def test_a_renamed_file_keeps_its_lineage_through_three_notebooks(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "data.csv").write_text("# numbers\n1\n2\n3\n")
    (tmp_path / "raw" / "expected.txt").write_text("3.0")
    for name, source in (("prepare.ipynb", PREPARE), ("train.ipynb", TRAIN), ("evaluate.ipynb", EVALUATE)):
        notebook(tmp_path, name, source)
    ok(dotnb("init", tmp_path, cwd=tmp_path))
    ok(dotnb("run", "prepare.ipynb", cwd=tmp_path))
    os.rename(tmp_path / "work" / "clean.csv", tmp_path / "work" / "train.csv")  # by hand, between steps
    ok(dotnb("run", "train.ipynb", cwd=tmp_path))
    ok(dotnb("run", "evaluate.ipynb", cwd=tmp_path))

    store = Store(tmp_path)
    try:
        runs = {r["name"]: r["id"] for r in store.list_runs()}
        assert set(runs) == {"prepare", "train", "evaluate"}
        clean = hash_bytes((tmp_path / "work" / "train.csv").read_bytes())
        raw = hash_bytes((tmp_path / "raw" / "data.csv").read_bytes())

        up = lineage_of_path(store, "report.json", UPSTREAM)
        assert up.runs() == sorted(runs.values())
        assert up.nodes[content_key(clean)]["paths"] == {"work/clean.csv", "work/train.csv"}
        assert up.nodes[content_key(raw)]["source"] is True
        assert {n["notebook"] for n in up.nodes.values() if n["type"] == "run"} == {
            "prepare.ipynb",
            "train.ipynb",
            "evaluate.ipynb",
        }
        # Capture named the producer of the renamed bytes too.
        train_inputs = store.manifest(runs["train"])["inputs"]
        assert [(e["path"], e.get("produced_by")) for e in train_inputs] == [
            ("work/train.csv", runs["prepare"])
        ]

        down = lineage_of_path(store, "raw/data.csv", DOWNSTREAM)
        assert down.runs() == sorted(runs.values())
        report = hash_bytes((tmp_path / "report.json").read_bytes())
        assert report in down.contents()
        # raw/expected.txt fed only the evaluation.
        assert lineage_of_path(store, "raw/expected.txt", DOWNSTREAM).runs() == [runs["evaluate"]]
    finally:
        store.close()

    text = ok(dotnb("lineage", "report.json", "--upstream", cwd=tmp_path)).stdout
    assert "work/clean.csv, work/train.csv" in text and "prepare.ipynb" in text
    doc = json.loads(ok(dotnb("lineage", "raw/data.csv", "--downstream", "--json", cwd=tmp_path)).stdout)
    assert content_key(report) in {n["id"] for n in doc["nodes"]}
