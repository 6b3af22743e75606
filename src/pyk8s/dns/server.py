"""ClusterDNS: the cluster's DNS server over UDP and TCP, fed by Namespace, Service and EndpointSlice
informers.

Names under the cluster domain (and reverse names of service and endpoint IPs) are answered from memory;
every other name is forwarded to the upstream resolvers. A UDP answer larger than the client can take
(512 bytes, or its EDNS0 buffer size) is sent truncated with TC set, so the client asks again over TCP.
A packet that does not parse is dropped; the server never fails on one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from dataclasses import dataclass
from typing import Any, cast

from dnslib import CLASS, EDNS0, OPCODE, QTYPE, RCODE, DNSHeader, DNSRecord  # type: ignore[import-untyped]
from dnslib.buffer import Buffer  # type: ignore[import-untyped]

from pyk8s.api import catalog
from pyk8s.client.cache import DeletedFinalStateUnknown
from pyk8s.client.client import Client
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.dns.forward import Forwarder, parse_upstream, read_resolv_conf
from pyk8s.dns.records import ServiceIndex
from pyk8s.dns.wire import for_client, question_end
from pyk8s.dns.zone import Answer, ClusterZone
from pyk8s.util.tasks import cancel_and_wait

__all__ = ["ClusterDNS"]

log = logging.getLogger(__name__)

CLASS_ANY = 255  # dnslib spells it '*'
MAX_UDP = 512  # without EDNS0 (RFC 1035)
MAX_EDNS_UDP = 4096
TCP_IDLE = 10.0  # seconds a TCP client may stay silent between queries
MAX_CACHED_ANSWERS = 10000
MAX_PENDING = 1000  # forwarded queries in flight; more are dropped, as an overloaded resolver does


SERVICES = catalog.require("", "Service")
ENDPOINT_SLICES = catalog.require("discovery.k8s.io", "EndpointSlice")
NAMESPACES = catalog.require("", "Namespace")


class ClusterDNS:
    """Cluster DNS for `domain`. `upstreams`: `ip` or `ip:port` strings; None reads the host's resolv.conf
    (loopback resolvers skipped); [] forwards nothing (SERVFAIL for other names).

    Use: `await dns.serve(host, port)` (any number of times, returns once bound), then `await dns.run()`
    (informers; runs until cancelled, then closes the sockets). `informers`: a factory shared with other
    components of the process; its informers are started by `run()` if it is not running yet.
    """

    def __init__(self, client: Client, *, domain: str = "cluster.local", upstreams: list[str] | None = None,
                 ttl: int = 5, informers: SharedInformerFactory | None = None,
                 forward_timeout: float = 2.0) -> None:
        self.client = client
        self.index = ServiceIndex(domain)
        self.zone = ClusterZone(self.index, ttl=ttl)
        specs = read_resolv_conf() if upstreams is None else upstreams
        self.forwarder = Forwarder([parse_upstream(s) for s in specs], timeout=forward_timeout)
        self.informers = informers or SharedInformerFactory(client)
        self._own_informers = informers is None
        self._servers: list[asyncio.AbstractServer] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # Packed answers of the cluster's names by query (all but ID and name case), for the index's
        # generation they were computed in: a repeated query costs a dict lookup, not dnslib's parse+pack.
        self._answers: dict[tuple[object, ...], bytes] = {}
        self._answers_generation = -1
        self.addresses: list[tuple[str, int]] = []  # where serve() listens (the port chosen for port 0)
        nss = self.informers.informer(NAMESPACES)
        svc = self.informers.informer(SERVICES)
        eps = self.informers.informer(ENDPOINT_SLICES)
        self._own = (nss, svc, eps)
        nss.add_handler(self.index.set_namespace, lambda _old, new: self.index.set_namespace(new),
                        self._on_namespace_deleted)
        svc.add_handler(self._on_service, lambda _old, new: self._on_service(new), self._on_service_deleted)
        eps.add_handler(self._on_slice, lambda _old, new: self._on_slice(new), self._on_slice_deleted)

    # --- informer events ---------------------------------------------------------------------------

    def _on_service(self, obj: dict[str, Any]) -> None:
        self.index.set_service(obj)

    def _on_service_deleted(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        self.index.delete_service(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)

    def _on_namespace_deleted(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        self.index.delete_namespace(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)

    def _on_slice(self, obj: dict[str, Any]) -> None:
        self.index.set_slice(obj)

    def _on_slice_deleted(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        self.index.delete_slice(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)

    # --- lifecycle ---------------------------------------------------------------------------------

    async def serve(self, host: str, port: int = 53) -> int:
        """Listen on UDP and TCP at host:port; port 0 picks one free for both. Returns the port."""
        loop = asyncio.get_running_loop()
        for _ in range(20):
            server = await asyncio.start_server(self._tcp_client, host, port, reuse_address=True)
            bound = server.sockets[0].getsockname()[1]
            try:
                transport, _proto = await loop.create_datagram_endpoint(
                    lambda: _UDPServer(self), local_addr=(host, bound))
            except OSError:
                server.close()
                if port:
                    raise
                continue  # the TCP port chosen is taken for UDP: choose again
            self._servers.append(server)
            self._udp.append(transport)
            self.addresses.append((host, bound))
            return int(bound)
        raise OSError(f"no port free for both UDP and TCP on {host}")

    async def run(self) -> None:
        """Follow Services and EndpointSlices until cancelled; then stop listening."""
        try:
            self.informers.start()
            await self.informers.wait_for_sync(self._own)  # not a sharing component's informers
            self.zone.synced = True
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for transport in self._udp:
            transport.close()
        tasks = list(self._tasks)
        await cancel_and_wait(tasks)
        self._servers.clear()
        self._udp.clear()
        if self._own_informers:
            await self.informers.stop()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- queries -----------------------------------------------------------------------------------

    async def handle(self, packet: bytes, *, udp: bool) -> bytes | None:
        """The answer to one query packet, sized for its transport; None to stay silent."""
        result = self.answer_local(packet, udp=udp)
        if not isinstance(result, Pending):
            return result
        return await self._finish(packet, result, udp)

    async def _finish(self, packet: bytes, pending: Pending, udp: bool) -> bytes:
        request = pending.request
        if pending.answer is None:
            reply = await self._forward(packet, request)
        else:
            reply = pending.answer.reply
            await self._chase(reply, request, pending.answer.chase)
            _edns(reply, request)
        return _sized(reply, request, udp)

    def answer_local(self, packet: bytes, *, udp: bool) -> bytes | Pending | None:
        """The answer when it needs no upstream (most queries: no task, no await), else Pending."""
        packet = bytes(packet)
        qend = question_end(packet)
        if qend is None or not self.zone.synced:
            return self._compute_local(packet, udp)
        if self._answers_generation != self.index.generation:
            self._answers.clear()
            self._answers_generation = self.index.generation
        key = (udp, packet[2:12], packet[12:qend].lower(), packet[qend:])
        hit = self._answers.get(key)
        if hit is not None:
            return for_client(hit, packet)
        result = self._compute_local(packet, udp)
        if isinstance(result, bytes):
            if len(self._answers) >= MAX_CACHED_ANSWERS:
                self._answers.clear()
            self._answers[key] = result
        return result

    def _compute_local(self, packet: bytes, udp: bool) -> bytes | Pending | None:
        try:
            request = DNSRecord.parse(packet)
        except Exception:
            return _header_only(packet, RCODE.FORMERR)
        if request.header.qr:
            return None  # an answer sent to us: never reply to one (that is how reflection loops start)
        if request.header.opcode != OPCODE.QUERY:
            return _sized(_error(request, RCODE.NOTIMP), request, udp)
        if len(request.questions) != 1 or request.q.qclass not in (CLASS.IN, CLASS_ANY):
            rcode = RCODE.FORMERR if len(request.questions) != 1 else RCODE.REFUSED
            return _sized(_error(request, rcode), request, udp)
        labels = tuple(label.decode("ascii", "replace").lower() for label in request.q.qname.label)
        answer = self.zone.answer(request, labels) if labels else None
        if answer is None or answer.chase:
            return Pending(request, answer)
        _edns(answer.reply, request)
        return _sized(answer.reply, request, udp)

    async def _forward(self, packet: bytes, request: DNSRecord) -> DNSRecord | bytes:
        answer = await self.forwarder.forward(packet, request)
        return answer if answer is not None else _error(request, RCODE.SERVFAIL)

    async def _chase(self, reply: DNSRecord, request: DNSRecord, target: str) -> None:
        """Append the upstream's records of an ExternalName's target after its CNAME (CoreDNS does too);
        without them the client would have to ask again."""
        if request.q.qtype in (QTYPE.CNAME,):
            return
        query = DNSRecord.question(target, QTYPE.get(request.q.qtype, "A"))
        query.header.rd = 1
        answer = await self.forwarder.forward(query.pack(), query)
        if answer is None:
            return
        with contextlib.suppress(Exception):
            for rr in DNSRecord.parse(answer).rr:
                reply.add_answer(rr)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # so close() ends open connections
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE):
                    (size,) = struct.unpack("!H", await reader.readexactly(2))
                    packet = await reader.readexactly(size)
                try:
                    answer = await self.handle(packet, udp=False)
                except Exception:
                    log.exception("dns: query failed")
                    answer = _header_only(packet, RCODE.SERVFAIL)
                if answer is None:
                    break
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("dns: TCP client failed")
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _udp_query(self, transport: asyncio.DatagramTransport, data: bytes, pending: Pending,
                         addr: tuple[Any, ...]) -> None:
        try:
            answer: bytes | None = await self._finish(data, pending, udp=True)
        except Exception:
            log.exception("dns: query failed")
            answer = _header_only(data, RCODE.SERVFAIL)
        if answer is not None and not transport.is_closing():
            transport.sendto(answer, addr)


class _UDPServer(asyncio.DatagramProtocol):
    def __init__(self, dns: ClusterDNS) -> None:
        self.dns = dns
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.transport is None:
            return
        try:
            result = self.dns.answer_local(data, udp=True)
        except Exception:
            log.exception("dns: query failed")
            result = _header_only(data, RCODE.SERVFAIL)
        if isinstance(result, bytes):
            self.transport.sendto(result, addr)
        elif isinstance(result, Pending) and len(self.dns._tasks) < MAX_PENDING:
            self.dns._spawn(self.dns._udp_query(self.transport, data, result, addr))

    def error_received(self, exc: Exception) -> None:
        log.debug("dns: UDP error: %s", exc)


@dataclass(slots=True)
class Pending:
    """A query that needs the upstreams: the whole of it, or the records of an ExternalName's target."""

    request: DNSRecord
    answer: Answer | None


def _sized(reply: DNSRecord | bytes, request: DNSRecord, udp: bool) -> bytes:
    """The answer as sent: over UDP, cut to the header and question (TC set) if it does not fit."""
    limit = _udp_limit(request) if udp else 65535
    if isinstance(reply, bytes):
        return reply if len(reply) <= limit else _truncated_bytes(reply, request)
    data = bytes(reply.pack())
    return data if len(data) <= limit else bytes(_truncated(reply).pack())


def _udp_limit(request: DNSRecord) -> int:
    opt = next((r for r in request.ar if r.rtype == QTYPE.OPT), None)
    if opt is None:
        return MAX_UDP
    return max(MAX_UDP, min(int(opt.rclass), MAX_EDNS_UDP))


def _edns(reply: DNSRecord, request: DNSRecord) -> None:
    """Answer EDNS0 with EDNS0 (our buffer size, no options), as RFC 6891 asks; never otherwise."""
    if any(r.rtype == QTYPE.OPT for r in request.ar) and not any(r.rtype == QTYPE.OPT for r in reply.ar):
        reply.add_ar(EDNS0(udp_len=MAX_EDNS_UDP))


def _error(request: DNSRecord, rcode: int) -> DNSRecord:
    reply = request.reply(ra=1, aa=0)
    reply.header.rcode = rcode
    _edns(reply, request)
    return reply


def _truncated(reply: DNSRecord) -> DNSRecord:
    """Header (TC set, rcode kept) and question only; the OPT record stays so the client keeps EDNS."""
    out = DNSRecord(DNSHeader(id=reply.header.id, bitmap=reply.header.bitmap), q=reply.q)
    out.header.tc = 1
    for rr in reply.ar:
        if rr.rtype == QTYPE.OPT:
            out.add_ar(rr)
    return out


def _truncated_bytes(answer: bytes, request: DNSRecord) -> bytes:
    try:
        return bytes(_truncated(DNSRecord.parse(answer)).pack())
    except Exception:
        reply = request.reply(ra=1, aa=0)
        reply.header.tc = 1
        return bytes(reply.pack())


def _header_only(packet: bytes, rcode: int) -> bytes | None:
    """An error answer (FORMERR for a query that does not parse, as resolvers do) carrying only the
    header; silence for a runt or for something that is itself an answer."""
    if len(packet) < 12 or packet[2] & 0x80:
        return None
    try:
        header = DNSHeader.parse(Buffer(packet[:12]))
    except Exception:
        return None
    reply = DNSRecord(DNSHeader(id=header.id, qr=1, opcode=header.opcode, rd=header.rd, ra=1,
                                rcode=rcode))
    return bytes(reply.pack())


