"""REST handlers: thin translations of HTTP to store operations.

Every verb is ``@web.authenticated``; POSTs also pass jupyter_server's XSRF check
(APIHandler) when the request is cookie-authenticated.  Errors are JSON
``{"message": …}`` without tracebacks; the project root's absolute path is never
echoed back.  Every path from a request goes through the store's confinement.
"""

from __future__ import annotations

import asyncio
import functools
import json
import mimetypes
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from dotnb import __version__
from dotnb.remote.errors import (
    NoRemoteConfigured,
    RemoteConfigError,
    RemoteEmpty,
    RemoteError,
    RemoteFormatError,
    RemoteObjectCorrupt,
    RemoteUnavailable,
    UnknownRemote,
)
from dotnb.store.errors import (
    AmbiguousRun,
    DotnbError,
    NotebookInvalid,
    ObjectCorrupt,
    ObjectMissing,
    PathOutsideRoot,
    RunNotFound,
    StoreFormatError,
)
from dotnb.store.manifest import FORMAT_VERSION
from dotnb.store.paths import check_relpath
from dotnb.store.query import BadQuery, parse_metric_condition
from dotnb.store.repo import Store
from dotnb.store.snapshots import SnapshotRefused
from dotnb.store.vocabulary import RUN_KINDS, RUN_STATUSES, no_content_reason

API_VERSION = 1
MAX_PAGE = 500

# One place maps store errors to HTTP status codes.  The first match wins: the
# remote errors (DotnbErrors too) come first, except the generic RemoteError, which
# comes after the store's own so that an error that is both (an object missing
# here and on every remote) keeps the store's status.
_STATUS: list[tuple[type[Exception], int]] = [
    (UnknownRemote, 404),
    (NoRemoteConfigured, 409),
    (RemoteFormatError, 409),
    (RemoteEmpty, 409),
    (RemoteConfigError, 409),
    # Unreachable endpoint, refused credentials, a corrupt remote object: the
    # server acted as a gateway to the remote and the remote failed.
    (RemoteUnavailable, 502),
    (RemoteObjectCorrupt, 502),
    (RunNotFound, 404),
    (AmbiguousRun, 409),
    (SnapshotRefused, 409),
    (PathOutsideRoot, 400),
    (BadQuery, 400),
    (NotebookInvalid, 400),
    (ObjectMissing, 410),
    (ObjectCorrupt, 500),
    (StoreFormatError, 500),
    (RemoteError, 502),
    (DotnbError, 400),
]

# Stored files are user data served on the Jupyter origin: only types a browser
# cannot execute are served as themselves; everything else is an opaque download.
_SAFE_TYPES = {
    "text/plain",
    "text/csv",
    "text/tab-separated-values",
    "text/markdown",
    "application/json",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
}

Handler = Callable[..., Awaitable[None]]

# Secrets a remote's client library could quote back in an error (an S3 error
# message, a URL with user info): never echoed to the browser.
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
_URL_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def _redact(message: str) -> str:
    message = _URL_USERINFO.sub(r"\1<credentials>@", message)
    for name in _SECRET_ENV:
        value = os.environ.get(name, "")
        if len(value) >= 8:  # a short value would blank out ordinary words
            message = message.replace(value, "<credentials>")
    return message


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def json_errors(method: Handler) -> Handler:
    """Turn store errors and bad requests into JSON error responses."""

    @functools.wraps(method)
    async def wrapper(self: DotnbHandler, *args: Any, **kwargs: Any) -> None:
        try:
            await method(self, *args, **kwargs)
        except ApiError as exc:
            self.fail(exc.status, str(exc))
        except DotnbError as exc:
            status = next(code for kind, code in _STATUS if isinstance(exc, kind))
            self.fail(status, str(exc))
        except web.HTTPError:
            raise
        except Exception:
            self.log.exception("dotnb: unexpected error in %s %s", self.request.method, self.request.path)
            self.fail(500, "internal error in the dotnb server extension (see the server log)")

    return wrapper


def _not_json(name: str) -> Any:
    # Python's json accepts NaN and Infinity; stored in a notebook snapshot they would
    # make a file that JupyterLab (JSON.parse) cannot open after a restore.
    raise ValueError(f"{name} is not valid JSON")


class DotnbHandler(APIHandler):
    @property
    def store(self) -> Store:
        store: Store = self.settings["dotnb_store"]
        return store

    @property
    def dotnb_config(self) -> Any:
        return self.settings["dotnb_config"]

    def scrubbed(self, message: str) -> str:
        """``message`` without the project root's absolute path (paths under it are
        made root-relative), the request's token or anything _redact hides."""
        root = str(self.store.root)
        message = message.replace(root + "/", "").replace(root, ".")
        # A message may quote the request (a run reference, a path): never echo the token.
        if self.token:
            message = message.replace(self.token, "<token>")
        return _redact(message)

    def fail(self, status: int, message: str) -> None:
        message = self.scrubbed(message)
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))

    def reply(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, ensure_ascii=False))

    def path_arg(self, name: str) -> str | None:
        """A root-relative path from the query string, checked; None when absent or empty."""
        value = self.get_query_argument(name, None)
        if value in (None, ""):
            return None
        # tornado turns control characters into spaces and strips them ("a.csv%00" would
        # read as "a.csv"): refuse a NUL in the raw argument instead.
        if b"\x00" in self.request.query_arguments[name][-1]:
            raise PathOutsideRoot(f"{name} contains a NUL byte")
        return check_relpath(value)

    def path_and_role(self, default_role: str) -> tuple[str, str]:
        """The required ``path`` and the ``role`` (input or output) of a run's file."""
        rel = self.path_arg("path")
        if rel is None:
            raise ApiError(400, "path is required")
        role = self.get_query_argument("role", default_role)
        if role not in ("input", "output"):
            raise ApiError(400, "role must be 'input' or 'output'")
        return rel, role

    def notebook_arg(self) -> str | None:
        return self.path_arg("notebook")

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"{name} must be an integer") from None
        if not low <= value <= high:
            raise ApiError(400, f"{name} must be between {low} and {high}")
        return value

    def json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}", parse_constant=_not_json)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise ApiError(400, f"request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        return body

    def resolve(self, ref: str) -> str:
        return self.store.resolve(ref, notebook=self.notebook_arg())


class VersionHandler(DotnbHandler):
    @web.authenticated
    @json_errors
    async def get(self) -> None:
        self.reply({"dotnb": __version__, "api": API_VERSION, "store_format": FORMAT_VERSION})


class RunsHandler(DotnbHandler):
    @web.authenticated
    @json_errors
    async def get(self) -> None:
        limit = self.int_arg("limit", 50, 1, MAX_PAGE)
        kind = self.get_query_argument("kind", None)
        status = self.get_query_argument("status", None)
        if kind is not None and kind not in RUN_KINDS:
            raise ApiError(400, f"kind must be {_one_of(RUN_KINDS)}")
        if status is not None and status not in RUN_STATUSES:
            raise ApiError(400, f"status must be {_one_of(RUN_STATUSES)}")
        conditions = [parse_metric_condition(c) for c in self.get_query_arguments("metric")]
        runs = self.store.list_runs(
            notebook=self.notebook_arg(),
            kind=kind,
            status=status,
            text=self.get_query_argument("q", None) or None,
            author=self.get_query_argument("author", None) or None,
            before=self.get_query_argument("before", None) or None,
            metrics=conditions,
            tags=self.get_query_arguments("tag"),
            limit=limit + 1,
        )
        more = len(runs) > limit
        runs = self.store.with_signatures(runs[:limit])
        self.reply({"runs": runs, "next": runs[-1]["id"] if more else None})


class RunHandler(DotnbHandler):
    @web.authenticated
    @json_errors
    async def get(self, ref: str) -> None:
        from dotnb.store.views import run_detail

        run_id = self.resolve(ref)
        # Off the event loop: a pulled run's code objects may be fetched from its remote.
        self.reply(await asyncio.to_thread(lambda: run_detail(self.store, run_id)))


class DiffHandler(DotnbHandler):
    @web.authenticated
    @json_errors
    async def get(self, first: str, second: str) -> None:
        from dotnb.comparison.diff import diff_runs

        a, b = self.resolve(first), self.resolve(second)
        # Off the event loop: a pulled run's objects may be fetched from its remote.
        self.reply(await asyncio.to_thread(diff_runs, self.store, a, b))


class MetricsHandler(DotnbHandler):
    @web.authenticated
    @json_errors
    async def get(self) -> None:
        name = self.get_query_argument("name", None)
        run_ref = self.get_query_argument("run", None)
        notebook = self.notebook_arg()
        if run_ref:
            if not name:
                raise ApiError(400, "name is required with run")
            run_id = self.store.resolve(run_ref, notebook=notebook)
            series = (self.store.manifest(run_id).get("metric_series") or {}).get(name)
            if series is None:
                raise ApiError(404, f"run {run_id} has no series for metric {name!r}")
            self.reply({"run": run_id, "name": name, "series": series})
            return
        if not name:
            self.reply(
                {
                    "notebook": notebook,
                    "names": self.store.metric_names(notebook),
                    "latest": self.store.latest_metric(notebook),
                }
            )
            return
        limit = self.int_arg("limit", 1000, 1, 10000)
        values = self.store.metric_values(name, notebook=notebook, limit=limit)
        self.reply({"notebook": notebook, "name": name, "values": values})


class FileHandler(DotnbHandler):
    @web.authenticated
    @json_errors
    async def get(self, ref: str) -> None:
        from dotnb.store.views import file_entry

        run_id = self.resolve(ref)
        rel, role = self.path_and_role("output")
        entry = file_entry(self.store, self.store.manifest(run_id), rel, want_input=role == "input")
        if entry is None:
            raise ApiError(404, f"{rel!r} is not an input or output of run {run_id}")
        digest = entry.get("hash")
        if not digest:
            reason = no_content_reason(entry)
            raise ApiError(404, f"{rel!r} has no stored content in run {run_id}: {reason}")
        limit = self.dotnb_config.max_preview_bytes
        stored_size = entry.get("size")
        if isinstance(stored_size, int) and stored_size > limit:
            # Refused before reading: a pulled run's object is then not fetched in vain.
            raise ApiError(413, _too_large(rel, stored_size, limit))

        def load() -> bytes:
            size = self.store.objects.size(digest)
            if size > limit:
                raise ApiError(413, _too_large(rel, size, limit))
            return self.store.objects.read_bytes(digest)  # verifies the hash

        # Off the event loop: the object of a pulled run may be fetched from its remote.
        data = await asyncio.to_thread(load)
        guessed = mimetypes.guess_type(rel)[0] or "application/octet-stream"
        content_type = guessed if guessed in _SAFE_TYPES else "application/octet-stream"
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "sandbox; default-src 'none'")
        if content_type == "application/octet-stream" or self.get_query_argument("download", None):
            self.set_header("Content-Disposition", "attachment")
        self.set_header("X-Dotnb-Hash", digest)
        self.finish(data, set_content_type=content_type)


def _one_of(words: tuple[str, ...]) -> str:
    """``'a', 'b' or 'c'``: the values a query argument accepts, for its error message."""
    quoted = [repr(word) for word in words]
    return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)


def _too_large(rel: str, size: int, limit: int) -> str:
    return (
        f"{rel!r} is {size} bytes, more than the {limit}-byte limit "
        "(c.Dotnb.max_preview_bytes); use `dotnb cat`"
    )


class NotebookSnapshotHandler(DotnbHandler):
    @web.authenticated
    @json_errors
    async def post(self, ref: str) -> None:
        import nbformat

        from dotnb.store.snapshots import attach_notebook_snapshot

        run_id = self.resolve(ref)
        body = self.json_body()
        model = body.get("notebook", body.get("content"))
        if not isinstance(model, dict):
            raise ApiError(400, 'body must be {"notebook": <notebook JSON object>}')
        try:
            nb = nbformat.from_dict(model)
            nbformat.validate(nb)
        except Exception as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise NotebookInvalid(f"not a valid notebook: {message}") from None
        data = nbformat.writes(nb).encode("utf-8")
        self.reply(attach_notebook_snapshot(self.store, run_id, data, "frontend"), status=201)


class RestoreHandler(DotnbHandler):
    @web.authenticated
    @json_errors
    async def post(self, ref: str) -> None:
        from dotnb.server.kernel_checkout import KernelOptionError, checkout_in_kernel, parse_kernel_option
        from dotnb.store.restore import restore

        run_id = self.resolve(ref)
        body = self.json_body()
        flags = {}
        for key, default in (("data", True), ("notebook", True), ("dry_run", False)):
            value = body.get(key, default)
            if not isinstance(value, bool):
                raise ApiError(400, f"{key} must be true or false")
            flags[key] = value
        option = body.get("kernel")
        try:
            # The run's notebook is the default one: read only when a kernel is asked for.
            run_notebook = None if option is None else self.store.manifest(run_id).get("notebook")
            kernel = parse_kernel_option(option, run_notebook, check_relpath)
        except KernelOptionError as exc:
            raise ApiError(400, str(exc)) from None
        if not flags["data"] and not flags["notebook"] and kernel is None:
            raise ApiError(400, "nothing to restore: data and notebook are both false")
        # Restoring gigabytes must not stall the server's event loop.
        result = await asyncio.to_thread(
            restore,
            self.store,
            run_id,
            data=flags["data"],
            notebook=flags["notebook"],
            dry_run=flags["dry_run"],
        )
        if kernel is not None:
            # After the files: a cell re-run to recompute a value reads the run's data.
            answer = await checkout_in_kernel(
                self.settings,
                self.store.root,
                run_id,
                kernel,
                timeout=self.dotnb_config.kernel_checkout_timeout,
                dry_run=flags["dry_run"],
            )
            # What the kernel printed or raised may name files by absolute path.
            for key in ("report", "reason"):
                if isinstance(answer.get(key), str):
                    answer[key] = self.scrubbed(answer[key])
            result["kernel"] = answer
        self.reply(result)


class EventsHandler(DotnbHandler):
    """Long-poll for new and updated runs.

    ``GET events`` answers at once with the current cursor; ``GET
    events?after=N`` answers as soon as runs changed after cursor N, or with no
    runs after ``timeout`` seconds.  Chosen over websockets and server-sent
    events because it is plain authenticated JSON over HTTP (same auth, XSRF
    and proxy behaviour as every other route, works through JupyterHub and
    Binder), and a cursor cannot miss a run across reconnects.
    """

    POLL_S = 0.25
    _gone = False

    def on_connection_close(self) -> None:
        self._gone = True

    @web.authenticated
    @json_errors
    async def get(self) -> None:
        after_raw = self.get_query_argument("after", None)
        if after_raw is None:
            self.reply({"cursor": self.store.change_cursor(), "runs": []})
            return
        after = self.int_arg("after", 0, 0, 2**62)
        timeout = self.int_arg("timeout", self.dotnb_config.events_timeout, 0, 120)
        deadline = time.monotonic() + timeout
        while True:
            runs, cursor = self.store.changes(after)
            if runs or time.monotonic() >= deadline or self._gone:
                self.reply({"cursor": cursor, "runs": self.store.with_signatures(runs)})
                return
            await asyncio.sleep(self.POLL_S)


# A run reference in a route: every form resolve() takes.
RUN_PATTERN = r"(?P<ref>[^/]+)"
_RUN = RUN_PATTERN
ROUTES: list[tuple[str, type[DotnbHandler]]] = [
    ("version", VersionHandler),
    ("runs", RunsHandler),
    (rf"runs/{_RUN}", RunHandler),
    (r"runs/(?P<first>[^/]+)/diff/(?P<second>[^/]+)", DiffHandler),
    (rf"runs/{_RUN}/files", FileHandler),
    (rf"runs/{_RUN}/notebook", NotebookSnapshotHandler),
    (rf"runs/{_RUN}/restore", RestoreHandler),
    ("metrics", MetricsHandler),
    ("events", EventsHandler),
]


class FileStatusHandler(DotnbHandler):
    """``GET runs/{run}/status``: each recorded file compared with the file on disk now."""

    @web.authenticated
    @json_errors
    async def get(self, ref: str) -> None:
        from dotnb.store.status import file_status

        run_id = self.resolve(ref)
        manifest = self.store.manifest(run_id)
        # Hashing a large modified file must not stall the server's event loop.
        files = await asyncio.to_thread(file_status, self.store, manifest, True)
        self.reply({"run": run_id, "files": files})


ROUTES.append((rf"runs/{_RUN}/status", FileStatusHandler))


class FolderHandler(DotnbHandler):
    """``GET runs/{run}/folder``: a page of the files of a folder recorded as a tree."""

    @web.authenticated
    @json_errors
    async def get(self, ref: str) -> None:
        from dotnb.store.views import folder_files

        run_id = self.resolve(ref)
        rel, role = self.path_and_role("input")
        offset = self.int_arg("offset", 0, 0, 2**53)
        limit = self.int_arg("limit", 200, 1, MAX_PAGE)
        manifest = self.store.manifest(run_id)
        # Off the event loop: a pulled run's trees may be fetched from its remote.
        page = await asyncio.to_thread(folder_files, self.store, manifest, role, rel, offset, limit)
        if page is None:
            raise ApiError(404, f"run {run_id} recorded no {role} folder {rel!r}")
        self.reply({"run": run_id, "role": role, **page})


ROUTES.append((rf"runs/{_RUN}/folder", FolderHandler))


# -- team remotes --------------------------------------------------------------------


class RemotesHandler(DotnbHandler):
    """``GET remotes``: the configured remotes (``dotnb remote list --json``)."""

    @web.authenticated
    @json_errors
    async def get(self) -> None:
        from dotnb.remote.config import list_remotes

        self.reply({"remotes": list_remotes(self.store)})


class _TransferHandler(DotnbHandler):
    """Shared by push and pull: the ``remote`` argument, and running the transfer."""

    def flag(self, body: dict[str, Any], name: str) -> bool:
        value = body.get(name, False)
        if not isinstance(value, bool):
            raise ApiError(400, f"{name} must be true or false")
        return value

    def remote_arg(self, body: dict[str, Any]) -> str | None:
        remote = body.get("remote")
        if remote is None:
            return None
        if not isinstance(remote, str) or not remote.strip():
            raise ApiError(400, "remote must be a remote's name (omit it for the default remote)")
        return remote

    async def transfer(self, func: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        # A push or pull moves whole runs over the network and can take minutes: it
        # runs in a worker thread so the server keeps answering.  One at a time per
        # server: two clicks (or two tabs) then queue instead of racing on the
        # same remote objects.
        lock: asyncio.Lock = self.settings["dotnb_transfer_lock"]
        async with lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, functools.partial(func, self.store, **kwargs))


class PushHandler(_TransferHandler):
    """``POST push`` ``{"remote"?, "runs"?, "with_kernel_state"?}``: as ``dotnb push --json``."""

    @web.authenticated
    @json_errors
    async def post(self) -> None:
        from dotnb.remote.state_transfer import push_with_states
        from dotnb.remote.transfer import push

        body = self.json_body()
        remote = self.remote_arg(body)
        refs = body.get("runs")
        runs: list[str] | None = None
        if refs is not None:
            if not isinstance(refs, list) or not refs or not all(isinstance(r, str) and r for r in refs):
                raise ApiError(
                    400, "runs must be a non-empty list of run references (omit it to push every run)"
                )
            # Resolved here, before anything is sent: a wrong reference fails the
            # whole request (404/409) rather than half a push.
            runs = list(dict.fromkeys(self.resolve(ref) for ref in refs))
        send = push_with_states if self.flag(body, "with_kernel_state") else push
        self.reply(await self.transfer(send, remote=remote, runs=runs))


class PullHandler(_TransferHandler):
    """``POST pull`` ``{"remote"?, "with_data"?, "with_kernel_state"?}``: as ``dotnb pull --json``."""

    @web.authenticated
    @json_errors
    async def post(self) -> None:
        from dotnb.remote.state_transfer import pull_with_states
        from dotnb.remote.transfer import pull

        body = self.json_body()
        remote = self.remote_arg(body)
        with_data = self.flag(body, "with_data")
        fetch = pull_with_states if self.flag(body, "with_kernel_state") else pull
        self.reply(await self.transfer(fetch, remote=remote, with_data=with_data))


class VerifyHandler(DotnbHandler):
    """``GET verify?remote=&require_signed=``: as ``dotnb verify --json`` (200 whether or
    not the chains are whole: the report's ``ok`` says)."""

    @web.authenticated
    @json_errors
    async def get(self) -> None:
        remote = self.get_query_argument("remote", None) or None
        raw = self.get_query_argument("require_signed", "false")
        if raw not in ("true", "false"):
            raise ApiError(400, "require_signed must be true or false")
        require_signed = raw == "true"
        if remote is not None:
            from dotnb.remote.verify import verify_remote

            report = await asyncio.to_thread(verify_remote, self.store, remote, require_signed)
        else:
            from dotnb.store.verify import verify_store

            report = await asyncio.to_thread(verify_store, self.store, require_signed)
        self.reply(report)


ROUTES += [
    ("remotes", RemotesHandler),
    ("push", PushHandler),
    ("pull", PullHandler),
    ("verify", VerifyHandler),
]
