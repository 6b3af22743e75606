"""Every test runs its node inside a network namespace of its own, so the bridge, the iptables rules and
the 10.88.x.0/24 test ranges never touch the machine's real network: the test's thread enters the
"node" netns, the CNI plugins it spawns inherit it, and deleting that netns takes everything with it."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import random
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from pyk8s.kubelet.network import PodNetwork

CNI_BIN = "/usr/lib/cni"

if os.geteuid() != 0 or not os.path.exists(os.path.join(CNI_BIN, "bridge")):
    pytest.skip("needs root and the reference CNI plugins", allow_module_level=True)

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


@dataclass
class Node:
    """The node's network namespace (entered by the test's thread) and helpers run inside it."""

    name: str
    cidr: str
    gateway: str
    bridge: str
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def run(self, *args: str, limit: float = 10.0) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), limit)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return proc.returncode or 0, out.decode()

    async def in_pod(self, netns_path: str, *args: str, limit: float = 10.0) -> tuple[int, str]:
        return await self.run("nsenter", f"--net={netns_path}", *args, limit=limit)

    async def serve_pong(self, netns_path: str, port: int) -> None:
        """A TCP server in the pod answering "pong" to every connection (killed at the test's end)."""
        proc = await asyncio.create_subprocess_exec(
            "nsenter", f"--net={netns_path}", "/bin/busybox", "nc", "-ll", "-p", str(port),
            "-e", "/bin/busybox", "echo", "pong",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        self.procs.append(proc)


async def tcp_read(host: str, port: int, deadline: float = 10.0) -> bytes:
    """Connect (retrying until the listener is up, within `deadline`) and read to EOF."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            if data:
                return data
        except OSError:
            pass
        if loop.time() > end:
            raise AssertionError(f"nothing answered on {host}:{port}")
        await asyncio.sleep(0.05)


async def in_pod_until_ok(node: Node, netns_path: str, *args: str, deadline: float = 10.0) -> str:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        rc, out = await node.in_pod(netns_path, *args)
        if rc == 0:
            return out
        if loop.time() > end:
            raise AssertionError(f"{args} failed in {netns_path}: {out}")
        await asyncio.sleep(0.05)


@pytest.fixture
def node() -> Iterator[Node]:
    suffix = secrets.token_hex(3)
    name = f"pyk8s-node-{suffix}"
    third = random.randint(1, 254)
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    n = Node(name=name, cidr=f"10.88.{third}.0/24", gateway=f"10.88.{third}.1", bridge=f"pk{suffix}")
    try:
        _setns(target)
        yield n
    finally:
        for proc in n.procs:
            if proc.returncode is None:
                proc.kill()
        _setns(home)
        os.close(home)
        os.close(target)
        ip("netns", "del", name)


@pytest.fixture
async def net(node: Node, tmp_path: str) -> AsyncIterator[PodNetwork]:
    state = os.path.join(str(tmp_path), "cni")
    network = PodNetwork(state, CNI_BIN, node.bridge)
    network.set_pod_cidr(node.cidr)
    try:
        yield network
    finally:
        for proc in node.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        network.cleanup_all()
        shutil.rmtree(state, ignore_errors=True)
