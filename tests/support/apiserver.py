"""A real API server (MemoryStore) on a loopback port, for tests of API clients and components."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp.test_utils import TestServer

from pyk8s.api.catalog import lookup
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.app import API_SERVER, APIServer, APIServerConfig, create_app
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


@contextlib.asynccontextmanager
async def api_server(**config: object) -> AsyncIterator[Server]:
    """`start_server` with watch bookmarks every 0.2 s, stopped (and its store closed) on the way out."""
    srv = await start_server(bookmark_interval=0.2, **config)
    try:
        yield srv
    finally:
        await srv.stop()
        await srv.store.close()
