"""The audit log: one audit.k8s.io/v1 Event per request as a JSON line, written off the request path."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from pyk8s.apiserver.auth.audit import AuditLog, audit_event
from pyk8s.apiserver.interfaces import Decision, RequestInfo, UserInfo

USER = UserInfo("jane", groups=("dev", "system:authenticated"))


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
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, AuditLog, Path]]:
    path = tmp_path / "audit.log"
    log = AuditLog(str(path))

    async def handle(request: web.Request) -> web.Response:
        received = dt.datetime.now(dt.UTC)
        info = RequestInfo(
            path=request.path,
            verb="get",
            is_resource_request=True,
            api_prefix="api",
            api_version="v1",
            namespace="ns1",
            resource="pods",
            name="web",
        )
        log(audit_event(request, info, USER, 200, received, decision=Decision(True, "RBAC: allowed")))
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", log, path
    await runner.cleanup()
    log.close()


async def test_one_event_per_request(server: tuple[str, AuditLog, Path]) -> None:
    url, _, path = server
    async with aiohttp.ClientSession(headers={"User-Agent": "kubectl/v1.32 test"}) as s:
        for _ in range(3):
            async with s.get(f"{url}/api/v1/namespaces/ns1/pods/web?pretty=true") as r:
                assert r.status == 200
    events = _lines(path, 3)
    assert len(events) == 3
    e = events[0]
    assert e["kind"] == "Event" and e["apiVersion"] == "audit.k8s.io/v1"
    assert e["level"] == "Metadata" and e["stage"] == "ResponseComplete"
    assert e["requestURI"] == "/api/v1/namespaces/ns1/pods/web?pretty=true"
    assert e["verb"] == "get"
    assert e["user"] == {"username": "jane", "groups": ["dev", "system:authenticated"]}
    assert e["sourceIPs"] == ["127.0.0.1"]
    assert e["userAgent"] == "kubectl/v1.32 test"
    assert e["objectRef"] == {"resource": "pods", "namespace": "ns1", "name": "web", "apiVersion": "v1"}
    assert e["responseStatus"] == {"metadata": {}, "code": 200}
    assert e["annotations"]["authorization.k8s.io/decision"] == "allow"
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
