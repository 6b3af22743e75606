"""Forwarding of names outside the cluster to the node's upstream resolvers, with a small answer cache.

Each query goes over UDP from a fresh socket with a fresh random ID (a spoofed answer must guess both),
falls back to TCP when the answer comes back truncated, and moves on to the next upstream on a timeout or
a SERVFAIL/REFUSED. The whole costs at most `timeout` seconds; after that, or with no upstreams at all,
the caller answers SERVFAIL at once rather than let the client wait for its own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import struct
import time
from collections import OrderedDict
from pathlib import Path

from dnslib import QTYPE, RCODE, DNSRecord  # type: ignore[import-untyped]

from pyk8s.dns.wire import for_client

__all__ = ["Forwarder", "Upstream", "parse_upstream", "read_resolv_conf"]

log = logging.getLogger(__name__)

Upstream = tuple[str, int]
# systemd-resolved keeps the real resolvers here when /etc/resolv.conf points at its loopback stub.
SYSTEMD_RESOLV_CONF = "/run/systemd/resolve/resolv.conf"


def parse_upstream(spec: str) -> Upstream:
    """`1.1.1.1`, `1.1.1.1:5353`, `[fd00::1]:53` or `fd00::1` → (ip, port)."""
    spec = spec.strip()
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif spec.count(":") == 1:
        host, _, p = spec.partition(":")
        port = int(p)
    else:
        host, port = spec, 53
    return str(ipaddress.ip_address(host)), port


def read_resolv_conf(path: str = "/etc/resolv.conf") -> list[str]:
    """The nameservers of a resolv.conf, without loopback ones: the DNS server runs on this host, and a
    loopback resolver (systemd-resolved, a local dnsmasq) may itself be configured to ask the cluster DNS,
    which would loop. When only loopback ones are listed, systemd-resolved's own upstream list is tried."""
    servers: list[str] = []
    loopback = False
    for candidate in (path, SYSTEMD_RESOLV_CONF):
        try:
            text = Path(candidate).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                try:
                    ip = ipaddress.ip_address(parts[1].split("%")[0])
                except ValueError:
                    continue
                if ip.is_loopback:
                    loopback = True
                elif str(ip) not in servers:
                    servers.append(str(ip))
        if servers or not loopback:
            break
    return servers


class Forwarder:
    def __init__(self, upstreams: list[Upstream], *, timeout: float = 2.0, attempt_timeout: float = 1.0,
                 cache_size: int = 1024, max_ttl: int = 30) -> None:
        self.upstreams = upstreams
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout
        self.cache_size = cache_size
        self.max_ttl = max_ttl
        # key → (expiry on the monotonic clock, answer as sent by the upstream)
        self._cache: OrderedDict[tuple[object, ...], tuple[float, bytes]] = OrderedDict()
        self._next = 0  # the upstream that answered last is asked first

    async def forward(self, packet: bytes, request: DNSRecord) -> bytes | None:
        """The upstream's answer to `packet` (with the client's ID), or None when none answered usefully."""
        if not self.upstreams:
            return None
        key = _cache_key(request)
        hit = self._cache.get(key)
        if hit is not None:
            if hit[0] > time.monotonic():
                self._cache.move_to_end(key)
                return for_client(hit[1], packet)
            del self._cache[key]
        answer = await self._ask(packet)
        if answer is None:
            return None
        self._remember(key, answer)
        return for_client(answer, packet)

    async def _ask(self, packet: bytes) -> bytes | None:
        fallback: bytes | None = None
        deadline = time.monotonic() + self.timeout
        n = len(self.upstreams)
        start = self._next
        for attempt in range(max(n, 2)):  # a single upstream gets a second chance (a lost UDP packet)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            i = (start + attempt) % n
            upstream = self.upstreams[i]
            try:
                answer = await self._exchange(packet, upstream, min(left, self.attempt_timeout))
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                log.debug("dns: upstream %s:%d failed: %s", *upstream, e or type(e).__name__)
                continue
            rcode = answer[3] & 0x0F
            if rcode in (RCODE.SERVFAIL, RCODE.REFUSED):
                fallback = answer
                continue
            self._next = i
            return answer
        return fallback

    async def _exchange(self, packet: bytes, upstream: Upstream, within: float) -> bytes:
        query_id = secrets.token_bytes(2)
        query = query_id + packet[2:]
        async with asyncio.timeout(within):
            answer = await _udp_exchange(query, upstream)
            if answer[2] & 0x02:  # TC: the whole answer only fits over TCP
                answer = await _tcp_exchange(query, upstream)
        if answer[:2] != query_id:
            raise ValueError("answer with a foreign ID")
        return answer

    def _remember(self, key: tuple[object, ...], answer: bytes) -> None:
        ttl = _answer_ttl(answer, self.max_ttl)
        if ttl <= 0:
            return
        self._cache[key] = (time.monotonic() + ttl, answer)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _cache_key(request: DNSRecord) -> tuple[object, ...]:
    """Case-insensitive on the name; EDNS and DO/CD separate answers a client may not be able to take."""
    q = request.q
    opt = next((r for r in request.ar if r.rtype == QTYPE.OPT), None)
    return (str(q.qname).lower(), q.qtype, q.qclass, opt is not None, bool(opt and opt.edns_do),
            request.header.cd)


def _answer_ttl(answer: bytes, max_ttl: int) -> int:
    try:
        record = DNSRecord.parse(answer)
    except Exception:
        return 0
    rcode = record.header.rcode
    if rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN) or record.header.tc:
        return 0
    ttls = [rr.ttl for rr in (*record.rr, *record.auth) if rr.rtype != QTYPE.OPT]
    if not record.rr:  # negative: the SOA's minimum bounds it (RFC 2308)
        ttls += [min(rr.ttl, rr.rdata.times[-1]) for rr in record.auth if rr.rtype == QTYPE.SOA]
    return min([max_ttl, *ttls]) if ttls else min(5, max_ttl)


class _UDPExchange(asyncio.DatagramProtocol):
    def __init__(self, query_id: bytes) -> None:
        self.query_id = query_id
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if data[:2] == self.query_id and len(data) >= 12 and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def _udp_exchange(query: bytes, upstream: Upstream) -> bytes:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(lambda: _UDPExchange(query[:2]),
                                                              remote_addr=upstream)
    try:
        transport.sendto(query)
        return await protocol.answer
    finally:
        transport.close()


async def _tcp_exchange(query: bytes, upstream: Upstream) -> bytes:
    reader, writer = await asyncio.open_connection(*upstream)
    try:
        writer.write(struct.pack("!H", len(query)) + query)
        await writer.drain()
        (size,) = struct.unpack("!H", await reader.readexactly(2))
        return await reader.readexactly(size)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
