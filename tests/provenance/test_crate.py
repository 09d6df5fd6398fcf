"""dotnb export --format ro-crate and dotnb import: a crate checked by rocrate and runcrate,
imported into an empty store, and restored from byte for byte."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from rocrate.rocrate import ROCrate
from runcrate.report import dump_crate_actions

from dotnb.cli.app import main
from dotnb.provenance.crate import PROCESS_RUN_PROFILE, CrateInvalid, import_crate, write_crate
from dotnb.provenance.subject import subject_of
from dotnb.store.content_lineage import UPSTREAM, lineage_of_path
from dotnb.store.fsck import fsck
from dotnb.store.repo import Store
from dotnb.store.restore import restore
from tests.store.test_content_lineage import Pipeline, step


@pytest.fixture
def pipeline(tmp_path: Path) -> tuple[Store, Pipeline]:
    store = Store.init(tmp_path / "theirs")
    return store, Pipeline(store)


def test_the_crate_follows_the_process_run_profile(pipeline: tuple[Store, Pipeline], tmp_path: Path) -> None:
    store, p = pipeline
    out = write_crate(store, subject_of(store, path="report.json"), tmp_path / "crate", with_data=True)
    crate = ROCrate(str(out))
    conforms = crate.root_dataset["conformsTo"]
    assert PROCESS_RUN_PROFILE in [c.id for c in (conforms if isinstance(conforms, list) else [conforms])]
    actions = {a.id: a for a in crate.get_by_type("CreateAction")}
    assert set(actions) == {f"#run-{r}" for r in (p.prepare, p.train, p.evaluate)}
    train = actions[f"#run-{p.train}"]
    assert train["instrument"].id == f"runs/{p.train}/code.py"
    assert (out / f"runs/{p.train}/code.py").read_text() == "x = 1\n"
    assert train["agent"]["name"] == "tester@box"
    names = {o.get("name") for o in train["object"]}
    assert "work/train.csv" in names and "environment" in names
    assert [r["name"] for r in train["result"]] == ["models/model.pkl"]
    assert (out / train["result"][0].id).read_bytes() == b"MODEL"
    # runcrate reads every action with its instrument, inputs and outputs.
    report = io.StringIO()
    dump_crate_actions(crate, report)
    assert report.getvalue().count("action: #run-") == 3
    assert f"runs/{p.evaluate}/code.py" in report.getvalue()
    metadata = json.loads((out / "ro-crate-metadata.json").read_text())
    assert metadata["@context"].startswith("https://w3id.org/ro/crate/")


def test_without_data_the_files_are_described_not_copied(
    pipeline: tuple[Store, Pipeline], tmp_path: Path
) -> None:
    store, _ = pipeline
    out = write_crate(store, subject_of(store, path="report.json"), tmp_path / "crate")
    assert not (out / "data").exists()
    crate = ROCrate(str(out))
    files = {e.get("name") for e in crate.get_by_type("File")}
    assert {"raw/data.csv", "models/model.pkl", "report.json"} <= files


def test_a_crate_with_data_imports_into_an_empty_store_and_restores_byte_for_byte(
    pipeline: tuple[Store, Pipeline], tmp_path: Path
) -> None:
    store, p = pipeline
    theirs = store.root
    crate = tmp_path / "crate.zip"
    assert main(["--root", str(theirs), "export", str(theirs / "report.json"), "--format", "ro-crate",
                 "--with-data", "-o", str(crate)]) == 0  # fmt: skip
    assert zipfile.is_zipfile(crate)
    ours = Store.init(tmp_path / "ours")
    try:
        assert sorted(import_crate(ours, crate)) == sorted([p.prepare, p.train, p.evaluate])
        assert import_crate(ours, crate) == []  # already here
        assert fsck(ours)["ok"]
        # Lineage holds in the new store too, renamed file and all.
        graph = lineage_of_path(ours, "report.json", UPSTREAM)
        assert graph.runs() == sorted([p.prepare, p.train, p.evaluate])
        for run_id in (p.prepare, p.train, p.evaluate):
            restore(ours, run_id)
        for rel in ("raw/data.csv", "raw/test.csv", "work/train.csv", "models/model.pkl", "report.json"):
            assert (ours.root / rel).read_bytes() == (theirs / rel).read_bytes(), rel
        assert (ours.root / "work/clean.csv").read_bytes() == b"x,y\n1,2\n"
    finally:
        ours.close()


def test_import_refuses_what_dotnb_did_not_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store.init(tmp_path / "store")
    plain = tmp_path / "plain"
    crate = ROCrate()
    crate.write(str(plain))
    with pytest.raises(CrateInvalid):
        import_crate(store, plain)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("ro-crate-metadata.json", "{}")
        zf.writestr("../escape.txt", "x")
    with pytest.raises(Exception, match="path"):
        import_crate(store, evil)
    assert not (tmp_path / "escape.txt").exists()
    assert main(["--root", str(store.root), "import", str(tmp_path / "missing")]) == 2
    assert "no such crate" in capsys.readouterr().err
    step(store, "a.ipynb", [], {"x.csv": b"1"})
    store.close()
