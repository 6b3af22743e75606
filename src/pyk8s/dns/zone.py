"""Authoritative answers for the cluster domain (and reverse names of service and endpoint IPs).

`ClusterZone.answer(request)` returns the reply for a name the cluster owns, or None for a name that is
somebody else's (to be forwarded). Like CoreDNS: a missing name under the domain is NXDOMAIN and an
existing name without records of the asked type is NOERROR with no answers, both with the zone's SOA in
the authority section so that resolvers cache the negative answer for the SOA's minimum TTL.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from dnslib import (  # type: ignore[import-untyped]
    AAAA,
    CNAME,
    NS,
    PTR,
    QTYPE,
    RCODE,
    RR,
    SOA,
    SRV,
    A,
    DNSLabel,
    DNSRecord,
)

from pyk8s.dns.records import Endpoint, ServiceEntry, ServiceIndex, is_v6, undashed, valid_ip

__all__ = ["Answer", "ClusterZone"]

REVERSE_V4 = ("in-addr", "arpa")
REVERSE_V6 = ("ip6", "arpa")


@dataclass(slots=True)
class Answer:
    reply: DNSRecord
    chase: str = ""  # an ExternalName target outside the cluster, whose records should follow the CNAME


class ClusterZone:
    def __init__(self, index: ServiceIndex, *, ttl: int = 5) -> None:
        self.index = index
        self.domain = index.domain
        self.ttl = ttl
        self._domain_labels = tuple(self.domain.split("."))
        self._origin = DNSLabel(self.domain + ".")
        self._soa = SOA(f"ns.dns.{self.domain}.", f"hostmaster.{self.domain}.",
                        (int(time.time()), 7200, 1800, 86400, ttl))
        self.synced = False  # until the informers listed once, cluster names get SERVFAIL, not NXDOMAIN

    def owns(self, labels: tuple[str, ...]) -> bool:
        n = len(self._domain_labels)
        return len(labels) >= n and labels[len(labels) - n:] == self._domain_labels

    def answer(self, request: DNSRecord, labels: tuple[str, ...]) -> Answer | None:
        """labels: the question's name, lowercased. None when the name is not the cluster's to answer."""
        q = request.q
        if labels[-2:] in (REVERSE_V4, REVERSE_V6):
            return self._reverse(request, labels)
        if not self.owns(labels):
            return None
        reply = request.reply(ra=1, aa=1)
        if not self.synced:
            reply.header.rcode = RCODE.SERVFAIL
            reply.header.aa = 0
            return Answer(reply)
        rel = labels[:len(labels) - len(self._domain_labels)]
        result = _Builder(self, reply, q.qname, q.qtype)
        result.resolve(rel)
        return Answer(reply, result.chase)

    def _reverse(self, request: DNSRecord, labels: tuple[str, ...]) -> Answer | None:
        if request.q.qtype not in (QTYPE.PTR, QTYPE.ANY):
            return None
        ip = _reverse_ip(labels)
        names = self.index.ptr(ip) if ip else []
        if not names:
            return None  # not ours: CoreDNS falls through to the upstreams for other reverse names
        reply = request.reply(ra=1, aa=1)
        for name in names:
            reply.add_answer(RR(request.q.qname, QTYPE.PTR, ttl=self.ttl, rdata=PTR(name)))
        return Answer(reply)

    def negative(self, reply: DNSRecord, nxdomain: bool) -> None:
        if nxdomain:
            reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(RR(self._origin, QTYPE.SOA, ttl=self.ttl, rdata=self._soa))


class _Builder:
    """The records of one question, added to `reply`."""

    def __init__(self, zone: ClusterZone, reply: DNSRecord, qname: DNSLabel, qtype: int) -> None:
        self.zone = zone
        self.index = zone.index
        self.reply = reply
        self.qname = qname
        self.qtype = qtype
        self.ttl = zone.ttl
        self.chase = ""

    def resolve(self, rel: tuple[str, ...]) -> None:
        found = self._lookup(rel)
        if not found:
            self.zone.negative(self.reply, nxdomain=True)
        elif not self.reply.rr:
            self.zone.negative(self.reply, nxdomain=False)

    def _lookup(self, rel: tuple[str, ...]) -> bool:
        """Add the answers for the name `rel` (relative to the domain); False if the name does not exist."""
        if not rel:
            if self.qtype in (QTYPE.SOA, QTYPE.ANY):
                self.reply.add_answer(RR(self.qname, QTYPE.SOA, ttl=self.ttl, rdata=self.zone._soa))
            if self.qtype in (QTYPE.NS, QTYPE.ANY):
                self.reply.add_answer(RR(self.qname, QTYPE.NS, ttl=self.ttl,
                                         rdata=NS(f"ns.dns.{self.zone.domain}.")))
            return True
        kind = rel[-1]
        if kind == "svc":
            return self._service_name(rel[:-1])
        if kind == "pod":
            return self._pod(rel[:-1])
        return False

    def _pod(self, rel: tuple[str, ...]) -> bool:
        if not rel:
            return True  # pod.DOMAIN exists, empty
        if len(rel) > 2 or not self.index.has_namespace(rel[-1]):
            return False
        if len(rel) == 1:
            return True
        ip = undashed(rel[0])
        if ip is None:
            return False
        self._address(self.qname, ip)
        return True

    def _service_name(self, rel: tuple[str, ...]) -> bool:
        if not rel:
            return True
        ns = rel[-1]
        if not self.index.has_namespace(ns):
            return False
        if len(rel) == 1:
            return True
        entry = self.index.service(ns, rel[-2])
        if entry is None:
            return False
        sub = rel[:-2]
        if not sub:
            self._service(entry)
            return True
        if entry.external_name:
            return False
        if len(sub) == 1 and sub[0].startswith("_"):  # _PROTO.SVC: an empty non-terminal of SRV names
            return any(proto == sub[0][1:] for _, proto in entry.ports)
        if len(sub) == 2 and sub[0].startswith("_") and sub[1].startswith("_"):
            return self._port_srv(entry, sub[0][1:], sub[1][1:])
        if len(sub) == 1:  # one endpoint, by hostname or dashed IP (of any service, as CoreDNS)
            endpoints = entry.by_label.get(sub[0])
            if not endpoints:
                return False
            for ep in endpoints:
                self._address(self.qname, ep.ip)
            return True
        return False

    def _service(self, entry: ServiceEntry) -> None:
        if entry.external_name:
            self.reply.add_answer(RR(self.qname, QTYPE.CNAME, ttl=self.ttl,
                                     rdata=CNAME(entry.external_name + ".")))
            if self.qtype != QTYPE.CNAME:
                self._follow(entry.external_name)
            return
        fqdn = self.index.service_fqdn(entry)
        if entry.headless:
            for ep in entry.endpoints:
                self._address(self.qname, ep.ip)
            if self.qtype in (QTYPE.SRV, QTYPE.ANY):
                for (name, proto) in entry.ports:
                    self._endpoint_srvs(entry, name, proto, fqdn)
            return
        for ip in entry.cluster_ips:
            self._address(self.qname, ip)
        if self.qtype in (QTYPE.SRV, QTYPE.ANY):
            for port in entry.ports.values():
                self._srv(port, fqdn, entry.cluster_ips)

    def _port_srv(self, entry: ServiceEntry, name: str, proto: str) -> bool:
        fqdn = self.index.service_fqdn(entry)
        if entry.headless:
            if not any(n == name and p == proto for n, p in entry.ports) and \
                    not any((name, proto) in ep.ports for ep in entry.endpoints):
                return False
            if self.qtype in (QTYPE.SRV, QTYPE.ANY):
                self._endpoint_srvs(entry, name, proto, fqdn)
            return True
        port = entry.ports.get((name, proto))
        if port is None:
            return False
        if self.qtype in (QTYPE.SRV, QTYPE.ANY):
            self._srv(port, fqdn, entry.cluster_ips)
        return True

    def _endpoint_srvs(self, entry: ServiceEntry, name: str, proto: str, fqdn: str) -> None:
        targets: list[tuple[Endpoint, int]] = [(ep, ep.ports[(name, proto)]) for ep in entry.endpoints
                                               if (name, proto) in ep.ports]
        for ep, port in targets:
            self._srv(port, f"{ep.label}.{fqdn}", [ep.ip], weight=max(1, 100 // len(targets)))

    def _srv(self, port: int, target: str, ips: list[str], weight: int = 100) -> None:
        self.reply.add_answer(RR(self.qname, QTYPE.SRV, ttl=self.ttl,
                                 rdata=SRV(priority=0, weight=weight, port=port, target=target)))
        for ip in ips:
            rtype, rdata = (QTYPE.AAAA, AAAA(ip)) if is_v6(ip) else (QTYPE.A, A(ip))
            self.reply.add_ar(RR(target, rtype, ttl=self.ttl, rdata=rdata))

    def _address(self, name: DNSLabel | str, ip: str) -> None:
        if is_v6(ip):
            if self.qtype in (QTYPE.AAAA, QTYPE.ANY):
                self.reply.add_answer(RR(name, QTYPE.AAAA, ttl=self.ttl, rdata=AAAA(ip)))
        elif self.qtype in (QTYPE.A, QTYPE.ANY):
            self.reply.add_answer(RR(name, QTYPE.A, ttl=self.ttl, rdata=A(ip)))

    def _follow(self, target: str) -> None:
        """Records of an ExternalName's target: from the cluster itself, or (by the caller) upstream."""
        labels = tuple(target.split("."))
        if not self.zone.owns(labels):
            self.chase = target
            return
        inner = _Builder(self.zone, self.reply, DNSLabel(target + "."), self.qtype)
        inner._lookup(labels[:len(labels) - len(self.zone._domain_labels)])


def _reverse_ip(labels: tuple[str, ...]) -> str | None:
    """The IP a reverse name stands for: `4.3.2.1.in-addr.arpa` → `1.2.3.4`, nibbles for ip6.arpa."""
    body = labels[:-2]
    if labels[-2:] == REVERSE_V4:
        if len(body) != 4:
            return None
        ip = ".".join(reversed(body))
    else:
        if len(body) != 32 or any(len(n) != 1 for n in body):
            return None
        nibbles = "".join(reversed(body))
        ip = ":".join(nibbles[i:i + 4] for i in range(0, 32, 4))
        if not valid_ip(ip):
            return None
        ip = str(ipaddress.ip_address(ip))
    return ip if valid_ip(ip) else None
