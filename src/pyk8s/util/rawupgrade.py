"""A raw HTTP upgrade on an aiohttp server (`Upgrade: SPDY/3.1`, which kubectl before 1.30/1.31 sends for
exec, attach and port-forward). aiohttp itself completes only WebSocket upgrades, so the connection's
further bytes are taken over with the hook its WebSocket uses (`set_parser`) before the 101 goes out:
nothing can arrive earlier, as the client waits for the 101. The kubelet serves such connections; the API
server splices them to the kubelet's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

__all__ = ["RawConnection", "switch_protocols"]

# Unread bytes held before the client's socket stops being read (the kernel's buffers then hold the
# sender back), and the level at which reading resumes.
HIGH_WATER = 1 << 20
LOW_WATER = HIGH_WATER // 4


class RawConnection:
    """The client connection's bytes after the upgrade: `chunks()` in (ends at EOF), `send()` out. A
    consumer slower than its client applies back-pressure instead of buffering without bound."""

    def __init__(self, request: web.Request) -> None:
        assert request.transport is not None
        self.transport = request.transport
        self.response: web.StreamResponse | None = None  # the 101 sent; what the handler returns
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.buffered = 0  # bytes received and not yet taken by chunks()
        self._paused = False

    # aiohttp's payload-parser interface
    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._queue.put_nowait(bytes(data))
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self._paused and not self.transport.is_closing():
            self._paused = True
            self.transport.pause_reading()
        return False, b""

    def feed_eof(self) -> None:
        self._queue.put_nowait(b"")

    async def chunks(self) -> AsyncIterator[bytes]:
        while data := await self._queue.get():
            self.buffered -= len(data)
            if self._paused and self.buffered <= LOW_WATER:
                self._paused = False
                if not self.transport.is_closing():
                    self.transport.resume_reading()
            yield data

    async def send(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.transport.close()


async def switch_protocols(request: web.Request, headers: Mapping[str, str]) -> RawConnection:
    """Take the connection over and answer `101 Switching Protocols` with `headers` (Connection and
    Upgrade among them); the 101 is the connection's `response`, which the handler returns."""
    conn = RawConnection(request)
    request.protocol.set_parser(conn)  # type: ignore[arg-type]
    conn.response = web.StreamResponse(status=101, headers=headers)
    await conn.response.prepare(request)
    return conn
