"""A SPDY/3.1 server session, as much of it as Kubernetes' port-forward protocol uses.

kubectl (1.31+) port-forwards through a WebSocket whose subprotocol is `SPDY/3.1+portforward.k8s.io`: the
WebSocket's binary messages carry a plain SPDY byte stream, in which the client opens a pair of streams per
forwarded connection (headers `streamtype` error|data, `port`, `requestid`). Frames (draft 3.1):

  control: 1 bit 1 | 15 bits version (3) | 16 bits type | 8 bits flags | 24 bits length | data
  data:    1 bit 0 | 31 bits stream id   | 8 bits flags | 24 bits length | data

Header blocks are one zlib stream per direction, primed with the dictionary of the SPDY/3 draft and sync-
flushed after every block; the block itself is a 32-bit count of pairs, each a 32-bit-length-prefixed name
and value. No flow control: the Go client (spdystream) ignores windows, and so does this side."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["SpdySession", "SpdyStream"]

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_CANCEL, RST_INTERNAL_ERROR = 1, 5, 6

_WORDS = [*(  # noqa: SIM905
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges "
    "age allow authorization cache-control connection content-base content-encoding content-language "
    "content-length content-location content-md5 content-range content-type date etag expect expires from "
    "host if-match if-modified-since if-none-match if-range if-unmodified-since last-modified location "
    "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after server te trailer "
    "transfer-encoding upgrade user-agent vary via warning www-authenticate method get status"
).split(), "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header compression dictionary: length-prefixed common words, then a run of common text.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


@dataclass
class SpdyStream:
    id: int
    headers: dict[str, str]
    session: SpdySession
    on_data: Callable[[bytes], Awaitable[None]] | None = None  # b"" once the peer half-closed
    remote_closed: bool = False
    local_closed: bool = False
    pending: list[bytes] = field(default_factory=list)  # data that came before on_data was set

    async def handle(self, on_data: Callable[[bytes], Awaitable[None]]) -> None:
        """Hand data to `on_data` from now on, what came before first: in order, even when more comes in
        while the earlier data is handed on."""
        while self.pending:
            await on_data(self.pending.pop(0))
        self.on_data = on_data

    async def reply(self) -> None:
        async with self.session.header_lock:  # header blocks must reach the peer in compression order
            block = self.session.encode_headers({})
            await self.session.send_control(SYN_REPLY, 0, struct.pack(">I", self.id) + block)

    async def write(self, data: bytes) -> None:
        if not self.local_closed and data:
            await self.session.send_data(self.id, 0, data)

    async def close(self) -> None:
        """Half-close our side (FIN)."""
        if not self.local_closed:
            self.local_closed = True
            await self.session.send_data(self.id, FLAG_FIN, b"")

    async def reset(self, status: int = RST_CANCEL) -> None:
        self.local_closed = self.remote_closed = True
        await self.session.send_control(RST_STREAM, 0, struct.pack(">II", self.id, status))


class SpdySession:
    """Feed it the peer's bytes; it calls `on_stream` for each new stream (which should `reply()`), and
    hands data to the stream's `on_data`. `send` writes bytes to the peer."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]],
                 on_stream: Callable[[SpdyStream], Awaitable[None]]) -> None:
        self.send = send
        self.on_stream = on_stream
        self.streams: dict[int, SpdyStream] = {}
        self.buffer = b""
        self.inflate = zlib.decompressobj(zdict=DICTIONARY)
        self.deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                        zlib.Z_DEFAULT_STRATEGY, zdict=DICTIONARY)
        self.header_lock = asyncio.Lock()

    def encode_headers(self, headers: dict[str, str]) -> bytes:
        block = struct.pack(">I", len(headers))
        for k, v in headers.items():
            kb, vb = k.lower().encode(), v.encode()
            block += struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb
        return self.deflate.compress(block) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def _decode_headers(self, data: bytes) -> dict[str, str]:
        block = self.inflate.decompress(data)
        (count,), pos, out = struct.unpack_from(">I", block), 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            (n,) = struct.unpack_from(">I", block, pos)
            out[name.lower()] = block[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
        return out

    async def send_control(self, kind: int, flags: int, data: bytes) -> None:
        await self.send(struct.pack(">HHI", 0x8000 | 3, kind, (flags << 24) | len(data)) + data)

    async def send_data(self, stream_id: int, flags: int, data: bytes) -> None:
        for i in range(0, max(len(data), 1), 0xFFFFFF):
            chunk = data[i:i + 0xFFFFFF]
            last = i + 0xFFFFFF >= len(data)
            await self.send(struct.pack(">II", stream_id & 0x7FFFFFFF,
                                        ((flags if last else 0) << 24) | len(chunk)) + chunk)

    async def feed(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 8:
            word, flags_len = struct.unpack_from(">II", self.buffer)
            length = flags_len & 0xFFFFFF
            if len(self.buffer) < 8 + length:
                return
            flags = flags_len >> 24
            body, self.buffer = self.buffer[8:8 + length], self.buffer[8 + length:]
            if word & 0x80000000:
                await self._control(word & 0xFFFF, flags, body)
            else:
                await self._data(word & 0x7FFFFFFF, flags, body)

    async def _control(self, kind: int, flags: int, body: bytes) -> None:
        if kind == SYN_STREAM:
            stream_id = struct.unpack_from(">I", body)[0] & 0x7FFFFFFF
            stream = SpdyStream(stream_id, self._decode_headers(body[10:]), self)
            stream.remote_closed = bool(flags & FLAG_FIN)
            self.streams[stream_id] = stream
            await self.on_stream(stream)
        elif kind == HEADERS:
            self._decode_headers(body[4:])  # keeps the shared zlib context in step
        elif kind == PING:
            await self.send_control(PING, 0, body)
        elif kind == RST_STREAM:
            stream_id = struct.unpack_from(">I", body)[0] & 0x7FFFFFFF
            reset = self.streams.pop(stream_id, None)
            if reset is not None:
                reset.remote_closed = reset.local_closed = True
                await self._deliver(reset, b"")
        # SETTINGS, WINDOW_UPDATE, GOAWAY: nothing to do without flow control

    async def _data(self, stream_id: int, flags: int, body: bytes) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if body:
            await self._deliver(stream, body)
        if flags & FLAG_FIN and not stream.remote_closed:
            stream.remote_closed = True
            await self._deliver(stream, b"")

    @staticmethod
    async def _deliver(stream: SpdyStream, data: bytes) -> None:
        if stream.on_data is None:
            stream.pending.append(data)
        else:
            await stream.on_data(data)
