"""%%track end to end, through real ipykernel kernels and real files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from dotnb.store import Store
from dotnb.store.hashing import hash_bytes
from dotnb.store.manifest import canonical_json
from tests.capture.conftest import source_sees_native_reads
from tests.conftest import make_notebook, validate_manifest
from tests.kernel_client import Kernel

pytestmark = pytest.mark.kernel


def manifest_of(project: Path, run_id: str) -> dict[str, Any]:
    store = Store(project)
    try:
        doc = store.manifest(run_id)
    finally:
        store.close()
    validate_manifest(doc)
    return doc


def files(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["path"]: e for e in entries}


def stored_bytes(project: Path, digest: str) -> bytes:
    store = Store(project)
    try:
        return store.objects.read_bytes(digest)
    finally:
        store.close()


def test_tracked_cell_records_code_params_metrics_files_and_env(kernel: Kernel, project: Path) -> None:
    (project / "data").mkdir()
    (project / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n")
    kernel.ok("import pandas as pd\nhelper = 41")
    res = kernel.ok(
        "%%track --metrics acc --name first\n"
        'lr = 0.1\nlayers = [64, 32]\nname = "x"\n'
        'df = pd.read_csv("data/train.csv")\n'
        "acc = 0.93\n"
        'import os; os.makedirs("out", exist_ok=True)\n'
        'df.to_parquet("out/features.parquet")\n'
        "helper + 1\n"
    )
    # The cell behaves as without the magic: its last expression is displayed.
    assert res.results and res.results[0]["text/plain"] == "42"
    line = res.run_line
    assert line is not None and line.startswith("run #1 'first' · 1 input · 1 output")
    assert "lr=0.1" in line and "acc=0.93" in line
    bundle = res.run
    assert bundle is not None and bundle["inputs"] == ["data/train.csv"]
    m = manifest_of(project, bundle["id"])
    assert m["notebook"] == "analysis.ipynb" and m["notebook_source"] == "disk"
    assert m["params"] == {"lr": 0.1, "layers": [64, 32], "name": "x"}
    assert m["metrics"] == {"acc": 0.93}
    assert m["status"] == "ok" and m["error"] is None and m["name"] == "first"
    assert m["code"].startswith("%%track --metrics acc")
    ins, outs = files(m["inputs"]), files(m["outputs"])
    assert ins["data/train.csv"]["hash"] == hash_bytes(b"x,y\n1,2\n3,4\n")
    parquet = (project / "out" / "features.parquet").read_bytes()
    assert outs["out/features.parquet"]["hash"] == hash_bytes(parquet)
    assert stored_bytes(project, outs["out/features.parquet"]["hash"]) == parquet
    # Lineage: every cell since the kernel started, tracked or not, in order.
    lineage = m["lineage"]
    assert [c["tracked"] for c in lineage] == [False, False, True]
    codes = [stored_bytes(project, c["code_hash"]).decode() for c in lineage]
    assert codes[0] == "%load_ext dotnb" and codes[1].startswith("import pandas")
    env = m["environment"]
    assert env["python"].count(".") >= 2 and env["host"] and env["user"]
    dists = json.loads(stored_bytes(project, env["distributions"]))
    assert any(d["name"] == "pandas" for d in dists)
    snap = stored_bytes(project, m["notebook_snapshot"]["hash"])
    source = json.loads(snap)["cells"][0]["source"]
    assert "".join(source) == "%load_ext dotnb"


def test_notebook_snapshot_follows_each_save(kernel: Kernel, project: Path) -> None:
    """The snapshot of an unchanged notebook is reused without reading it (nor, while
    nothing changes in its folder, stat-ing it); any save shows in the next run:
    replaced by rename (as Jupyter saves), written in place, deleted."""
    nb = project / "analysis.ipynb"
    old = 1_000_000_000.0  # long past the racily-clean window

    def save(cells: list[str], in_place: bool = False) -> None:
        if in_place:
            make_notebook(nb, cells)
        else:
            make_notebook(project / ".analysis.tmp", cells)
            os.replace(project / ".analysis.tmp", nb)
        os.utime(nb, (old, old))

    def snapshot_source() -> str:
        run = kernel.ok("%%track\nx = 1").run
        assert run is not None
        snap = manifest_of(project, run["id"])["notebook_snapshot"]
        if "unavailable" in snap:
            return f"unavailable: {snap['unavailable']}"
        return "".join(json.loads(stored_bytes(project, snap["hash"]))["cells"][0]["source"])

    save(["first"])
    assert [snapshot_source() for _ in range(3)] == ["first"] * 3
    save(["second"])
    assert [snapshot_source() for _ in range(2)] == ["second"] * 2
    (project / "data.csv").write_text("a\n")  # another file in its folder: looked at again
    assert snapshot_source() == "second"
    save(["third"], in_place=True)
    assert [snapshot_source() for _ in range(2)] == ["third"] * 2
    kernel.ok("import os; os.replace('analysis.ipynb', 'moved.ipynb')")  # by the kernel itself
    assert snapshot_source() == "unavailable: missing"
    save(["fourth"])
    assert snapshot_source() == "fourth"


def test_notebook_snapshot_after_its_folder_is_replaced(tmp_path: Path) -> None:
    """The folder holding the notebook moves away and a new one takes its path: the
    watch that followed the old folder says nothing about the new one."""
    project = tmp_path / "proj"
    (project / ".dotnb").mkdir(parents=True)
    nb = make_notebook(project / "nbs" / "a.ipynb", ["old"])
    os.utime(nb, (1e9, 1e9))
    kernel = Kernel(project, nb, {"DOTNB_ROOT": str(project)})
    try:
        kernel.ok("%load_ext dotnb")

        def snapshot_source() -> str:
            run = kernel.ok("%%track\nx = 1").run
            assert run is not None
            snap = manifest_of(project, run["id"])["notebook_snapshot"]
            return "".join(json.loads(stored_bytes(project, snap["hash"]))["cells"][0]["source"])

        assert [snapshot_source() for _ in range(3)] == ["old"] * 3
        (project / "nbs").rename(project / "nbs-before")
        make_notebook(project / "nbs" / "a.ipynb", ["new"])
        os.utime(project / "nbs" / "a.ipynb", (1e9, 1e9))
        assert [snapshot_source() for _ in range(2)] == ["new"] * 2
    finally:
        kernel.shutdown()


def test_lineage_of_successive_runs_is_canonical_and_names_earlier_runs(
    kernel: Kernel, project: Path
) -> None:
    """Stored manifests are canonical; each lineage names the runs of earlier cells."""
    from dotnb.store.manifest import canonical_json

    runs = []
    for i in range(4):
        kernel.ok(f"a{i} = {i}")
        runs.append(kernel.ok(f"%%track\nb{i} = {i}\n").run["id"])  # type: ignore[index]
        kernel.execute("1 / 0")
    store = Store(project)
    try:
        for n, run_id in enumerate(runs):
            data = store.objects.read_bytes(store.manifest_hash(run_id))
            doc = json.loads(data)
            assert data == canonical_json(doc)  # the stored bytes are the canonical form
            validate_manifest(doc)
            lineage = doc["lineage"]
            assert len(lineage) == 3 + 3 * n  # %load_ext, then a, b, 1 / 0 per round
            assert [c.get("run") for c in lineage if c["tracked"]] == [*runs[:n], None]
            assert [c.get("status") for c in lineage].count("error") == n
            codes = [store.objects.read_bytes(c["code_hash"]).decode() for c in lineage]
            assert codes[-1] == f"%%track\nb{n} = {n}\n"
    finally:
        store.close()


def test_long_session_keeps_lineage_in_shared_segments(kernel: Kernel, project: Path) -> None:
    """Past SEGMENT_CELLS cells the lineage moves into segment objects written once per
    kernel: every run still reads back the whole lineage, and manifests stay small."""
    from dotnb.store.lineage import SEGMENT_CELLS, own_cells, segment_refs

    runs = []
    for i in range(3 * SEGMENT_CELLS + 5):
        if i % 20 == 19:
            runs.append(kernel.ok(f"%%track\nc{i} = {i}\n").run["id"])  # type: ignore[index]
        else:
            kernel.ok(f"c{i} = {i}")
    store = Store(project)
    try:
        seen: dict[int, str] = {}
        for run_id in runs:
            doc = store.manifest(run_id)
            validate_manifest(doc)
            # The session splices the lineage's JSON, kept from run to run, into the
            # manifest's: the result must still be the one canonical encoding.
            data = store.objects.read_bytes(store.manifest_hash(run_id))
            assert data == canonical_json(json.loads(data))
            lineage = store.lineage(doc, strict=True)
            codes = [c.get("code") or store.objects.read_bytes(c["code_hash"]).decode() for c in lineage]
            assert codes[0] == "%load_ext dotnb"
            assert [c["execution_count"] for c in lineage] == list(range(1, len(lineage) + 1))
            assert lineage[-1]["tracked"] and "run" not in lineage[-1]
            tail = own_cells(doc["lineage"])
            assert 1 <= len(tail) <= SEGMENT_CELLS
            for n, ref in enumerate(segment_refs(doc["lineage"])):
                assert seen.setdefault(n, ref["hash"]) == ref["hash"]  # written once, shared
            for cell, code in list(zip(lineage, codes, strict=True))[1:]:
                number = cell["execution_count"] - 2
                assert code.endswith(f"c{number} = {number}" + ("\n" if cell["tracked"] else ""))
        last = store.manifest(runs[-1])
        assert len(segment_refs(last["lineage"])) == 3
        assert [c.get("run") for c in store.lineage(last) if c["tracked"]] == [*runs[:-1], None]
        assert len(store.objects.read_bytes(store.manifest_hash(runs[-1]))) < 8000
    finally:
        store.close()


def test_param_override_and_metric_series(kernel: Kernel, project: Path) -> None:
    res = kernel.ok(
        "%%track --param lr=0.3 --param opt=adam\n"
        "import dotnb\n"
        "lr = 0.1\n"
        "seen = lr\n"
        "k = dotnb.param('k', 5)\n"
        "for step in range(3):\n"
        "    dotnb.metric('loss', 1.0 / (step + 1), step=step)\n"
    )
    assert kernel.ok("print(seen, opt, k)").stdout.strip() == "0.3 adam 5"
    line = res.run_line or ""
    assert "lr=0.3 (--param, overriding lr = 0.1)" in line
    m = manifest_of(project, res.run["id"])  # type: ignore[index]
    assert m["params"] == {"lr": 0.3, "opt": "adam", "k": 5}
    assert m["param_overrides"] == ["lr", "opt"]
    series = m["metric_series"]["loss"]
    assert [p["step"] for p in series] == [0, 1, 2]
    assert m["metrics"]["loss"] == pytest.approx(1 / 3)


def test_failing_cell_reraises_and_records_error(kernel: Kernel, project: Path) -> None:
    res = kernel.execute("%%track\nx = 1\nraise ValueError('bad data')\n")
    assert res.status == "error"
    assert res.error is not None and res.error["ename"] == "ValueError"
    assert res.error["evalue"] == "bad data"
    m = manifest_of(project, res.run["id"])  # type: ignore[index]
    assert m["status"] == "error"
    assert m["error"] == {"type": "ValueError", "message": "bad data"}
    # Bad %%track options are a usage error, and the cell body does not run.
    bad = kernel.execute("%%track --bogus\nran = True\n")
    assert bad.status == "error" and "unrecognized arguments: --bogus" in bad.stderr
    assert "NameError" in (kernel.execute("ran").error or {}).get("ename", "")


IO_CELL = r"""%%track
import numpy as np, pyarrow.parquet as pq, sqlite3, subprocess, pathlib
with open("plain.txt") as f: f.read()
pathlib.Path("written.txt").write_text("new")
np.save("arr_out.npy", np.load("arr.npy") * 2)
pq.read_table("table.parquet")
con = sqlite3.connect("db.sqlite"); con.execute("select * from t").fetchall(); con.close()
subprocess.run("cat sub_in.txt > sub_out.txt", shell=True, check=True)
get_ipython().system("sort bang_in.txt > bang_out.txt")
with open("rw.txt") as f: old = f.read()
with open("rw.txt", "w") as f: f.write(old.upper())
with open("tmp_scratch.txt", "w") as f: f.write("gone")
import os; os.remove("tmp_scratch.txt")
open(".hidden/secret.txt").read(); open("ignored/x.txt").read(); open("skip.log").read()
"""


def test_detects_python_native_and_subprocess_io(kernel: Kernel, project: Path) -> None:
    import sqlite3

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    (project / "plain.txt").write_text("plain")
    np.save(project / "arr.npy", np.arange(4))
    pq.write_table(pa.table({"a": [1, 2]}), project / "table.parquet")
    con = sqlite3.connect(project / "db.sqlite")
    con.execute("create table t(x)")
    con.commit()
    con.close()
    (project / "sub_in.txt").write_text("sub")
    (project / "bang_in.txt").write_text("b\na\n")
    (project / "rw.txt").write_text("before")
    (project / ".hidden").mkdir()
    (project / ".hidden" / "secret.txt").write_text("s")
    (project / "ignored").mkdir()
    (project / "ignored" / "x.txt").write_text("x")
    (project / "skip.log").write_text("log")
    (project / ".dotnbignore").write_text("ignored/\n*.log\n")
    res = kernel.ok(IO_CELL)
    m = manifest_of(project, res.run["id"])  # type: ignore[index]
    ins, outs = files(m["inputs"]), files(m["outputs"])
    # pyarrow's and the subprocesses' reads come only as read events.
    native = ["table.parquet", "sub_in.txt", "bang_in.txt"]
    for path in ["plain.txt", "arr.npy", "db.sqlite", "rw.txt", *native]:
        assert (path in ins) is (path not in native or source_sees_native_reads()), (path, sorted(ins))
    for path in ["written.txt", "arr_out.npy", "sub_out.txt", "bang_out.txt", "rw.txt"]:
        assert path in outs, (path, sorted(outs))
    for path in ["written.txt", "arr_out.npy", "sub_out.txt", "bang_out.txt"]:
        assert path not in ins, f"{path} was only written, not read"
    for path in [".hidden/secret.txt", "ignored/x.txt", "skip.log", "tmp_scratch.txt", "analysis.ipynb"]:
        assert path not in ins and path not in outs
    # Read then overwritten: the input keeps the bytes from before the write.
    assert ins["rw.txt"]["hash"] == hash_bytes(b"before") and ins["rw.txt"].get("pre_write")
    assert outs["rw.txt"]["hash"] == hash_bytes(b"BEFORE")
    assert stored_bytes(project, ins["rw.txt"]["hash"]) == b"before"
    assert outs["bang_out.txt"]["hash"] == hash_bytes(b"a\nb\n")


def test_untracked_cells_are_not_runs_and_track_all(kernel: Kernel, project: Path) -> None:
    kernel.ok("open('a.txt', 'w').write('a')")
    assert not (project / ".dotnb").exists()  # nothing tracked yet: no store was made
    store = Store.init(project)
    kernel.ok("%dotnb track all")
    r1 = kernel.ok("open('b.txt', 'w').write('b')")
    r2 = kernel.ok("x = 2")
    assert r1.run is not None and r1.run["outputs"] == ["b.txt"]
    assert r2.run is not None and r2.run["number"] == 2
    status = kernel.ok("%dotnb status").stdout
    assert "every cell" in status and str(project / ".dotnb") in status
    kernel.ok("%dotnb track off")
    assert kernel.ok("y = 3").run is None
    assert len(store.list_runs()) == 2
    store.close()


def test_declared_inputs_outputs_and_globs(kernel: Kernel, project: Path) -> None:
    (project / "shards").mkdir()
    for i in range(3):
        (project / "shards" / f"s{i}.bin").write_bytes(bytes([i]) * 10)
    (project / "model.bin").write_bytes(b"model")
    res = kernel.ok("%%track --input 'shards/*.bin'\nimport dotnb\ndotnb.output('model.bin')\n")
    m = manifest_of(project, res.run["id"])  # type: ignore[index]
    ins, outs = files(m["inputs"]), files(m["outputs"])
    assert sorted(ins) == ["shards/s0.bin", "shards/s1.bin", "shards/s2.bin"]
    assert all(e.get("declared") for e in ins.values())
    assert outs["model.bin"]["hash"] == hash_bytes(b"model")


def test_two_kernels_track_into_one_store(project: Path) -> None:
    make_notebook(project / "other.ipynb")
    k1 = Kernel(project, project / "analysis.ipynb")
    k2 = Kernel(project, project / "other.ipynb")
    try:
        for k in (k1, k2):
            k.ok("%load_ext dotnb")
        code = "%%track\nfor i in range(20):\n    open(f'f{i % 3}.txt', 'w').write(str(i))\n"
        for _ in range(5):
            ids1 = k1.kc.execute(code)
            ids2 = k2.kc.execute(code)
            assert ids1 and ids2
        # Wait for both kernels to finish their queues.
        k1.ok("1")
        k2.ok("1")
    finally:
        k1.shutdown()
        k2.shutdown()
    store = Store(project)
    a = store.list_runs(notebook="analysis.ipynb")
    b = store.list_runs(notebook="other.ipynb")
    assert sorted(r["number"] for r in a) == [1, 2, 3, 4, 5]
    assert sorted(r["number"] for r in b) == [1, 2, 3, 4, 5]
    from dotnb.store.fsck import fsck

    assert fsck(store)["ok"]


def test_two_kernels_and_a_crashed_writer_number_one_notebook_uniquely(project: Path) -> None:
    """A kernel numbers its next run from the last number it knows, without a query: a
    run numbered meanwhile by another kernel on the same notebook, or a ref another
    process left without its index row (it crashed before its commit), is noticed by
    the commit (the ref through the kernel's watch on runs/, without a stat)."""
    from dotnb.store.ids import new_run_id
    from dotnb.store.versions import FORMAT_VERSION
    from tests.manifests import new_manifest

    k1 = Kernel(project, project / "analysis.ipynb")
    k2 = Kernel(project, project / "analysis.ipynb")
    try:
        for k in (k1, k2):
            k.ok("%load_ext dotnb")

        def track(k: Kernel) -> int:
            run = k.ok("%%track\nx = 1").run
            assert run is not None
            return int(run["number"])

        numbers = [track(k1 if i % 3 else k2) for i in range(6)]
        store = Store(project)
        orphan = new_manifest("analysis.ipynb", id=new_run_id(), number=7, format=FORMAT_VERSION)
        digest = store.objects.put_bytes(canonical_json(orphan))[0]
        (store.runs_dir / orphan["id"]).write_text(digest + "\n")
        numbers += [track(k1), track(k2)]
    finally:
        k1.shutdown()
        k2.shutdown()
    assert numbers == [1, 2, 3, 4, 5, 6, 8, 9]
    runs = Store(project).list_runs(notebook="analysis.ipynb")
    assert sorted(r["number"] for r in runs) == list(range(1, 10))


def test_run_line_follows_the_cells_own_output(kernel: Kernel) -> None:
    """The run line is sent without waiting for the IOPub thread, yet after the cell's prints."""
    assert_run_line_comes_last(kernel)
    assert (
        kernel.ok("from dotnb.capture import ipykernel_adapter as a; print(a.last_route)").stdout
        == "events\n"
    )


@pytest.mark.parametrize(
    ("private_name", "route"),
    [("PUBLISHER_HOOKS", "display"), ("STREAM_FLUSH", "display"), ("THREAD_EVENTS", "schedule")],
)
def test_run_line_follows_the_output_without_ipykernel_internals(
    kernel: Kernel, private_name: str, route: str
) -> None:
    """An ipykernel without one of the private attributes the run line relies on (the
    adapter is made to look for a name that does not exist): the public path instead,
    and the run line still comes after the cell's own output."""
    kernel.ok(f"from dotnb.capture import ipykernel_adapter as a\na.{private_name} = '_dotnb_absent'")
    assert_run_line_comes_last(kernel)
    assert kernel.ok("print(a.last_route)").stdout == f"{route}\n"


def assert_run_line_comes_last(kernel: Kernel) -> None:
    code = (
        "%%track\nimport sys\n"
        "for i in range(40):\n"
        "    print('out', i)\n"
        "    print('err', i, file=sys.stderr)\n"
        "    if i == 20:\n"
        "        display('shown')\n"
    )
    for _ in range(3):
        msg_id = kernel.kc.execute(code)
        seen: list[tuple[str, dict[str, Any]]] = []
        while True:
            msg = kernel.kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            seen.append((msg["msg_type"], msg["content"]))
        while kernel.kc.get_shell_msg(timeout=60)["parent_header"].get("msg_id") != msg_id:
            pass
        run_at = [
            i
            for i, (kind, content) in enumerate(seen)
            if kind == "display_data" and "application/vnd.dotnb.run+json" in content["data"]
        ]
        streams = [i for i, (kind, _) in enumerate(seen) if kind == "stream"]
        assert len(run_at) == 1 and streams and max(streams) < run_at[0] == len(seen) - 1
        for name in ("stdout", "stderr"):
            text = "".join(c["text"] for k, c in seen if k == "stream" and c["name"] == name)
            assert text.splitlines() == [f"{name[3:]} {i}" for i in range(40)]
    assert kernel.ok("print('after')").stdout == "after\n"


def test_store_failure_never_breaks_the_cell(kernel: Kernel, project: Path) -> None:
    kernel.ok("%%track\nx = 1\n")
    objects = project / ".dotnb" / "objects"
    runs = project / ".dotnb" / "runs"
    if os.geteuid() == 0:
        # root ignores permissions: make the store unwritable by replacing a folder with a file.
        os.rename(runs, project / "runs-moved")
        runs.write_text("not a folder")
    else:
        os.chmod(objects, 0o555)
        os.chmod(runs, 0o555)
    res = kernel.execute("%%track\nresult = 6 * 7\nresult\n")
    assert res.status == "ok" and res.results[0]["text/plain"] == "42"
    assert "could not be recorded" in res.stderr and res.run is None
    assert kernel.ok("print(result)").stdout.strip() == "42"


def test_restore_via_cli_after_kernel_runs(kernel: Kernel, project: Path) -> None:
    from dotnb.store.restore import restore

    kernel.ok("%%track\nopen('model.txt', 'w').write('v1')\n")
    second = kernel.ok("%%track\nopen('model.txt', 'w').write('v2 longer')\n")
    store = Store(project)
    first_id = store.resolve("#1", notebook="analysis.ipynb")
    result = restore(store, first_id, notebook=False)
    assert (project / "model.txt").read_text() == "v1"
    undo = restore(store, result["checkpoint"])
    assert (project / "model.txt").read_text() == "v2 longer"
    assert undo["checkpoint"] and second.run is not None


def test_input_links_to_the_run_that_produced_it(project: Path) -> None:
    make_notebook(project / "prepare.ipynb")
    make_notebook(project / "train.ipynb")
    producer = Kernel(project, project / "prepare.ipynb")
    consumer = Kernel(project, project / "train.ipynb")
    try:
        producer.ok("%load_ext dotnb")
        made = producer.ok("%%track\nopen('features.csv', 'w').write('f\\n1\\n')\n")
        consumer.ok("%load_ext dotnb")
        used = consumer.ok("%%track\nrows = open('features.csv').read()\n")
    finally:
        producer.shutdown()
        consumer.shutdown()
    m = manifest_of(project, used.run["id"])  # type: ignore[index]
    assert m["inputs"][0]["produced_by"] == made.run["id"]  # type: ignore[index]


def run_id(result: Any) -> str:
    assert result.run is not None
    return str(result.run["id"])


def test_a_folder_of_many_files_is_recorded_as_a_tree_and_restored_from_it(
    kernel: Kernel, project: Path
) -> None:
    data = {f"images/{c}/{i:03d}.bin": os.urandom(64) for c in ("cats", "dogs") for i in range(40)}
    for rel, blob in data.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_bytes(blob)
    reader = (
        "%%track\nimport os\ntotal = 0\n"
        "for folder, _, names in os.walk('images'):\n"
        "    for n in names:\n"
        "        total += len(open(os.path.join(folder, n), 'rb').read())\n"
    )
    first = kernel.ok(reader)
    assert first.run_line is not None and first.run_line.startswith("run #1 · 80 inputs")
    doc = manifest_of(project, run_id(first))
    assert doc["inputs"] == [
        {"path": "images", "tree": doc["inputs"][0]["tree"], "files": 80, "size": 80 * 64}
    ]
    # Nothing changed: the same tree, the same manifest entry.
    again = manifest_of(project, run_id(kernel.ok(reader)))
    assert again["inputs"] == doc["inputs"]
    # One file changed: a new tree; the run's files read back byte for byte on restore.
    (project / "images/dogs/007.bin").write_bytes(b"new bytes")
    third = manifest_of(project, run_id(kernel.ok(reader)))
    assert third["inputs"][0]["tree"] != doc["inputs"][0]["tree"]
    store = Store(project)
    try:
        from dotnb.comparison.diff import diff_runs
        from dotnb.store.restore import restore

        assert diff_runs(store, doc["id"], third["id"])["inputs"] == {
            "images/dogs/007.bin": [hash_bytes(data["images/dogs/007.bin"]), hash_bytes(b"new bytes")]
        }
        restore(store, doc["id"], notebook=False)
    finally:
        store.close()
    assert {rel: (project / rel).read_bytes() for rel in data} == data


def test_a_kernel_started_as_vs_code_starts_one(tmp_path: Path) -> None:
    """VS Code's Jupyter extension starts a plain ipykernel (no JPY_SESSION_NAME: no
    jupyter_server) and tells it its notebook by setting ``__vsc_ipynb_file__`` in the
    namespace.  The run names that notebook, snapshots it from disk, captures native
    and subprocess writes, and the run line has a plain-text form for front ends
    without dotnb's renderer."""
    project = tmp_path / "proj"
    (project / ".dotnb").mkdir(parents=True)
    nb = make_notebook(project / "analysis" / "churn.ipynb", ["import pandas"])
    os.utime(nb, (1e9, 1e9))
    kernel = Kernel(project, None)
    try:
        assert "JPY_SESSION_NAME" not in kernel.ok("import os; print(sorted(os.environ))").stdout
        kernel.ok(f"__vsc_ipynb_file__ = {str(nb)!r}")
        kernel.ok("%load_ext dotnb")
        res = kernel.ok(
            "%%track\nimport subprocess, pyarrow as pa, pyarrow.parquet as pq\n"
            "pq.write_table(pa.table({'x': [1]}), 'features.parquet')\n"
            "subprocess.run('echo done > log.txt', shell=True, check=True)\n"
        )
        assert res.run is not None
        assert res.run_line is not None and res.run_line.startswith("run #1")  # the text/plain form
        manifest = manifest_of(project, res.run["id"])
        assert manifest["notebook"] == "analysis/churn.ipynb"
        snap = stored_bytes(project, manifest["notebook_snapshot"]["hash"])
        assert snap == nb.read_bytes()
        assert sorted(files(manifest["outputs"])) == ["features.parquet", "log.txt"]
    finally:
        kernel.shutdown()


def test_a_folder_read_again_unchanged_is_taken_whole_and_stays_exact(kernel: Kernel, project: Path) -> None:
    """Re-runs over an unchanged folder take its files from what the kernel knows, a
    folder at a time: the tree is the same; a file added, a file declared, a file
    changed each show exactly as they would file by file."""
    data = {f"frames/{i:03d}.bin": os.urandom(32) for i in range(60)}
    for rel, blob in data.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_bytes(blob)
    reader = (
        "import os\n"
        "for n in sorted(os.listdir('frames')):\n"
        "    open(os.path.join('frames', n), 'rb').read()\n"
    )
    runs = [manifest_of(project, run_id(kernel.ok("%%track\n" + reader))) for _ in range(3)]
    assert runs[0]["inputs"] == runs[1]["inputs"] == runs[2]["inputs"]
    assert runs[2]["inputs"][0]["files"] == 60
    # Declared as well as read: its own entry, flagged, and not in the tree twice.
    declared = manifest_of(project, run_id(kernel.ok("%%track --input frames/005.bin\n" + reader)))
    by_path = files(declared["inputs"])
    assert by_path["frames/005.bin"]["declared"] is True
    assert by_path["frames"]["files"] == 59
    # A file added: the folder changed, and the new file is in the tree.
    (project / "frames/zzz.bin").write_bytes(b"late")
    added = manifest_of(project, run_id(kernel.ok("%%track\n" + reader)))
    assert files(added["inputs"])["frames"]["files"] == 61
    # Unchanged again, then one file rewritten in place by another process.
    kernel.ok("%%track\n" + reader)
    (project / "frames/010.bin").write_bytes(b"changed")
    changed = manifest_of(project, run_id(kernel.ok("%%track\n" + reader)))
    store = Store(project)
    try:
        got = {e["path"]: e["hash"] for e in store.files(changed, "inputs")}
    finally:
        store.close()
    assert got["frames/010.bin"] == hash_bytes(b"changed")
    assert got["frames/zzz.bin"] == hash_bytes(b"late")
    assert len(got) == 61
