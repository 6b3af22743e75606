"""The cluster's DNS data: Services and EndpointSlices folded into in-memory indexes, so that a query costs
a few dict lookups and never an API call.

Names follow Kubernetes' DNS specification for services and pods (as CoreDNS's kubernetes plugin):
`SVC.NS.svc.DOMAIN` (cluster IPs, or the ready endpoints of a headless service),
`HOST.SVC.NS.svc.DOMAIN` (one endpoint of a service: its hostname, or its IP with dashes),
`_PORT._PROTO.SVC.NS.svc.DOMAIN` (SRV), `1-2-3-4.NS.pod.DOMAIN` (any pod IP, CoreDNS's `pods insecure`).
As in CoreDNS, names in a namespace that does not exist do not exist either.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Endpoint", "ServiceEntry", "ServiceIndex", "dashed", "is_v6", "undashed", "valid_ip"]

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def dashed(ip: str) -> str:
    """`10.42.0.5` → `10-42-0-5`; `fd00::1` → `fd00--1` (the label Kubernetes gives an IP)."""
    return ip.replace(".", "-").replace(":", "-")


def undashed(label: str) -> str | None:
    """The IP a dashed label names, or None: `10-42-0-5` → `10.42.0.5`, `fd00--1` → `fd00::1`."""
    for candidate in (label.replace("-", "."), label.replace("-", ":")):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def is_v6(ip: str) -> bool:
    return ":" in ip


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address of a headless service with the name it answers to and its ports (name, proto) → port."""

    ip: str
    label: str  # the endpoint's hostname, or its IP with dashes
    ports: dict[tuple[str, str], int]


@dataclass(slots=True)
class ServiceEntry:
    namespace: str
    name: str
    headless: bool = False
    external_name: str = ""
    cluster_ips: list[str] = field(default_factory=list)
    publish_not_ready: bool = False
    # (port name, protocol lowercased) → service port
    ports: dict[tuple[str, str], int] = field(default_factory=dict)
    # ready endpoints (the answer of a headless service), and the same by their label
    endpoints: list[Endpoint] = field(default_factory=list)
    by_label: dict[str, list[Endpoint]] = field(default_factory=dict)


class ServiceIndex:
    """Services and their endpoints by name; reverse names by IP. Fed by informer events, read by queries.

    An EndpointSlice names its service in the `kubernetes.io/service-name` label; a service's endpoints
    are the union of its slices', rebuilt (for that service alone) when either changes.
    """

    def __init__(self, domain: str) -> None:
        self.domain = domain.strip(".").lower()
        self._services: dict[tuple[str, str], ServiceEntry] = {}
        self._service_objs: dict[tuple[str, str], Obj] = {}
        # (namespace, service) → slice name → slice
        self._slices: dict[tuple[str, str], dict[str, Obj]] = {}
        self._slice_owner: dict[tuple[str, str], tuple[str, str]] = {}  # (ns, slice) → (ns, service)
        self._namespaces: set[str] = set()
        self.generation = 0  # counts changes, so that caches of answers know when they are stale
        # IP → owner ("svc"/"ep", ns, name) → PTR target
        self._ptr: dict[str, dict[tuple[str, str, str], str]] = {}

    # --- queries -----------------------------------------------------------------------------------

    def service(self, namespace: str, name: str) -> ServiceEntry | None:
        return self._services.get((namespace, name))

    def has_namespace(self, namespace: str) -> bool:
        return namespace in self._namespaces

    def ptr(self, ip: str) -> list[str]:
        return sorted(set(self._ptr.get(ip, {}).values()))

    def service_fqdn(self, entry: ServiceEntry) -> str:
        return f"{entry.name}.{entry.namespace}.svc.{self.domain}."

    # --- events ------------------------------------------------------------------------------------

    def set_namespace(self, ns: Obj) -> None:
        name = _key(ns)[1]
        if name not in self._namespaces:
            self._namespaces.add(name)
            self.generation += 1

    def delete_namespace(self, ns: Obj) -> None:
        self._namespaces.discard(_key(ns)[1])
        self.generation += 1

    def set_service(self, svc: Obj) -> None:
        key = _key(svc)
        self._service_objs[key] = svc
        self._rebuild(key)

    def delete_service(self, svc: Obj) -> None:
        key = _key(svc)
        self._service_objs.pop(key, None)
        self._rebuild(key)

    def set_slice(self, eps: Obj) -> None:
        ns, name = _key(eps)
        service = ((eps.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
        old_owner = self._slice_owner.pop((ns, name), None)
        if old_owner is not None and old_owner != (ns, service):
            self._drop_slice(old_owner, name)
        if service:
            self._slice_owner[(ns, name)] = (ns, service)
            self._slices.setdefault((ns, service), {})[name] = eps
            self._rebuild((ns, service))

    def delete_slice(self, eps: Obj) -> None:
        ns, name = _key(eps)
        owner = self._slice_owner.pop((ns, name), None)
        if owner is not None:
            self._drop_slice(owner, name)

    def _drop_slice(self, owner: tuple[str, str], name: str) -> None:
        slices = self._slices.get(owner)
        if slices is not None:
            slices.pop(name, None)
            if not slices:
                del self._slices[owner]
        self._rebuild(owner)

    def _rebuild(self, key: tuple[str, str]) -> None:
        """Recompute one service's entry and its reverse names from its object and slices."""
        ns, name = key
        self.generation += 1
        self._forget_ptr(ns, name)
        svc = self._service_objs.get(key)
        if svc is None:
            self._services.pop(key, None)
            return
        spec = svc.get("spec") or {}
        entry = ServiceEntry(ns, name)
        entry.publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
        for port in spec.get("ports") or []:
            entry.ports[(str(port.get("name") or "").lower(), str(port.get("protocol") or "TCP").lower())] = \
                int(port.get("port") or 0)
        if spec.get("type") == "ExternalName":
            entry.external_name = str(spec.get("externalName") or "").rstrip(".").lower()
        else:
            ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip]
            if ips and ips[0] == "None":
                entry.headless = True
            else:
                entry.cluster_ips = [ip for ip in ips if valid_ip(ip)]
        fqdn = self.service_fqdn(entry)
        for ip in entry.cluster_ips:
            self._ptr.setdefault(ip, {})[("svc", ns, name)] = fqdn
        if not entry.external_name:
            self._fill_endpoints(entry, fqdn)
        self._services[key] = entry

    def _fill_endpoints(self, entry: ServiceEntry, fqdn: str) -> None:
        seen: set[str] = set()
        for eps in (self._slices.get((entry.namespace, entry.name)) or {}).values():
            ports = {(str(p.get("name") or "").lower(), str(p.get("protocol") or "TCP").lower()):
                     int(p.get("port") or 0) for p in eps.get("ports") or [] if p.get("port") is not None}
            for ep in eps.get("endpoints") or []:
                ready = (ep.get("conditions") or {}).get("ready")
                if ready is False and not entry.publish_not_ready:
                    continue
                hostname = str(ep.get("hostname") or "").lower()
                for ip in ep.get("addresses") or []:
                    if not valid_ip(ip) or ip in seen:
                        continue
                    seen.add(ip)
                    endpoint = Endpoint(ip, hostname or dashed(ip), ports)
                    entry.endpoints.append(endpoint)
                    entry.by_label.setdefault(endpoint.label, []).append(endpoint)
                    self._ptr.setdefault(ip, {})[("ep", entry.namespace, entry.name)] = \
                        f"{endpoint.label}.{fqdn}"

    def _forget_ptr(self, ns: str, name: str) -> None:
        old = self._services.get((ns, name))
        if old is None:
            return
        for ip in [*old.cluster_ips, *(e.ip for e in old.endpoints)]:
            owners = self._ptr.get(ip)
            if owners is None:
                continue
            owners.pop(("svc", ns, name), None)
            owners.pop(("ep", ns, name), None)
            if not owners:
                del self._ptr[ip]


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def valid_ip(ip: str) -> bool:
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return False
    return True
