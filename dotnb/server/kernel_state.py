"""``GET runs/{run}/kernel-state``: the kernel variables a run recorded (what the restore
dialog's *Kernel variables* option would bring back).  Loading them happens in the
notebook's kernel (``%dotnb checkout``), never in the server."""

from __future__ import annotations

import asyncio

from tornado import web

from dotnb.server.handlers import RUN_PATTERN, ApiError, DotnbHandler, json_errors
from dotnb.store.kernel_state import state_summary


class KernelStateHandler(DotnbHandler):
    @web.authenticated
    @json_errors
    async def get(self, ref: str) -> None:
        run_id = self.resolve(ref)
        store = self.store
        summary = await asyncio.to_thread(state_summary, store.dir, store.objects, run_id)
        if summary is None:
            raise ApiError(404, f"run {run_id} recorded no kernel state (state capture was off)")
        self.reply(summary)


ROUTES: list[tuple[str, type[DotnbHandler]]] = [(rf"runs/{RUN_PATTERN}/kernel-state", KernelStateHandler)]
