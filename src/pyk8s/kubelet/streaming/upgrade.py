"""A raw HTTP upgrade (`Upgrade: SPDY/3.1`, as kubectl before 1.30/1.31 sends for exec, attach and
port-forward): after the 101 the connection carries SPDY frames. aiohttp knows only WebSocket upgrades,
so the connection's further bytes are taken over with the same hook its WebSocket uses (`set_parser`)
before the 101 goes out — nothing can arrive earlier, as the client waits for the 101."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from aiohttp import web

__all__ = ["RawConnection", "accept_upgrade", "is_spdy_upgrade"]


def is_spdy_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower().startswith("spdy/") \
        and "upgrade" in request.headers.get("Connection", "").lower()


def offered_protocols(request: web.Request) -> list[str]:
    return [p.strip() for v in request.headers.getall("X-Stream-Protocol-Version", []) for p in v.split(",")
            if p.strip()]


class RawConnection:
    """The connection's bytes after the upgrade: `chunks()` in, `send()` out."""

    def __init__(self, request: web.Request) -> None:
        assert request.transport is not None
        self.transport = request.transport
        self.response: web.StreamResponse | None = None  # the 101 sent; what the handler returns
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()

    # aiohttp's payload-parser interface
    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self._queue.put_nowait(b"")

    async def chunks(self) -> AsyncIterator[bytes]:
        while data := await self._queue.get():
            yield data

    async def send(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.transport.close()


async def accept_upgrade(request: web.Request, supported: Iterable[str]) -> tuple[RawConnection, str] | None:
    """Answer 101 with the first protocol the client offers that we support (None: answered 403 as the
    kubelet does when none matches)."""
    offered = offered_protocols(request)
    chosen = next((p for p in offered if p in set(supported)), "")
    if offered and not chosen:
        return None
    conn = RawConnection(request)
    request.protocol.set_parser(conn)  # type: ignore[arg-type]
    headers = {"Connection": "Upgrade", "Upgrade": request.headers["Upgrade"]}
    if chosen:
        headers["X-Stream-Protocol-Version"] = chosen
    conn.response = web.StreamResponse(status=101, headers=headers)
    await conn.response.prepare(request)
    return conn, chosen
