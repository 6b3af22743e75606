"""A test topology in network namespaces: a "node" with a bridge, "pods" on it, and helpers that run
code inside a namespace (a thread that entered it with setns), so nothing touches the host's network."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.proxy import ServiceProxy

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

# An HTTP server (answers its pod's name) and a UDP echo (answers NAME:DATA), run inside a pod's netns.
BACKEND = r"""
import socket, sys, threading
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
name = sys.argv[1].encode()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *a):
        pass
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 9053))
    while True:
        data, addr = s.recvfrom(2048)
        s.sendto(name + b":" + data, addr)
threading.Thread(target=udp, daemon=True).start()
ThreadingHTTPServer.request_queue_size = 1024
ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""


def sh(*args: str, check: bool = True) -> str:
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


def enter(ns: str) -> None:
    """Move the calling thread into network namespace `ns`."""
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


class InNetns:
    """Runs blocking functions in a thread that lives in a network namespace."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self._pool = ThreadPoolExecutor(1, initializer=enter, initargs=(ns,))

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._pool.submit(fn, *args).result()

    async def acall(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._pool.submit(fn, *args))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def http_get(ip: str, port: int, timeout: float = 3.0) -> str:
    """One HTTP/1.0 GET on a new connection; the response body."""
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], head
    return body.decode()


def udp_query(ip: str, port: int, data: bytes, timeout: float = 3.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((ip, port))
        s.send(data)
        return s.recv(2048)


@dataclass
class Topology:
    prefix: str
    subnet: str  # "10.99.N"
    node: str
    pods: dict[str, str] = field(default_factory=dict)  # pod name → netns
    ips: dict[str, str] = field(default_factory=dict)  # pod name → IP
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def node_ip(self) -> str:
        return f"{self.subnet}.1"

    @property
    def cidr(self) -> str:
        return f"{self.subnet}.0/24"

    def nft(self, *args: str, check: bool = True) -> str:
        return sh("ip", "netns", "exec", self.node, "nft", *args, check=check)


def _add_pod(topo: Topology, name: str, index: int) -> None:
    ns = f"{topo.prefix}-{name}"
    sh("ip", "netns", "add", ns)
    topo.pods[name] = ns
    ip = f"{topo.subnet}.{10 + index}"
    topo.ips[name] = ip
    sh("ip", "-n", topo.node, "link", "add", f"v{name}", "type", "veth", "peer", "name", "eth0", "netns", ns)
    sh("ip", "-n", topo.node, "link", "set", f"v{name}", "master", "br0", "up")
    # As the CNI bridge plugin's hairpinMode (the kubelet sets it): with bridge netfilter, a pod's packet
    # DNATed back to itself leaves through the port it came in by.
    sh("ip", "-n", topo.node, "link", "set", f"v{name}", "type", "bridge_slave", "hairpin", "on")
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "eth0", "up")
    sh("ip", "-n", ns, "route", "add", "default", "via", topo.node_ip)


def wait_listening(ns: InNetns, ip: str, port: int, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            ns.call(http_get, ip, port, 1.0)
            return
        except (OSError, AssertionError):
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def topology(backends: tuple[str, ...] = ("a", "b"),
             clients: tuple[str, ...] = ("client",)) -> Iterator[Topology]:
    """A node netns with bridge br0 (the node IP) and a default route, backend pods serving HTTP on 8080
    and UDP on 9053, client pods; all removed afterwards, even on failure."""
    prefix = f"pkp{secrets.token_hex(3)}"
    topo = Topology(prefix, f"10.99.{secrets.randbelow(250) + 1}", f"{prefix}-node")
    try:
        sh("ip", "netns", "add", topo.node)
        n = topo.node
        sh("ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "-n", n, "link", "set", "lo", "up")
        sh("ip", "-n", n, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", n, "addr", "add", f"{topo.node_ip}/24", "dev", "br0")
        sh("ip", "-n", n, "link", "set", "br0", "up")
        # A default route, as a real node has: service IPs without endpoints must reach the filter hooks.
        sh("ip", "-n", n, "link", "add", "uplink", "type", "veth", "peer", "name", "uplink-peer")
        sh("ip", "-n", n, "link", "set", "uplink-peer", "up")
        sh("ip", "-n", n, "addr", "add", "192.0.2.1/24", "dev", "uplink")
        sh("ip", "-n", n, "link", "set", "uplink", "up")
        sh("ip", "-n", n, "route", "add", "default", "via", "192.0.2.254")
        for i, name in enumerate(backends + clients):
            _add_pod(topo, name, i)
        for name in backends:
            topo.procs.append(subprocess.Popen(
                ["ip", "netns", "exec", topo.pods[name], sys.executable, "-c", BACKEND, name],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        node = InNetns(topo.node)
        try:
            for name in backends:
                wait_listening(node, topo.ips[name], 8080)
        finally:
            node.close()
        yield topo
    finally:
        for p in topo.procs:
            p.kill()
            p.wait()
        for ns in [*topo.pods.values(), topo.node]:
            sh("ip", "netns", "del", ns, check=False)


class ProxyThread:
    """A ServiceProxy running in its own thread and event loop inside the node's netns, talking to the
    API server over a Unix socket (which works across network namespaces)."""

    def __init__(self, topo: Topology, socket_path: str, *, cleanup: bool = True, **options: Any) -> None:
        self.topo = topo
        self.cleanup = cleanup
        self.socket_path = socket_path
        self.options = options
        self.proxy: ServiceProxy | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> ServiceProxy:
        self._thread.start()
        assert self._ready.wait(10), "proxy thread did not start"
        if self.error:
            raise self.error
        assert self.proxy is not None
        return self.proxy

    def _main(self) -> None:
        try:
            enter(self.topo.node)
            asyncio.run(self._amain())
        except BaseException as e:  # reported to the test
            self.error = e
            self._ready.set()

    async def _amain(self) -> None:
        client = Client(HTTPTransport("http://localhost", unix_socket=self.socket_path))
        self.proxy = ServiceProxy(client, node_name="node",
                                  table=f"{self.topo.prefix}", cluster_cidr=self.topo.cidr,
                                  nft=["ip", "netns", "exec", self.topo.node, "nft"], **self.options)
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self.proxy.run())
        self._ready.set()
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        finally:
            if self.cleanup:
                await self.proxy.cleanup()
            await client.close()

    def stop(self) -> None:
        if self._loop is not None and self._task is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(15)
