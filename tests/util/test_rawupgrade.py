"""pyk8s.util.rawupgrade on a real aiohttp server over loopback: after the 101 the connection carries raw
bytes both ways, and the client's EOF ends `chunks()`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from pyk8s.util.rawupgrade import switch_protocols


@contextlib.asynccontextmanager
async def upgraded(handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                   protocol: str) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A loopback server with `handler` on /up, and a raw client connection that asked it to upgrade to
    `protocol` (the 101's head is left to the test to read)."""
    app = web.Application()
    app.router.add_get("/up", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = f"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\n\r\n"
        writer.write(head.encode())
        yield reader, writer
    finally:
        await runner.cleanup()


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

    async with upgraded(handler, "echo/1") as (reader, writer):
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


async def test_a_slow_consumer_holds_the_client_back_instead_of_buffering_everything() -> None:
    from pyk8s.util import rawupgrade

    conns: list[rawupgrade.RawConnection] = []
    consume = asyncio.Event()
    finished = asyncio.Event()
    total = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal total
        conn = await switch_protocols(request, {"Connection": "Upgrade", "Upgrade": "sink/1"})
        conns.append(conn)
        await consume.wait()  # a consumer that does not read yet
        async for chunk in conn.chunks():
            total += len(chunk)
        finished.set()
        conn.close()
        assert conn.response is not None
        return conn.response

    async with upgraded(handler, "sink/1") as (reader, writer):
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        block = b"x" * 65536
        sent = 0

        async def send_all() -> None:
            nonlocal sent
            for _ in range(256):  # 16 MiB, far past what the kernel's socket buffers hold
                writer.write(block)
                await writer.drain()
                sent += len(block)

        sender = asyncio.create_task(send_all())
        # The sender stalls: the server stopped reading once its buffer passed the high-water mark.
        async with asyncio.timeout(10):
            while True:
                before = sent
                await asyncio.sleep(0.3)
                if sent == before and sent > 0:
                    break
        assert not sender.done()
        assert conns and conns[0].buffered <= rawupgrade.HIGH_WATER + len(block) * 4
        consume.set()  # now it reads: everything arrives, nothing was lost
        await asyncio.wait_for(sender, 30)
        writer.write_eof()
        await asyncio.wait_for(finished.wait(), 30)
        assert total == 256 * len(block)
        writer.close()
