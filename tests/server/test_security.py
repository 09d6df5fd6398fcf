"""The REST API's security, against a real server that allows no unauthenticated access.

- Loading the extension emits no ``JupyterServerAuthWarning``: every verb of every
  handler is decorated (the extension template's ``check_auth.py``, done here).
- Every route and verb refuses a request without valid credentials: 403, no data,
  nothing changed.
- A cookie-authenticated POST needs the XSRF token.
- Paths from a request or from a forged manifest never lead a read or a write
  outside the project root: ``../``, ``%2e%2e``, absolute paths, NUL bytes, a
  sibling folder whose name starts with the root's, symlinks leading outside.
- Malformed bodies, invalid notebooks, unknown and ambiguous runs get 4xx with a
  message and change nothing.
- Error bodies are JSON ``{"message": …}`` without a traceback, an absolute path
  or the token.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_server.utils import JupyterServerAuthWarning, url_path_join
from tornado.httpclient import HTTPResponse

from dotnb.server.handlers import DotnbHandler
from dotnb.server.routes import ROUTES
from dotnb.store import Store
from dotnb.store.annotating import tag_run
from dotnb.store.errors import PathOutsideRoot
from dotnb.store.ids import new_run_id
from dotnb.store.kernel_state import STATE_FORMAT, put_document, write_state_ref
from dotnb.store.manifest import FORMAT_VERSION, canonical_json
from dotnb.store.restore import write_verified
from tests.manifests import new_manifest


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {
        "ServerApp": {
            # pytest-jupyter adds jupyter_server_terminals, whose websocket handler is
            # undecorated: leave it out so that any auth warning here is dotnb's.
            "jpserver_extensions": {"dotnb": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
            # A warning turned error while loading must fail the test, not skip the extension.
            "reraise_server_extension_failures": True,
        }
    }


SECRET = b"SECRET-DATA-4f1c\n"  # a run's output: must never appear in a refused reply


# -- a project with runs, and a client ---------------------------------------------


@dataclass
class Project:
    """The root, its neighbours, and a client for the API."""

    client: Any
    base: str  # {base_url}dotnb/api/
    token: str
    root: Path
    store: Store
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def outside(self) -> Path:
        return self.root.parent / "outside"

    @property
    def sibling(self) -> Path:
        """A folder next to the root whose name starts with the root's name."""
        return self.root.parent / f"{self.root.name}-evil"

    async def fetch(
        self,
        path: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> HTTPResponse:
        """``path`` is sent as written (nothing escaped), relative to the API."""
        headers = dict(headers or {})
        if auth:
            headers.setdefault("Authorization", f"token {self.token}")
        if method in ("POST", "PUT", "PATCH") and body is None:
            body = b""
        response: HTTPResponse = await self.client.fetch(
            self.base + path,
            method=method,
            body=body,
            headers=headers,
            raise_error=False,
            follow_redirects=False,
        )
        return response

    def leaks(self) -> list[str]:
        """Strings no error body may contain.  (A path the client sent may be quoted back;
        the root's absolute path, which the client may not know, never is.)"""
        found = {str(self.root), os.path.realpath(self.root), self.token}
        return [*sorted(found), "Traceback", 'File "', SECRET.decode().strip()]

    def state(self) -> dict[str, Any]:
        """Everything a refused request must leave as it was: the neighbours, the
        folder holding the root, and the root's own files (the store aside)."""
        return {
            "around": sorted(os.listdir(self.root.parent)),
            "outside": _tree(self.outside),
            "sibling": _tree(self.sibling),
            "root": {k: v for k, v in _tree(self.root).items() if not k.startswith(".dotnb/")},
        }


def _tree(top: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(folder) / name
            rel = path.relative_to(top).as_posix()
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_file():
                found[rel] = path.read_bytes()
            else:
                found[rel] = "dir"
    return found


def _entry(store: Store, path: str, data: bytes) -> dict[str, Any]:
    digest, size = store.objects.put_bytes(data, sync=False)
    return {"path": path, "hash": digest, "size": size}


@pytest.fixture
def project(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str, jp_root_dir: Path
) -> Iterator[Project]:
    root = jp_root_dir
    store = Store(root)
    p = Project(
        http_server_client,
        url_path_join(jp_base_url, "dotnb", "api") + "/",
        jp_serverapp.identity_provider.token,
        Path(os.path.realpath(root)),
        store,
    )
    nb = nbformat.v4.new_notebook()
    nb_bytes = nbformat.writes(nb).encode()
    (root / "nb.ipynb").write_bytes(nb_bytes)
    swept = nbformat.v4.new_notebook()  # GET sweeps/params reads a parameters cell
    swept.cells = [nbformat.v4.new_code_cell("lr = 0.1", metadata={"tags": ["parameters"]})]
    nbformat.write(swept, root / "sweep.ipynb")
    (root / "data.csv").write_bytes(b"a\n2\n")
    p.outside.mkdir()
    (p.outside / "target.txt").write_bytes(b"precious\n")
    p.sibling.mkdir()
    (p.sibling / "keep.txt").write_bytes(b"keep\n")
    # Symlinks inside the root that lead out of it.
    (root / "out-link.txt").symlink_to(Path("..") / "outside" / "target.txt")
    (root / "out-dir").symlink_to(Path("..") / "outside", target_is_directory=True)
    (root / "evil").symlink_to(Path("..") / p.sibling.name, target_is_directory=True)
    snapshot = _entry(store, "nb.ipynb", nb_bytes)
    p.ids["a"] = store.commit_run(
        new_manifest(
            "nb.ipynb",
            outputs=[_entry(store, "data.csv", b"a\n1\n"), _entry(store, "secret.txt", SECRET)],
            # A folder of many files, recorded as a tree (GET runs/{run}/folder lists it).
            inputs=[_entry(store, f"bulk/{i:02d}.txt", b"%d" % i) for i in range(40)],
            metric_series={"loss": [{"step": 1, "value": 0.5}]},
            notebook_snapshot={"hash": snapshot["hash"], "size": snapshot["size"]},
            notebook_source="disk",
        ),
        sync=False,
    )["id"]
    p.ids["b"] = store.commit_run(new_manifest("nb.ipynb"), sync=False)["id"]
    p.ids["c"] = store.commit_run(new_manifest("other.ipynb"), sync=False)["id"]
    tag_run(store, p.ids["b"], [f"sweep:{SWEEP_ID}"])  # GET sweeps/{id} finds a recorded sweep
    # GET runs/{run}/kernel-state finds a recorded state.
    state = {"format": STATE_FORMAT, "author": "ada@box", "variables": {"lr": {"status": "unpicklable"}}}
    write_state_ref(store.dir, p.ids["a"], put_document(store.objects, state))
    yield p
    store.close()


def assert_refused(response: HTTPResponse, project: Project, *codes: int) -> str:
    """A JSON error with one of ``codes`` (any 4xx when none), a message, and no leak."""
    where = f"{response.request.method} {response.request.url} → {response.code}: {response.body[:300]!r}"
    if codes:
        assert response.code in codes, where
    else:
        assert 400 <= response.code < 500, where
    assert response.headers.get("Content-Type", "").startswith("application/json"), where
    body = json.loads(response.body)
    assert isinstance(body, dict), where
    assert isinstance(body.get("message"), str) and body["message"].strip(), where
    text = response.body.decode("utf-8")
    for leak in project.leaks():
        assert leak not in text, f"{where}: leaks {leak!r}"
    return str(body["message"])


SWEEP_ID = "01M982CX5CASE0VXK3CT5TMND1"


def _concrete(pattern: str, project: Project) -> str:
    """A URL path for a route pattern, with real run ids in it."""
    path = pattern.replace("(?P<ref>[^/]+)", project.ids["a"])
    path = path.replace("(?P<first>[^/]+)", project.ids["a"]).replace("(?P<second>[^/]+)", project.ids["b"])
    path = path.replace("(?P<sweep_id>[^/]+)", SWEEP_ID)
    where = "bulk" if path.endswith("/folder") else "secret.txt"
    return path + f"?path={where}&name=loss&after=0&timeout=0&source=sweep.ipynb"


# -- authentication ---------------------------------------------------------------


def test_loading_the_extension_emits_no_auth_warning(jp_configurable_serverapp: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = jp_configurable_serverapp()
    auth = [str(w.message) for w in caught if issubclass(w.category, JupyterServerAuthWarning)]
    assert auth == []
    assert app.web_app.settings["allow_unauthenticated_access"] is False
    assert "dotnb_store" in app.web_app.settings  # the extension did load
    for pattern, handler in ROUTES:
        assert app.web_app._check_handler_auth(pattern, handler) == [], pattern


def test_an_undecorated_verb_would_be_caught(jp_serverapp: Any, jp_base_url: str) -> None:
    """The check above can fail: a verb without @web.authenticated warns on this server."""

    class Leaky(DotnbHandler):
        async def get(self) -> None:
            self.reply({"leaked": True})

    with pytest.warns(JupyterServerAuthWarning, match="GET of Leaky"):
        jp_serverapp.web_app.add_handlers(".*$", [(url_path_join(jp_base_url, "dotnb", "leaky"), Leaky)])


async def test_every_route_and_verb_refuses_requests_without_credentials(project: Project) -> None:
    xsrf_page = await project.client.fetch(project.base.replace("dotnb/api/", "login"), raise_error=False)
    xsrf = _cookies(xsrf_page)["_xsrf"]
    port = project.client.get_http_port()
    variants: list[tuple[str, dict[str, str], str]] = [
        ("no credentials", {}, ""),
        ("a wrong token", {"Authorization": "token not-the-token"}, ""),
        ("a wrong bearer token", {"Authorization": "bearer not-the-token"}, ""),
        ("a wrong token in the URL", {}, "&token=not-the-token"),
        ("a forged login cookie", {"Cookie": f"username-127-0-0-1-{port}=forged"}, ""),
        # Passing the XSRF check must not stand in for authentication.
        ("a valid XSRF token only", {"Cookie": f"_xsrf={xsrf}", "X-XSRFToken": xsrf}, ""),
    ]
    before = project.state()
    manifest_before = project.store.manifest_hash(project.ids["a"])
    for pattern, _handler in ROUTES:
        url = _concrete(pattern, project)
        # With the token, the same URLs do answer (so the 403s below are about credentials).
        assert (await project.fetch(url)).code in (200, 405), url
        for verb in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
            for name, headers, extra in variants:
                response = await project.fetch(url + extra, verb, headers=headers, auth=False)
                assert response.code == 403, f"{verb} {url} with {name}: {response.code}"
                if verb == "HEAD":
                    assert response.body == b""
                else:
                    assert_refused(response, project, 403)
                assert project.ids["a"].encode() not in response.body
        # OPTIONS is jupyter_server's CORS pre-flight: unauthenticated by design, and empty.
        preflight = await project.fetch(url, "OPTIONS", auth=False)
        assert preflight.code in (200, 204) and preflight.body == b""
    assert project.state() == before
    assert project.store.manifest_hash(project.ids["a"]) == manifest_before


async def test_a_verb_a_route_does_not_have_is_a_json_405(project: Project) -> None:
    for verb in ("PUT", "PATCH", "DELETE"):
        response = await project.fetch(f"runs/{project.ids['a']}/restore", verb)
        assert_refused(response, project, 405)


# -- XSRF -------------------------------------------------------------------------


def _cookies(response: HTTPResponse) -> dict[str, str]:
    """name → value exactly as set (quotes kept), from Set-Cookie headers."""
    found = {}
    for header in response.headers.get_list("Set-Cookie"):
        name, _, value = header.split(";")[0].partition("=")
        found[name.strip()] = value.strip()
    return found


async def test_cookie_authenticated_posts_need_the_xsrf_token(project: Project) -> None:
    login = _cookies(await project.fetch("version"))  # token-authenticated: sets the login cookie
    (login_name,) = [name for name in login if name.startswith("username-")]
    page = await project.client.fetch(project.base.replace("dotnb/api/", "login"), raise_error=False)
    xsrf = _cookies(page)["_xsrf"]
    other_page = await project.client.fetch(project.base.replace("dotnb/api/", "login"), raise_error=False)
    other_xsrf = _cookies(other_page)["_xsrf"]
    assert other_xsrf != xsrf
    cookie = {"Cookie": f"{login_name}={login[login_name]}; _xsrf={xsrf}"}
    data = project.root / "data.csv"
    restore = f"runs/{project.ids['a']}/restore"
    snapshot = f"runs/{project.ids['b']}/notebook"
    notebook = json.dumps({"notebook": nbformat.v4.new_notebook()}).encode()

    # The cookie alone authenticates a GET.
    assert (await project.fetch("runs", headers=cookie, auth=False)).code == 200
    # A POST with the cookie but without the XSRF token, or with another one, is refused.
    for headers in (cookie, {**cookie, "X-XSRFToken": other_xsrf}, {**cookie, "X-XSRFToken": "forged"}):
        for path, body in ((restore, b"{}"), (snapshot, notebook)):
            message = assert_refused(
                await project.fetch(path, "POST", body, headers, auth=False), project, 403
            )
            assert "xsrf" in message.lower()
    assert data.read_bytes() == b"a\n2\n"
    assert project.store.manifest(project.ids["b"]).get("notebook_source") is None
    # A cross-origin POST is refused even with the right XSRF token.
    cross = {**cookie, "X-XSRFToken": xsrf, "Origin": "http://evil.example"}
    assert 400 <= (await project.fetch(restore, "POST", b"{}", cross, auth=False)).code < 500
    assert data.read_bytes() == b"a\n2\n"
    # With the token in the header, or as the _xsrf argument, it goes through.
    done = await project.fetch(restore, "POST", b"{}", {**cookie, "X-XSRFToken": xsrf}, auth=False)
    assert done.code == 200, done.body
    assert data.read_bytes() == b"a\n1\n"
    query = urllib.parse.urlencode({"_xsrf": xsrf})
    attached = await project.fetch(f"{snapshot}?{query}", "POST", notebook, cookie, auth=False)
    assert attached.code == 201, attached.body
    assert project.store.manifest(project.ids["b"])["notebook_source"] == "frontend"


# -- paths -------------------------------------------------------------------------


async def test_request_paths_that_leave_the_root_are_refused(project: Project) -> None:
    root = str(project.root)
    q = urllib.parse.quote
    bad_paths = [
        "../data.csv",
        "%2e%2e/data.csv",
        "%2E%2E%2Fdata.csv",
        "..%2f..%2fetc%2fpasswd",
        "%2e%2e%2f" + q(project.outside.name) + "%2ftarget.txt",
        "/etc/passwd",
        q(root + "/data.csv"),
        q(str(project.outside / "target.txt")),
        q(str(project.sibling / "keep.txt")),
        "../" + q(project.sibling.name) + "/keep.txt",
        "data.csv%00",
        "a%00b",
        "./data.csv",
        "sub//data.csv",
        "",
    ]
    before = project.state()
    run = project.ids["a"]
    for bad in bad_paths:
        assert_refused(await project.fetch(f"runs/{run}/files?path={bad}"), project, 400)
        if bad:
            assert_refused(await project.fetch(f"runs?notebook={bad}"), project, 400)
            assert_refused(await project.fetch(f"runs/latest/restore?notebook={bad}", "POST"), project, 400)
    # Encoded dots in the run segment are a run reference like any other: not found.
    for ref in ("%2e%2e", "%2e%2e%2f%2e%2e", "..%2Fversion", "%00", q(root, safe="")):
        assert_refused(await project.fetch(f"runs/{ref}"), project, 404)
        assert_refused(await project.fetch(f"runs/{ref}/files?path=data.csv"), project, 404)
        assert_refused(await project.fetch(f"runs/{ref}/restore", "POST", b"{}"), project, 404)
        assert_refused(await project.fetch(f"runs/{ref}/diff/{run}"), project, 404)
    assert project.state() == before


def forge(store: Store, number: int, fields: dict[str, Any]) -> str:
    """A run written straight into the store, as anyone with write access to a shared
    store (or a remote) could: no dotnb code checks what it holds."""
    run_id = new_run_id()
    doc = new_manifest("forged.ipynb", format=FORMAT_VERSION, id=run_id, number=number)
    doc.update(fields)
    digest, _ = store.objects.put_bytes(canonical_json(doc))
    (store.runs_dir / run_id).write_text(digest + "\n")
    return run_id


async def test_restoring_a_forged_run_never_writes_outside_the_root(project: Project) -> None:
    store = project.store
    pwn = _entry(store, "-", b"pwned\n")

    def out(path: str) -> dict[str, Any]:
        return {"outputs": [dict(pwn, path=path)]}

    attacks: dict[str, dict[str, Any]] = {
        "dot-dot": out("../outside/target.txt"),
        "dot-dot, a new file": out("../pwned.txt"),
        "dot-dot inside a path": out("sub/../../outside/target.txt"),
        "absolute": out(str(project.outside / "target.txt")),
        "absolute, a new file": out(str(project.outside / "new.txt")),
        "NUL byte": out("data.csv\x00/../../outside/target.txt"),
        "sibling through dot-dot": out(f"../{project.sibling.name}/keep.txt"),
        "sibling, absolute": out(str(project.sibling / "keep.txt")),
        "sibling through a symlink": out("evil/keep.txt"),
        "symlink to a file outside": out("out-link.txt"),
        "symlink to a folder outside": out("out-dir/target.txt"),
        "symlink to a folder outside, new subfolder": out("out-dir/sub/new.txt"),
        "an input, not an output": {"inputs": [dict(pwn, path="../outside/target.txt")]},
        "the notebook path": {
            "notebook": "../outside/nb.ipynb",
            "notebook_snapshot": {"hash": pwn["hash"], "size": pwn["size"]},
        },
        "removal by a checkpoint": {"kind": "checkpoint", "absent": ["../outside/target.txt"]},
        "removal through a symlink": {"kind": "checkpoint", "absent": ["out-dir/target.txt"]},
        "removal of a symlink leading outside": {"kind": "checkpoint", "absent": ["out-link.txt"]},
        "the store's format file": out(".dotnb/format"),
        "another run's ref": out(f".dotnb/runs/{project.ids['a']}"),
        "one bad path among good ones": {
            "outputs": [dict(pwn, path="fine.txt"), dict(pwn, path="../pwned.txt")]
        },
    }
    forged = {name: forge(store, n, doc) for n, (name, doc) in enumerate(attacks.items(), 1)}
    store.rebuild_index()
    before = project.state()
    for name, run_id in forged.items():
        for body in (b'{"dry_run": true}', b"{}"):
            response = await project.fetch(f"runs/{run_id}/restore", "POST", body)
            assert 400 <= response.code < 500, f"{name}: {response.code} {response.body!r}"
            assert_refused(response, project)
        assert project.state() == before, name
    # The files route refuses the same paths before it looks at any run.
    for path in ("../outside/target.txt", str(project.outside / "target.txt")):
        query = urllib.parse.urlencode({"path": path})
        assert_refused(await project.fetch(f"runs/{forged['dot-dot']}/files?{query}"), project, 400)
    # Percent signs in a stored path are decoded by nobody: "%2e%2e" is a folder inside the root.
    literal = forge(store, 99, out("%2e%2e/outside/target.txt"))
    store.rebuild_index()
    response = await project.fetch(f"runs/{literal}/restore", "POST", b"{}")
    assert response.code == 200, response.body
    assert (project.root / "%2e%2e" / "outside" / "target.txt").read_bytes() == b"pwned\n"
    after = project.state()
    assert {k: after[k] for k in ("around", "outside", "sibling")} == {
        k: before[k] for k in ("around", "outside", "sibling")
    }


def test_a_write_whose_folder_leaves_the_root_names_no_absolute_path(project: Project) -> None:
    """The last check before a restore writes (after a race swapped a folder) is quiet about paths."""
    digest, _ = project.store.objects.put_bytes(b"x")
    target = project.outside / "raced.txt"
    with pytest.raises(PathOutsideRoot) as err:
        write_verified(project.store, digest, target, None)
    assert str(project.outside) not in str(err.value) and "raced.txt" in str(err.value)
    assert not target.exists()


# -- bad requests --------------------------------------------------------------------

VALID_NB = nbformat.v4.new_notebook()


def _nb_body(**changes: Any) -> bytes:
    return json.dumps({"notebook": {**VALID_NB, **changes}}).encode()


async def test_malformed_bodies_and_invalid_notebooks_are_400s(project: Project) -> None:
    deep = b"[" * 100_000
    restore_bodies = [
        b"{not json",
        b"[true]",
        b'"restore"',
        b"null",
        b"\xff\xfe\x00",
        deep,
        b'{"data": NaN}',
        b'{"dry_run": Infinity}',
        b'{"data": 1}',
        b'{"dry_run": "false"}',
        b'{"data": false, "notebook": false}',
    ]
    notebook_bodies = [
        b"",
        b"{}",
        b"{not json",
        b"[]",
        deep,
        b'{"notebook": 3}',
        b'{"notebook": "nb.ipynb"}',
        b'{"notebook": {"cells": 3}}',
        _nb_body(cells=[{"cell_type": "bogus", "source": "", "metadata": {}}]),
        _nb_body(nbformat=99),
        # Python's json would take NaN; a notebook holding it could not be opened again.
        b'{"notebook": {"cells": [], "metadata": {"x": NaN}, "nbformat": 4, "nbformat_minor": 5}}',
    ]
    before = project.state()
    runs_before = len(project.store.list_runs())
    for body in restore_bodies:
        response = await project.fetch(f"runs/{project.ids['a']}/restore", "POST", body)
        assert_refused(response, project, 400)
    for body in notebook_bodies:
        response = await project.fetch(f"runs/{project.ids['b']}/notebook", "POST", body)
        assert_refused(response, project, 400)
    assert project.state() == before
    assert len(project.store.list_runs()) == runs_before  # no checkpoint was made
    assert project.store.manifest(project.ids["b"]).get("notebook_source") is None


async def test_unknown_and_ambiguous_runs_are_404_and_409(project: Project) -> None:
    a = project.ids["a"]
    nb = json.dumps({"notebook": VALID_NB}).encode()
    routes = [
        ("GET", "runs/{r}", None),
        ("GET", "runs/{r}/diff/" + a, None),
        ("GET", f"runs/{a}/diff/{{r}}", None),
        ("GET", "runs/{r}/files?path=data.csv", None),
        ("POST", "runs/{r}/notebook", nb),
        ("POST", "runs/{r}/restore", b"{}"),
        ("GET", "metrics?name=loss&run={r}", None),
    ]
    refs = [
        ("ZZZZZZZZ", "", 404),  # a well-formed prefix of nothing
        ("no-such-run", "", 404),
        ("%2399", "", 404),  # #99
        ("latest", "notebook=never.ipynb", 404),
        ("%231", "", 409),  # #1 exists in nb.ipynb and other.ipynb
        ("0", "", 409),  # a prefix of every id
    ]
    before = project.state()
    for verb, template, body in routes:
        for ref, query, status in refs:
            path = template.replace("{r}", ref)
            if query:
                path += ("&" if "?" in path else "?") + query
            message = assert_refused(await project.fetch(path, verb, body), project, status)
            if status == 409:
                assert "several" in message, message
    assert project.state() == before


# -- what error messages hold ------------------------------------------------------------


async def test_errors_hide_the_token_the_root_and_the_details(
    project: Project, jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run reference that is the token itself is not echoed back.
    message = assert_refused(await project.fetch(f"runs/{project.token}"), project, 404)
    assert "<token>" in message
    # A path under the root is shown relative to it.
    query = urllib.parse.urlencode({"path": f"{project.root}/data.csv"})
    assert "data.csv" in assert_refused(await project.fetch(f"runs/latest/files?{query}"), project, 400)
    # An unexpected failure says nothing of its cause (that goes to the server log).
    server_store = jp_serverapp.web_app.settings["dotnb_store"]

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"boom in {project.root} with {project.token}")

    monkeypatch.setattr(server_store, "list_runs", boom)
    message = assert_refused_500(await project.fetch("runs"), project)
    assert "boom" not in message
    # A corrupted object is reported without a path.
    digest = project.store.manifest(project.ids["a"])["outputs"][1]["hash"]
    obj = project.store.objects.path_for(digest)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"changed\n")
    assert_refused_500(await project.fetch(f"runs/{project.ids['a']}/files?path=secret.txt"), project)


def assert_refused_500(response: HTTPResponse, project: Project) -> str:
    assert response.code == 500, response.body
    body = json.loads(response.body)
    text = response.body.decode("utf-8")
    for leak in project.leaks():
        assert leak not in text, f"leaks {leak!r}: {text}"
    assert isinstance(body.get("message"), str) and body["message"]
    return str(body["message"])
