"""``POST sweeps`` and ``GET sweeps/{id}`` against a real jupyter_server whose sweeps run
on a real LocalCluster of one worker process (``c.Dotnb.sweep_workers = 1``)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from dotnb.store.repo import Store

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sweep" / "score.ipynb"


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"dotnb": True}}, "Dotnb": {"sweep_workers": 1}}


async def finished(api: Any, sweep_id: str) -> dict[str, Any]:
    for _ in range(1200):  # the sweep's own progress bounds this, not a clock: 120 s at most
        state: dict[str, Any] = await api("sweeps", sweep_id)
        if state["state"] != "running":
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"sweep {sweep_id} still running: {state}")


@pytest.mark.timeout(180)
async def test_a_sweep_started_over_rest_records_its_runs(api: Any, jp_root_dir: Path) -> None:
    shutil.copyfile(FIXTURE, jp_root_dir / "score.ipynb")
    started = await api("sweeps", method="POST", body={"source": "score.ipynb", "params": ["x=1,3"]})
    assert started["state"] == "running" and started["points"] == 2
    assert started["tag"] == f"sweep:{started['sweep']}"
    state = await finished(api, started["sweep"])
    assert state["state"] == "done" and state["failure"] is None and state["error"] == 0, state
    assert (state["ok"], state["interrupted"]) == (2, 0)
    assert sorted(r["params"]["x"] for r in state["results"]) == [1, 3]
    store = Store(jp_root_dir)
    try:
        runs = store.list_runs(tags=[started["tag"]])
    finally:
        store.close()
    assert sorted(r["id"] for r in runs) == sorted(r["runs"][0] for r in state["results"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"source": "score.ipynb", "params": ["lr=1,2"]}, "unknown param 'lr'"),
        ({"source": "score.ipynb", "params": []}, "params must be a non-empty list"),
        ({"source": "../outside.ipynb", "params": ["x=1"]}, "outside"),
        ({"source": "score.ipynb", "params": ["x=1"], "workers": 3}, "unknown field 'workers'"),
        ({"source": "nosuchrun", "params": ["x=1"]}, "neither a notebook file nor a run"),
    ],
)
async def test_a_bad_sweep_request_is_400(
    api: Any, jp_root_dir: Path, body: dict[str, Any], message: str
) -> None:
    shutil.copyfile(FIXTURE, jp_root_dir / "score.ipynb")
    with pytest.raises(HTTPClientError) as caught:
        await api("sweeps", method="POST", body=body)
    assert caught.value.code == 400
    assert message in caught.value.response.body.decode()


async def test_an_unknown_sweep_is_404(api: Any) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await api("sweeps", "01M982CX5CASE0VXK3CT5TMND1")
    assert caught.value.code == 404


async def test_a_sweep_started_elsewhere_is_read_from_its_tagged_runs(api: Any, jp_root_dir: Path) -> None:
    from dotnb.store.annotating import tag_run

    store = Store(jp_root_dir)
    try:
        manifest = {"kind": "run", "notebook": "nb.ipynb", "code": "x = 1\n", "params": {"x": 1}}
        manifest.update(metrics={"m": 2.0}, metric_series={}, inputs=[], outputs=[], status="ok")
        manifest.update(lineage=[], environment={}, started_at="2026-12-07T10:00:00Z", duration_s=0.1)
        run = store.commit_run(manifest)
        tag_run(store, run["id"], ["sweep:01M982CX5CASE0VXK3CT5TMND2"])
    finally:
        store.close()
    state = await api("sweeps", "01M982CX5CASE0VXK3CT5TMND2")
    assert state["state"] == "recorded" and state["points"] == 1
    assert state["results"][0]["runs"] == [run["id"]] and state["results"][0]["params"] == {"x": 1}


@pytest.mark.timeout(180)
async def test_cancel_stops_the_points_not_yet_finished(api: Any, jp_root_dir: Path) -> None:
    shutil.copyfile(FIXTURE, jp_root_dir / "score.ipynb")
    started = await api(
        "sweeps",
        method="POST",
        body={"source": "score.ipynb", "params": ["x=1,2,3,4,5,6", "work=3000000"]},
    )
    sweep = started["sweep"]
    for _ in range(1200):  # until the first point is done (one worker: the rest wait)
        state = await api("sweeps", sweep)
        if state["results"]:
            break
        await asyncio.sleep(0.1)
    cancelled = await api("sweeps", sweep, "cancel", method="POST", body={})
    assert cancelled["sweep"] == sweep
    state = await finished(api, sweep)
    assert state["state"] == "done" and state["stopped"] == "interrupted", state
    assert state["interrupted"] >= 1 and state["ok"] >= 1
    assert state["ok"] + state["error"] + state["interrupted"] == 6
    # Cancelling a sweep that has ended changes nothing; an unknown one is a 404.
    again = await api("sweeps", sweep, "cancel", method="POST", body={})
    assert (again["ok"], again["interrupted"]) == (state["ok"], state["interrupted"])
    with pytest.raises(HTTPClientError) as caught:
        await api("sweeps", "01M982CX5CASE0VXK3CT5TMND1", "cancel", method="POST", body={})
    assert caught.value.code == 404


async def test_the_params_a_sweep_can_vary_come_from_the_parameters_cell(api: Any, jp_root_dir: Path) -> None:
    shutil.copyfile(FIXTURE, jp_root_dir / "score.ipynb")
    found = await api("sweeps", "params", params={"source": "score.ipynb"})
    assert found == {
        "source": "score.ipynb",
        "notebook": "score.ipynb",
        "params": {"x": "1.0", "fail": "False", "work": "0"},
        "clusters": {"local": {"workers": 1}, "scheduler": None},  # c.Dotnb.sweep_workers = 1
    }
    for source, code in (("../up.ipynb", 400), ("nosuchrun", 400)):
        with pytest.raises(HTTPClientError) as caught:
            await api("sweeps", "params", params={"source": source})
        assert caught.value.code == code


@pytest.mark.timeout(180)
async def test_cluster_local_runs_here_even_with_a_scheduler_configured(
    api: Any, jp_root_dir: Path, jp_serverapp: Any
) -> None:
    import dask
    import distributed  # noqa: F401  # its defaults first: leaving set() drops keys it added

    from dotnb.sweep.background import Sweeps

    shutil.copyfile(FIXTURE, jp_root_dir / "score.ipynb")
    sweeps = Sweeps(jp_root_dir, scheduler="tcp://127.0.0.1:9", workers=1)
    jp_serverapp.web_app.settings["dotnb_sweeps"] = sweeps
    params = await api("sweeps", "params", params={"source": "score.ipynb"})
    assert params["clusters"] == {"local": {"workers": 1}, "scheduler": "tcp://127.0.0.1:9"}
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        there = await api("sweeps", method="POST", body={"source": "score.ipynb", "params": ["x=2"]})
        assert (await finished(api, there["sweep"]))["state"] == "failed"  # nobody answers there
    here = await api(
        "sweeps", method="POST", body={"source": "score.ipynb", "params": ["x=2"], "cluster": "local"}
    )
    state = await finished(api, here["sweep"])
    assert state["state"] == "done" and state["ok"] == 1, state["failure"]
