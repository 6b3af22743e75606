"""pyk8s.util.rawupgrade on a real aiohttp server over loopback: after the 101 the connection carries raw
bytes both ways, and the client's EOF ends `chunks()`."""

from __future__ import annotations

import asyncio

from aiohttp import web

from pyk8s.util.rawupgrade import switch_protocols


async def test_raw_bytes_flow_both_ways_after_the_101() -> None:
    received: list[bytes] = []
    ended = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        conn = await switch_protocols(request, {"Connection": "Upgrade", "Upgrade": "echo/1",
                                                "X-Chosen": "yes"})
        async for chunk in conn.chunks():
            received.append(chunk)
            await conn.send(chunk.upper())
        ended.set()
        conn.close()
        assert conn.response is not None
        return conn.response

    app = web.Application()
    app.router.add_get("/up", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo/1\r\n\r\n")
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
        assert head.startswith("HTTP/1.1 101 ")
        assert "X-Chosen: yes" in head and "Upgrade: echo/1" in head
        writer.write(b"hello raw\x00bytes")
        echoed = b""
        while len(echoed) < len(b"hello raw\x00bytes"):
            echoed += await asyncio.wait_for(reader.read(100), 10)
        assert echoed == b"HELLO RAW\x00BYTES"
        writer.write_eof()
        await asyncio.wait_for(ended.wait(), 10)
        assert b"".join(received) == b"hello raw\x00bytes"
        assert await asyncio.wait_for(reader.read(), 10) == b""  # the server closed its side
        writer.close()
    finally:
        await runner.cleanup()
