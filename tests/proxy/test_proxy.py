"""The service proxy in both modes, with real traffic between network namespaces.

Topology (tests/proxy/netns.py): a node netns with a bridge; backend pods "a" and "b" (HTTP on 8080
answering their name, UDP echo on 9053); a client pod. The proxy runs inside the node netns; Services and
EndpointSlices are created in a real API server that it watches over a Unix socket.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from pyk8s.api.catalog import lookup
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.proxy import ServiceProxy
from tests.proxy.netns import InNetns, ProxyThread, Topology, http_get, topology, udp_query
from tests.support.apiserver import start_server

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")

SERVICES = lookup("", "v1", "services")
SLICES = lookup("discovery.k8s.io", "v1", "endpointslices")
assert SERVICES is not None and SLICES is not None


@pytest.fixture(scope="module")
def topo() -> Iterator[Topology]:
    with topology() as t:
        yield t


class Env:
    def __init__(self, topo: Topology, client: Client, proxy: ServiceProxy, thread: ProxyThread) -> None:
        self.topo = topo
        self.client = client
        self.proxy = proxy
        self.thread = thread
        self.client_ns = InNetns(topo.pods["client"])
        self.node_ns = InNetns(topo.node)

    async def service(self, name: str, ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
        obj = {"metadata": {"name": name, "namespace": "default"},
               "spec": {"ports": ports, "selector": {"app": name}, **spec}}
        assert SERVICES is not None
        return await self.client.create(SERVICES, obj, "default")

    async def endpoints(self, service: str, pods: list[str], ports: list[dict[str, Any]],
                        ready: dict[str, bool] | None = None) -> dict[str, Any]:
        """Create or replace the service's one EndpointSlice."""
        obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": f"{service}-x", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": service}},
               "addressType": "IPv4", "ports": ports,
               "endpoints": [{"addresses": [self.topo.ips[p]],
                              "conditions": {"ready": (ready or {}).get(p, True)}} for p in pods]}
        assert SLICES is not None
        try:
            old = await self.client.get(SLICES, f"{service}-x", "default")
        except Exception:
            return await self.client.create(SLICES, obj, "default")
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        return await self.client.update(SLICES, obj, "default")

    async def applied(self, service: str, endpoints: int | None = None, deadline: float = 5.0) -> float:
        """Wait until the proxy has the service's ports in place (with that many endpoints); seconds."""
        start = time.monotonic()
        while True:
            ports = [sp for k, sp in self.proxy.applied.items() if k.startswith(f"default/{service}:")]
            if ports and (endpoints is None or all(len(sp.endpoints) == endpoints for sp in ports)):
                return time.monotonic() - start
            assert time.monotonic() - start < deadline, f"service {service} not applied: {ports}"
            await asyncio.sleep(0.01)

    async def get(self, ip: str, port: int, ns: InNetns | None = None) -> str:
        return await (ns or self.client_ns).acall(http_get, ip, port)


@pytest.fixture(params=["nftables", "userspace"])
async def env(request: pytest.FixtureRequest, topo: Topology) -> AsyncIterator[Env]:
    server = await start_server()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "api.sock")
        site = web.UnixSite(server.test_server.runner, path)  # type: ignore[arg-type]
        await site.start()
        client = Client(HTTPTransport(server.url))
        thread = ProxyThread(topo, path, mode=request.param)
        proxy = thread.start()
        e = Env(topo, client, proxy, thread)
        try:
            yield e
        finally:
            await asyncio.to_thread(e.thread.stop)
            e.client_ns.close()
            e.node_ns.close()
            await client.close()
            await server.stop()
            leftover = topo.prefix in topo.nft("list", "tables").split()
            if leftover:  # removed even when the test failed, then reported
                topo.nft("delete", "table", "ip", topo.prefix, check=False)
    assert not leftover, "the proxy's table was left behind"


HTTP = [{"name": "http", "port": 80, "targetPort": 8080}]
SLICE_HTTP = [{"name": "http", "port": 8080, "protocol": "TCP"}]


async def test_cluster_ip_spreads_over_ready_endpoints(env: Env) -> None:
    svc = await env.service("web", HTTP)
    await env.endpoints("web", ["a", "b"], SLICE_HTTP)
    await env.applied("web", 2)
    ip = svc["spec"]["clusterIP"]
    answers = [await env.get(ip, 80) for _ in range(20)]
    assert set(answers) == {"a", "b"}, answers
    # from the node itself (the output hook / the node's own listener)
    assert {await env.get(ip, 80, env.node_ns) for _ in range(10)} <= {"a", "b"}


async def test_unready_endpoint_gets_no_traffic_and_removal_is_followed(env: Env) -> None:
    svc = await env.service("web", HTTP)
    await env.endpoints("web", ["a", "b"], SLICE_HTTP, ready={"b": False})
    await env.applied("web", 1)
    ip = svc["spec"]["clusterIP"]
    assert {await env.get(ip, 80) for _ in range(10)} == {"a"}
    await env.endpoints("web", ["a", "b"], SLICE_HTTP)
    await env.applied("web", 2)
    started = time.monotonic()
    await env.endpoints("web", ["b"], SLICE_HTTP)
    took = await env.applied("web", 1)
    assert took < 1.0 and time.monotonic() - started < 1.0
    assert {await env.get(ip, 80) for _ in range(10)} == {"b"}


async def test_node_port_answers_on_the_node_ip(env: Env) -> None:
    svc = await env.service("np", HTTP, type="NodePort")
    node_port = svc["spec"]["ports"][0]["nodePort"]
    await env.endpoints("np", ["a", "b"], SLICE_HTTP)
    await env.applied("np", 2)
    answers = {await env.get(env.topo.node_ip, node_port) for _ in range(20)}
    assert answers == {"a", "b"}
    # and from the node itself
    assert {await env.get(env.topo.node_ip, node_port, env.node_ns) for _ in range(10)} <= {"a", "b"}


async def test_service_without_endpoints_is_refused_at_once(env: Env) -> None:
    svc = await env.service("empty", HTTP, type="NodePort")
    await env.applied("empty", 0)
    for ip, port in ((svc["spec"]["clusterIP"], 80), (env.topo.node_ip, svc["spec"]["ports"][0]["nodePort"])):
        started = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            await env.get(ip, port)
        assert time.monotonic() - started < 1.0


async def test_udp(env: Env) -> None:
    svc = await env.service("dns", [{"name": "dns", "port": 53, "targetPort": 9053, "protocol": "UDP"}])
    await env.endpoints("dns", ["a", "b"], [{"name": "dns", "port": 9053, "protocol": "UDP"}])
    await env.applied("dns", 2)
    ip = svc["spec"]["clusterIP"]
    answers = [await env.client_ns.acall(udp_query, ip, 53, b"ping") for _ in range(20)]
    assert set(answers) == {b"a:ping", b"b:ping"}, answers


async def test_userspace_skips_an_endpoint_that_refuses(env: Env) -> None:
    if env.proxy.mode != "userspace":
        pytest.skip("the kernel's DNAT cannot retry another endpoint (as in Kubernetes' nftables mode)")
    svc = await env.service("half", HTTP)
    await env.endpoints("half", ["a", "client"], SLICE_HTTP)  # nothing listens on the client pod
    await env.applied("half", 2)
    assert {await env.get(svc["spec"]["clusterIP"], 80) for _ in range(10)} == {"a"}


async def test_session_affinity_client_ip(env: Env) -> None:
    svc = await env.service("sticky", HTTP, sessionAffinity="ClientIP")
    await env.endpoints("sticky", ["a", "b"], SLICE_HTTP)
    await env.applied("sticky", 2)
    ip = svc["spec"]["clusterIP"]
    first = {await env.get(ip, 80) for _ in range(10)}
    assert len(first) == 1
    # a sync for another service keeps the affinity state
    syncs = env.proxy.syncs
    await env.service("other", HTTP)
    await env.endpoints("other", ["a"], SLICE_HTTP)
    await env.applied("other", 1)
    assert env.proxy.syncs > syncs
    assert {await env.get(ip, 80) for _ in range(10)} == first


async def test_userspace_udp_sessions_end_when_idle(topo: Topology) -> None:
    server = await start_server()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "api.sock")
        await web.UnixSite(server.test_server.runner, path).start()  # type: ignore[arg-type]
        client = Client(HTTPTransport(server.url))
        thread = ProxyThread(topo, path, mode="userspace", udp_idle_timeout=0.5)
        e = Env(topo, client, thread.start(), thread)
        try:
            svc = await e.service("dns", [{"name": "dns", "port": 53, "targetPort": 9053, "protocol": "UDP"}])
            await e.endpoints("dns", ["a"], [{"name": "dns", "port": 9053, "protocol": "UDP"}])
            await e.applied("dns", 1)
            assert await e.client_ns.acall(udp_query, svc["spec"]["clusterIP"], 53, b"x") == b"a:x"
            assert e.proxy.userspace is not None
            assert e.proxy.userspace.udp_sessions() == 1
            deadline = time.monotonic() + 10
            while e.proxy.userspace.udp_sessions():
                assert time.monotonic() < deadline, "idle UDP session kept"
                await asyncio.sleep(0.05)
        finally:
            await asyncio.to_thread(thread.stop)
            e.client_ns.close()
            e.node_ns.close()
            await client.close()
            await server.stop()


async def test_hairpin_a_pod_reaches_itself_through_its_service(env: Env) -> None:
    svc = await env.service("self", HTTP)
    await env.endpoints("self", ["a"], SLICE_HTTP)
    await env.applied("self", 1)
    pod_a = InNetns(env.topo.pods["a"])
    try:
        assert await env.get(svc["spec"]["clusterIP"], 80, pod_a) == "a"
    finally:
        pod_a.close()


async def test_service_deleted_rules_removed_and_other_tables_left_alone(env: Env) -> None:
    topo = env.topo
    other = f"{topo.prefix}o"
    topo.nft("add", "table", "ip", other)
    topo.nft("add", "chain", "ip", other, "c")
    topo.nft("add", "rule", "ip", other, "c", "tcp", "dport", "1234", "counter", "accept")
    try:
        svc = await env.service("gone", HTTP)
        await env.endpoints("gone", ["a"], SLICE_HTTP)
        await env.applied("gone", 1)
        ip = svc["spec"]["clusterIP"]
        assert ip in topo.nft("list", "map", "ip", topo.prefix, "service-ips")
        assert SERVICES is not None
        await env.client.delete(SERVICES, "gone", "default")
        deadline = time.monotonic() + 5
        while "default/gone:http/tcp" in env.proxy.applied:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert ip not in topo.nft("list", "map", "ip", topo.prefix, "service-ips")
        await asyncio.to_thread(env.thread.stop)
        tables = topo.nft("list", "tables")
        assert topo.prefix not in tables.split() and f"table ip {other}" in tables
        assert "dport 1234" in topo.nft("list", "table", "ip", other)
    finally:
        topo.nft("delete", "table", "ip", other, check=False)



async def test_a_restarted_proxy_takes_over_its_table(env: Env) -> None:
    old = await env.service("before", HTTP)
    await env.endpoints("before", ["a"], SLICE_HTTP)
    await env.applied("before", 1)
    env.thread.cleanup = False
    await asyncio.to_thread(env.thread.stop)
    if env.proxy.mode == "nftables":  # the kernel's rules keep serving while no proxy runs
        assert await env.get(old["spec"]["clusterIP"], 80) == "a"
    assert SERVICES is not None
    await env.client.delete(SERVICES, "before", "default")
    new = await env.service("after", HTTP)
    await env.endpoints("after", ["b"], SLICE_HTTP)
    thread = ProxyThread(env.topo, env.thread.socket_path, mode=env.proxy.mode)
    env.proxy, env.thread = thread.start(), thread  # the fixture stops (and cleans up) this one
    await env.applied("after", 1)
    assert await env.get(new["spec"]["clusterIP"], 80) == "b"
    assert "default/before:http/tcp" not in env.proxy.applied
    assert old["spec"]["clusterIP"] not in env.topo.nft("list", "table", "ip", env.topo.prefix)
