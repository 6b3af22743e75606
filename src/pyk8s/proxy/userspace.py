"""Userspace mode: the seeds' proxy — asyncio TCP and UDP forwarding, round robin across endpoints.

Each service port gets one listener on the node (its NodePort when it has one, else a free port); the
nftables table redirects ClusterIP:port to it, as the classic userspace kube-proxy did with iptables
REDIRECT. A TCP connection goes to the next endpoint in turn, or to the client's previous one under
ClientIP session affinity; an endpoint that refuses (or does not answer within the connect timeout) is
skipped for the next. UDP keeps one session per client address (a connected socket to one endpoint),
ended after an idle timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterable
from typing import cast

from pyk8s.proxy.model import Endpoint, ServicePort

__all__ = ["UserspaceProxier"]

log = logging.getLogger(__name__)

_CHUNK = 65536


class _Balancer:
    """Round robin over a service port's endpoints, with optional ClientIP affinity."""

    def __init__(self) -> None:
        self.endpoints: tuple[Endpoint, ...] = ()
        self.affinity_timeout = 0
        self._next = 0
        self._affinity: dict[str, tuple[Endpoint, float]] = {}

    def update(self, sp: ServicePort) -> None:
        self.endpoints = sp.endpoints
        self.affinity_timeout = sp.affinity_timeout
        live = set(sp.endpoints)
        self._affinity = {c: v for c, v in self._affinity.items() if v[0] in live and self.affinity_timeout}

    def candidates(self, client_ip: str) -> list[Endpoint]:
        """Endpoints to try in order: the affine one (if any), then round robin from the next in turn."""
        eps = self.endpoints
        if not eps:
            return []
        start = self._next % len(eps)
        self._next = start + 1
        order = list(eps[start:] + eps[:start])
        if self.affinity_timeout:
            prev = self._affinity.get(client_ip)
            if prev and time.monotonic() - prev[1] < self.affinity_timeout and prev[0] in order:
                self._next = start  # the turn was not used
                order.remove(prev[0])
                order.insert(0, prev[0])
        return order

    def used(self, client_ip: str, ep: Endpoint) -> None:
        if self.affinity_timeout:
            self._affinity[client_ip] = (ep, time.monotonic())


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # half-close: the other direction may still be sending
    except (ConnectionError, OSError):
        writer.transport.abort()


class _TCPListener:
    def __init__(self, balancer: _Balancer, connect_timeout: float) -> None:
        self.balancer = balancer
        self.connect_timeout = connect_timeout
        self.server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._track, host, port, reuse_address=True, backlog=1024)
        return int(self.server.sockets[0].getsockname()[1])

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await self._handle(reader, writer)
        finally:
            self._conns.discard(task)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client_ip = str((writer.get_extra_info("peername") or ("",))[0])
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream = None
        for ep in self.balancer.candidates(client_ip):
            try:
                connecting = asyncio.open_connection(ep.ip, ep.port)
                upstream = await asyncio.wait_for(connecting, self.connect_timeout)
            except (TimeoutError, OSError) as e:
                log.debug("userspace proxy: endpoint %s:%d failed (%s); trying the next", ep.ip, ep.port, e)
                continue
            self.balancer.used(client_ip, ep)
            break
        if upstream is None:
            writer.transport.abort()  # a reset, as a refused connection would give
            return
        up_reader, up_writer = upstream
        up_sock = up_writer.get_extra_info("socket")
        if up_sock is not None:
            up_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for t in list(self._conns):
            t.cancel()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)


class _UDPSession(asyncio.DatagramProtocol):
    """One client's flow to one endpoint; answers go back out of the listener's socket."""

    def __init__(self, listener: _UDPListener, client: tuple[str, int]) -> None:
        self.listener = listener
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.last = time.monotonic()
        self.failed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        self.last = time.monotonic()
        if self.listener.transport is not None:
            self.listener.transport.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        self.failed = True  # ICMP unreachable: the next datagram picks another endpoint

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _UDPListener(asyncio.DatagramProtocol):
    def __init__(self, balancer: _Balancer, idle_timeout: float) -> None:
        self.balancer = balancer
        self.idle_timeout = idle_timeout
        self.transport: asyncio.DatagramTransport | None = None
        self.sessions: dict[tuple[str, int], _UDPSession] = {}
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port),
                                                           reuse_port=False)
        self._reaper = loop.create_task(self._reap())
        return int(transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        client = (str(addr[0]), int(addr[1]))
        session = self.sessions.get(client)
        if session is not None and not session.failed and session.transport is not None:
            session.last = time.monotonic()
            session.transport.sendto(data)
            return
        if client in self._pending:  # a session is being opened
            self._pending[client].append(data)
            return
        self._pending[client] = [data]
        task = asyncio.get_running_loop().create_task(self._open(client, session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, client: tuple[str, int], failed: _UDPSession | None) -> None:
        loop = asyncio.get_running_loop()
        candidates = self.balancer.candidates(client[0])
        if failed is not None:
            failed.close()
            # skip the endpoint that just failed, if there is another one
            if len(candidates) > 1 and failed.transport is not None:
                peer = failed.transport.get_extra_info("peername")
                candidates = [ep for ep in candidates if (ep.ip, ep.port) != tuple(peer or ())] or candidates
        for ep in candidates:
            try:
                _, proto = await loop.create_datagram_endpoint(lambda: _UDPSession(self, client),
                                                               remote_addr=(ep.ip, ep.port))
            except OSError:
                continue
            self.balancer.used(client[0], ep)
            self.sessions[client] = proto
            assert proto.transport is not None
            for data in self._pending.pop(client, []):
                proto.transport.sendto(data)
            return
        self._pending.pop(client, None)

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(max(0.5, self.idle_timeout / 4))
            now = time.monotonic()
            for client, s in list(self.sessions.items()):
                if now - s.last > self.idle_timeout:
                    s.close()
                    del self.sessions[client]

    async def close(self) -> None:
        for t in [*self._tasks, *([self._reaper] if self._reaper else [])]:
            t.cancel()
        for s in self.sessions.values():
            s.close()
        self.sessions.clear()
        if self.transport is not None:
            self.transport.close()


class UserspaceProxier:
    """The listeners of all service ports; `update()` returns service port key → local port."""

    def __init__(self, *, listen_address: str = "0.0.0.0", connect_timeout: float = 2.0,
                 udp_idle_timeout: float = 60.0) -> None:
        self.listen_address = listen_address
        self.connect_timeout = connect_timeout
        self.udp_idle_timeout = udp_idle_timeout
        # key → (listener, balancer, local port, what the listener was opened for)
        self._listeners: dict[str, tuple[_TCPListener | _UDPListener, _Balancer, int, tuple[str, int]]] = {}

    async def update(self, ports: Iterable[ServicePort]) -> dict[str, int]:
        wanted = {sp.key: sp for sp in ports}
        for key in [k for k, v in self._listeners.items()
                    if k not in wanted or v[3] != (wanted[k].protocol, wanted[k].node_port)]:
            await self._listeners.pop(key)[0].close()
        for key, sp in wanted.items():
            entry = self._listeners.get(key)
            if entry is None:
                balancer = _Balancer()
                listener: _TCPListener | _UDPListener
                if sp.protocol == "UDP":
                    listener = _UDPListener(balancer, self.udp_idle_timeout)
                else:
                    listener = _TCPListener(balancer, self.connect_timeout)
                try:
                    port = await listener.start(self.listen_address, sp.node_port)
                except OSError as e:
                    log.error("userspace proxy: cannot listen for %s on port %d: %s", key, sp.node_port, e)
                    continue
                entry = (listener, balancer, port, (sp.protocol, sp.node_port))
                self._listeners[key] = entry
            entry[1].update(sp)
        return {k: v[2] for k, v in self._listeners.items()}

    def udp_sessions(self) -> int:
        """Open UDP client sessions over all listeners."""
        return sum(len(v[0].sessions) for v in self._listeners.values() if isinstance(v[0], _UDPListener))

    async def close(self) -> None:
        for listener, *_ in self._listeners.values():
            await listener.close()
        self._listeners.clear()
