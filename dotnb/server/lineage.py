"""``GET lineage``: the lineage graph of a file's bytes or of a run (``dotnb lineage --json``)."""

from __future__ import annotations

import asyncio

from tornado import web

from dotnb.server.handlers import ApiError, DotnbHandler, json_errors
from dotnb.store.content_lineage import BOTH, DIRECTIONS, LineageNotFound, lineage_of_path, lineage_of_run

# Deeper than any pipeline; a bound keeps one request's walk finite in what it returns.
MAX_DEPTH = 1000


class LineageHandler(DotnbHandler):
    @web.authenticated
    @json_errors
    async def get(self) -> None:
        rel = self.path_arg("path")
        ref = self.get_query_argument("run", None) or None
        if (rel is None) == (ref is None):
            raise ApiError(400, "give either path or run")
        direction = self.get_query_argument("direction", BOTH)
        if direction not in DIRECTIONS:
            raise ApiError(400, f"direction must be one of {', '.join(DIRECTIONS)}")
        depth: int | None = (
            self.int_arg("depth", -1, 0, MAX_DEPTH) if self.get_query_argument("depth", "") else None
        )
        store = self.store
        if ref is not None:
            run_id = self.resolve(ref)
            graph = await asyncio.to_thread(lineage_of_run, store, run_id, direction, depth)
        else:
            assert rel is not None
            try:
                # Off the event loop: a file not hashed yet is read whole.
                graph = await asyncio.to_thread(lineage_of_path, store, rel, direction, depth)
            except LineageNotFound as exc:
                raise ApiError(404, str(exc)) from None
        self.reply(graph.to_json())


ROUTES: list[tuple[str, type[DotnbHandler]]] = [("lineage", LineageHandler)]
