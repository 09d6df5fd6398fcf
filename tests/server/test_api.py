"""The REST API against a real jupyter_server, with runs recorded by real kernels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

from dotnb.store import Store
from dotnb.store.manifest import FORMAT_VERSION
from tests.manifests import new_manifest


async def test_version_and_runs_listing(api: Any, jp_root_dir: Path) -> None:
    version = await api("version")
    assert version["api"] == 1 and version["store_format"] == FORMAT_VERSION
    store = Store(jp_root_dir)
    ids = [store.commit_run(new_manifest("nb.ipynb", metrics={"acc": a}))["id"] for a in (0.5, 0.9, 0.95)]
    store.commit_run(new_manifest("other.ipynb"))
    page = await api("runs", params={"notebook": "nb.ipynb", "limit": "2"})
    assert [r["id"] for r in page["runs"]] == [ids[2], ids[1]] and page["next"] == ids[1]
    rest = await api("runs", params={"notebook": "nb.ipynb", "before": page["next"]})
    assert [r["id"] for r in rest["runs"]] == [ids[0]] and rest["next"] is None
    good = await api("runs", params={"metric": "acc>0.9"})
    assert [r["id"] for r in good["runs"]] == [ids[2]]
    one = await api("runs", "#1", params={"notebook": "nb.ipynb"})
    assert one["id"] == ids[0]
    with pytest.raises(HTTPClientError) as err:
        await api("runs", "#1")
    assert err.value.code == 409 and "several notebooks" in json.loads(err.value.response.body)["message"]
    with pytest.raises(HTTPClientError) as err:
        await api("runs", "nope")
    assert err.value.code == 404
    with pytest.raises(HTTPClientError) as err:
        await api("runs", params={"metric": "acc>>1"})
    assert err.value.code == 400


async def test_diff_metrics_files_snapshot_and_restore(api: Any, jp_root_dir: Path) -> None:
    store = Store(jp_root_dir)
    data = jp_root_dir / "data.csv"
    nb_path = jp_root_dir / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), str(nb_path))
    data.write_text("a\n1\n")
    first = store.commit_run(
        new_manifest(
            "nb.ipynb",
            outputs=store.snapshot_files(["data.csv"]),
            metrics={"loss": 0.5},
            metric_series={"loss": [{"step": 1, "value": 0.7}, {"step": 2, "value": 0.5}]},
            params={"lr": 0.1},
        )
    )
    data.write_text("a\n2\n")
    second = store.commit_run(
        new_manifest(
            "nb.ipynb", outputs=store.snapshot_files(["data.csv"]), metrics={"loss": 0.4}, params={"lr": 0.2}
        )
    )
    diff = await api("runs", first["id"], "diff", second["id"])
    assert diff["params"] == {"lr": [0.1, 0.2]} and "data.csv" in diff["outputs"]
    values = await api("metrics", params={"notebook": "nb.ipynb", "name": "loss"})
    assert [v["value"] for v in values["values"]] == [0.5, 0.4]
    series = await api("metrics", params={"run": first["id"], "name": "loss"})
    assert [p["step"] for p in series["series"]] == [1, 2]
    # The live notebook model (unsaved edits included) replaces the disk snapshot, once.
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('unsaved edit')")]
    attached = await api("runs", first["id"], "notebook", method="POST", body={"notebook": nb})
    assert attached["notebook_source"] == "frontend"
    assert store.manifest(first["id"])["notebook_source"] == "frontend"
    with pytest.raises(HTTPClientError) as err:
        await api("runs", first["id"], "notebook", method="POST", body={"notebook": nb})
    assert err.value.code == 409
    with pytest.raises(HTTPClientError) as err:
        await api("runs", second["id"], "notebook", method="POST", body={"notebook": {"cells": 3}})
    assert err.value.code == 400
    with pytest.raises(HTTPClientError) as err:
        await api("runs", second["id"], "notebook", method="POST", body="{not json")
    assert err.value.code == 400
    plan = await api("runs", first["id"], "restore", method="POST", body={"dry_run": True})
    assert plan["checkpoint"] is None and data.read_text() == "a\n2\n"
    done = await api("runs", first["id"], "restore", method="POST", body={})
    assert data.read_text() == "a\n1\n" and done["checkpoint"]
    restored_nb = nbformat.read(str(nb_path), as_version=4)
    assert restored_nb.cells[0].source == "print('unsaved edit')"
    await api("runs", done["checkpoint"], "restore", method="POST", body={})
    assert data.read_text() == "a\n2\n"


async def test_files_endpoint_serves_inert_content(jp_fetch: Any, jp_root_dir: Path) -> None:
    store = Store(jp_root_dir)
    (jp_root_dir / "page.html").write_text("<script>alert(1)</script>")
    (jp_root_dir / "t.csv").write_text("a,b\n")
    run = store.commit_run(new_manifest("nb.ipynb", outputs=store.snapshot_files(["page.html", "t.csv"])))
    html = await jp_fetch("dotnb", "api", "runs", run["id"], "files", params={"path": "page.html"})
    assert html.body == b"<script>alert(1)</script>"
    assert html.headers["Content-Type"] == "application/octet-stream"
    assert html.headers["X-Content-Type-Options"] == "nosniff"
    csv = await jp_fetch("dotnb", "api", "runs", run["id"], "files", params={"path": "t.csv"})
    assert csv.headers["Content-Type"].startswith("text/csv") and csv.body == b"a,b\n"
    for bad in ["../etc/passwd", "/etc/passwd", "a\x00b", "missing.csv"]:
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch("dotnb", "api", "runs", run["id"], "files", params={"path": bad})
        assert 400 <= err.value.code < 500


async def test_a_folder_recorded_as_a_tree_is_listed_a_page_at_a_time_and_checked_as_one_row(
    api: Any, jp_root_dir: Path
) -> None:
    store = Store(jp_root_dir)
    files = {
        f"images/{c}/{i:03d}.png": b"%s %d" % (c.encode(), i) for c in ("cats", "dogs") for i in range(60)
    }
    for rel, data in files.items():
        (jp_root_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (jp_root_dir / rel).write_bytes(data)
    run = store.commit_run(new_manifest("nb.ipynb", inputs=store.snapshot_files(sorted(files))))["id"]
    detail = await api("runs", run)
    assert detail["inputs"] == [
        {
            "path": "images",
            "tree": detail["inputs"][0]["tree"],
            "files": 120,
            "size": sum(map(len, files.values())),
        }
    ]
    first = await api("runs", run, "folder", params={"path": "images", "limit": "50"})
    rest = await api("runs", run, "folder", params={"path": "images", "offset": "50", "limit": "500"})
    assert first["total"] == rest["total"] == 120 and len(first["files"]) == 50
    listed = first["files"] + rest["files"]
    assert [f["path"] for f in listed] == sorted(files)
    dogs = await api("runs", run, "folder", params={"path": "images/dogs"})
    assert dogs["total"] == 60 and all(f["path"].startswith("images/dogs/") for f in dogs["files"])
    # On disk: one row for the folder, and rows only for the files that differ.
    (jp_root_dir / "images/cats/007.png").write_bytes(b"edited")
    (jp_root_dir / "images/dogs/011.png").unlink()
    status = await api("runs", run, "status")
    rows = {(r["path"], r["state"]) for r in status["files"]}
    assert rows == {
        ("images", "modified"),
        ("images/cats/007.png", "modified"),
        ("images/dogs/011.png", "missing"),
    }
    folder = next(r for r in status["files"] if r["path"] == "images")
    assert folder["files"] == 120 and folder["differing"] == 2
    with pytest.raises(HTTPClientError) as err:
        await api("runs", run, "folder", params={"path": "images/birds"})
    assert err.value.code == 404


async def test_a_change_of_tags_or_note_comes_through_the_event_feed(api: Any, jp_root_dir: Path) -> None:
    """Tags and notes changed anywhere (here through the store, as `dotnb tag` does)
    reach the sidebar's long poll with the run's new summary."""
    from dotnb.store.annotating import note_run, tag_run

    store = Store(jp_root_dir)
    first, second = (store.commit_run(new_manifest("nb.ipynb"))["id"] for _ in range(2))
    cursor = (await api("events"))["cursor"]
    tag_run(store, first, ["baseline"])
    note_run(store, first, "the one to beat")
    changed = await api("events", params={"after": str(cursor), "timeout": "5"})
    assert [(r["id"], r["tags"], r["note"]) for r in changed["runs"]] == [
        (first, ["baseline"], "the one to beat")
    ]
    await api("runs", second, "annotations", method="POST", body={"tag": ["best"]})
    again = await api("events", params={"after": str(changed["cursor"]), "timeout": "5"})
    assert [(r["id"], r["tags"]) for r in again["runs"]] == [(second, ["best"])]
    listed = await api("runs", params={"notebook": "nb.ipynb"})
    assert {r["id"]: r["tags"] for r in listed["runs"]} == {first: ["baseline"], second: ["best"]}


async def test_the_table_counts_input_and_output_files_changed_since_the_run_before(
    api: Any, jp_root_dir: Path
) -> None:
    store = Store(jp_root_dir)
    data, model = jp_root_dir / "data.csv", jp_root_dir / "model.pkl"
    data.write_text("a\n1\n")
    model.write_text("m1")
    first = store.commit_run(
        new_manifest(
            "nb.ipynb", inputs=store.snapshot_files(["data.csv"]), outputs=store.snapshot_files(["model.pkl"])
        )
    )["id"]
    model.write_text("m2")
    second = store.commit_run(
        new_manifest(
            "nb.ipynb", inputs=store.snapshot_files(["data.csv"]), outputs=store.snapshot_files(["model.pkl"])
        )
    )["id"]
    page = await api("table", params={"notebook": "nb.ipynb", "sort": "inputs_changed", "order": "asc"})
    assert [(r["id"], r["inputs_changed"], r["outputs_changed"]) for r in page["runs"]] == [
        (second, 0, 1),
        (first, 1, 1),
    ]
    changed = await api("table", params={"filter": "inputs_changed > 0"})
    assert [r["id"] for r in changed["runs"]] == [first]
    with pytest.raises(HTTPClientError) as err:
        await api("table", params={"filter": "inputs_changed > many"})
    assert err.value.code == 400
