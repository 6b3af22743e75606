"""Run housekeeping controllers against a real in-process API server, as the manager would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from pyk8s.client.client import Client
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.client.transport import HTTPTransport
from pyk8s.controllers.manager import ControllerContext, ControllerOptions, Runnable
from tests.support.apiserver import Server, start_server


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


@contextlib.asynccontextmanager
async def api_server() -> AsyncIterator[Server]:
    srv = await start_server(bookmark_interval=0.2)
    try:
        yield srv
    finally:
        await srv.stop()
        await srv.store.close()


async def until(check: Callable[[], Awaitable[object]], within: float = 5.0, what: str = "condition") -> Any:
    """Poll an async `check` until it returns a true value (returned); fail after `within` seconds."""
    last: object = None
    try:
        async with asyncio.timeout(within):
            while True:
                last = await check()
                if last:
                    return last
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})") from None


def write_kubeconfig(server: Server, directory: Path) -> Path:
    path = directory / "kubeconfig"
    path.write_text(f"""\
apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{server.url}"}}}}]
users: [{{name: u, user: {{}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u, namespace: default}}}}]
current-context: c
""")
    return path


async def kubectl(kubeconfig: Path, *args: str, within: float = 60) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", str(kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(kubeconfig.parent)})
    out, _ = await asyncio.wait_for(proc.communicate(), within)
    return proc.returncode or 0, out.decode()
