"""The parts that need no server: the index and zone fed with objects directly, resolv.conf, upstreams."""

from __future__ import annotations

from pathlib import Path

import pytest
from dnslib import RCODE, DNSRecord

from pyk8s.dns.forward import parse_upstream, read_resolv_conf
from pyk8s.dns.records import ServiceIndex, dashed, undashed
from pyk8s.dns.zone import ClusterZone


def ask(zone: ClusterZone, name: str, qtype: str = "A") -> DNSRecord:
    request = DNSRecord.question(name, qtype)
    labels = tuple(name.lower().rstrip(".").split("."))
    answer = zone.answer(request, labels)
    assert answer is not None
    return answer.reply


def test_dual_stack_service_answers_a_and_aaaa() -> None:
    # The API server here allocates from one IPv4 range only, so a dual-stack service is fed directly.
    index = ServiceIndex("Cluster.Local.")
    index.set_namespace({"metadata": {"name": "ns"}})
    index.set_service({"metadata": {"name": "ds", "namespace": "ns"}, "spec": {
        "clusterIP": "10.43.0.7", "clusterIPs": ["10.43.0.7", "fd00:43::7"], "ipFamilies": ["IPv4", "IPv6"],
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}})
    zone = ClusterZone(index, ttl=7)
    zone.synced = True
    a = ask(zone, "ds.ns.svc.cluster.local")
    assert [str(rr.rdata) for rr in a.rr] == ["10.43.0.7"] and a.rr[0].ttl == 7
    assert [str(rr.rdata) for rr in ask(zone, "ds.ns.svc.cluster.local", "AAAA").rr] == ["fd00:43::7"]
    srv = ask(zone, "_dns._udp.ds.ns.svc.cluster.local", "SRV")
    assert [rr.rdata.port for rr in srv.rr] == [53]
    assert sorted(str(rr.rdata) for rr in srv.ar) == ["10.43.0.7", "fd00:43::7"]
    assert ask(zone, "_dns._tcp.ds.ns.svc.cluster.local", "SRV").header.rcode == RCODE.NXDOMAIN
    index.delete_service({"metadata": {"name": "ds", "namespace": "ns"}})
    assert ask(zone, "ds.ns.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    assert zone.answer(DNSRecord.question("7.0.43.10.in-addr.arpa", "PTR"),
                       ("7", "0", "43", "10", "in-addr", "arpa")) is None  # forgotten: not ours any more


def test_a_slice_moving_to_another_service() -> None:
    index = ServiceIndex("cluster.local")
    for name in ("a", "b"):
        index.set_service({"metadata": {"name": name, "namespace": "ns"}, "spec": {"clusterIP": "None"}})
    eps = {"metadata": {"name": "s", "namespace": "ns", "labels": {"kubernetes.io/service-name": "a"}},
           "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]}
    index.set_slice(eps)
    assert [e.ip for e in index.service("ns", "a").endpoints] == ["10.0.0.1"]  # type: ignore[union-attr]
    eps["metadata"]["labels"]["kubernetes.io/service-name"] = "b"
    index.set_slice(eps)
    assert index.service("ns", "a").endpoints == []  # type: ignore[union-attr]
    assert [e.ip for e in index.service("ns", "b").endpoints] == ["10.0.0.1"]  # type: ignore[union-attr]
    assert index.ptr("10.0.0.1") == ["10-0-0-1.b.ns.svc.cluster.local."]


def test_dashed_names() -> None:
    assert dashed("10.1.2.3") == "10-1-2-3" and undashed("10-1-2-3") == "10.1.2.3"
    assert dashed("fd00::1") == "fd00--1" and undashed("fd00--1") == "fd00::1"
    assert undashed("web") is None and undashed("1-2-3") is None


def test_resolv_conf_skips_loopback_resolvers(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver ::1\n"
                    "nameserver 192.0.2.1\nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:1\n")
    assert read_resolv_conf(str(conf)) == ["192.0.2.1", "fe80::1"]
    # Only loopback listed: systemd-resolved's upstream list is used if this host has one; never loopback.
    conf.write_text("nameserver 127.0.0.53\n")
    assert not any(ip.startswith("127.") or ip == "::1" for ip in read_resolv_conf(str(conf)))


def test_parse_upstream() -> None:
    assert parse_upstream("192.0.2.1") == ("192.0.2.1", 53)
    assert parse_upstream("192.0.2.1:5353") == ("192.0.2.1", 5353)
    assert parse_upstream("[fd00::1]:54") == ("fd00::1", 54)
    assert parse_upstream("fd00::1") == ("fd00::1", 53)
    with pytest.raises(ValueError):
        parse_upstream("resolver.example")
