"""A real API server (MemoryStore) on a loopback port, and a Client talking to it over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from tests.support.apiserver import CONFIGMAPS, NAMESPACES, PODS, Server, api_server, info, start_server
from tests.support.poll import eventually

__all__ = ["CONFIGMAPS", "NAMESPACES", "PODS", "Server", "eventually", "info", "start_server"]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with api_server() as srv:
        yield srv


@pytest.fixture
async def client(server: Server) -> AsyncIterator[Client]:
    c = Client(HTTPTransport(server.url))
    yield c
    await c.close()


def cm(name: str, namespace: str = "default", **labels: str) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}
