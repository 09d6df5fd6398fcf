"""The one call dotnb makes into s3fs outside its documented API.

Large objects move in parts that dotnb schedules itself (see
:class:`dotnb.remote.backend.S3Backend`), as coroutines on s3fs's event loop.  Each
part is one S3 request, sent through ``S3FileSystem._call_s3``: the coroutine
behind the public, blocking ``S3FileSystem.call_s3`` (which runs it on that same
loop, so it cannot be called from a coroutine there).  It keeps s3fs's session,
credentials, retries and error translation, which the bare aiobotocore client
would not.

Checked against s3fs 2026.9.0 (the version the tests run; dotnb's s3 extra asks
for s3fs>=2024.6), where ``_call_s3(method, **kwargs)`` is a coroutine function.
Should another s3fs lack it or make it something else, :func:`s3_request`
falls back to the public ``call_s3`` run in a worker thread: it schedules the
request on the loop (free meanwhile: the caller awaits the thread) and waits for
it there, at the cost of a thread per request in flight.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

S3Request = Callable[..., Awaitable[Any]]


def s3_request(fs: Any) -> S3Request:
    """An awaitable ``request(method, **kwargs)`` sending one S3 API call through the
    s3fs filesystem ``fs`` (an ``S3FileSystem``), from a coroutine on ``fs.loop``."""
    private = getattr(fs, "_call_s3", None)
    if private is not None and inspect.iscoroutinefunction(private):
        return private
    public = fs.call_s3

    async def request(method: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(public, method, **kwargs)

    return request
