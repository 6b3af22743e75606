"""A real API server (MemoryStore) on a loopback port, and a Client talking to it over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestServer

from pyk8s.api.catalog import lookup
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.app import API_SERVER, APIServer, APIServerConfig, create_app
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.store.memory import MemoryStore


def info(group: str, plural: str) -> ResourceInfo:
    found = lookup(group, "v1", plural)
    assert found is not None
    return found


CONFIGMAPS = info("", "configmaps")
NAMESPACES = info("", "namespaces")
PODS = info("", "pods")


@dataclass
class Server:
    """The API server; `restart()` serves the same store from a new app on the same port."""

    store: MemoryStore
    config: APIServerConfig
    test_server: TestServer
    api: APIServer
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        await self.test_server.close()

    async def start(self) -> None:
        app = create_app(self.config)
        self.test_server = TestServer(app, host="127.0.0.1", port=self.port)
        await self.test_server.start_server()
        self.api = app[API_SERVER]


async def start_server(**config: object) -> Server:
    store = MemoryStore()
    cfg = APIServerConfig(store=store, **config)  # type: ignore[arg-type]
    app = create_app(cfg)
    ts = TestServer(app, host="127.0.0.1")
    await ts.start_server()
    assert ts.port is not None
    api = app[API_SERVER]
    await api.create_object(NAMESPACES, {"metadata": {"name": "default"}})
    return Server(store, cfg, ts, api, ts.port)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = await start_server(bookmark_interval=0.2)
    yield srv
    await srv.stop()
    await srv.store.close()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[Client]:
    c = Client(HTTPTransport(server.url))
    yield c
    await c.close()


async def eventually(check: Callable[[], object], within: float = 5.0, what: str = "condition") -> None:
    """Poll `check` until it returns a true value; fail after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                if check():
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def cm(name: str, namespace: str = "default", **labels: str) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}
