"""An API server on a loopback port over a MemoryStore, with the default namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from pyk8s.api.catalog import lookup
from pyk8s.apiserver.app import API_SERVER, APIServer, APIServerConfig, create_app
from pyk8s.server.pki import Pki, ensure_pki
from pyk8s.store.memory import MemoryStore
from pyk8s.store.protocol import Store


@dataclass
class Server:
    url: str
    api: APIServer
    store: Store
    session: aiohttp.ClientSession

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        data: bytes | None = None,
        content_type: str = "application/json",
        **params: Any,
    ) -> tuple[int, Any]:
        headers = {"Content-Type": content_type}
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if data is not None:
            kwargs["data"] = data
        elif body is not None:
            kwargs["json"] = body
        async with self.session.request(method, self.url + path, **kwargs) as resp:
            text = await resp.read()
            try:
                return resp.status, await resp.json(content_type=None) if text else None
            except ValueError:
                return resp.status, text.decode()


async def start_server(config: APIServerConfig) -> tuple[TestServer, APIServer]:
    app = create_app(config)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    api = app[API_SERVER]
    ns = lookup("", "v1", "namespaces")
    assert ns is not None
    await api.create_object(ns, {"metadata": {"name": "default"}})
    return server, api


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    store = MemoryStore()
    test_server, api = await start_server(APIServerConfig(store=store, bookmark_interval=0.2))
    async with aiohttp.ClientSession() as session:
        yield Server(str(test_server.make_url("")).rstrip("/"), api, store, session)
    await test_server.close()
    await store.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A fresh cluster PKI per test module (the auth tests sign certificates and tokens with it)."""
    return ensure_pki(tmp_path_factory.mktemp("data"))
