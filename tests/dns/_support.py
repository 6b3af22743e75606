"""A ClusterDNS on a loopback port against a real in-process API server; a fake upstream resolver."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from dnslib import EDNS0, QTYPE, RCODE, RR, A, DNSRecord

from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.dns import ClusterDNS
from tests.support.apiserver import Server, api_server, info

SERVICES = info("", "services")
SLICES = info("discovery.k8s.io", "endpointslices")
ENDPOINTS = info("", "endpoints")
NAMESPACES = info("", "namespaces")


@dataclass
class Env:
    server: Server
    client: Client
    dns: ClusterDNS
    port: int

    async def ask(self, name: str, qtype: str = "A", *, tcp: bool = False, edns: int | None = None,
                  within: float = 5.0) -> DNSRecord:
        """One query with dnslib's client (blocking sockets, so in a thread)."""
        q = DNSRecord.question(name, qtype)
        if edns is not None:
            q.add_ar(EDNS0(udp_len=edns))
        raw = await asyncio.to_thread(q.send, "127.0.0.1", self.port, tcp=tcp, timeout=within)
        reply = DNSRecord.parse(raw)
        assert reply.header.id == q.header.id
        return reply


def answers(reply: DNSRecord, qtype: str | None = None) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr if qtype is None or QTYPE[rr.rtype] == qtype)


def rcode(reply: DNSRecord) -> str:
    return str(RCODE[reply.header.rcode])


@contextlib.asynccontextmanager
async def cluster_dns(**options: Any) -> AsyncIterator[Env]:
    async with api_server() as server:
        client = Client(HTTPTransport(server.url))
        options.setdefault("upstreams", [])
        dns = ClusterDNS(client, **options)
        port = await dns.serve("127.0.0.1", 0)
        task = asyncio.create_task(dns.run())
        try:
            async with asyncio.timeout(10):
                while not dns.zone.synced:
                    assert not task.done(), task
                    await asyncio.sleep(0.01)
            yield Env(server, client, dns, port)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()


async def until_answer(env: Env, name: str, check: Callable[[DNSRecord], bool], qtype: str = "A",
                       within: float = 5.0) -> DNSRecord:
    """Ask until the reply passes `check` (the informers follow the API asynchronously)."""
    last: DNSRecord | None = None
    try:
        async with asyncio.timeout(within):
            while True:
                last = await env.ask(name, qtype)
                if check(last):
                    return last
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"no matching answer for {name} {qtype}; last:\n{last}") from None


@dataclass
class FakeUpstream:
    """A resolver on a loopback port: A records from `zone`; names in `big` answer with many records,
    truncated (TC) over UDP and whole over TCP; names in `broken` get SERVFAIL."""

    zone: dict[str, str] = field(default_factory=dict)
    big: set[str] = field(default_factory=set)
    udp_queries: list[str] = field(default_factory=list)
    tcp_queries: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.AbstractServer | None = None
    _udp: asyncio.DatagramTransport | None = None

    def answer(self, packet: bytes, udp: bool) -> bytes:
        request = DNSRecord.parse(packet)
        name = str(request.q.qname).rstrip(".").lower()
        (self.udp_queries if udp else self.tcp_queries).append(name)
        reply = request.reply()
        if name in self.big:
            if udp:
                reply.header.tc = 1
                return bytes(reply.pack())
            for i in range(100):
                reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=60, rdata=A(f"192.0.2.{i}")))
        elif name in self.zone:
            reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=60, rdata=A(self.zone[name])))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return bytes(reply.pack())

    async def start(self) -> None:
        upstream = self

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(upstream.answer(data, True), addr)  # type: ignore[attr-defined]

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    (n,) = struct.unpack("!H", await reader.readexactly(2))
                    out = self.answer(await reader.readexactly(n), False)
                    writer.write(struct.pack("!H", len(out)) + out)
                    await writer.drain()
            writer.close()

        loop = asyncio.get_running_loop()
        for _ in range(20):  # one port free for both TCP and UDP
            self._server = await asyncio.start_server(tcp, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            try:
                self._udp, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", self.port))
                return
            except OSError:
                self._server.close()
        raise OSError("no free port")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
