"""Lineage over content: upstream and downstream of a file's bytes, from the index."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dotnb.store.content_lineage import (
    DOWNSTREAM,
    UPSTREAM,
    LineageNotFound,
    content_key,
    lineage_of_path,
    lineage_of_run,
    run_key,
)
from dotnb.store.errors import PathOutsideRoot
from dotnb.store.hashing import hash_bytes
from dotnb.store.layout import STORE_DIR
from dotnb.store.repo import Store
from dotnb.store.restore import restore
from dotnb.store.versions import INDEX_SCHEMA
from tests.manifests import new_manifest


def write(root: Path, rel: str, data: bytes) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)


def step(
    store: Store,
    notebook: str,
    reads: list[str],
    writes: dict[str, bytes],
    **fields: Any,
) -> str:
    """Record a run of ``notebook`` that read ``reads`` (as they are on disk) and wrote
    ``writes``, each input naming its producer as capture does."""
    inputs = store.snapshot_files(reads)
    for entry in inputs:
        producer = store.producer_of(entry["hash"])
        if producer:
            entry["produced_by"] = producer
    for rel, data in writes.items():
        write(store.root, rel, data)
    outputs = store.snapshot_files(sorted(writes))
    return str(store.commit_run(new_manifest(notebook, inputs=inputs, outputs=outputs, **fields))["id"])


class Pipeline:
    """prepare.ipynb → (rename) → train.ipynb → evaluate.ipynb."""

    def __init__(self, store: Store) -> None:
        root = store.root
        write(root, "raw/data.csv", b"x,y\n1,2\n3,4\n")
        write(root, "raw/test.csv", b"x,y\n5,6\n")
        self.prepare = step(store, "prepare.ipynb", ["raw/data.csv"], {"work/clean.csv": b"x,y\n1,2\n"})
        os.rename(root / "work/clean.csv", root / "work/train.csv")  # renamed between steps
        self.train = step(store, "train.ipynb", ["work/train.csv"], {"models/model.pkl": b"MODEL"})
        self.evaluate = step(
            store, "evaluate.ipynb", ["models/model.pkl", "raw/test.csv"], {"report.json": b'{"acc": 1}'}
        )
        self.raw = hash_bytes(b"x,y\n1,2\n3,4\n")
        self.test = hash_bytes(b"x,y\n5,6\n")
        self.clean = hash_bytes(b"x,y\n1,2\n")
        self.model = hash_bytes(b"MODEL")
        self.report = hash_bytes(b'{"acc": 1}')


def test_upstream_of_a_file_reaches_every_run_and_source_across_notebooks_and_a_rename(store: Store) -> None:
    p = Pipeline(store)
    graph = lineage_of_path(store, "report.json", UPSTREAM)
    assert graph.root == content_key(p.report)
    assert graph.runs() == sorted([p.prepare, p.train, p.evaluate])
    assert graph.contents() == sorted([p.raw, p.test, p.clean, p.model, p.report])
    nodes = graph.nodes
    # The renamed file is one content, known under both names.
    assert nodes[content_key(p.clean)]["paths"] == {"work/clean.csv", "work/train.csv"}
    assert nodes[content_key(p.clean)]["source"] is False
    assert nodes[content_key(p.raw)]["source"] is True
    assert nodes[content_key(p.test)]["source"] is True
    assert nodes[run_key(p.train)]["notebook"] == "train.ipynb"
    assert nodes[run_key(p.train)]["author"] == "tester@box"
    assert (content_key(p.clean), run_key(p.train), "used") in graph.edges
    assert (run_key(p.prepare), content_key(p.clean), "wasGeneratedBy") in graph.edges
    # The walk never went downstream: nothing read the report.
    assert all(b != run_key(p.evaluate) or a != content_key(p.report) for a, b, _ in graph.edges)


def test_downstream_of_a_source_file_lists_every_run_and_file_it_fed(store: Store) -> None:
    p = Pipeline(store)
    graph = lineage_of_path(store, "raw/data.csv", DOWNSTREAM)
    assert graph.runs() == sorted([p.prepare, p.train, p.evaluate])
    assert graph.contents() == sorted([p.raw, p.clean, p.model, p.report])
    # raw/test.csv fed evaluate but is not downstream of raw/data.csv.
    assert content_key(p.test) not in graph.nodes
    # The other source only reaches evaluate and its report.
    other = lineage_of_path(store, "raw/test.csv", DOWNSTREAM)
    assert other.runs() == [p.evaluate]
    assert other.contents() == sorted([p.test, p.report])


def test_depth_counts_runs_away_from_the_root_and_marks_where_it_stopped(store: Store) -> None:
    p = Pipeline(store)
    graph = lineage_of_path(store, "report.json", UPSTREAM, depth=1)
    assert graph.runs() == [p.evaluate]
    assert graph.contents() == sorted([p.model, p.test, p.report])
    assert graph.truncated == {content_key(p.model)}  # raw/test.csv has nothing above it
    assert lineage_of_path(store, "report.json", UPSTREAM, depth=0).runs() == []
    two = lineage_of_run(store, p.evaluate, UPSTREAM, depth=1)
    assert two.runs() == sorted([p.train, p.evaluate])


def test_lineage_of_a_run_goes_both_ways(store: Store) -> None:
    p = Pipeline(store)
    graph = lineage_of_run(store, p.train)
    assert graph.runs() == sorted([p.prepare, p.train, p.evaluate])
    assert content_key(p.test) not in graph.nodes  # an input of a downstream run, not lineage of train
    as_json = graph.to_json()
    assert as_json["root"] == run_key(p.train) and as_json["direction"] == "both"
    assert {e["relation"] for e in as_json["edges"]} == {"used", "wasGeneratedBy"}


def test_a_deleted_file_is_found_by_the_bytes_last_recorded_at_its_path(store: Store) -> None:
    p = Pipeline(store)
    (store.root / "report.json").unlink()
    assert lineage_of_path(store, "report.json", UPSTREAM).runs() == sorted([p.prepare, p.train, p.evaluate])
    with pytest.raises(LineageNotFound):
        lineage_of_path(store, "never.csv")


@pytest.mark.parametrize("rel", ["../outside.csv", "/etc/passwd", "a/../../b", "x\x00y"])
def test_a_path_outside_the_project_root_is_refused(store: Store, rel: str) -> None:
    with pytest.raises(PathOutsideRoot):
        lineage_of_path(store, rel)


def test_the_index_rows_are_the_same_after_a_rebuild(store: Store) -> None:
    p = Pipeline(store)
    before = lineage_of_path(store, "report.json").to_json()
    store.rebuild_index()
    assert lineage_of_path(store, "report.json").to_json() == before
    assert len(before["nodes"]) == 8 and p.prepare


def test_files_inside_folder_trees_keep_their_lineage(store: Store) -> None:
    files = {f"shards/part{i:03d}.csv": f"{i}\n".encode() for i in range(40)}
    make = step(store, "make.ipynb", [], files)
    assert any("tree" in e for e in store.manifest(make)["outputs"])  # recorded as a tree
    use = step(store, "use.ipynb", sorted(files), {"total.txt": b"780\n"})
    assert any("tree" in e for e in store.manifest(use)["inputs"])
    up = lineage_of_path(store, "total.txt", UPSTREAM)
    assert up.runs() == sorted([make, use])
    assert len(up.contents()) == 41  # each shard and the total, no folder node
    one = lineage_of_path(store, "shards/part007.csv", DOWNSTREAM)
    assert one.runs() == [use]
    assert one.nodes[content_key(hash_bytes(b"7\n"))]["paths"] == {"shards/part007.csv"}
    # Reading the folder again unchanged adds one row, not one per file.
    count = "SELECT (SELECT COUNT(*) FROM inputs), (SELECT COUNT(*) FROM tree_members)"
    before = tuple(store.index.query(count)[0])
    again = step(store, "use.ipynb", sorted(files), {"total.txt": b"780\n"})
    assert tuple(store.index.query(count)[0]) == (before[0] + 1, before[1]) == (before[0] + 1, 40)
    assert lineage_of_path(store, "shards/part007.csv", DOWNSTREAM).runs() == sorted([use, again])
    store.rebuild_index()
    assert lineage_of_path(store, "total.txt", UPSTREAM).runs() == sorted([make, use, again])
    assert lineage_of_path(store, "shards/part007.csv", DOWNSTREAM).runs() == sorted([use, again])
    # The same folder renamed is the same tree: its files keep their lineage under the new name.
    os.rename(store.root / "shards", store.root / "parts")
    moved = step(store, "use.ipynb", [f"parts/part{i:03d}.csv" for i in range(40)], {"t2.txt": b"780\n"})
    down = lineage_of_path(store, "parts/part007.csv", DOWNSTREAM)
    assert down.runs() == sorted([use, again, moved])
    assert "parts/part007.csv" in down.nodes[down.root]["paths"]
    up = lineage_of_run(store, moved, UPSTREAM)
    assert up.nodes[down.root]["paths"] == {"shards/part007.csv", "parts/part007.csv"}


def test_external_references_and_unstored_inputs_are_leaves(store: Store) -> None:
    write(store.root, "in.csv", b"1\n")
    unstored = {"path": "big.bin", "hash": None, "size": 10, "skipped": "too large"}
    inputs = [*store.snapshot_files(["in.csv"]), unstored]
    write(store.root, "out.csv", b"2\n")
    run = store.commit_run(
        new_manifest(
            inputs=inputs,
            outputs=store.snapshot_files(["out.csv"]),
            external_inputs=[{"path": "/srv/shared/lookup.parquet", "size": 5, "mtime_ns": 1}],
        )
    )["id"]
    graph = lineage_of_path(store, "out.csv", UPSTREAM)
    assert graph.runs() == [run]
    kinds = {n["id"]: n["type"] for n in graph.nodes.values()}
    assert kinds["external:/srv/shared/lookup.parquet"] == "external"
    assert kinds["unstored:big.bin"] == "unstored"


def test_checkpoints_keep_bytes_but_are_not_their_producers(store: Store) -> None:
    p = Pipeline(store)
    write(store.root, "report.json", b"edited by hand")
    restore(store, p.evaluate)  # checkpoints the edited report first
    checkpoints = store.index.query("SELECT id FROM runs WHERE kind='checkpoint'")
    assert checkpoints
    edited = hash_bytes(b"edited by hand")
    graph = lineage_of_run(store, p.evaluate, DOWNSTREAM)
    assert all(n.get("kind") != "checkpoint" for n in graph.nodes.values())
    assert content_key(edited) not in graph.nodes


def test_pulled_runs_join_the_graph_with_their_origin(tmp_path: Path) -> None:
    theirs = Store.init(tmp_path / "theirs")
    p = Pipeline(theirs)
    ours = Store.init(tmp_path / "ours")
    pulled = []
    for run_id in sorted([p.prepare, p.train, p.evaluate]):
        digest = theirs.manifest_hash(run_id)
        data = theirs.objects.read_bytes(digest)
        pulled.append((digest, data, theirs.manifest(run_id)))
    assert len(ours.import_runs(pulled, "team")) == 3
    graph = lineage_of_run(ours, p.evaluate, UPSTREAM)
    assert graph.runs() == sorted([p.prepare, p.train, p.evaluate])
    assert graph.nodes[run_key(p.prepare)]["remote"] == "team"


def test_an_index_of_the_previous_schema_is_rebuilt_with_the_lineage_rows(tmp_path: Path) -> None:
    store = Store.init(tmp_path)
    p = Pipeline(store)
    store.close()
    db = sqlite3.connect(tmp_path / STORE_DIR / "index.sqlite")
    db.executescript(
        "DROP TABLE inputs; DROP INDEX outputs_by_run; UPDATE meta SET value='4' WHERE key='index_schema';"
    )
    db.commit()
    db.close()
    again = Store(tmp_path)
    assert again.index.get_meta("index_schema") == INDEX_SCHEMA
    assert lineage_of_path(again, "report.json", UPSTREAM).runs() == sorted([p.prepare, p.train, p.evaluate])


def test_a_kernels_deferred_commit_writes_the_inputs_rows_in_its_one_statement(store: Store) -> None:
    write(store.root, "a.csv", b"a\n")
    first = step(store, "one.ipynb", [], {"a.csv": b"a\n"})
    store.reconcile()
    write(store.root, "b.csv", b"b\n")
    inputs = store.snapshot_files(["a.csv"])
    inputs[0]["produced_by"] = first
    manifest = new_manifest("two.ipynb", inputs=inputs, outputs=store.snapshot_files(["b.csv"]))
    second = store.commit_run(manifest, sync=False)["id"]
    rows = store.index.query("SELECT hash, path, produced_by FROM inputs WHERE run_id=?", (second,))
    assert [tuple(r) for r in rows] == [(hash_bytes(b"a\n"), "a.csv", first)]
    assert lineage_of_path(store, "b.csv", UPSTREAM).runs() == sorted([first, second])
    store.flush()


def test_content_nodes_say_whether_their_paths_still_hold_the_bytes(store: Store) -> None:
    p = Pipeline(store)
    write(store.root, "raw/data.csv", b"x,y\nedited\n")  # the source changed since
    (store.root / "report.json").unlink()
    nodes = {n["id"]: n for n in lineage_of_path(store, "models/model.pkl", UPSTREAM).to_json()["nodes"]}
    raw = nodes[content_key(p.raw)]
    assert raw["disk"] == {"raw/data.csv": "changed"} and raw["stale"] is True
    # Renamed: gone from the path it was written at, still at the one it was read at.
    clean = nodes[content_key(p.clean)]
    assert clean["disk"] == {"work/clean.csv": "missing", "work/train.csv": "same"}
    assert clean["stale"] is False
    assert nodes[content_key(p.model)]["disk"] == {"models/model.pkl": "same"}
    report = {n["id"]: n for n in lineage_of_run(store, p.evaluate).to_json()["nodes"]}[content_key(p.report)]
    assert report["disk"] == {"report.json": "missing"} and report["stale"] is False


def test_a_symlink_leading_out_of_the_project_is_not_the_recorded_file(
    store: Store, tmp_path_factory: pytest.TempPathFactory
) -> None:
    p = Pipeline(store)
    outside = tmp_path_factory.mktemp("elsewhere") / "outside.csv"
    outside.write_bytes(b"x,y\n1,2\n3,4\n")  # the same bytes, outside the root
    (store.root / "raw/data.csv").unlink()
    (store.root / "raw/data.csv").symlink_to(outside)
    nodes = {n["id"]: n for n in lineage_of_run(store, p.prepare, UPSTREAM).to_json()["nodes"]}
    assert nodes[content_key(p.raw)]["disk"] == {"raw/data.csv": "changed"}
