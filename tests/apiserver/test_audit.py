"""The audit log: one audit.k8s.io/v1 Event per request as a JSON line, written off the request path."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from pyk8s.apiserver.app import APIServerConfig
from pyk8s.apiserver.auth.audit import AuditLog
from pyk8s.store.memory import MemoryStore
from tests.apiserver.conftest import start_server


def _lines(path: Path, n: int, deadline: float = 5.0) -> list[dict[str, Any]]:
    """Poll until the writer thread has written `n` lines."""
    end = time.monotonic() + deadline
    while True:
        text = path.read_bytes() if path.exists() else b""
        lines = [orjson.loads(x) for x in text.splitlines()]
        if len(lines) >= n or time.monotonic() > end:
            return lines
        time.sleep(0.01)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """The core's request pipeline with an AuditLog as its audit sink."""
    path = tmp_path / "audit.log"
    log = AuditLog(str(path))
    store = MemoryStore()
    test_server, _ = await start_server(APIServerConfig(store=store, audit=log))
    yield str(test_server.make_url("")).rstrip("/"), path
    await test_server.close()
    await store.close()
    log.close()


async def test_one_event_per_request(server: tuple[str, Path]) -> None:
    url, path = server
    async with aiohttp.ClientSession(headers={"User-Agent": "kubectl/v1.32 test"}) as s:
        for name in ("a", "b", "c"):
            async with s.get(f"{url}/api/v1/namespaces/default/configmaps/{name}?pretty=true") as r:
                assert r.status == 404
    events = [e for e in _lines(path, 3) if "configmaps" in e["requestURI"]]
    assert len(events) == 3
    e = events[0]
    assert e["kind"] == "Event" and e["apiVersion"] == "audit.k8s.io/v1"
    assert e["level"] == "Metadata" and e["stage"] == "ResponseComplete"
    assert e["requestURI"] == "/api/v1/namespaces/default/configmaps/a?pretty=true"
    assert e["verb"] == "get"
    assert e["user"]["username"] == "system:admin"
    assert e["sourceIPs"] == ["127.0.0.1"]
    assert e["userAgent"] == "kubectl/v1.32 test"
    assert e["objectRef"] == {
        "resource": "configmaps",
        "namespace": "default",
        "name": "a",
        "apiVersion": "v1",
    }
    assert e["responseStatus"]["code"] == 404
    assert e["requestReceivedTimestamp"] <= e["stageTimestamp"]
    assert len({x["auditID"] for x in events}) == 3


def test_close_flushes_everything(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    log = AuditLog(str(path))
    for i in range(2000):
        log({"kind": "Event", "n": i})
    log.close()
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(x)["n"] for x in lines] == list(range(2000))
    log({"late": True})  # after close: ignored, never raises
    assert len(path.read_bytes().splitlines()) == 2000
    assert path.stat().st_mode & 0o777 == 0o600


def test_full_buffer_drops_instead_of_blocking(tmp_path: Path) -> None:
    log = AuditLog(str(tmp_path / "b.log"), max_buffer=0)
    log({"kind": "Event"})
    assert log.dropped == 1
    log.close()
