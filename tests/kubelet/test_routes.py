"""Cross-node pod routes with two nodes played by network namespaces.

Node A and node B are namespaces joined by a veth pair (the node link); each has a bridge on its pod
CIDR with one "pod" namespace behind it. A NodeRoutes per node, told to run its `ip` commands in its
node's namespace, must make a pod on A reach a pod on B by IP, leave routes it did not make alone, and
remove a route when its node goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pyk8s.api import catalog
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.kubelet.routes import ROUTE_PROTOCOL, NodeRoutes, desired_routes
from tests.support.apiserver import Server, start_server
from tests.support.poll import eventually

NODES = catalog.lookup("", "v1", "nodes")
assert NODES is not None

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=20)


@dataclass
class Topology:
    node_ns: dict[str, str]  # node name → its namespace
    pod_ns: dict[str, str]
    node_ip: dict[str, str]
    pod_ip: dict[str, str]
    pod_cidr: dict[str, str]
    pod_gateway: dict[str, str]  # the bridge's address
    foreign_dst: str  # a route another program made in node A


@contextlib.contextmanager
def topology() -> Iterator[Topology]:
    tag = secrets.token_hex(3)
    r = random.randint(1, 254)
    names = {n: f"pk{tag}{n}" for n in ("A", "B", "pA", "pB")}
    topo = Topology(
        node_ns={"a": names["A"], "b": names["B"]},
        pod_ns={"a": names["pA"], "b": names["pB"]},
        node_ip={"a": f"10.98.{r}.1", "b": f"10.98.{r}.2"},
        pod_ip={"a": f"10.99.{r}.2", "b": f"10.99.{r}.130"},
        pod_cidr={"a": f"10.99.{r}.0/25", "b": f"10.99.{r}.128/25"},
        pod_gateway={"a": f"10.99.{r}.1", "b": f"10.99.{r}.129"},
        foreign_dst=f"10.97.{r}.0/24",
    )
    try:
        for ns in names.values():
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        # The node link.
        sh("ip", "-n", names["A"], "link", "add", "eth0", "type", "veth", "peer", "eth0", "netns", names["B"])
        for node in ("a", "b"):
            ns, pod = topo.node_ns[node], topo.pod_ns[node]
            sh("ip", "-n", ns, "addr", "add", f"{topo.node_ip[node]}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            gateway = topo.pod_gateway[node]
            prefix = topo.pod_cidr[node].split("/")[1]
            sh("ip", "-n", ns, "link", "add", "cbr0", "type", "bridge")
            sh("ip", "-n", ns, "addr", "add", f"{gateway}/{prefix}", "dev", "cbr0")
            sh("ip", "-n", ns, "link", "set", "cbr0", "up")
            sh("ip", "-n", ns, "link", "add", "veth0", "type", "veth", "peer", "eth0", "netns", pod)
            sh("ip", "-n", ns, "link", "set", "veth0", "master", "cbr0", "up")
            sh("ip", "-n", pod, "addr", "add", f"{topo.pod_ip[node]}/{prefix}", "dev", "eth0")
            sh("ip", "-n", pod, "link", "set", "eth0", "up")
            sh("ip", "-n", pod, "route", "add", "default", "via", gateway)
        # Someone else's route in node A, through node B: it must survive everything.
        via = topo.node_ip["b"]
        sh("ip", "-n", names["A"], "route", "add", topo.foreign_dst, "via", via, "proto", "static")
        yield topo
    finally:
        for ns in names.values():
            sh("ip", "netns", "del", ns, check=False)


def node(name: str, cidr: str, ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                 {"type": "Hostname", "address": name}]},
    }


def routes(ns: str) -> str:
    return sh("ip", "-n", ns, "route", "show").stdout


def reaches(topo: Topology, src: str, dst: str) -> bool:
    ping = sh("ip", "netns", "exec", topo.pod_ns[src], "busybox", "ping", "-c1", "-W1", topo.pod_ip[dst],
              check=False)
    return ping.returncode == 0


@pytest.fixture
async def api() -> AsyncIterator[tuple[Server, Client]]:
    srv = await start_server(bookmark_interval=0.2)
    client = Client(HTTPTransport(srv.url))
    yield srv, client
    await client.close()
    await srv.stop()
    await srv.store.close()


def test_desired_routes_skip_own_node_and_incomplete_nodes() -> None:
    nodes = [
        node("a", "10.42.0.0/24", "192.0.2.1"),
        node("b", "10.42.1.0/24", "192.0.2.2"),
        {"metadata": {"name": "c"}, "spec": {"podCIDR": "10.42.2.0/24"}},  # no address yet
        {"metadata": {"name": "d"},  # no pod CIDR yet
         "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.4"}]}},
    ]
    assert desired_routes(nodes, "a") == {"10.42.1.0/24": "192.0.2.2"}


def test_desired_routes_skip_hollow_nodes() -> None:
    # Hollow nodes carry no traffic; a route through their made-up addresses would blackhole a /24.
    hollow = node("hollow-0", "10.42.3.0/24", "192.0.2.3")
    hollow["metadata"]["labels"] = {"type": "hollow"}
    assert desired_routes([node("a", "10.42.0.0/24", "192.0.2.1"), hollow], "a") == {}


async def test_pod_on_node_a_reaches_pod_on_node_b(api: tuple[Server, Client]) -> None:
    _, client = api
    with topology() as topo:
        assert not reaches(topo, "a", "b")  # no routes yet: B's pod CIDR is unknown in A
        for n in ("a", "b"):
            await client.create(NODES, node(n, topo.pod_cidr[n], topo.node_ip[n]))
        agents = {n: NodeRoutes(client, n, netns=topo.node_ns[n]) for n in ("a", "b")}
        tasks = [asyncio.create_task(agent.run()) for agent in agents.values()]
        try:
            want_a = f"{topo.pod_cidr['b']} via {topo.node_ip['b']} dev eth0 proto {ROUTE_PROTOCOL}"
            await eventually(lambda: want_a in routes(topo.node_ns["a"]), 10, "A's route to B's pods")
            want_b = f"{topo.pod_cidr['a']} via {topo.node_ip['a']} dev eth0 proto {ROUTE_PROTOCOL}"
            await eventually(lambda: want_b in routes(topo.node_ns["b"]), 10, "B's route to A's pods")
            assert reaches(topo, "a", "b") and reaches(topo, "b", "a")

            # TCP too: a listener in B's pod answers A's pod.
            listen = ("busybox", "nc", "-ll", "-p", "8080", "-e", "echo", "hi")
            server = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", topo.pod_ns["b"], *listen,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            try:
                def answered() -> bool:
                    out = sh("ip", "netns", "exec", topo.pod_ns["a"], "busybox", "nc", "-w", "1",
                             topo.pod_ip["b"], "8080", check=False)
                    return "hi" in out.stdout

                await eventually(answered, 10, "the TCP answer from B's pod")
            finally:
                with contextlib.suppress(ProcessLookupError):
                    server.kill()
                await server.wait()

            # A route of ours that went wrong is corrected at the next sync (here: a change of node B).
            wrong = topo.node_ip["b"].rsplit(".", 1)[0] + ".3"
            sh("ip", "-n", topo.node_ns["a"], "route", "replace", topo.pod_cidr["b"], "via", wrong,
               "proto", str(ROUTE_PROTOCOL))
            assert not reaches(topo, "a", "b")
            await client.patch(NODES, "b", {"metadata": {"labels": {"touched": "yes"}}})
            await eventually(lambda: want_a in routes(topo.node_ns["a"]), 10, "the route corrected")
            assert reaches(topo, "a", "b")

            # The node going removes its route.
            await client.delete(NODES, "b")
            gone = lambda: topo.pod_cidr["b"] not in routes(topo.node_ns["a"])  # noqa: E731
            await eventually(gone, 10, "A's route removed")
            assert not reaches(topo, "a", "b")
            # Routes of other programs stay.
            assert topo.foreign_dst in routes(topo.node_ns["a"])
            assert topo.pod_cidr["a"] in routes(topo.node_ns["a"])  # A's own bridge route

            # Cleanup removes only ours.
            await client.create(NODES, node("b", topo.pod_cidr["b"], topo.node_ip["b"]))
            await eventually(lambda: topo.pod_cidr["b"] in routes(topo.node_ns["a"]), 10, "the route back")
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        await agents["a"].cleanup()
        assert topo.pod_cidr["b"] not in routes(topo.node_ns["a"])
        assert topo.foreign_dst in routes(topo.node_ns["a"])
