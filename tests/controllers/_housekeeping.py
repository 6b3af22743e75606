"""Run controllers against a real in-process API server, as the manager would (housekeeping and workload
controller tests alike)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pyk8s.client.client import Client
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.client.transport import HTTPTransport
from pyk8s.controllers.manager import ControllerContext, ControllerOptions, Runnable
from tests.support import poll
from tests.support.apiserver import Server


@contextlib.asynccontextmanager
async def running(server: Server, *factories: Callable[[ControllerContext], Runnable],
                  options: ControllerOptions | None = None) -> AsyncIterator[tuple[Client, list[Any]]]:
    """Start the controllers (informers synced first); yield a client and the controllers."""
    client = Client(HTTPTransport(server.url))
    ctx = ControllerContext(client, SharedInformerFactory(client), options or ControllerOptions())
    controllers = [f(ctx) for f in factories]
    ctx.informers.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        async with asyncio.timeout(10):
            await ctx.informers.wait_for_sync()
        tasks = [asyncio.create_task(c.run()) for c in controllers]
        yield client, controllers
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ctx.informers.stop()
        await ctx.close_recorders()
        await client.close()


async def until(check: Callable[[], Awaitable[object]], within: float = 10.0, what: str = "condition") -> Any:
    """`tests.support.poll.until`, with this package's shorter default deadline."""
    return await poll.until(check, within, what)
