"""docs/rest-api.yml and the handlers agree.

The spec is valid OpenAPI; its routes and verbs are the ones the extension
registers; every query argument a handler reads is documented; and every
documented (route, verb, status) is answered by the real server to a real
request, with a body that validates against the documented schema (and the
documented media type and headers).  The CLI's ``--json`` output, the other face
of the same operations, validates against the same schemas.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import nbformat
import pytest
import yaml
from jupyter_server.utils import url_path_join
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from tornado.httpclient import HTTPResponse
from tornado.web import RequestHandler

from dotnb import cli
from dotnb.server.handlers import DotnbHandler
from dotnb.server.routes import ROUTES
from dotnb.store import Store
from dotnb.store.hashing import hash_bytes
from dotnb.store.manifest import FORMAT_VERSION, iso_time

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO / "docs" / "rest-api.yml"
MANIFEST_SCHEMA_PATH = REPO / "dotnb" / "schema" / "manifest.schema.json"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text("utf-8"))
SPEC_URI = SPEC_PATH.as_uri()
VERBS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
MAX_PREVIEW = 1024  # c.Dotnb.max_preview_bytes in this module, so a 413 is cheap to provoke


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"dotnb": True}, "reraise_server_extension_failures": True},
        "Dotnb": {"max_preview_bytes": MAX_PREVIEW},
    }


# -- the spec on its own -------------------------------------------------------


def _operations() -> list[tuple[str, str]]:
    return [(path, verb) for path, item in SPEC["paths"].items() for verb in VERBS if verb in item]


def _shape(path: str) -> str:
    """``/runs/{run}/diff/{other}`` and ``runs/(?P<first>[^/]+)/diff/…`` both become ``/runs/{}/diff/{}``."""
    path = re.sub(r"\(\?P<\w+>\[\^/\]\+\)", "{}", path)
    return "/" + re.sub(r"\{[^}]+\}", "{}", path).lstrip("/")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _at(parts: list[str]) -> Any:
    node: Any = SPEC
    for part in parts:
        node = node[part]
    return node


def _locate(*parts: str) -> list[str]:
    """The JSON pointer of ``parts`` in the spec, following local ``$ref``s on the way."""
    where: list[str] = []
    for part in (*parts, None):
        node = _at(where)
        while isinstance(node, dict) and str(node.get("$ref", "")).startswith("#/"):
            where = [_unescape(p) for p in node["$ref"][2:].split("/")]
            node = _at(where)
        if part is not None:
            where.append(part)
    return where


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s (parameters and responses)."""
    while "$ref" in node:
        node = _at(_locate(*[_unescape(p) for p in node["$ref"][2:].split("/")]))
    return node


def _parameters(path: str, verb: str, where: str) -> dict[str, dict[str, Any]]:
    params = [_deref(p) for p in SPEC["paths"][path].get("parameters", [])]
    params += [_deref(p) for p in SPEC["paths"][path][verb].get("parameters", [])]
    return {p["name"]: p for p in params if p["in"] == where}


def _responses(path: str, verb: str) -> dict[str, dict[str, Any]]:
    return {str(code): _deref(resp) for code, resp in SPEC["paths"][path][verb]["responses"].items()}


def _leaves(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, f"{where}/{i}")
    else:
        yield where, node


def test_spec_is_valid_openapi() -> None:
    assert SPEC["openapi"].startswith("3.1")
    # A YAML slip (an unquoted ": " or ", " in a flow mapping) leaves a null behind.
    nulls = [p for p, v in _leaves(SPEC, "") if v is None]
    assert not nulls, nulls
    # base_uri lets the validator follow the $ref to the manifest's JSON Schema.
    validate_openapi(SPEC, base_uri=SPEC_URI)


def test_spec_routes_and_verbs_are_the_registered_ones() -> None:
    documented = {_shape(path): path for path in SPEC["paths"]}
    registered = {_shape(pattern): handler for pattern, handler in ROUTES}
    assert set(documented) == set(registered)
    for shape, handler in registered.items():
        # OPTIONS is jupyter_server's CORS pre-flight (APIHandler), not an operation of ours.
        implemented = {
            verb
            for verb in VERBS
            if verb != "options"
            and getattr(handler, verb, RequestHandler._unimplemented_method)
            is not RequestHandler._unimplemented_method
        }
        assert implemented == {v for v in VERBS if v in SPEC["paths"][documented[shape]]}, shape


def _served(router: Any) -> Iterator[tuple[str, type]]:
    """(URL regex, handler class) of every rule a tornado router holds, nested routers included."""
    for rule in router.rules:
        if isinstance(rule.target, type):
            yield rule.matcher.regex.pattern, rule.target
        elif hasattr(rule.target, "rules"):
            yield from _served(rule.target)


def test_the_server_serves_exactly_these_routes(jp_serverapp: Any, jp_base_url: str) -> None:
    served = {
        (pattern, handler)
        for pattern, handler in _served(jp_serverapp.web_app.default_router)
        if issubclass(handler, DotnbHandler)
    }
    expected = {(url_path_join(jp_base_url, "dotnb", "api", p) + "$", h) for p, h in ROUTES}
    assert served == expected


def test_every_query_argument_a_handler_reads_is_documented() -> None:
    documented = {_shape(path): path for path in SPEC["paths"]}
    for pattern, handler in ROUTES:
        path = documented[_shape(pattern)]
        for verb in VERBS:
            if verb not in SPEC["paths"][path]:
                continue
            source = inspect.getsource(getattr(handler, verb))
            read = set(re.findall(r'(?:get_query_arguments?|int_arg|path_arg)\(\s*"(\w+)"', source))
            if "self.notebook_arg()" in source or "self.resolve(" in source:
                read.add("notebook")
            if "self.path_and_role(" in source:
                read |= {"path", "role"}
            assert read == set(_parameters(path, verb, "query")), f"{verb.upper()} {path}"


def test_every_operation_is_authenticated_and_errors_are_the_error_schema() -> None:
    error_ref = "#/components/schemas/Error"
    assert SPEC["security"] == [{"token": []}, {"cookie": []}]
    for path, verb in _operations():
        op = SPEC["paths"][path][verb]
        security = op.get("security", SPEC["security"])
        assert security and all(req for req in security), f"{verb} {path} allows anonymous access"
        if verb != "get":
            # A cookie alone is never enough to write: the XSRF token must come with it.
            assert {"cookie": [], "xsrf": []} in security and {"cookie": []} not in security
        responses = _responses(path, verb)
        assert "403" in responses and "default" in responses, f"{verb} {path}"
        for code, response in responses.items():
            if code == "default" or int(code) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": error_ref}, f"{verb} {path} {code}"


# -- validating bodies against the spec's schemas -------------------------------


def _registry() -> Registry:
    manifest_schema = json.loads(MANIFEST_SCHEMA_PATH.read_text("utf-8"))
    manifest = DRAFT202012.create_resource(manifest_schema)
    return Registry().with_resources(
        [
            (SPEC_URI, DRAFT202012.create_resource(SPEC)),
            # The spec refers to the schema by relative file path; its own $refs use its $id.
            (MANIFEST_SCHEMA_PATH.as_uri(), manifest),
            (manifest_schema["$id"], manifest),
        ]
    )


REGISTRY = _registry()


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def schema_validator(*parts: str) -> jsonschema.Draft202012Validator:
    """A validator for the schema at ``parts`` inside the spec, with every $ref resolvable."""
    return jsonschema.Draft202012Validator(
        {"$ref": f"{SPEC_URI}#/{_pointer(*_locate(*parts))}"},
        registry=REGISTRY,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def component(name: str) -> jsonschema.Draft202012Validator:
    return schema_validator("components", "schemas", name)


def test_schemas_reject_what_they_should() -> None:
    """The response schemas are strict enough to catch drift (a missing or extra field)."""
    summary = component("RunSummary")
    good = {
        "id": "01J9Z3K4Q8V6W2X5Y7A1B3C4D5",
        "number": 1,
        "notebook": "nb.ipynb",
        "name": None,
        "kind": "run",
        "status": "ok",
        "started_at": iso_time(time.time()),
        "duration_s": 0.5,
        "params": {},
        "metrics": {"acc": 0.9, "loss": "nan"},
        "inputs": 0,
        "outputs": 1,
        "user": "u",
        "host": "h",
        "reproduces": None,
        "checkpoint_of": None,
        "remote": None,
    }
    summary.validate(good)
    assert not summary.is_valid({k: v for k, v in good.items() if k != "host"})
    assert not summary.is_valid({**good, "extra": 1})
    assert not summary.is_valid({**good, "id": "not-an-id"})
    assert not component("Error").is_valid({"message": ""})
    assert not component("Error").is_valid({"message": "x", "traceback": "Traceback (most recent…"})
    assert not component("RestoreRequest").is_valid({"data": "yes"})


# -- a store with one of everything ----------------------------------------------


@dataclass
class World:
    root: Path
    store: Store
    ids: dict[str, str] = field(default_factory=dict)


def _stored(store: Store, path: str, data: bytes) -> dict[str, Any]:
    digest, size = store.objects.put_bytes(data, sync=False)  # fsync is not what is tested here
    return {"path": path, "hash": digest, "size": size}


def make_manifest(store: Store, notebook: str | None, **fields: Any) -> dict[str, Any]:
    code = fields.pop("code", "x = 1\n")
    digest, _ = store.objects.put_bytes(code.encode(), sync=False)
    doc: dict[str, Any] = {
        "kind": "run",
        "name": None,
        "notebook": notebook,
        "notebook_source": None,
        "notebook_snapshot": None,
        "code": code,
        "lineage": [
            {"execution_count": 1, "code_hash": digest, "tracked": True, "run": None, "status": "ok"}
        ],
        "params": {},
        "metrics": {},
        "metric_series": {},
        "inputs": [],
        "outputs": [],
        "external_inputs": [],
        "status": "ok",
        "error": None,
        "started_at": iso_time(time.time()),
        "duration_s": 0.01,
        "environment": {"user": "tester", "host": "box", "python": "3.11", "platform": "linux"},
    }
    doc.update(fields)
    return doc


def commit(store: Store, manifest: dict[str, Any]) -> dict[str, Any]:
    return store.commit_run(manifest, sync=False)


def _damage(store: Store, digest: str, how: str) -> None:
    path = store.objects.path_for(digest)
    if how == "remove":
        path.unlink()
    else:
        os.chmod(path, 0o644)  # objects are read-only once in place
        path.write_bytes(b"not what was stored\n")


@pytest.fixture
def world(jp_serverapp: Any, jp_root_dir: Path) -> Iterator[World]:
    """Runs of every kind the routes can meet, the damaged ones in ``broken.ipynb``."""
    store = Store(jp_root_dir)
    w = World(jp_root_dir, store)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nb_bytes = nbformat.writes(nb).encode()
    (jp_root_dir / "nb.ipynb").write_bytes(nb_bytes)
    (jp_root_dir / "data.csv").write_text("a\n2\n")
    snapshot = _stored(store, "nb.ipynb", nb_bytes)
    dists = _stored(store, "-", json.dumps([{"name": "numpy", "version": "2.0"}]).encode())
    w.ids["a"] = commit(
        store,
        make_manifest(
            store,
            "nb.ipynb",
            name="first",
            params={"lr": 0.1},
            metrics={"acc": 0.5, "loss": 0.7},
            metric_series={"loss": [{"step": 1, "value": 0.9, "time": 1.0}, {"step": 2, "value": 0.7}]},
            inputs=[_stored(store, "params.json", b'{"lr": 0.1}')],
            outputs=[
                _stored(store, "data.csv", b"a\n1\n"),
                _stored(store, "page.html", b"<script>alert(1)</script>"),
                {"path": "huge.bin", "hash": None, "size": 10**12, "skipped": "larger than the limit"},
            ],
            notebook_snapshot={"hash": snapshot["hash"], "size": snapshot["size"]},
            notebook_source="disk",
            environment={"user": "tester", "host": "box", "distributions": dists["hash"]},
        ),
    )["id"]
    # Run ids made in the same millisecond share all but their last characters; the
    # cases address run a by a 20-character prefix, which must name it alone.
    time.sleep(0.002)
    w.ids["b"] = commit(
        store,
        make_manifest(
            store,
            "nb.ipynb",
            code="x = 2\n",
            params={"lr": 0.2},
            metrics={"acc": 0.9},
            outputs=[_stored(store, "data.csv", b"a\n2\n")],
        ),
    )["id"]
    w.ids["other"] = commit(store, make_manifest(store, "other.ipynb"))["id"]
    w.ids["checkpoint"] = commit(
        store,
        make_manifest(store, "nb.ipynb", kind="checkpoint", checkpoint_of=w.ids["a"], absent=["new.txt"]),
    )["id"]
    for key, how, target in (
        ("gone", "remove", "manifest"),
        ("rotten", "corrupt", "manifest"),
        ("lost", "remove", "lost.txt"),
        ("bad", "corrupt", "bad.txt"),
    ):
        entry = _stored(store, target, f"content of {key}\n".encode())
        run_id = commit(store, make_manifest(store, "broken.ipynb", outputs=[entry]))["id"]
        w.ids[key] = run_id
        store.flush()  # commit_run(sync=False) may defer the manifest object: damage it on disk
        _damage(store, store.manifest_hash(run_id) if target == "manifest" else entry["hash"], how)
    big = _stored(store, "big.txt", b"x" * (MAX_PREVIEW + 1))
    w.ids["big"] = commit(store, make_manifest(store, "broken.ipynb", outputs=[big]))["id"]
    # A folder of many files, recorded as a tree (GET runs/{run}/folder).
    many = [_stored(store, f"images/c{i % 2}/{i:03d}.png", b"%d" % i) for i in range(40)]
    w.ids["tree"] = commit(store, make_manifest(store, "trees.ipynb", inputs=many))["id"]
    _add_remotes(store, jp_root_dir.parent / "remotes")
    _record_kernel_state(store, w.ids["a"])
    w.ids["sweep"] = _start_sweep(jp_serverapp, jp_root_dir)
    yield w
    store.close()


def _record_kernel_state(store: Store, run_id: str) -> None:
    """A kernel state record for run ``run_id``, as a kernel with state capture on writes
    one (the values' pickles are not needed to describe them)."""
    from dotnb.store.kernel_state import STATE_FORMAT, put_document, write_state_ref

    state = {
        "format": STATE_FORMAT,
        "author": "ada@box",
        "variables": {
            "lr": {"type": "float", "status": "stored", "size": 21, "cell": 3, "group": "0" * 64},
            "conn": {"type": "Connection", "status": "unpicklable", "reason": "cannot pickle 'Connection'"},
        },
    }
    write_state_ref(store.dir, run_id, put_document(store.objects, state))


def _start_sweep(serverapp: Any, root: Path) -> str:
    """A sweep of ``sweep.ipynb`` (which has a parameters cell) on a scheduler address
    nobody answers: it is refused in the background, so no cluster starts in these tests."""
    import dask
    import distributed  # noqa: F401  # its defaults first: leaving set() drops keys it added

    from dotnb.sweep.background import SweepRequest, Sweeps

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]})]
    nbformat.write(nb, root / "sweep.ipynb")
    sweeps = Sweeps(root, scheduler="tcp://127.0.0.1:9")
    serverapp.web_app.settings["dotnb_sweeps"] = sweeps
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        return str(sweeps.start(SweepRequest("sweep.ipynb", ["x=1,2"]))["sweep"])


def _add_remotes(store: Store, folder: Path) -> None:
    """Team remotes (folders): ``origin`` (the default, empty), ``future`` (written
    by a newer dotnb format) and ``gone`` (its folder does not exist)."""
    from dotnb.remote.config import add_remote

    for name, format_version in (("origin", FORMAT_VERSION), ("future", FORMAT_VERSION + 98)):
        (folder / name).mkdir(parents=True)
        (folder / name / "format").write_text(json.dumps({"format": format_version}) + "\n")
        add_remote(store, name, (folder / name).as_uri(), default=name == "origin")
    add_remote(store, "gone", (folder / "gone").as_uri())


# -- the requests -----------------------------------------------------------------

NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@dataclass(frozen=True)
class Case:
    """One request.  ``{key}`` in a path argument or query value is a run id of the world."""

    verb: str
    path: str
    status: int
    args: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None
    auth: bool = True
    media: str = "application/json"


def _get(path: str, status: int, *args: tuple[str, str], **kw: Any) -> Case:
    return Case("get", path, status, args, **kw)


def _post(path: str, status: int, *args: tuple[str, str], **kw: Any) -> Case:
    return Case("post", path, status, args, **kw)


R = "/runs/{run}"
D = "/runs/{run}/diff/{other}"
F = "/runs/{run}/files"
N = "/runs/{run}/notebook"
S = "/runs/{run}/restore"
T = "/runs/{run}/status"
L = "/runs/{run}/folder"
A = "/runs/{run}/annotations"
K = "/runs/{run}/kernel-state"
BAD_NB = (("notebook", "../up.ipynb"),)

CASES: list[Case] = [
    _get("/version", 200),
    _get("/version", 403, auth=False),
    _get("/runs", 200),
    _get(
        "/runs",
        200,
        query=(
            ("notebook", "nb.ipynb"),
            ("kind", "run"),
            ("status", "ok"),
            ("q", "X = "),
            ("author", "tester"),
            ("metric", "acc>0.4"),
            ("metric", "loss<1"),
            ("tag", "baseline"),
            ("limit", "1"),
        ),
    ),
    _get("/runs", 200, query=(("before", "{b}"), ("kind", "checkpoint"))),
    _get("/runs", 400, query=(("limit", "0"),)),
    _get("/runs", 400, query=(("kind", "bogus"),)),
    _get("/runs", 400, query=(("status", "bogus"),)),
    _get("/runs", 400, query=(("metric", "acc>>1"),)),
    _get("/runs", 400, query=BAD_NB),
    _get("/runs", 403, auth=False),
    _get(R, 200, ("run", "{a}")),
    _get(R, 200, ("run", "#1"), query=(("notebook", "nb.ipynb"),)),
    _get(R, 200, ("run", "latest")),
    _get(R, 200, ("run", "{a:prefix}")),
    _get(R, 400, ("run", "{a}"), query=(("notebook", "/etc/passwd"),)),
    _get(R, 403, ("run", "{a}"), auth=False),
    _get(R, 404, ("run", "no-such-run")),
    _get(R, 404, ("run", "#99"), query=(("notebook", "nb.ipynb"),)),
    _get(R, 404, ("run", "latest"), query=(("notebook", "never.ipynb"),)),
    _get(R, 409, ("run", "#1")),
    _get(R, 409, ("run", "0")),
    _get(R, 410, ("run", "{gone}")),
    _get(R, 500, ("run", "{rotten}")),
    _get(D, 200, ("run", "{a}"), ("other", "{b}")),
    _get(D, 200, ("run", "#1"), ("other", "#2"), query=(("notebook", "nb.ipynb"),)),
    _get(D, 400, ("run", "{a}"), ("other", "{b}"), query=BAD_NB),
    _get(D, 403, ("run", "{a}"), ("other", "{b}"), auth=False),
    _get(D, 404, ("run", "{a}"), ("other", "ZZZZ")),
    _get(D, 409, ("run", "#1"), ("other", "{b}")),
    _get(D, 410, ("run", "{a}"), ("other", "{gone}")),
    _get(D, 500, ("run", "{rotten}"), ("other", "{a}")),
    _get(F, 200, ("run", "{a}"), query=(("path", "data.csv"),), media="text/csv"),
    _get(
        F, 200, ("run", "{a}"), query=(("path", "params.json"), ("role", "input")), media="application/json"
    ),
    _get(F, 200, ("run", "{a}"), query=(("path", "page.html"),), media="application/octet-stream"),
    _get(
        F,
        200,
        ("run", "latest"),
        query=(("path", "data.csv"), ("notebook", "nb.ipynb"), ("role", "output"), ("download", "1")),
        media="text/csv",
    ),
    _get(F, 400, ("run", "{a}")),
    _get(F, 400, ("run", "{a}"), query=(("path", "../data.csv"),)),
    _get(F, 400, ("run", "{a}"), query=(("path", "data.csv"), ("role", "bogus"))),
    _get(F, 403, ("run", "{a}"), query=(("path", "data.csv"),), auth=False),
    _get(F, 404, ("run", "ZZZZ"), query=(("path", "data.csv"),)),
    _get(F, 404, ("run", "{a}"), query=(("path", "unknown.csv"),)),
    _get(F, 404, ("run", "{a}"), query=(("path", "data.csv"), ("role", "input"))),
    _get(F, 404, ("run", "{a}"), query=(("path", "huge.bin"),)),
    _get(F, 409, ("run", "#1"), query=(("path", "data.csv"),)),
    _get(F, 410, ("run", "{lost}"), query=(("path", "lost.txt"),)),
    _get(F, 413, ("run", "{big}"), query=(("path", "big.txt"),)),
    _get(F, 500, ("run", "{bad}"), query=(("path", "bad.txt"),)),
    _post(N, 201, ("run", "{b}"), body={"notebook": NOTEBOOK}),
    _post(N, 409, ("run", "{b}"), body={"notebook": NOTEBOOK}),  # a frontend snapshot is final
    _post(N, 201, ("run", "#1"), query=(("notebook", "other.ipynb"),), body={"notebook": NOTEBOOK}),
    _post(N, 400, ("run", "{a}"), body=b"{not json"),
    _post(N, 400, ("run", "{a}"), body={"notebook": {"cells": 3}}),
    _post(N, 400, ("run", "{a}"), body={"notebook": NOTEBOOK}, query=BAD_NB),
    _post(N, 403, ("run", "{a}"), body={"notebook": NOTEBOOK}, auth=False),
    _post(N, 404, ("run", "ZZZZ"), body={"notebook": NOTEBOOK}),
    _post(N, 409, ("run", "{checkpoint}"), body={"notebook": NOTEBOOK}),
    _post(N, 409, ("run", "#1"), body={"notebook": NOTEBOOK}),
    _post(N, 410, ("run", "{gone}"), body={"notebook": NOTEBOOK}),
    _post(N, 500, ("run", "{rotten}"), body={"notebook": NOTEBOOK}),
    _post(S, 200, ("run", "{a}"), body={"dry_run": True}),
    _post(S, 200, ("run", "{a}"), body={"data": True, "notebook": True, "dry_run": False}),
    _post(S, 200, ("run", "#2"), query=(("notebook", "nb.ipynb"),), body=b""),
    _post(S, 200, ("run", "{checkpoint}"), body={"notebook": False}),
    _post(S, 400, ("run", "{a}"), body={"data": "yes"}),
    _post(S, 400, ("run", "{a}"), body={"data": False, "notebook": False}),
    # The kernel option: no kernel runs the notebook here, said in a 200.
    _post(S, 200, ("run", "{a}"), body={"data": False, "notebook": False, "kernel": {"checkout": True}}),
    _post(S, 400, ("run", "{a}"), body={"kernel": {"checkout": True, "undo": True}}),
    _post(S, 400, ("run", "{a}"), body=b"[true]"),
    _post(S, 400, ("run", "{a}"), body={}, query=BAD_NB),
    _post(S, 403, ("run", "{a}"), body={}, auth=False),
    _post(S, 404, ("run", "ZZZZ"), body={}),
    _post(S, 409, ("run", "#1"), body={}),
    _post(S, 410, ("run", "{lost}"), body={}),
    _post(S, 500, ("run", "{bad}"), body={}),
    _get(T, 200, ("run", "{a}")),
    _get(T, 200, ("run", "#1"), query=(("notebook", "nb.ipynb"),)),
    _get(T, 200, ("run", "{lost}")),  # an object gone: the working tree is still compared
    _get(T, 400, ("run", "{a}"), query=BAD_NB),
    _get(T, 403, ("run", "{a}"), auth=False),
    _get(T, 404, ("run", "ZZZZ")),
    _get(T, 409, ("run", "#1")),
    _get(T, 410, ("run", "{gone}")),
    _get(T, 500, ("run", "{rotten}")),
    _get(K, 200, ("run", "{a}")),
    _get(K, 400, ("run", "{a}"), query=BAD_NB),
    _get(K, 403, ("run", "{a}"), auth=False),
    _get(K, 404, ("run", "{b}")),  # a run without kernel state
    _get(K, 404, ("run", "ZZZZ")),
    _get(K, 409, ("run", "#1")),
    _get(L, 200, ("run", "{tree}"), query=(("path", "images"),)),
    _get(
        L,
        200,
        ("run", "#1"),
        query=(
            ("path", "images/c1"),
            ("role", "input"),
            ("offset", "5"),
            ("limit", "10"),
            ("notebook", "trees.ipynb"),
        ),
    ),
    _get(L, 400, ("run", "{tree}")),
    _get(L, 400, ("run", "{tree}"), query=(("path", "../images"),)),
    _get(L, 400, ("run", "{tree}"), query=(("path", "images"), ("role", "bogus"))),
    _get(L, 400, ("run", "{tree}"), query=(("path", "images"), ("offset", "-1"))),
    _get(L, 400, ("run", "{tree}"), query=(("path", "images"), ("limit", "501"))),
    _get(L, 400, ("run", "{tree}"), query=(("path", "images"), *BAD_NB)),
    _get(L, 403, ("run", "{tree}"), query=(("path", "images"),), auth=False),
    _get(L, 404, ("run", "ZZZZ"), query=(("path", "images"),)),
    _get(L, 404, ("run", "{tree}"), query=(("path", "images"), ("role", "output"))),
    _get(L, 404, ("run", "{tree}"), query=(("path", "images/c3"),)),
    _get(L, 409, ("run", "#1"), query=(("path", "images"),)),
    _get(L, 410, ("run", "{gone}"), query=(("path", "images"),)),
    _get(L, 500, ("run", "{rotten}"), query=(("path", "images"),)),
    _get("/metrics", 200),
    _get("/metrics", 200, query=(("name", "acc"),)),
    _get("/metrics", 200, query=(("name", "acc"), ("notebook", "nb.ipynb"), ("limit", "1"))),
    _get("/metrics", 200, query=(("name", "loss"), ("run", "{a}"))),
    _get("/metrics", 200, query=(("name", "loss"), ("run", "#1"), ("notebook", "nb.ipynb"))),
    _get("/metrics", 400, query=(("run", "{a}"),)),
    _get("/metrics", 400, query=(("name", "acc"), ("limit", "0"))),
    _get("/metrics", 400, query=BAD_NB),
    _get("/metrics", 403, auth=False),
    _get("/metrics", 404, query=(("name", "loss"), ("run", "{b}"))),
    _get("/metrics", 404, query=(("name", "loss"), ("run", "ZZZZ"))),
    _get("/metrics", 409, query=(("name", "loss"), ("run", "#1"))),
    _get("/metrics", 410, query=(("name", "loss"), ("run", "{gone}"))),
    _get("/metrics", 500, query=(("name", "loss"), ("run", "{rotten}"))),
    _get("/events", 200),
    _get("/events", 200, query=(("after", "0"), ("timeout", "0"))),
    _get("/events", 200, query=(("after", "999999"), ("timeout", "0"))),
    _get("/events", 400, query=(("after", "-1"),)),
    _get("/events", 400, query=(("after", "x"),)),
    _get("/events", 400, query=(("after", "0"), ("timeout", "121"))),
    _get("/events", 403, auth=False),
    _get("/remotes", 200),
    _get("/remotes", 403, auth=False),
    _post("/push", 200, body={"runs": ["latest"]}),
    _post("/push", 200, query=(("notebook", "nb.ipynb"),), body={"remote": "origin", "runs": ["#1", "#2"]}),
    _post("/push", 200, query=(("notebook", "nb.ipynb"),), body={"runs": ["#1"]}),  # already there
    _post("/push", 400, body={"runs": []}),
    _post("/push", 400, body={"runs": "latest"}),
    _post("/push", 400, body={"remote": ""}),
    _post("/push", 400, body=b"[1]"),
    _post("/push", 400, query=BAD_NB, body={"runs": ["#1"]}),
    _post("/push", 403, body={}, auth=False),
    _post("/push", 404, body={"remote": "nope"}),
    _post("/push", 404, body={"runs": ["ZZZZ"]}),
    _post("/push", 409, body={"runs": ["#1"]}),  # #1 of several notebooks
    _post("/push", 409, body={"remote": "future", "runs": ["latest"]}),
    _post("/push", 410, query=(("notebook", "broken.ipynb"),), body={"runs": ["#1"]}),  # gone
    _post("/push", 500, query=(("notebook", "broken.ipynb"),), body={"runs": ["#2"]}),  # rotten
    _post("/push", 502, body={"remote": "gone", "runs": ["latest"]}),
    _post("/pull", 200, body={}),
    _post("/pull", 200, body={"remote": "origin", "with_data": True}),
    _post("/pull", 200, body=b""),
    _post("/pull", 400, body={"with_data": "yes"}),
    _post("/pull", 400, body={"remote": 3}),
    _post("/pull", 403, body={}, auth=False),
    _post("/pull", 404, body={"remote": "nope"}),
    _post("/pull", 409, body={"remote": "future"}),
    _post("/pull", 502, body={"remote": "gone"}),
    _get("/verify", 200),  # the damaged runs of broken.ipynb are breaks: still 200, "ok": false
    _get("/verify", 200, query=(("require_signed", "true"),)),
    _get("/verify", 200, query=(("remote", "origin"),)),
    _get("/verify", 400, query=(("require_signed", "yes"),)),
    _get("/verify", 403, auth=False),
    _get("/verify", 404, query=(("remote", "nope"),)),
    _get("/verify", 409, query=(("remote", "future"),)),
    _get("/verify", 502, query=(("remote", "gone"),)),
    _get(A, 200, ("run", "{a}")),
    _get(A, 200, ("run", "#1"), query=(("notebook", "nb.ipynb"),)),
    _get(A, 400, ("run", "{a}"), query=BAD_NB),
    _get(A, 403, ("run", "{a}"), auth=False),
    _get(A, 404, ("run", "ZZZZ")),
    _get(A, 409, ("run", "#1")),
    _post(A, 201, ("run", "{a}"), body={"tag": ["baseline", "<img/src=x/onerror=alert(1)>"]}),
    _post(A, 201, ("run", "#2"), query=(("notebook", "nb.ipynb"),), body={"untag": ["baseline"]}),
    _post(A, 201, ("run", "{b}"), body={"note": "looks <b>off</b>"}),
    _post(A, 400, ("run", "{a}"), body={"tag": ["two words"]}),
    _post(A, 400, ("run", "{a}"), body={"tag": ["x"], "note": "y"}),
    _post(A, 400, ("run", "{a}"), body={"note": 3}),
    _post(A, 400, ("run", "{a}"), body={"tag": ["x"]}, query=BAD_NB),
    _post(A, 403, ("run", "{a}"), body={"tag": ["x"]}, auth=False),
    _post(A, 404, ("run", "ZZZZ"), body={"tag": ["x"]}),
    _post(A, 409, ("run", "#1"), body={"tag": ["x"]}),
    _get("/tags", 200),
    _get("/tags", 200, query=(("notebook", "nb.ipynb"),)),
    _get("/tags", 400, query=BAD_NB),
    _get("/tags", 403, auth=False),
    _get("/table", 200),
    _get(
        "/table",
        200,
        query=(
            ("notebook", "nb.ipynb"),
            ("kind", "all"),
            ("filter", "acc > 0.4"),
            ("filter", "lr = 0.1"),
            ("tag", "baseline"),
            ("q", "first"),
            ("sort", "metric:acc"),
            ("order", "asc"),
            ("offset", "0"),
            ("limit", "10"),
            ("columns", "true"),
        ),
    ),
    _get("/table", 200, query=(("sort", "param:lr"), ("filter", "status = ok"))),
    _get("/table", 200, query=(("sort", "inputs_changed"), ("filter", "outputs_changed >= 0"))),
    _get("/table", 400, query=(("filter", "nope > 1"),)),
    _get("/table", 400, query=(("sort", "bogus"),)),
    _get("/table", 400, query=(("order", "up"),)),
    _get("/table", 200, query=(("group", "notebook"), ("sort", "metric:acc"))),
    _get("/table", 400, query=(("group", "status"),)),
    _get("/table", 400, query=(("kind", "bogus"),)),
    _get("/table", 400, query=(("limit", "0"),)),
    _get("/table", 400, query=BAD_NB),
    _get("/table", 403, auth=False),
    _post("/sweeps", 202, body={"source": "sweep.ipynb", "params": ["x=1,2"], "random": 1, "seed": 3}),
    _post("/sweeps", 400, body={"source": "sweep.ipynb", "params": ["x=1"], "cluster": "mars"}),
    _post("/sweeps", 400, body={"source": "nb.ipynb", "params": ["x=1"]}),
    _post("/sweeps", 400, body={"source": "sweep.ipynb", "params": ["lr=1"]}),
    _post("/sweeps", 400, body={"source": "sweep.ipynb"}),
    _post("/sweeps", 404, body={"source": "sweep.ipynb", "params": ["x=1"], "remote": "nope"}),
    _post("/sweeps", 403, body={"source": "sweep.ipynb", "params": ["x=1"]}, auth=False),
    _get("/sweeps/params", 200, query=(("source", "sweep.ipynb"),)),
    _get("/sweeps/params", 400, query=(("source", "nb.ipynb"),)),
    _get("/sweeps/params", 403, query=(("source", "sweep.ipynb"),), auth=False),
    _get("/sweeps/{sweep}", 200, ("sweep", "{sweep}")),
    _get("/sweeps/{sweep}", 404, ("sweep", "01M982CX5CASE0VXK3CT5TMND1")),
    _get("/sweeps/{sweep}", 403, ("sweep", "{sweep}"), auth=False),
    _post("/sweeps/{sweep}/cancel", 202, ("sweep", "{sweep}"), body={}),
    _post("/sweeps/{sweep}/cancel", 404, ("sweep", "01M982CX5CASE0VXK3CT5TMND1"), body={}),
    _post("/sweeps/{sweep}/cancel", 403, ("sweep", "{sweep}"), body={}, auth=False),
    _get("/lineage", 200, query=(("path", "data.csv"), ("direction", "upstream"), ("depth", "2"))),
    _get("/lineage", 200, query=(("run", "#1"), ("notebook", "nb.ipynb"))),
    _get("/lineage", 400),
    _get("/lineage", 400, query=(("path", "data.csv"), ("run", "{a}"))),
    _get("/lineage", 400, query=(("path", "../data.csv"),)),
    _get("/lineage", 400, query=(("path", "data.csv"), ("direction", "sideways"))),
    _get("/lineage", 400, query=(("path", "data.csv"), ("depth", "-1"))),
    _get("/lineage", 403, query=(("path", "data.csv"),), auth=False),
    _get("/lineage", 404, query=(("path", "never.csv"),)),
    _get("/lineage", 404, query=(("run", "ZZZZ"),)),
    _get("/lineage", 409, query=(("run", "#1"),)),
]


def test_cases_cover_every_documented_status_and_parameter() -> None:
    operations = set(_operations())
    exercised: set[tuple[str, str, str]] = set()
    queried: set[tuple[str, str, str]] = set()
    for case in CASES:
        assert (case.path, case.verb) in operations, case
        assert {name for name, _ in case.args} == set(_parameters(case.path, case.verb, "path")), case
        documented_query = _parameters(case.path, case.verb, "query")
        for name, _ in case.query:
            assert name in documented_query, f"{case}: query {name!r} is not documented"
            queried.add((case.path, case.verb, name))
        exercised.add((case.path, case.verb, str(case.status)))
    for path, verb in operations:
        for code in _responses(path, verb):
            if code != "default":
                assert (path, verb, code) in exercised, f"{verb.upper()} {path} {code} is never exercised"
        for name in _parameters(path, verb, "query"):
            assert (path, verb, name) in queried, f"{verb.upper()} {path} ?{name} is never sent"


def _fill(text: str, world: World) -> str:
    def one(match: re.Match[str]) -> str:
        key, _, form = match.group(1).partition(":")
        run_id = world.ids[key]
        return run_id[:20].lower() if form == "prefix" else run_id

    return re.sub(r"\{(\w+(?::\w+)?)\}", one, text)


async def send(
    client: Any, base_url: str, token: str | None, case: Case, world: World
) -> tuple[HTTPResponse, str]:
    """The request for ``case``, built by hand so that nothing is escaped twice or added."""
    path = case.path
    for name, value in case.args:
        path = path.replace("{" + name + "}", urllib.parse.quote(_fill(value, world), safe=""))
    query = urllib.parse.urlencode([(k, _fill(v, world)) for k, v in case.query])
    url = base_url.rstrip("/") + "/dotnb/api" + path + (f"?{query}" if query else "")
    headers = {"Authorization": f"token {token}"} if case.auth else {}
    body: bytes | None = None
    if case.verb == "post":
        body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
        headers["Content-Type"] = "application/json"
    response = await client.fetch(
        url, method=case.verb.upper(), headers=headers, body=body, raise_error=False
    )
    return response, url


def check_response(case: Case, response: HTTPResponse, url: str) -> list[str]:
    """What is wrong with ``response`` according to the spec (nothing: an empty list)."""
    where = f"{case.verb.upper()} {url} ({case.path}, expected {case.status})"
    problems: list[str] = []
    if response.code != case.status:
        return [f"{where}: answered {response.code}: {response.body[:300]!r}"]
    documented = _responses(case.path, case.verb).get(str(response.code))
    if documented is None:
        return [f"{where}: status {response.code} is not documented"]
    media = response.headers.get("Content-Type", "").split(";")[0].strip()
    if media not in documented.get("content", {}):
        return [f"{where}: Content-Type {media!r} is not documented for {response.code}"]
    if media != case.media:
        problems.append(f"{where}: Content-Type {media!r}, expected {case.media!r}")
    for name, header in documented.get("headers", {}).items():
        value = response.headers.get(name)
        if value is None:
            if header.get("required"):
                problems.append(f"{where}: required header {name} is missing")
            continue
        pointer = ("paths", case.path, case.verb, "responses", str(response.code), "headers", name, "schema")
        errors = list(schema_validator(*pointer).iter_errors(value))
        problems += [f"{where}: header {name}: {e.message}" for e in errors]
    if media == "application/json":
        try:
            body = json.loads(response.body)
        except ValueError as exc:
            return [*problems, f"{where}: body is not JSON ({exc})"]
        validator = schema_validator(
            "paths", case.path, case.verb, "responses", str(response.code), "content", media, "schema"
        )
        problems += [f"{where}: {e.json_path}: {e.message}" for e in validator.iter_errors(body)]
    return problems


def _request_body_problems(case: Case) -> list[str]:
    """A body sent in a successful case must be one the spec's requestBody allows."""
    if case.verb != "post" or case.status >= 400 or isinstance(case.body, bytes):
        return []
    pointer = ("paths", case.path, case.verb, "requestBody", "content", "application/json", "schema")
    errors = schema_validator(*pointer).iter_errors(case.body)
    return [f"{case.verb.upper()} {case.path} body: {e.message}" for e in errors]


@pytest.mark.parametrize(("path", "verb"), _operations(), ids=[f"{v} {p}" for p, v in _operations()])
async def test_every_operation_answers_as_documented(
    path: str,
    verb: str,
    world: World,
    http_server_client: Any,
    jp_base_url: str,
    jp_serverapp: Any,
) -> None:
    token = jp_serverapp.identity_provider.token
    problems: list[str] = []
    for case in [c for c in CASES if (c.path, c.verb) == (path, verb)]:
        response, url = await send(http_server_client, jp_base_url, token, case, world)
        problems += check_response(case, response, url)
        problems += _request_body_problems(case)
    assert not problems, "\n".join(problems)


# -- the CLI prints the same shapes ---------------------------------------------------


def _cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert cli.main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_json_matches_the_api_schemas(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    root = ["--root", str(world.root)]
    rows = _cli_json(capsys, *root, "log", "--json")
    assert {r["id"] for r in rows} >= {world.ids["a"], world.ids["b"]}
    for row in rows:
        component("RunSummary").validate(row)
    component("RunDetail").validate(_cli_json(capsys, *root, "show", world.ids["a"], "--json"))
    component("RunDiff").validate(_cli_json(capsys, *root, "diff", world.ids["a"], world.ids["b"], "--json"))
    lineage = _cli_json(capsys, *root, "lineage", "data.csv", "--json")
    component("Lineage").validate(lineage)
    assert lineage["root"] == "content:" + hash_bytes(b"a\n2\n")
    plan = _cli_json(capsys, *root, "restore", world.ids["a"], "--dry-run", "--json")
    component("RestoreResult").validate(plan)
    for row in _cli_json(capsys, *root, "log", "--show-signature", "--json"):
        component("RunSummary").validate(row)
    assert cli.main([*root, "verify", "--json"]) == 1  # broken.ipynb's damaged runs
    report = json.loads(capsys.readouterr().out)
    component("VerifyReport").validate(report)
    assert {b["kind"] for b in report["breaks"]} == {"missing", "edited"}
