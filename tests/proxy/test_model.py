"""Service ports and endpoints from API objects, and the nft scripts that install them (no kernel needed)."""

from __future__ import annotations

from typing import Any

from pyk8s.proxy.model import DEFAULT_AFFINITY_TIMEOUT, Endpoint, build_service_ports, service_key_of_slice
from pyk8s.proxy.nft import NftTable, render


def svc(**spec: Any) -> dict[str, Any]:
    base = {"clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5"],
            "ports": [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}]}
    return {"metadata": {"namespace": "ns", "name": "web"}, "spec": {**base, **spec}}


def eps_slice(endpoints: list[dict[str, Any]], port: int = 8080, name: str = "http",
              address_type: str = "IPv4") -> dict[str, Any]:
    labels = {"kubernetes.io/service-name": "web"}
    return {"metadata": {"namespace": "ns", "name": "web-abc", "labels": labels},
            "addressType": address_type, "ports": [{"name": name, "port": port, "protocol": "TCP"}],
            "endpoints": endpoints}


def ep(ip: str, **conditions: bool) -> dict[str, Any]:
    return {"addresses": [ip], "conditions": conditions}


def test_ready_endpoints_with_the_slice_port_for_the_named_port() -> None:
    slices = [eps_slice([ep("10.42.0.2", ready=True), ep("10.42.0.3"), ep("10.42.0.4", ready=False)])]
    [sp] = build_service_ports(svc(), slices)
    assert sp.key == "ns/web:http/tcp"
    assert sp.endpoints == (Endpoint("10.42.0.2", 8080), Endpoint("10.42.0.3", 8080))  # unset = ready
    assert sp.cluster_ips == ("10.43.0.5",) and sp.port == 80 and sp.node_port == 0


def test_terminating_serving_endpoints_only_when_none_is_ready() -> None:
    draining = ep("10.42.0.7", ready=False, serving=True, terminating=True)
    gone = ep("10.42.0.8", ready=False, serving=False, terminating=True)
    [sp] = build_service_ports(svc(), [eps_slice([draining, gone])])
    assert sp.endpoints == (Endpoint("10.42.0.7", 8080),)
    [sp] = build_service_ports(svc(), [eps_slice([draining, ep("10.42.0.9")])])
    assert sp.endpoints == (Endpoint("10.42.0.9", 8080),)


def test_other_ports_families_and_duplicates_ignored() -> None:
    slices = [eps_slice([ep("10.42.0.2")], name="metrics"), eps_slice([ep("fd00::1")], address_type="IPv6"),
              eps_slice([ep("10.42.0.3")]), eps_slice([ep("10.42.0.3")])]
    [sp] = build_service_ports(svc(), slices)
    assert sp.endpoints == (Endpoint("10.42.0.3", 8080),)


def test_headless_external_name_node_port_and_affinity() -> None:
    assert build_service_ports(svc(clusterIP="None", clusterIPs=["None"]), []) == []
    assert build_service_ports(svc(type="ExternalName", externalName="example.com"), []) == []
    ports = [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 53, "protocol": "UDP"}]
    a, b = build_service_ports(svc(type="NodePort", ports=ports, sessionAffinity="ClientIP"), [])
    assert (a.node_port, a.protocol, a.affinity_timeout) == (30080, "TCP", DEFAULT_AFFINITY_TIMEOUT)
    assert (b.node_port, b.protocol, b.endpoints) == (0, "UDP", ())
    # a ClusterIP service's nodePort field is not served
    [c] = build_service_ports(svc(ports=[{"name": "a", "port": 80, "nodePort": 30080}]), [])
    assert c.node_port == 0


def test_service_key_of_slice() -> None:
    assert service_key_of_slice(eps_slice([])) == "ns/web"
    assert service_key_of_slice({"metadata": {"namespace": "ns", "name": "x"}}) is None


def test_nft_scripts_rewrite_only_what_changed() -> None:
    table = NftTable("t")
    both = [eps_slice([ep("10.42.0.2"), ep("10.42.0.3")])]
    one = build_service_ports(svc(sessionAffinity="ClientIP"), both)
    rs = render(one, cluster_cidr="10.42.0.0/16")
    first = table.script(rs)
    assert first.startswith("add table ip t\ndelete table ip t\ntable ip t {")
    assert "numgen random mod 2 vmap" in first and "dnat to 10.42.0.3:8080" in first
    assert "10.43.0.5 . tcp . 80 : goto svc-" in first and "flags dynamic,timeout; timeout 10800s" in first
    table._applied = rs  # as after a successful sync
    assert table.script(rs).strip() == ""
    # one endpoint removed: the service chain rewritten, the old endpoint's chain and set deleted
    fewer = render(build_service_ports(svc(sessionAffinity="ClientIP"), [eps_slice([ep("10.42.0.2")])]),
                   cluster_cidr="10.42.0.0/16")
    diff = table.script(fewer)
    assert "delete table" not in diff and "flush map" not in diff
    assert diff.count("delete chain") == 1 and diff.count("delete set") == 1
    table._applied = fewer
    # no endpoints: the ClusterIP goes to the reject map
    none = render(build_service_ports(svc(), []), cluster_cidr=None)
    diff = table.script(none)
    assert "add element ip t no-endpoint-services { 10.43.0.5 . tcp . 80 : goto reject-chain }" in diff
    assert "flush map ip t service-ips" in diff
