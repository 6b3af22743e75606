"""Kubernetes' WebSocket channel protocols, server side.

remotecommand (exec, attach): every message starts with a channel byte — 0 stdin, 1 stdout, 2 stderr,
3 error (v4+: a Status JSON carrying the exit code), 4 resize (JSON {"Width","Height"}); v5 adds 255,
"close": `[255, channel]` half-closes that stream (kubectl closes stdin so). Port-forward
(`v4.channel.k8s.io` / `portforward.k8s.io`): port i uses data channel 2i and error channel 2i+1; the
server's first message on each starts with the port as two little-endian bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from pyk8s.kubelet import cri
from pyk8s.kubelet.streaming.spdyserve import spdy_portforward
from pyk8s.util.tasks import cancel_and_wait

__all__ = ["EXEC_PROTOCOLS", "PORTFORWARD_PROTOCOLS", "exit_status", "serve_portforward",
           "serve_remotecommand"]


EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
SPDY_PORTFORWARD = "SPDY/3.1+portforward.k8s.io"  # kubectl 1.31+: SPDY tunnelled through the WebSocket
PORTFORWARD_PROTOCOLS = (SPDY_PORTFORWARD, "v4.channel.k8s.io", "portforward.k8s.io")
Dial = Callable[[int], Awaitable[tuple[Callable[[bytes], Awaitable[None]], AsyncIterator[bytes]]]]
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def exit_status(code: int, command: list[str] | None = None) -> dict[str, Any]:
    """The error channel's Status, as the kubelet writes it (NonZeroExitCode with an ExitCode cause)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    what = f"error executing command {command}, exit code {code}" if command else f"exit code {code}"
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: {what}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def failure_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
            "code": 500}


async def _binary(ws: web.WebSocketResponse) -> AsyncIterator[bytes]:
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            yield bytes(msg.data)


def _payload(msg: Any) -> bytes | None:
    if msg.type == WSMsgType.BINARY:
        return bytes(msg.data)
    if msg.type == WSMsgType.TEXT:  # the Python client sends str data as text frames
        return str(msg.data).encode("latin-1") if msg.data[:1] < "\x05" else str(msg.data).encode()
    return None


async def serve_remotecommand(request: web.Request, open_stream: Callable[[], Awaitable[cri.Stream]],
                              command: list[str] | None = None) -> web.WebSocketResponse:
    """Upgrade, open the runtime's stream, pump it both ways, then report the exit code and close."""
    ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, max_msg_size=0, autoping=True)
    await ws.prepare(request)
    try:
        stream = await open_stream()
    except Exception as e:
        await ws.send_bytes(bytes([ERROR]) + json.dumps(failure_status(str(e))).encode())
        await ws.close()
        return ws

    async def pump(chunks: AsyncIterator[bytes], channel: int) -> None:
        async for chunk in chunks:
            await ws.send_bytes(bytes([channel]) + chunk)

    async def from_client() -> None:
        async for msg in ws:
            data = _payload(msg)
            if not data:
                continue
            channel, body = data[0], data[1:]
            # The process may be gone already (its stdin closed): its exit code still has to go out.
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError, RuntimeError):
                if channel == STDIN:
                    await stream.write_stdin(body)
                elif channel == RESIZE:
                    size = json.loads(body)
                    await stream.resize(int(size["Width"]), int(size["Height"]))
                elif channel == CLOSE and body[:1] == bytes([STDIN]):
                    await stream.close_stdin()
        with contextlib.suppress(OSError, RuntimeError):
            await stream.close_stdin()  # the client went away

    reader = asyncio.create_task(from_client())
    pumps = [asyncio.create_task(pump(stream.stdout(), STDOUT)),
             asyncio.create_task(pump(stream.stderr(), STDERR))]
    waiter = asyncio.ensure_future(stream.wait())
    try:
        # A client that goes away ends the session (the process itself is left to finish, as the kubelet
        # does; it lost its stdin).
        await asyncio.wait([waiter, reader], return_when=asyncio.FIRST_COMPLETED)
        if not ws.closed:
            await waiter
        if waiter.done():
            code = waiter.result()
            await asyncio.gather(*pumps, return_exceptions=True)
        if waiter.done() and not ws.closed:
            await ws.send_bytes(bytes([ERROR]) + json.dumps(exit_status(code, command)).encode())
            await ws.close()
    except ConnectionResetError:
        pass
    finally:
        await cancel_and_wait([reader, waiter, *pumps])
    return ws


def parse_ports(values: list[str]) -> list[int]:
    """`ports=80&ports=8080` or `ports=80,8080`."""
    ports = [int(p) for v in values for p in v.split(",") if p.strip()]
    if any(not 0 < p < 65536 for p in ports):
        raise ValueError("port-forward needs ports between 1 and 65535")
    return ports


async def serve_portforward(request: web.Request, ports: list[int], dial: Dial) -> web.StreamResponse:
    """The ports come in the URL for the channel protocols, with each stream for SPDY."""
    ws = web.WebSocketResponse(protocols=PORTFORWARD_PROTOCOLS, max_msg_size=0)
    ready = ws.can_prepare(request)
    if ready.ok and ready.protocol != SPDY_PORTFORWARD and not ports:
        raise web.HTTPBadRequest(text="query parameter \"port\" is required")
    await ws.prepare(request)
    if ws.ws_protocol == SPDY_PORTFORWARD:
        await spdy_portforward(ws.send_bytes, _binary(ws), dial)
        return ws
    senders: dict[int, Callable[[bytes], Awaitable[None]]] = {}
    tasks: list[asyncio.Task[None]] = []

    async def pump(i: int, chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            await ws.send_bytes(bytes([2 * i]) + chunk)

    for i, port in enumerate(ports):
        prefix = struct.pack("<H", port)
        await ws.send_bytes(bytes([2 * i]) + prefix)
        await ws.send_bytes(bytes([2 * i + 1]) + prefix)
        try:
            send, received = await dial(port)
        except Exception as e:
            await ws.send_bytes(bytes([2 * i + 1]) + f"error forwarding port {port}: {e}".encode())
            continue
        senders[i] = send
        tasks.append(asyncio.create_task(pump(i, received)))
    try:
        async for msg in ws:
            data = _payload(msg)
            if not data or data[0] % 2:
                continue
            send_to = senders.get(data[0] // 2)
            if send_to is not None and len(data) > 1:
                await send_to(data[1:])
    finally:
        for send in senders.values():
            with contextlib.suppress(Exception):
                await send(b"")
        await cancel_and_wait(tasks)
    return ws

