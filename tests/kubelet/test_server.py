"""The kubelet's HTTPS API over real TLS and real WebSocket clients, against a runtime whose exec and
attach are host processes and whose port-forward dials loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pyk8s.kubelet.server import KubeletServer, KubeletServerConfig
from pyk8s.kubelet.streaming import logs as logs_module
from tests.kubelet._streamfakes import CertAuthority, StreamRuntime, echo_server

LINES_OLD = b"2024-01-01T00:00:00.000000001Z stdout F old run\n"
LINES = (b"2024-01-01T00:00:01.000000000Z stdout F one\n"
         b"2024-01-01T00:00:02.000000000Z stderr P tw\n"
         b"2024-01-01T00:00:02.500000000Z stderr F o\n"
         b"2024-01-01T00:00:03.000000000Z stdout F three\n")


class Env:
    def __init__(self, server: KubeletServer, runtime: StreamRuntime, master: ssl.SSLContext,
                 other: ssl.SSLContext, log_dir: Path) -> None:
        self.server, self.runtime, self.master, self.other = server, runtime, master, other
        self.log_dir = log_dir

    def session(self, ctx: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx or self.master))


def _client_ctx(cert: tuple[str, str] | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the kubelet's certificate is self-signed
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    ca = CertAuthority()
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "0.log").write_bytes(LINES_OLD)
    (log_dir / "1.log").write_bytes(LINES)
    runtime = StreamRuntime(log_dir)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}}
    server = KubeletServer(KubeletServerConfig(node_name="n1", runtime=runtime, ca_pem=ca.pem,  # type: ignore[arg-type]
                                               cert_dir=str(tmp_path / "pki"), host="127.0.0.1", port=0,
                                               pods=lambda: [pod]))
    await server.start()
    master = _client_ctx(ca.client(tmp_path, "kube-apiserver-kubelet-client", ["system:masters"]))
    other = _client_ctx(ca.client(tmp_path, "alice", ["devs"]))
    try:
        yield Env(server, runtime, master, other, log_dir)
    finally:
        await server.stop()
        for s in runtime.streams:
            if s.proc.returncode is None:
                s.proc.kill()
                await s.proc.wait()


async def test_authentication_and_authorisation(env: Env) -> None:
    async with env.session(_client_ctx(None)) as s:
        async with s.get(env.server.url + "/healthz") as r:
            assert r.status == 200 and await r.text() == "ok"
        async with s.get(env.server.url + "/pods") as r:
            assert r.status == 401
    async with env.session(env.other) as s, s.get(env.server.url + "/pods") as r:
        # no API client to ask a SubjectAccessReview: only system:masters gets in
        assert r.status == 403
        assert "subresource=proxy" in (await r.json())["message"]
    async with env.session() as s, s.get(env.server.url + "/pods") as r:
        body = await r.json()
        assert r.status == 200 and body["kind"] == "PodList"
        assert [p["metadata"]["name"] for p in body["items"]] == ["web"]


async def _logs(env: Env, query: str = "") -> tuple[int, bytes]:
    async with env.session() as s, s.get(f"{env.server.url}/containerLogs/default/web/app?{query}") as r:
        return r.status, await r.read()


async def test_logs_options(env: Env) -> None:
    assert await _logs(env) == (200, b"one\ntwo\nthree\n")  # partial lines joined
    assert await _logs(env, "tailLines=2") == (200, b"two\nthree\n")
    assert await _logs(env, "tailLines=0") == (200, b"")
    assert await _logs(env, "limitBytes=6") == (200, b"one\ntw")
    assert await _logs(env, "timestamps=true&tailLines=1") == (200, b"2024-01-01T00:00:03.000000000Z three\n")
    assert await _logs(env, "sinceTime=2024-01-01T00:00:02Z") == (200, b"two\nthree\n")
    assert await _logs(env, "previous=true") == (200, b"old run\n")
    status, body = await _logs(env, "sinceSeconds=60")
    assert (status, body) == (200, b"")  # every line is from 2024
    async with env.session() as s, s.get(f"{env.server.url}/containerLogs/default/web/nope") as r:
        assert r.status == 404


async def test_logs_follow_sees_appends_and_rotation_and_ends_when_the_container_stops(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs_module, "FOLLOW_POLL", 0.02)
    log = env.log_dir / "1.log"
    async with env.session() as s, s.get(f"{env.server.url}/containerLogs/default/web/app?follow=true") as r:
        got = b""
        async def until(text: bytes) -> None:
            nonlocal got
            async with asyncio.timeout(10):
                while text not in got:
                    got += await r.content.readany()
        await until(b"three\n")
        with log.open("ab") as f:
            f.write(b"2024-01-01T00:00:04.000000000Z stdout F four\n")
        await until(b"four\n")
        log.rename(env.log_dir / "1.log.rotated")  # rotation: the runtime reopens a new file at the path
        log.write_bytes(b"2024-01-01T00:00:05.000000000Z stdout F five\n")
        await until(b"five\n")
        env.runtime.containers[1].state = "exited"
        async with asyncio.timeout(10):
            got += await r.content.read()  # the stream ends
        assert got == b"one\ntwo\nthree\nfour\nfive\n"


async def _frames(ws: aiohttp.ClientWebSocketResponse) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    async with asyncio.timeout(10):
        async for msg in ws:
            assert msg.type == aiohttp.WSMsgType.BINARY
            out[msg.data[0]] = out.get(msg.data[0], b"") + msg.data[1:]
    return out


async def test_exec_v5_stdin_close_and_exit_code(env: Env) -> None:
    url = (f"{env.server.url}/exec/default/web/app?command=sh&command=-c"
           "&command=cat%3B+echo+err+%3E%262%3B+exit+3&stdin=true&stdout=true&stderr=true")
    protocols = ("v5.channel.k8s.io", "v4.channel.k8s.io")
    async with env.session() as s, s.ws_connect(url, protocols=protocols) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        await ws.send_bytes(b"\x00hello\n")
        await ws.send_bytes(b"\xff\x00")  # v5 close of stdin: cat ends
        frames = await _frames(ws)
    assert frames[1] == b"hello\n" and frames[2] == b"err\n"
    status = json.loads(frames[3])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_exec_v4_success_and_resize(env: Env) -> None:
    url = (f"{env.server.url}/exec/default/web/app?command=sh&command=-c"
           "&command=read+x%3B+echo+got+$x&stdin=true")
    async with env.session() as s, s.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
        assert ws.protocol == "v4.channel.k8s.io"
        await ws.send_bytes(b'\x04{"Width":100,"Height":40}')
        await ws.send_bytes(b"\x00pong\n")
        frames = await _frames(ws)
    assert frames[1] == b"got pong\n"
    assert json.loads(frames[3]) == {"metadata": {}, "status": "Success"}
    assert env.runtime.streams[0].sizes == [(100, 40)]


async def test_attach(env: Env) -> None:
    url = f"{env.server.url}/attach/default/web/app?stdin=true&stdout=true"
    async with env.session() as s, s.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        await ws.send_bytes(b"\x00typed\n")
        await ws.send_bytes(b"\xff\x00")
        frames = await _frames(ws)
    assert frames[1] == b"attached\ntyped\n"
    assert json.loads(frames[3])["status"] == "Success"


async def test_exec_needs_a_command_and_a_running_container(env: Env) -> None:
    async with env.session() as s:
        async with s.get(f"{env.server.url}/exec/default/web/app") as r:
            assert r.status == 400
        async with s.get(f"{env.server.url}/exec/default/other/app?command=ls") as r:
            assert r.status == 404


async def test_portforward_websocket(env: Env) -> None:
    async with echo_server(lambda data: b"echo:" + data) as port:
        url = f"{env.server.url}/portForward/default/web?ports={port}"
        async with env.session() as s, s.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
            first: list[Any] = []
            async with asyncio.timeout(10):
                first = [(await ws.receive_bytes()) for _ in range(2)]
            assert first == [b"\x00" + struct.pack("<H", port), b"\x01" + struct.pack("<H", port)]
            await ws.send_bytes(b"\x00ping")
            async with asyncio.timeout(10):
                assert await ws.receive_bytes() == b"\x00echo:ping"


async def test_summary(env: Env) -> None:
    async with env.session() as s, s.get(f"{env.server.url}/stats/summary") as r:
        body = await r.json()
    assert body["node"]["nodeName"] == "n1"
    assert body["node"]["memory"]["workingSetBytes"] > 0
    assert body["pods"][0]["podRef"] == {"name": "web", "namespace": "default", "uid": "uid-1"}


async def test_exec_exit_code_reaches_the_client_even_when_stdin_outlives_the_process(env: Env) -> None:
    url = f"{env.server.url}/exec/default/web/app?command=sh&command=-c&command=exit+2&stdin=true"
    async with env.session() as s, s.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        # Writes into a pipe nobody reads must not end the session (the server may also have finished
        # and closed already, which ends these sends).
        with contextlib.suppress(ConnectionResetError):
            for _ in range(20):
                await ws.send_bytes(b"\x00" + b"x" * 65536)
        frames = await _frames(ws)
    assert json.loads(frames[3])["details"]["causes"] == [{"reason": "ExitCode", "message": "2"}]


async def test_a_client_that_goes_away_ends_the_session(env: Env) -> None:
    url = f"{env.server.url}/exec/default/web/app?command=sleep&command=30&stdin=true"
    async with env.session() as s:
        ws = await s.ws_connect(url, protocols=("v5.channel.k8s.io",))
        await ws.close()
    # the server noticed at once (not after the 30 s process): the process lost its stdin
    async with asyncio.timeout(10):
        while not (env.runtime.streams and env.runtime.streams[-1].proc.stdin is not None  # noqa: ASYNC110
                   and env.runtime.streams[-1].proc.stdin.is_closing()):
            await asyncio.sleep(0.01)
    assert env.runtime.streams[-1].proc.returncode is None  # still running: the session ended first
