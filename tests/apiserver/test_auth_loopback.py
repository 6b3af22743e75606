"""The loopback socket: only there do X-Remote-User / X-Remote-Group name the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pyk8s.apiserver.app import APIServerConfig, create_app
from pyk8s.apiserver.auth.loopback import GROUP_HEADER, USER_HEADER, LoopbackAuthenticator
from pyk8s.apiserver.auth.union import UnionAuthenticator
from pyk8s.store.memory import MemoryStore

IDENTITY = {USER_HEADER: "system:kube-scheduler", GROUP_HEADER: "system:masters"}


@pytest.fixture
async def sites(tmp_path: Path) -> AsyncIterator[tuple[str, str, list[dict[str, Any]]]]:
    audit: list[dict[str, Any]] = []
    store = MemoryStore()
    app = create_app(APIServerConfig(store=store, authenticator=UnionAuthenticator([LoopbackAuthenticator()]),
                                     audit=audit.append))
    runner = web.AppRunner(app)
    await runner.setup()
    sock = str(tmp_path / "api.sock")
    await web.UnixSite(runner, sock).start()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    url = f"http://127.0.0.1:{runner.addresses[-1][1]}"
    try:
        yield sock, url, audit
    finally:
        await runner.cleanup()
        await store.close()


async def test_unix_socket_caller_names_itself(sites: tuple[str, str, list[dict[str, Any]]]) -> None:
    sock, _, audit = sites
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(sock)) as s:
        async with s.get("http://localhost/api/v1/namespaces", headers=IDENTITY) as r:
            assert r.status == 200
        async with s.get("http://localhost/api/v1/namespaces") as r:
            assert r.status == 401  # the socket still wants a name
    users = [e["user"] for e in audit]
    assert users[0]["username"] == "system:kube-scheduler"
    assert "system:masters" in users[0]["groups"]


async def test_headers_mean_nothing_over_tcp(sites: tuple[str, str, list[dict[str, Any]]]) -> None:
    _, url, _ = sites
    async with aiohttp.ClientSession() as s, s.get(f"{url}/api/v1/namespaces", headers=IDENTITY) as r:
        assert r.status == 401
