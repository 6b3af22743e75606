"""ClusterDNS against a real API server, queried over loopback with dnslib's client (and busybox)."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import socket
import struct
import time
from typing import Any

import pytest
from dnslib import QTYPE, DNSRecord

from pyk8s.client.informer import SharedInformerFactory
from pyk8s.dns import ClusterDNS, dns_service_objects
from tests.dns._support import (
    ENDPOINTS,
    NAMESPACES,
    SERVICES,
    SLICES,
    FakeUpstream,
    answers,
    cluster_dns,
    rcode,
    until_answer,
)
from tests.support.poll import eventually

NS = "default"
DOMAIN = "svc.cluster.local"


def service(name: str, cluster_ip: str | None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": name},
                            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}}
    if cluster_ip:
        body["spec"]["clusterIP"] = cluster_ip
    return body


def endpoint_slice(name: str, svc: str, endpoints: list[dict[str, Any]], family: str = "IPv4",
                   ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": family, "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def ep(ip: str, ready: bool = True, hostname: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        out["hostname"] = hostname
    return out


def soa_in_authority(reply: DNSRecord) -> bool:
    return [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"] and str(reply.auth[0].rname) == "cluster.local."


async def test_cluster_ip_service_records() -> None:
    async with cluster_dns() as env:
        await env.client.create(SERVICES, service("web", "10.43.1.2"), NS)
        reply = await until_answer(env, f"web.{NS}.{DOMAIN}", lambda r: bool(r.rr))
        assert answers(reply) == ["10.43.1.2"]
        assert reply.header.aa == 1 and rcode(reply) == "NOERROR"

        # Case does not matter; the question comes back as asked.
        mixed = await env.ask("WeB.DeFault.SVC.Cluster.LOCAL")
        assert answers(mixed) == ["10.43.1.2"] and str(mixed.q.qname) == "WeB.DeFault.SVC.Cluster.LOCAL."

        # SRV for the named port, on the port's name and on the service's.
        for name in (f"_http._tcp.web.{NS}.{DOMAIN}", f"web.{NS}.{DOMAIN}"):
            srv = await env.ask(name, "SRV")
            assert [(rr.rdata.port, str(rr.rdata.target)) for rr in srv.rr] == [(80, f"web.{NS}.{DOMAIN}.")]
            assert [str(rr.rdata) for rr in srv.ar] == ["10.43.1.2"]
        # A name that exists without records of the type: NOERROR, empty, SOA for negative caching.
        for name, qtype in ((f"web.{NS}.{DOMAIN}", "TXT"), (f"web.{NS}.{DOMAIN}", "AAAA"),
                            (f"_http._tcp.web.{NS}.{DOMAIN}", "A")):
            empty = await env.ask(name, qtype)
            assert rcode(empty) == "NOERROR" and not empty.rr and soa_in_authority(empty), (name, qtype)
        # Missing names under the domain: NXDOMAIN with the SOA (a search-path miss answers at once).
        for name in (f"nope.{NS}.{DOMAIN}", f"example.com.{NS}.{DOMAIN}", f"_grpc._tcp.web.{NS}.{DOMAIN}",
                     "web.nowhere.svc.cluster.local", "what.cluster.local"):
            missing = await env.ask(name)
            assert rcode(missing) == "NXDOMAIN" and not missing.rr and soa_in_authority(missing), name
        # The zone's apex answers SOA and NS.
        assert answers(await env.ask("cluster.local", "SOA"), "SOA")
        assert answers(await env.ask("cluster.local", "NS")) == ["ns.dns.cluster.local."]
        # Reverse name of the cluster IP.
        ptr = await env.ask("2.1.43.10.in-addr.arpa", "PTR")
        assert answers(ptr) == [f"web.{NS}.{DOMAIN}."]

        # The endpoints of a ClusterIP service have names too (as in CoreDNS), with reverse names.
        await env.client.create(SLICES, endpoint_slice("web-1", "web", [ep("10.42.0.3", hostname="w0")]), NS)
        named = await until_answer(env, f"w0.web.{NS}.{DOMAIN}", lambda r: bool(r.rr))
        assert answers(named) == ["10.42.0.3"]
        assert answers(await env.ask(f"web.{NS}.{DOMAIN}")) == ["10.43.1.2"]  # still the cluster IP
        assert answers(await env.ask("3.0.42.10.in-addr.arpa", "PTR")) == [f"w0.web.{NS}.{DOMAIN}."]

        # An ExternalName inside the cluster domain is followed in the cluster.
        await env.client.create(SERVICES, {"metadata": {"name": "alias"}, "spec": {
            "type": "ExternalName", "externalName": f"web.{NS}.{DOMAIN}"}}, NS)
        alias = await until_answer(env, f"alias.{NS}.{DOMAIN}", lambda r: bool(r.rr))
        assert [(QTYPE[rr.rtype], str(rr.rdata)) for rr in alias.rr] == [
            ("CNAME", f"web.{NS}.{DOMAIN}."), ("A", "10.43.1.2")]


async def test_headless_service_answers_ready_endpoints() -> None:
    async with cluster_dns() as env:
        await env.client.create(SERVICES, service("db", "None"), NS)
        await env.client.create(SLICES, endpoint_slice("db-a", "db", [
            ep("10.42.0.5", hostname="db-0"), ep("10.42.0.6"), ep("10.42.0.7", ready=False)]), NS)
        await env.client.create(SLICES, endpoint_slice("db-b", "db", [ep("fd00:42::8", hostname="db-1")],
                                                       family="IPv6"), NS)
        name = f"db.{NS}.{DOMAIN}"
        reply = await until_answer(env, name, lambda r: len(r.rr) == 2)
        assert answers(reply) == ["10.42.0.5", "10.42.0.6"]  # the unready one left out
        assert answers(await env.ask(name, "AAAA")) == ["fd00:42::8"]
        # Each endpoint by its hostname (as StatefulSets use), or by its IP with dashes.
        assert answers(await env.ask(f"db-0.{name}")) == ["10.42.0.5"]
        assert answers(await env.ask(f"10-42-0-6.{name}")) == ["10.42.0.6"]
        assert answers(await env.ask(f"db-1.{name}", "AAAA")) == ["fd00:42::8"]
        assert rcode(await env.ask(f"10-42-0-7.{name}")) == "NXDOMAIN"
        # SRV: one record per ready endpoint, the endpoint's port, targets the endpoints' names.
        srv = await env.ask(f"_http._tcp.{name}", "SRV")
        assert sorted((rr.rdata.port, str(rr.rdata.target)) for rr in srv.rr) == [
            (8080, f"10-42-0-6.{name}."), (8080, f"db-0.{name}."), (8080, f"db-1.{name}.")]
        assert sorted(str(rr.rdata) for rr in srv.ar) == ["10.42.0.5", "10.42.0.6", "fd00:42::8"]
        ptr = await env.ask("5.0.42.10.in-addr.arpa", "PTR")
        assert answers(ptr) == [f"db-0.{name}."]
        ptr6 = await env.ask(ipaddress.ip_address("fd00:42::8").reverse_pointer, "PTR")
        assert answers(ptr6) == [f"db-1.{name}."]


async def test_pod_records() -> None:
    async with cluster_dns() as env:
        # As CoreDNS: names in a namespace that does not exist do not exist.
        assert rcode(await env.ask("10-42-3-4.elsewhere.pod.cluster.local")) == "NXDOMAIN"
        await env.client.create(NAMESPACES, {"metadata": {"name": "elsewhere"}})
        await until_answer(env, "10-42-3-4.elsewhere.pod.cluster.local", lambda r: bool(r.rr))
        for name in (f"{NS}.svc.cluster.local", f"{NS}.pod.cluster.local", "svc.cluster.local"):
            empty = await env.ask(name)
            assert rcode(empty) == "NOERROR" and not empty.rr and soa_in_authority(empty), name
        assert answers(await env.ask(f"10-42-3-4.{NS}.pod.cluster.local")) == ["10.42.3.4"]
        assert answers(await env.ask(f"fd00--9.{NS}.pod.cluster.local", "AAAA")) == ["fd00::9"]
        empty = await env.ask(f"10-42-3-4.{NS}.pod.cluster.local", "AAAA")
        assert rcode(empty) == "NOERROR" and not empty.rr
        assert rcode(await env.ask(f"not-an-ip.{NS}.pod.cluster.local")) == "NXDOMAIN"


async def test_updates_are_followed() -> None:
    async with cluster_dns() as env:
        name = f"late.{NS}.{DOMAIN}"
        assert rcode(await env.ask(name)) == "NXDOMAIN"
        await env.client.create(SERVICES, service("late", "None"), NS)
        await until_answer(env, name, lambda r: rcode(r) == "NOERROR" and not r.rr, within=1.0)
        await env.client.create(SLICES, endpoint_slice("late-1", "late", [ep("10.42.1.1")]), NS)
        await until_answer(env, name, lambda r: answers(r) == ["10.42.1.1"], within=1.0)
        eps = await env.client.get(SLICES, "late-1", NS)
        eps["endpoints"] = [ep("10.42.1.1", ready=False), ep("10.42.1.2")]
        await env.client.update(SLICES, eps, NS)
        await until_answer(env, name, lambda r: answers(r) == ["10.42.1.2"], within=1.0)
        await env.client.delete(SLICES, "late-1", NS)
        await until_answer(env, name, lambda r: rcode(r) == "NOERROR" and not r.rr, within=1.0)
        await env.client.delete(SERVICES, "late", NS)
        await until_answer(env, name, lambda r: rcode(r) == "NXDOMAIN", within=1.0)


async def test_forwarding_cache_tcp_fallback_and_external_name() -> None:
    upstream = FakeUpstream(zone={"example.org": "192.0.2.10", "db.example.net": "192.0.2.20"},
                            big={"big.example.org"})
    await upstream.start()
    try:
        async with cluster_dns(upstreams=[f"127.0.0.1:{upstream.port}"]) as env:
            reply = await env.ask("Example.ORG")
            assert answers(reply) == ["192.0.2.10"] and str(reply.q.qname) == "Example.ORG."
            assert upstream.udp_queries == ["example.org"]
            again = await env.ask("example.org")
            assert answers(again) == ["192.0.2.10"]
            assert upstream.udp_queries == ["example.org"], "the second answer comes from the cache"
            assert rcode(await env.ask("missing.example.org")) == "NXDOMAIN"

            # Truncated upstream answer over UDP: asked again over TCP; sized for each client.
            whole = await env.ask("big.example.org", tcp=True)
            assert len(whole.rr) == 100 and upstream.tcp_queries == ["big.example.org"]
            small = await env.ask("big.example.org")
            assert small.header.tc == 1 and not small.rr
            assert len((await env.ask("big.example.org", edns=4096)).rr) == 100

            # ExternalName: a CNAME, followed by the target's records from upstream.
            await env.client.create(SERVICES, {"metadata": {"name": "ext"}, "spec": {
                "type": "ExternalName", "externalName": "db.example.net"}}, NS)
            ext = await until_answer(env, f"ext.{NS}.{DOMAIN}", lambda r: bool(r.rr))
            assert [(QTYPE[rr.rtype], str(rr.rdata)) for rr in ext.rr] == [
                ("CNAME", "db.example.net."), ("A", "192.0.2.20")]
            # Reverse names the cluster does not own go upstream too.
            assert rcode(await env.ask("1.2.0.192.in-addr.arpa", "PTR")) == "NXDOMAIN"
            assert "1.2.0.192.in-addr.arpa" in upstream.udp_queries
    finally:
        await upstream.stop()


async def test_a_failed_upstream_is_passed_over() -> None:
    upstream = FakeUpstream(zone={"example.org": "192.0.2.10"})
    await upstream.start()
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: the kernel refuses at once
    try:
        async with cluster_dns(upstreams=[f"127.0.0.1:{dead_port}", f"127.0.0.1:{upstream.port}"]) as env:
            assert answers(await env.ask("example.org")) == ["192.0.2.10"]
            assert upstream.udp_queries == ["example.org"]
    finally:
        await upstream.stop()


async def test_servfail_quickly_without_upstreams() -> None:
    async with cluster_dns(upstreams=[]) as env:
        started = time.monotonic()
        reply = await env.ask("example.org")
        assert rcode(reply) == "SERVFAIL" and time.monotonic() - started < 1.0
        await env.client.create(SERVICES, {"metadata": {"name": "ext"}, "spec": {
            "type": "ExternalName", "externalName": "db.example.net"}}, NS)
        ext = await until_answer(env, f"ext.{NS}.{DOMAIN}", lambda r: bool(r.rr))
        assert [(QTYPE[rr.rtype], str(rr.rdata)) for rr in ext.rr] == [("CNAME", "db.example.net.")]
    # An upstream that never answers costs at most the forward timeout, then SERVFAIL.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        port = silent.getsockname()[1]
        async with cluster_dns(upstreams=[f"127.0.0.1:{port}"], forward_timeout=0.5) as env:
            reply = await env.ask("example.org")
            assert rcode(reply) == "SERVFAIL"
    finally:
        silent.close()


async def test_servfail_for_cluster_names_until_synced() -> None:
    """Before the informers listed once, NXDOMAIN would be a lie that resolvers cache."""
    async with cluster_dns() as env:
        early = ClusterDNS(env.client, upstreams=[])
        port = await early.serve("127.0.0.1", 0)
        try:
            q = DNSRecord.question(f"web.{NS}.{DOMAIN}")
            reply = DNSRecord.parse(await asyncio.to_thread(q.send, "127.0.0.1", port, timeout=5))
            assert rcode(reply) == "SERVFAIL"
        finally:
            await early.close()


async def test_a_shared_factory_s_other_informers_do_not_hold_the_zone_back() -> None:
    """In the components process the DNS shares its factory: an informer of another component that cannot
    list (a malformed selector: 400 on every try) must not keep the zone from being served."""
    async with cluster_dns() as env:
        factory = SharedInformerFactory(env.client)
        stuck = factory.informer(NAMESPACES, label_selector="app in (")
        shared = ClusterDNS(env.client, upstreams=[], informers=factory)
        task = asyncio.create_task(shared.run())
        try:
            await eventually(lambda: shared.zone.synced, what="the zone synced")
            assert not stuck.has_synced()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.stop()


async def test_tcp_queries_and_truncation() -> None:
    async with cluster_dns() as env:
        await env.client.create(SERVICES, service("many", "None"), NS)
        ips = [f"10.42.2.{i}" for i in range(1, 61)]  # 60 A records: more than 512 bytes
        await env.client.create(SLICES, endpoint_slice("many-1", "many", [ep(ip) for ip in ips]), NS)
        name = f"many.{NS}.{DOMAIN}"
        whole = await until_answer(env, name, lambda r: r.header.tc == 1)
        assert not whole.rr and rcode(whole) == "NOERROR"
        over_tcp = await env.ask(name, tcp=True)
        assert answers(over_tcp) == sorted(ips) and over_tcp.header.tc == 0
        with_edns = await env.ask(name, edns=4096)
        assert len(with_edns.rr) == 60 and with_edns.header.tc == 0
        assert [QTYPE[rr.rtype] for rr in with_edns.ar] == ["OPT"]
        # An EDNS0 buffer below 512 counts as 512.
        assert (await env.ask(name, edns=100)).header.tc == 1

        # Several queries on one TCP connection.
        reader, writer = await asyncio.open_connection("127.0.0.1", env.port)
        try:
            for qname in (name, f"10-1-2-3.{NS}.pod.cluster.local"):
                q = DNSRecord.question(qname).pack()
                writer.write(struct.pack("!H", len(q)) + q)
                await writer.drain()
                (n,) = struct.unpack("!H", await reader.readexactly(2))
                assert DNSRecord.parse(await reader.readexactly(n)).rr
        finally:
            writer.close()


async def test_malformed_packets_are_survived() -> None:
    async with cluster_dns() as env:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            for junk in (b"", b"\x00", b"\x12\x34" + b"\xff" * 30, b"\x12\x34\x01\x00\x00\x01" + b"\x00" * 6
                         + b"\x3fabc", DNSRecord.question("x.example").reply().pack()):
                await loop.sock_sendto(sock, junk, ("127.0.0.1", env.port))
            # A query with a header but a broken question is answered FORMERR.
            await loop.sock_sendto(sock, b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab",
                                   ("127.0.0.1", env.port))
            got: list[bytes] = []
            async with asyncio.timeout(5):
                while not got or got[-1][:2] != b"\xab\xcd":
                    got.append(await loop.sock_recv(sock, 512))
            # Only header-only FORMERR answers; nothing for runts or for packets that are answers.
            assert [(g[:2], g[3] & 0x0F, len(g)) for g in got] == [(b"\x12\x34", 1, 12), (b"\xab\xcd", 1, 12)]
        finally:
            sock.close()
        # TCP: a length prefix with too little behind it, then a garbage message.
        reader, writer = await asyncio.open_connection("127.0.0.1", env.port)
        writer.write(b"\x00\x05ab")
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", env.port)
        writer.write(b"\x00\x04\xff\xff\xff\xff")
        await writer.drain()
        assert await reader.read() == b""  # closed: nothing worth answering
        writer.close()
        # Still serving.
        assert answers(await env.ask(f"10-0-0-1.{NS}.pod.cluster.local")) == ["10.0.0.1"]
        assert answers(await env.ask(f"10-0-0-1.{NS}.pod.cluster.local", tcp=True)) == ["10.0.0.1"]


async def test_kube_dns_objects_and_busybox_nslookup() -> None:
    async with cluster_dns() as env:
        await env.client.create(NAMESPACES, {"metadata": {"name": "kube-system"}})
        svc, endpoints, eps = dns_service_objects(node_ip="127.0.0.1", port=env.port)
        created = await env.client.create(SERVICES, svc, "kube-system")
        assert created["spec"]["clusterIP"] == "10.43.0.10"
        await env.client.create(ENDPOINTS, endpoints, "kube-system")
        await env.client.create(SLICES, eps, "kube-system")
        reply = await until_answer(env, "kube-dns.kube-system.svc.cluster.local", lambda r: bool(r.rr))
        assert answers(reply) == ["10.43.0.10"]
        srv = await env.ask("_dns._udp.kube-dns.kube-system.svc.cluster.local", "SRV")
        assert [rr.rdata.port for rr in srv.rr] == [53]

        busybox = shutil.which("busybox")
        if busybox is None:
            pytest.skip("busybox is not installed")
        await env.client.create(SERVICES, service("web", "10.43.1.9"), NS)
        await until_answer(env, f"web.{NS}.{DOMAIN}", lambda r: bool(r.rr))
        proc = await asyncio.create_subprocess_exec(
            busybox, "nslookup", "-type=a", f"web.{NS}.{DOMAIN}", f"127.0.0.1:{env.port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        async with asyncio.timeout(20):
            out, _ = await proc.communicate()
        assert proc.returncode == 0 and "10.43.1.9" in out.decode(), out.decode()
