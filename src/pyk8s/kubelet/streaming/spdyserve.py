"""Kubernetes' streaming protocols over a SPDY session, server side: port-forward (`portforward.k8s.io`)
and remotecommand (exec and attach, `v4.channel.k8s.io` … `channel.k8s.io`). The session's bytes come from
a WebSocket tunnel (kubectl 1.31+ port-forward) or a raw `Upgrade: SPDY/3.1` connection (older kubectl)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from pyk8s.kubelet import cri
from pyk8s.kubelet.streaming.spdy import RST_PROTOCOL_ERROR, SpdySession, SpdyStream
from pyk8s.util.tasks import cancel_and_wait

__all__ = ["REMOTECOMMAND_PROTOCOLS", "spdy_portforward", "spdy_remotecommand"]

Send = Callable[[bytes], Awaitable[None]]
Dial = Callable[[int], Awaitable[tuple[Callable[[bytes], Awaitable[None]], AsyncIterator[bytes]]]]
REMOTECOMMAND_PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
STREAM_WAIT = 30.0  # seconds the client has to open the streams it asked for


async def _serve(send: Send, chunks: AsyncIterator[bytes], on_stream: Callable[[SpdyStream], Awaitable[None]],
                 tasks: set[asyncio.Task[None]]) -> None:
    session = SpdySession(send, on_stream)
    try:
        async for data in chunks:
            await session.feed(data)
    finally:
        await cancel_and_wait(list(tasks))


async def spdy_portforward(send: Send, chunks: AsyncIterator[bytes], dial: Dial) -> None:
    """Port-forward protocol v1: per connection, the client opens an error stream and a data stream sharing
    a `requestid`; the data stream carries the bytes, the error stream a message when dialing the port
    failed. The ports come with the streams, not the URL."""
    pairs: dict[str, dict[str, SpdyStream]] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def forward(port: int, data: SpdyStream, error: SpdyStream) -> None:
        try:
            send_to_pod, received = await dial(port)
        except Exception as e:
            await error.write(f"error forwarding port {port} to pod: {e}".encode())
            await error.close()
            await data.close()
            return

        async def to_pod(chunk: bytes) -> None:
            with contextlib.suppress(OSError):
                await send_to_pod(chunk)  # b"": the client half-closed, so does the pod's connection

        await data.handle(to_pod)
        try:
            async for chunk in received:
                await data.write(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                await data.close()
                await error.close()

    async def on_stream(stream: SpdyStream) -> None:
        await stream.reply()
        kind = stream.headers.get("streamtype", "")
        rid = stream.headers.get("requestid", "")
        try:
            port = int(stream.headers.get("port", ""))
        except ValueError:
            await stream.reset(RST_PROTOCOL_ERROR)
            return
        pair = pairs.setdefault(rid, {})
        pair[kind] = stream
        if "data" in pair and "error" in pair:
            del pairs[rid]
            task = asyncio.create_task(forward(port, pair["data"], pair["error"]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    await _serve(send, chunks, on_stream, tasks)


async def spdy_remotecommand(send: Send, chunks: AsyncIterator[bytes], protocol: str,
                             open_stream: Callable[[], Awaitable[cri.Stream]], *, stdin: bool, stdout: bool,
                             stderr: bool, tty: bool, status: Callable[[int], dict[str, object]],
                             failure: Callable[[str], dict[str, object]]) -> None:
    """The client opens the streams it asked for (error, stdin, stdout, stderr, resize — by the
    `streamtype` header); the exit comes on the error stream: a Status (v4) or, for older versions, a
    message only when the command failed."""
    expected = {"error"} | {k for k, on in (("stdin", stdin), ("stdout", stdout),
                                            ("stderr", stderr and not tty), ("resize", tty)) if on}
    if protocol in ("v2.channel.k8s.io", "channel.k8s.io"):
        expected.discard("resize")
    streams: dict[str, SpdyStream] = {}
    ready = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()

    async def on_stream(stream: SpdyStream) -> None:
        await stream.reply()
        streams[stream.headers.get("streamtype", "")] = stream
        if expected <= streams.keys() and not ready.is_set():
            ready.set()
            task = asyncio.create_task(run())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def report(error: SpdyStream, body: dict[str, object]) -> None:
        if protocol == "v4.channel.k8s.io":
            await error.write(json.dumps(body).encode())
        elif body.get("status") != "Success":
            await error.write(str(body.get("message", "")).encode())
        await error.close()

    async def run() -> None:
        error = streams["error"]
        try:
            proc = await open_stream()
        except Exception as e:
            await report(error, failure(str(e)))
            return
        if "stdin" in streams:
            async def to_stdin(chunk: bytes) -> None:
                with contextlib.suppress(OSError, RuntimeError):
                    await (proc.write_stdin(chunk) if chunk else proc.close_stdin())
            await streams["stdin"].handle(to_stdin)
        if "resize" in streams:
            buffered = b""

            async def on_resize(chunk: bytes) -> None:
                nonlocal buffered
                buffered += chunk
                decoder = json.JSONDecoder()
                text = buffered.decode(errors="replace").lstrip()
                while text:
                    try:
                        size, end = decoder.raw_decode(text)
                    except ValueError:
                        break
                    text = text[end:].lstrip()
                    with contextlib.suppress(Exception):
                        await proc.resize(int(size["Width"]), int(size["Height"]))
                buffered = text.encode()
            await streams["resize"].handle(on_resize)

        async def pump(out: AsyncIterator[bytes], name: str) -> None:
            target = streams.get(name)
            async for chunk in out:
                if target is not None:
                    await target.write(chunk)
            if target is not None:
                await target.close()

        pumps = [asyncio.create_task(pump(proc.stdout(), "stdout")),
                 asyncio.create_task(pump(proc.stderr(), "stderr"))]
        code = await proc.wait()
        await asyncio.gather(*pumps, return_exceptions=True)
        await report(error, status(code))

    async def deadline() -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ready.wait(), STREAM_WAIT)
            return
        if "error" in streams:
            await report(streams["error"], failure("timed out waiting for the client to create streams"))

    tasks.add(asyncio.create_task(deadline()))
    await _serve(send, chunks, on_stream, tasks)
