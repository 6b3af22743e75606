"""What the proxy serves: Services and their EndpointSlices reduced to service ports and endpoints.

Pure functions of API objects, shared by both proxy modes. Endpoint selection follows kube-proxy
(pkg/proxy/topology.go, CategorizeEndpoints): the ready endpoints; when a service has none, its endpoints
that are serving and terminating, so connections still drain to pods that are shutting down gracefully.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

__all__ = ["DEFAULT_AFFINITY_TIMEOUT", "Endpoint", "ServicePort", "build_service_ports",
           "service_key_of_slice"]

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_TIMEOUT = 10800  # Kubernetes' default sessionAffinityConfig.clientIP.timeoutSeconds
_PROTOCOLS = ("TCP", "UDP")


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of one Service: where clients reach it and the endpoints behind it."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # "TCP" or "UDP"
    cluster_ips: tuple[str, ...]
    port: int
    node_port: int = 0
    affinity_timeout: int = 0  # seconds of ClientIP session affinity; 0 = none
    endpoints: tuple[Endpoint, ...] = field(default=())

    @property
    def key(self) -> str:
        """namespace/name:port-name/protocol — unique per service port, as kube-proxy's ServicePortName."""
        return f"{self.namespace}/{self.name}:{self.port_name}/{self.protocol.lower()}"


def service_key_of_slice(eps: Obj) -> str | None:
    """namespace/name of the Service an EndpointSlice belongs to (its service-name label)."""
    meta = eps.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return f"{meta.get('namespace', '')}/{name}" if name else None


def _ipv4s(values: Iterable[Any]) -> tuple[str, ...]:
    out = []
    for v in values:
        try:
            if isinstance(v, str) and ipaddress.ip_address(v).version == 4:
                out.append(v)
        except ValueError:
            continue
    return tuple(dict.fromkeys(out))


def _port(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


def _affinity_timeout(spec: Obj) -> int:
    if spec.get("sessionAffinity") != "ClientIP":
        return 0
    cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP")) or {}
    return int(cfg.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)


def _slice_endpoints(slices: Iterable[Obj], port_name: str, protocol: str) -> tuple[Endpoint, ...]:
    """Ready endpoints for one named port; if none, the serving and terminating ones."""
    ready: set[Endpoint] = set()
    draining: set[Endpoint] = set()
    for eps in slices:
        if eps.get("addressType", "IPv4") != "IPv4":
            continue
        number = None
        for p in eps.get("ports") or []:
            if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol:
                number = p.get("port")
                break
        if not _port(number):
            continue
        for ep in eps.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            is_ready = cond.get("ready") is not False  # unset means ready
            serving = cond.get("serving", is_ready) is not False
            terminating = cond.get("terminating") is True
            for ip in _ipv4s((ep.get("addresses") or [])[:1]):
                if is_ready and not terminating:
                    ready.add(Endpoint(ip, number))
                elif serving and terminating:
                    draining.add(Endpoint(ip, number))
    return tuple(sorted(ready or draining))


def build_service_ports(service: Obj, slices: Iterable[Obj]) -> list[ServicePort]:
    """The service ports the proxy handles for one Service (none for headless and ExternalName ones)."""
    spec = service.get("spec") or {}
    meta = service.get("metadata") or {}
    if spec.get("type") == "ExternalName":
        return []
    cluster_ips = _ipv4s(spec.get("clusterIPs") or [spec.get("clusterIP")])
    if not cluster_ips:  # headless ("None") or not allocated yet
        return []
    slices = list(slices)
    affinity = _affinity_timeout(spec)
    with_node_ports = spec.get("type") in ("NodePort", "LoadBalancer")
    out = []
    for p in spec.get("ports") or []:
        protocol = p.get("protocol") or "TCP"
        port = p.get("port")
        if protocol not in _PROTOCOLS or not _port(port):
            continue
        port_name = p.get("name") or ""
        node_port = p.get("nodePort") if with_node_ports else 0
        out.append(ServicePort(
            namespace=meta.get("namespace", ""), name=meta.get("name", ""), port_name=port_name,
            protocol=protocol, cluster_ips=cluster_ips, port=port,
            node_port=node_port if _port(node_port) else 0, affinity_timeout=affinity,
            endpoints=_slice_endpoints(slices, port_name, protocol)))
    return out
