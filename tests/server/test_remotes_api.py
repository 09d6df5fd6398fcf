"""Team remotes through the REST API, against a real jupyter_server and a ``file://`` remote.

Two projects share one remote folder: a colleague's store (driven through the
Python API, as the CLI would) and the server's store (driven through
``GET remotes``, ``POST push`` and ``POST pull``).  Nothing is mocked: the
transfers are dotnb.remote's, the server is pytest-jupyter's.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.utils import url_path_join
from tornado.httpclient import HTTPClientError, HTTPResponse

from dotnb.remote.config import add_remote
from dotnb.remote.transfer import push
from dotnb.server.handlers import _redact
from dotnb.store import Store
from dotnb.store.hashing import hash_bytes
from tests.manifests import new_manifest

ADA = {"user": "ada", "host": "gpu-box"}
MODEL = b"weights of ada's model\n" * 50
METRICS = b'{"acc": 0.93}\n'


@dataclass
class Team:
    """The remote folder, the colleague's store, and the runs she recorded."""

    remote: Path
    colleague: Store
    runs: list[str]

    @property
    def url(self) -> str:
        return self.remote.as_uri()


def _stored(store: Store, path: str, data: bytes) -> dict[str, Any]:
    digest, size = store.objects.put_bytes(data)
    return {"path": path, "hash": digest, "size": size}


def _record_colleague_runs(store: Store) -> list[str]:
    first = store.commit_run(
        new_manifest(
            "train.ipynb",
            name="train",
            params={"lr": 0.1},
            metrics={"acc": 0.93},
            outputs=[_stored(store, "out/model.bin", MODEL), _stored(store, "out/metrics.json", METRICS)],
            environment=dict(ADA),
        )
    )
    second = store.commit_run(new_manifest("train.ipynb", name="eval", environment=dict(ADA)))
    return [first["id"], second["id"]]


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    """Ada recorded two runs and pushed them to the team remote (a shared folder)."""
    remote = tmp_path / "team-remote"
    remote.mkdir()
    colleague = Store.init(tmp_path / "ada-project")
    runs = _record_colleague_runs(colleague)
    add_remote(colleague, "origin", remote.as_uri())
    result = push(colleague)
    assert result["runs_pushed"] == 2, result
    yield Team(remote, colleague, runs)
    colleague.close()


@pytest.fixture
def jp_server_config(team: Team, jp_root_dir: Path) -> dict[str, Any]:
    # The server's project knows the remote before the server starts, as after a
    # `dotnb remote add` followed by `jupyter lab`.
    store = Store.init(jp_root_dir)
    add_remote(store, "origin", team.url)
    store.close()
    return {"ServerApp": {"jpserver_extensions": {"dotnb": True}}}


@pytest.fixture
def server_store(jp_serverapp: Any) -> Store:
    store: Store = jp_serverapp.web_app.settings["dotnb_store"]
    return store


async def _error(call: Any) -> tuple[int, str]:
    """Status and message of an API call that must fail."""
    with pytest.raises(HTTPClientError) as info:
        await call
    response = info.value.response
    assert response is not None
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.body)
    assert "Traceback" not in response.body.decode()
    return info.value.code, str(body["message"])


def _remote_files(remote: Path) -> dict[str, bytes]:
    return {
        p.relative_to(remote).as_posix(): p.read_bytes()
        for p in sorted(remote.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


# -- push, pull, listing, on-demand reads -------------------------------------------


async def test_push_and_pull_share_runs_with_their_author(
    api: Any, team: Team, server_store: Store, jp_root_dir: Path
) -> None:
    assert await api("remotes") == {
        "remotes": [
            {
                "name": "origin",
                "url": team.url,
                "default": True,
                "endpoint_url": None,
                "region": None,
                "profile": None,
            }
        ]
    }

    # This project's own run goes to the remote...
    mine = server_store.commit_run(
        new_manifest("nb.ipynb", name="mine", outputs=[_stored(server_store, "data.csv", b"a\n1\n")])
    )["id"]
    pushed = await api("push", method="POST", body={"runs": [mine]})
    assert pushed["remote"] == "origin" and pushed["url"] == team.url
    assert pushed["runs_pushed"] == 1 and pushed["runs_already"] == 0 and pushed["conflicts"] == []
    assert pushed["objects_uploaded"] >= 2  # the data file and the manifest
    assert pushed["bytes_uploaded"] > len(b"a\n1\n")
    assert (team.remote / "runs" / mine).read_text().strip() == server_store.manifest_hash(mine)
    again = await api("push", method="POST", body={})
    assert again["runs_pushed"] == 0 and again["runs_already"] == 1 and again["objects_uploaded"] == 0

    # ...and Ada's runs come from it, with who recorded them and where they came from.
    pulled = await api("pull", method="POST", body={})
    assert pulled["remote"] == "origin" and pulled["runs_new"] == 2 and pulled["runs_rejected"] == []
    assert pulled["objects_downloaded"] == 0  # data stays on the remote until needed
    ada_runs = (await api("runs", params={"author": "ada"}))["runs"]
    assert [r["id"] for r in ada_runs] == team.runs[::-1]
    for row in ada_runs:
        assert (row["user"], row["host"], row["remote"]) == ("ada", "gpu-box", "origin")
    exact = (await api("runs", params={"author": "ada@gpu-box"}))["runs"]
    assert [r["id"] for r in exact] == [r["id"] for r in ada_runs]
    assert (await api("runs", params={"author": "ada@laptop"}))["runs"] == []
    everyone = {r["id"]: r for r in (await api("runs"))["runs"]}
    assert everyone[mine]["remote"] is None and everyone[mine]["user"] == "tester"
    assert (await api("pull", method="POST", body={"remote": "origin"}))["runs_new"] == 0


async def test_reading_a_pulled_run_fetches_its_objects_from_the_remote(
    api: Any, jp_fetch: Any, team: Team, server_store: Store, jp_root_dir: Path
) -> None:
    await api("pull", method="POST", body={})
    train = team.runs[0]
    model_hash = hash_bytes(MODEL)
    assert not server_store.objects.has(model_hash)

    # GET files: the object comes from the remote, verified, and stays here.
    response = await jp_fetch("dotnb", "api", "runs", train, "files", params={"path": "out/metrics.json"})
    assert response.body == METRICS
    assert server_store.objects.has(hash_bytes(METRICS))

    # Show and diff read the pulled manifests (and lineage code) too.
    detail = await api("runs", train)
    assert detail["environment"]["user"] == "ada"
    diff = await api("runs", train, "diff", team.runs[1])
    assert "out/model.bin" in diff["outputs"]

    # Restore writes the bytes Ada's run produced, fetched on demand.
    (jp_root_dir / "out").mkdir()
    (jp_root_dir / "out" / "model.bin").write_bytes(b"my own model\n")
    result = await api("runs", train, "restore", method="POST", body={"notebook": False})
    assert sorted(result["written"]) == ["out/metrics.json", "out/model.bin"]
    assert (jp_root_dir / "out" / "model.bin").read_bytes() == MODEL
    assert (jp_root_dir / "out" / "metrics.json").read_bytes() == METRICS
    assert server_store.objects.has(model_hash)
    # What the restore overwrote is this project's checkpoint, undoable as usual.
    checkpoint = server_store.manifest(result["checkpoint"])
    assert checkpoint["checkpoint_of"] == train
    assert any(o["path"] == "out/model.bin" for o in checkpoint["outputs"])


async def test_pull_with_data_fetches_every_object_at_once(api: Any, team: Team, server_store: Store) -> None:
    pulled = await api("pull", method="POST", body={"with_data": True})
    assert pulled["runs_new"] == 2
    assert pulled["objects_downloaded"] >= 2
    assert pulled["bytes_downloaded"] >= len(MODEL) + len(METRICS)
    assert server_store.objects.has(hash_bytes(MODEL))


async def test_a_corrupted_remote_object_is_a_502_and_never_stored(
    api: Any, jp_fetch: Any, team: Team, server_store: Store
) -> None:
    await api("pull", method="POST", body={})
    digest = hash_bytes(MODEL)
    on_remote = team.remote / "objects" / digest[:2] / digest[2:]
    os.chmod(on_remote, 0o644)
    on_remote.write_bytes(b"tampered\n")
    status, message = await _error(
        jp_fetch("dotnb", "api", "runs", team.runs[0], "files", params={"path": "out/model.bin"})
    )
    assert status == 502
    assert "origin" in message and digest[:12] in message
    assert not server_store.objects.has(digest)


# -- errors ---------------------------------------------------------------------------


async def test_remote_errors_map_to_statuses_with_a_message(api: Any, team: Team, jp_root_dir: Path) -> None:
    status, message = await _error(api("push", method="POST", body={"remote": "nope"}))
    assert status == 404 and "nope" in message and "origin" in message
    status, message = await _error(api("pull", method="POST", body={"remote": "nope"}))
    assert status == 404 and "nope" in message

    # A remote written by a newer dotnb: refused before anything moves.
    future = team.remote.parent / "future"
    future.mkdir()
    (future / "format").write_text('{"format": 99}\n')
    store = Store(jp_root_dir)
    add_remote(store, "future", future.as_uri())
    before = _remote_files(future)
    for route in ("push", "pull"):
        status, message = await _error(api(route, method="POST", body={"remote": "future"}))
        assert status == 409 and "future" in message, message
    assert _remote_files(future) == before

    # An unreachable remote (its folder is gone): the server is a gateway that failed.
    add_remote(store, "gone", (team.remote.parent / "gone").as_uri())
    store.close()
    for route in ("push", "pull"):
        status, message = await _error(api(route, method="POST", body={"remote": "gone"}))
        assert status == 502 and "gone" in message and "does not exist" in message, message


async def test_bad_requests_are_400_and_push_nothing(api: Any, team: Team, server_store: Store) -> None:
    server_store.commit_run(new_manifest("nb.ipynb"))
    before = _remote_files(team.remote)
    for route, body in (
        ("push", {"runs": []}),
        ("push", {"runs": "latest"}),
        ("push", {"runs": ["latest", 3]}),
        ("push", {"remote": ""}),
        ("push", [1]),
        ("pull", {"with_data": "yes"}),
        ("pull", {"remote": ["origin"]}),
    ):
        status, _message = await _error(api(route, method="POST", body=body))
        assert status == 400, (route, body)
    # One unknown reference fails the whole push, before anything is sent.
    status, message = await _error(api("push", method="POST", body={"runs": ["latest", "ZZZZ"]}))
    assert status == 404 and "ZZZZ" in message
    assert _remote_files(team.remote) == before


def test_error_messages_never_carry_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret-value")
    message = _redact(
        "remote 'origin' (s3://bucket): SignatureDoesNotMatch for wJalrXUtnFEMI-secret-value; "
        "see https://key:pass@example.com/x"
    )
    assert "wJalrXUtnFEMI" not in message and "key:pass" not in message
    assert message.startswith("remote 'origin' (s3://bucket): SignatureDoesNotMatch")


# -- a project without remotes --------------------------------------------------------


@pytest.mark.parametrize("jp_server_config", [{"ServerApp": {"jpserver_extensions": {"dotnb": True}}}])
async def test_without_a_remote_there_is_nothing_to_push_or_pull(api: Any, server_store: Store) -> None:
    assert await api("remotes") == {"remotes": []}
    server_store.commit_run(new_manifest("nb.ipynb"))
    for route in ("push", "pull"):
        status, message = await _error(api(route, method="POST", body={}))
        assert status == 409 and "dotnb remote add" in message, message


# -- authentication -------------------------------------------------------------------


@pytest.fixture
def raw(http_server_client: Any, jp_base_url: str) -> Any:
    """``await raw(route, method, headers)``: an API request with exactly these headers."""

    async def fetch(route: str, method: str = "GET", headers: dict[str, str] | None = None) -> HTTPResponse:
        response: HTTPResponse = await http_server_client.fetch(
            url_path_join(jp_base_url, "dotnb", "api", route),
            method=method,
            body=b"{}" if method == "POST" else None,
            headers=headers or {},
            raise_error=False,
            follow_redirects=False,
        )
        return response

    return fetch


def _cookies(response: HTTPResponse) -> dict[str, str]:
    found = {}
    for header in response.headers.get_list("Set-Cookie"):
        name, _, value = header.split(";")[0].partition("=")
        found[name.strip()] = value.strip()
    return found


async def test_the_remote_routes_refuse_unauthenticated_and_forged_requests(
    raw: Any, team: Team, server_store: Store, jp_serverapp: Any, http_server_client: Any, jp_base_url: str
) -> None:
    mine = server_store.commit_run(new_manifest("nb.ipynb"))["id"]
    before = _remote_files(team.remote)
    wrong = {"Authorization": "token not-the-token"}
    for route, method in (("remotes", "GET"), ("push", "POST"), ("pull", "POST")):
        for headers in ({}, wrong):
            response = await raw(route, method, headers)
            assert response.code == 403, (route, method, headers)
            body = response.body.decode()
            assert team.url not in body and "origin" not in body
    # A cookie-authenticated POST without the XSRF token is refused too.
    token = jp_serverapp.identity_provider.token
    login = _cookies(await raw("version", headers={"Authorization": f"token {token}"}))
    (login_name,) = [name for name in login if name.startswith("username-")]
    page = await http_server_client.fetch(url_path_join(jp_base_url, "login"), raise_error=False)
    xsrf = _cookies(page)["_xsrf"]
    cookie = {"Cookie": f"{login_name}={login[login_name]}; _xsrf={xsrf}"}
    assert (await raw("remotes", headers=cookie)).code == 200  # the cookie does authenticate
    for route in ("push", "pull"):
        response = await raw(route, "POST", cookie)
        assert response.code == 403 and "xsrf" in response.body.decode().lower(), route
    assert _remote_files(team.remote) == before
    assert server_store.list_runs(author="ada") == []
    # With the XSRF header, the same cookie may push.
    response = await raw("push", "POST", {**cookie, "X-XSRFToken": xsrf})
    assert response.code == 200, response.body
    assert (team.remote / "runs" / mine).exists()


# -- the server keeps answering during a transfer --------------------------------------


async def test_a_transfer_does_not_block_the_server(api: Any, team: Team, server_store: Store) -> None:
    # Enough objects that the push takes a while on this machine; GET version must
    # answer meanwhile (the push runs in a worker thread, not on the event loop).
    outputs = []
    for i in range(150):
        digest, size = server_store.objects.put_bytes(os.urandom(32 * 1024), sync=False)
        outputs.append({"path": f"f{i}.bin", "hash": digest, "size": size})
    server_store.commit_run(new_manifest("nb.ipynb", outputs=outputs))
    transfer = asyncio.ensure_future(api("push", method="POST", body={}))
    answered_during = 0
    while not transfer.done():
        assert (await api("version"))["api"] == 1
        if not transfer.done():
            answered_during += 1
        await asyncio.sleep(0.005)
    result = await transfer
    assert result["runs_pushed"] == 1 and result["objects_uploaded"] == 151
    # A push on the event loop would let at most the first GET (sent before the push
    # started) through while it runs.
    assert answered_during >= 3


# -- a remote added while the server runs ------------------------------------------------


@pytest.mark.parametrize("jp_server_config", [{"ServerApp": {"jpserver_extensions": {"dotnb": True}}}])
async def test_a_remote_added_while_the_server_runs_is_used_at_once(
    api: Any, jp_fetch: Any, team: Team, server_store: Store
) -> None:
    # `dotnb remote add` in a terminal while JupyterLab is open: no restart needed.
    cli_store = Store(server_store.root)
    add_remote(cli_store, "origin", team.url)
    cli_store.close()
    assert [r["name"] for r in (await api("remotes"))["remotes"]] == ["origin"]
    assert (await api("pull", method="POST", body={}))["runs_new"] == 2
    response = await jp_fetch(
        "dotnb", "api", "runs", team.runs[0], "files", params={"path": "out/metrics.json"}
    )
    assert response.body == METRICS
