"""REST handlers of the Experiments view: tags and notes on runs, and the run table
(sorted, filtered and paged by the store).  Thin like :mod:`dotnb.server.handlers`,
whose base class, error table and authentication they share."""

from __future__ import annotations

from typing import Any

from tornado import web

from dotnb.server.handlers import ApiError, DotnbHandler, json_errors
from dotnb.store.annotations import BadAnnotation
from dotnb.store.vocabulary import RUN_KINDS

MAX_TABLE_PAGE = 1000
# (sort key, direction) a request may name: a builtin column, metric:NAME or param:NAME.
_DIRECTIONS = {"asc": False, "desc": True}


class AnnotationsHandler(DotnbHandler):
    """``GET runs/{run}/annotations``: a run's tags, note and their history;
    ``POST`` ``{"tag": [...]}``, ``{"untag": [...]}`` or ``{"note": "..."}``: one change."""

    @web.authenticated
    @json_errors
    async def get(self, ref: str) -> None:
        from dotnb.store.annotating import run_annotations

        self.reply(run_annotations(self.store, self.resolve(ref)))

    @web.authenticated
    @json_errors
    async def post(self, ref: str) -> None:
        from dotnb.store.annotating import note_run, tag_run, untag_run

        body = self.json_body()
        if len(body) != 1 or next(iter(body)) not in ("tag", "untag", "note"):
            raise ApiError(400, 'body must be one of {"tag": [names]}, {"untag": [names]}, {"note": text}')
        run_id = self.resolve(ref)
        op, value = next(iter(body.items()))
        if op == "note":
            if not isinstance(value, str):
                raise BadAnnotation("note must be a string ('' removes it)")
            self.reply(note_run(self.store, run_id, value), status=201)
            return
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadAnnotation(f"{op} must be a list of tag names")
        change = tag_run if op == "tag" else untag_run
        self.reply(change(self.store, run_id, value), status=201)


class TagsHandler(DotnbHandler):
    """``GET tags?notebook=``: every tag in use, with how many runs carry it."""

    @web.authenticated
    @json_errors
    async def get(self) -> None:
        from dotnb.store.annotating import tags_in_use

        notebook = self.notebook_arg()
        self.reply({"notebook": notebook, "tags": tags_in_use(self.store, notebook)})


class TableHandler(DotnbHandler):
    """``GET table?notebook=&kind=&filter=&tag=&q=&sort=&order=&group=&offset=&limit=&columns=``:
    one page of the Experiments table (see :mod:`dotnb.store.run_table`)."""

    @web.authenticated
    @json_errors
    async def get(self) -> None:
        from dotnb.store.run_table import RunTable

        kind: str | None = self.get_query_argument("kind", "run") or None
        if kind is not None and kind != "all" and kind not in RUN_KINDS:
            raise ApiError(400, f"kind must be one of {', '.join(RUN_KINDS)} or all")
        order = self.get_query_argument("order", "desc")
        if order not in _DIRECTIONS:
            raise ApiError(400, "order must be 'asc' or 'desc'")
        page: dict[str, Any] = RunTable(self.store.index).query(
            notebook=self.notebook_arg(),
            kind=None if kind == "all" else kind,
            filters=self.get_query_arguments("filter"),
            tags=self.get_query_arguments("tag"),
            text=self.get_query_argument("q", None) or None,
            sort=self.get_query_argument("sort", "started") or "started",
            descending=_DIRECTIONS[order],
            offset=self.int_arg("offset", 0, 0, 2**31),
            limit=self.int_arg("limit", 100, 1, MAX_TABLE_PAGE),
            with_columns=self.get_query_argument("columns", "false") == "true",
            group=self.get_query_argument("group", None) or None,
        )
        self.reply(page)


_RUN = r"(?P<ref>[^/]+)"
ROUTES: list[tuple[str, type[DotnbHandler]]] = [
    (rf"runs/{_RUN}/annotations", AnnotationsHandler),
    ("tags", TagsHandler),
    ("table", TableHandler),
]
