"""ClusterIP and NodePort allocation through the API, its repair from the store, and the `kubernetes`
service."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from pyk8s.api.catalog import lookup
from pyk8s.apiserver.app import API_SERVER, APIServerConfig, create_app
from pyk8s.apiserver.kubernetes_service import ensure_kubernetes_service
from pyk8s.apiserver.service_alloc import ServiceAllocator
from pyk8s.store.memory import MemoryStore
from tests.apiserver.conftest import Server, start_server

SVC = "/api/v1/namespaces/default/services"
SLICE = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes"
NET = ipaddress.ip_network("10.43.0.0/16")


def svc(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"port": 80}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


async def create(server: Server, name: str, **spec: Any) -> dict[str, Any]:
    code, body = await server.request("POST", SVC, svc(name, **spec))
    assert code == 201, body["message"] if code != 201 else ""
    out: dict[str, Any] = body
    return out


def message(body: Any) -> str:
    assert isinstance(body, dict) and body["kind"] == "Status", body
    return str(body["message"])


async def test_cluster_ip_is_allocated_from_the_service_cidr(server: Server) -> None:
    spec = (await create(server, "web"))["spec"]
    ip = ipaddress.ip_address(spec["clusterIP"])
    assert ip in NET
    assert str(ip) not in ("10.43.0.0", "10.43.0.1", "10.43.0.10")
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    code, got = await server.request("GET", f"{SVC}/web")
    assert code == 200 and got["spec"]["clusterIP"] == spec["clusterIP"]


async def test_requested_ip_taken_or_out_of_range_is_422(server: Server) -> None:
    assert (await create(server, "a", clusterIP="10.43.0.5"))["spec"]["clusterIPs"] == ["10.43.0.5"]
    code, body = await server.request("POST", SVC, svc("b", clusterIP="10.43.0.5"))
    assert code == 422
    assert body["reason"] == "Invalid"
    assert (
        'spec.clusterIPs: Invalid value: []string{"10.43.0.5"}: failed to allocate IP 10.43.0.5: '
        "provided IP is already allocated" in message(body)
    )
    code, body = await server.request("POST", SVC, svc("c", clusterIP="10.0.0.5"))
    assert code == 422
    assert "the provided IP (10.0.0.5) is not in the valid range. The range of valid IPs is 10.43.0.0/16" in (
        message(body)
    )
    # The DNS address is handed out when asked for by value.
    assert (await create(server, "dns", clusterIP="10.43.0.10"))["spec"]["clusterIP"] == "10.43.0.10"


async def test_node_ports(server: Server) -> None:
    ports = [{"name": "http", "port": 80}, {"name": "https", "port": 443}]
    spec = (await create(server, "np", type="NodePort", ports=ports))["spec"]
    got = [p["nodePort"] for p in spec["ports"]]
    assert len(set(got)) == 2 and all(30000 <= p <= 32767 for p in got)
    # One port number over TCP and UDP shares its node port (Kubernetes' initNodePorts).
    dns_ports = [{"name": "u", "port": 53, "protocol": "UDP"}, {"name": "t", "port": 53, "protocol": "TCP"}]
    spec = (await create(server, "dns", type="NodePort", ports=dns_ports))["spec"]
    assert spec["ports"][0]["nodePort"] == spec["ports"][1]["nodePort"]

    await create(server, "fixed", type="NodePort", ports=[{"port": 80, "nodePort": 30001}])
    code, body = await server.request(
        "POST", SVC, svc("again", type="NodePort", ports=[{"port": 80, "nodePort": 30001}])
    )
    assert code == 422
    assert "spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated" in message(body)
    code, body = await server.request(
        "POST", SVC, svc("far", type="NodePort", ports=[{"port": 80, "nodePort": 40000}])
    )
    assert code == 422
    assert (
        "spec.ports[0].nodePort: Invalid value: 40000: provided port is not in the valid range. "
        "The range of valid ports is 30000-32767" in message(body)
    )


async def test_release_on_delete_and_on_type_change(server: Server) -> None:
    await create(server, "a", type="NodePort", clusterIP="10.43.0.7", ports=[{"port": 80, "nodePort": 30002}])
    code, _ = await server.request("DELETE", f"{SVC}/a")
    assert code == 200
    spec = (await create(server, "b", type="NodePort", clusterIP="10.43.0.7",
                         ports=[{"port": 80, "nodePort": 30002}]))["spec"]  # fmt: skip
    assert spec["ports"][0]["nodePort"] == 30002

    # NodePort → ClusterIP gives the node port back; the address stays.
    put = {**svc("b", type="ClusterIP", ports=[{"port": 80}])}
    code, body = await server.request("PUT", f"{SVC}/b", put)
    assert code == 200, body
    assert body["spec"]["clusterIP"] == "10.43.0.7"  # kept although the PUT left it out
    assert "nodePort" not in body["spec"]["ports"][0]
    await create(server, "c", type="NodePort", ports=[{"port": 80, "nodePort": 30002}])

    # ClusterIP → ExternalName gives the address back.
    code, body = await server.request(
        "PUT", f"{SVC}/b", svc("b", type="ExternalName", externalName="example.com", ports=[])
    )
    assert code == 200, body
    assert "clusterIP" not in body["spec"] and "clusterIPs" not in body["spec"]
    await create(server, "d", clusterIP="10.43.0.7")


async def test_update_keeps_allocated_values(server: Server) -> None:
    first = (await create(server, "np", type="NodePort", ports=[{"name": "http", "port": 80}]))["spec"]
    changed = [{"name": "http", "port": 80, "targetPort": 8080}]
    code, body = await server.request("PUT", f"{SVC}/np", svc("np", type="NodePort", ports=changed))
    assert code == 200, body
    assert body["spec"]["clusterIP"] == first["clusterIP"]
    assert body["spec"]["ports"][0]["nodePort"] == first["ports"][0]["nodePort"]
    assert body["spec"]["ports"][0]["targetPort"] == 8080


async def test_headless_and_external_name_get_no_address(server: Server) -> None:
    spec = (await create(server, "h", clusterIP="None"))["spec"]
    assert spec["clusterIP"] == "None" and spec["clusterIPs"] == ["None"]
    spec = (await create(server, "e", type="ExternalName", externalName="example.com", ports=[]))["spec"]
    assert "clusterIP" not in spec


async def test_failed_writes_do_not_leak(server: Server) -> None:
    # Refused by validation after allocation: the address is free again.
    code, _ = await server.request("POST", SVC, svc("bad", clusterIP="10.43.0.8", selector={"a b": "c"}))
    assert code == 422
    await create(server, "x", clusterIP="10.43.0.8")
    # A name that exists: 409, and the requested address is not kept.
    code, _ = await server.request("POST", SVC, svc("x", clusterIP="10.43.0.9"))
    assert code == 409
    await create(server, "y", clusterIP="10.43.0.9")
    # A dry run shows an address but keeps nothing.
    code, body = await server.request("POST", SVC, svc("z", clusterIP="10.43.0.20"), dryRun="All")
    assert code == 201 and body["spec"]["clusterIP"] == "10.43.0.20"
    await create(server, "z", clusterIP="10.43.0.20")


async def test_fifty_at_once_get_distinct_addresses(server: Server) -> None:
    async def one(i: int) -> tuple[int, Any]:
        return await server.request("POST", SVC, svc(f"s{i}", type="NodePort"))

    results = await asyncio.gather(*(one(i) for i in range(50)))
    assert all(code == 201 for code, _ in results), [b for c, b in results if c != 201][:1]
    ips = {body["spec"]["clusterIP"] for _, body in results}
    ports = {body["spec"]["ports"][0]["nodePort"] for _, body in results}
    assert len(ips) == 50 and len(ports) == 50


async def test_repair_after_a_crash_rebuilds_from_the_store() -> None:
    store = MemoryStore()
    first, api = await start_server(APIServerConfig(store=store))
    info = lookup("", "v1", "services")
    assert info is not None
    await api.create_object(info, svc("a", clusterIP="10.43.0.5", type="NodePort",
                                      ports=[{"port": 80, "nodePort": 30005}]) | {"metadata": {
                                          "name": "a", "namespace": "default"}})  # fmt: skip
    await first.close()  # "crash": the allocator's memory is gone; the store stays

    app = create_app(APIServerConfig(store=store))  # the namespace is in the store already
    second = TestServer(app, host="127.0.0.1")
    await second.start_server()
    api2 = app[API_SERVER]
    try:
        url = str(second.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as session:
            server = Server(url, api2, store, session)
            code, body = await server.request("POST", SVC, svc("b", clusterIP="10.43.0.5"))
            assert code == 422 and "provided IP is already allocated" in message(body)
            code, body = await server.request(
                "POST", SVC, svc("c", type="NodePort", ports=[{"port": 80, "nodePort": 30005}])
            )
            assert code == 422 and "provided port is already allocated" in message(body)
            spec = (await create(server, "d"))["spec"]
            assert spec["clusterIP"] != "10.43.0.5"
            alloc = api2.registry.services
            assert alloc is not None
            held = {str(ipaddress.ip_address(n)) for n in alloc.ips.used}
            assert held == {"10.43.0.5", spec["clusterIP"]}
            assert alloc.ports.used == {30005}
    finally:
        await second.close()
        await store.close()


def test_automatic_picks_skip_the_kubernetes_and_dns_addresses() -> None:
    alloc = ServiceAllocator("10.99.0.0/28")  # usable .1-.14; .1 and .10 reserved
    got = set()
    for _ in range(12):
        n = alloc.ips.take_next()
        assert n is not None
        got.add(str(ipaddress.ip_address(n)))
    assert "10.99.0.1" not in got and "10.99.0.10" not in got and len(got) == 12
    assert alloc.ips.take_next() is None


async def test_kubernetes_service(server: Server) -> None:
    await ensure_kubernetes_service(server.api, "10.43.0.0/16", "127.0.0.1", 6443)
    code, body = await server.request("GET", f"{SVC}/kubernetes")
    assert code == 200
    assert body["spec"]["clusterIP"] == "10.43.0.1"
    assert body["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]
    assert "selector" not in body["spec"]
    rv = body["metadata"]["resourceVersion"]
    code, ep = await server.request("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
    assert code == 200
    assert ep["subsets"] == [{"addresses": [{"ip": "127.0.0.1"}],
                              "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]  # fmt: skip
    code, es = await server.request("GET", SLICE)
    assert code == 200
    assert es["endpoints"][0]["addresses"] == ["127.0.0.1"]
    assert es["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"

    # Again with the same address: nothing is written.
    await ensure_kubernetes_service(server.api, "10.43.0.0/16", "127.0.0.1", 6443)
    code, body = await server.request("GET", f"{SVC}/kubernetes")
    assert body["metadata"]["resourceVersion"] == rv
    # A new port after a restart: corrected.
    await ensure_kubernetes_service(server.api, "10.43.0.0/16", "127.0.0.2", 7443)
    code, body = await server.request("GET", f"{SVC}/kubernetes")
    assert body["spec"]["ports"][0]["targetPort"] == 7443 and body["spec"]["clusterIP"] == "10.43.0.1"
    code, ep = await server.request("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
    assert ep["subsets"][0]["addresses"] == [{"ip": "127.0.0.2"}]
    assert ep["subsets"][0]["ports"][0]["port"] == 7443
    code, es = await server.request("GET", SLICE)
    assert es["endpoints"][0]["addresses"] == ["127.0.0.2"] and es["ports"][0]["port"] == 7443
    # Nobody else gets the first address.
    code, body = await server.request("POST", SVC, svc("other", clusterIP="10.43.0.1"))
    assert code == 422


async def test_patching_the_type_drops_what_the_old_type_allocated(server: Server) -> None:
    ports = [{"port": 80, "nodePort": 30030}]
    await create(server, "p", type="NodePort", clusterIP="10.43.0.30", ports=ports)
    merge = {"Content-Type": "application/merge-patch+json"}
    async with server.session.patch(f"{server.url}{SVC}/p", json={"spec": {"type": "ClusterIP"}},
                                    headers=merge) as resp:  # fmt: skip
        body = await resp.json()
        assert resp.status == 200, body["message"]
    assert "nodePort" not in body["spec"]["ports"][0] and body["spec"]["clusterIP"] == "10.43.0.30"
    await create(server, "q", type="NodePort", ports=[{"port": 80, "nodePort": 30030}])
    patch = {"spec": {"type": "ExternalName", "externalName": "example.com"}}
    async with server.session.patch(f"{server.url}{SVC}/p", json=patch, headers=merge) as resp:
        body = await resp.json()
        assert resp.status == 200, body["message"]
    assert "clusterIP" not in body["spec"] and "ipFamilies" not in body["spec"]
    await create(server, "r", clusterIP="10.43.0.30")
    # An address set by hand on an ExternalName service is still refused.
    code, body = await server.request(
        "POST", SVC, svc("e", type="ExternalName", externalName="example.com", clusterIP="10.43.0.31")
    )
    assert code == 422 and "may not be set for ExternalName services" in message(body)
